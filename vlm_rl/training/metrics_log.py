"""Run logging: metrics.jsonl, TensorBoard events, sample completions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class RunLogger:
    """Appends one JSON line per logged step and mirrors scalars to TensorBoard (main process only)."""

    def __init__(self, run_dir: Path, *, enabled: bool = True) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self._tb = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            run_dir.mkdir(parents=True, exist_ok=True)
            self._tb = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")
        for key, value in metrics.items():
            self._tb.add_scalar(key, value, step)

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / "samples.jsonl", "a") as handle:
            for sample in samples:
                handle.write(json.dumps({"step": step, **sample}) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step` (a resumed run rewrites them)."""
        for name in ("metrics.jsonl", "samples.jsonl"):
            path = self.run_dir / name
            if self.enabled and path.is_file():
                kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
                path.write_text("".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
