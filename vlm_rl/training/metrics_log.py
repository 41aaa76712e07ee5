"""Run logging: metrics.jsonl, TensorBoard events, sample completions, and cutting them back on resume."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from vlm_rl.training.run_folder import RunFolderError
from vlm_rl.training.tb_events import truncate_event_files

LOG_FILES = ("metrics.jsonl", "samples.jsonl")

log = logging.getLogger(__name__)


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

    def sync(self) -> dict[str, int]:
        """Put everything logged so far on disk (called before a checkpoint is written); returns the
        byte length of each log file, which a checkpoint records so a resume can cut back exactly."""
        if not self.enabled:
            return {}
        self._tb.flush()
        lengths = {}
        for path in [*(self.run_dir / name for name in LOG_FILES), *(self.run_dir / "tensorboard").glob("events.*")]:
            if path.is_file():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
                if path.name in LOG_FILES:
                    lengths[path.name] = path.stat().st_size
        return lengths

    def truncate_after(self, step: int, lengths: dict[str, int] | None = None) -> None:
        """Drop what was logged after `step` (a resumed run logs it again).

        With the `lengths` a checkpoint recorded (see `sync`), each file is cut to exactly what it held
        then; otherwise lines are kept by their step, and a last line torn by a kill is dropped with a
        warning. TensorBoard events after `step` are dropped as well.
        """
        if not self.enabled:
            return
        for name in LOG_FILES:
            path = self.run_dir / name
            recorded = None if lengths is None else lengths.get(name, 0)  # absent: the file did not exist yet
            if path.is_file() and not _cut_to_length(path, recorded):
                _keep_steps_up_to(path, step)
        truncate_event_files(self.run_dir / "tensorboard", step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _cut_to_length(path: Path, length: int | None) -> bool:
    """Cut `path` to the `length` a checkpoint recorded; False (nothing done) when that cannot be trusted."""
    if length is None:
        return False
    with open(path, "rb+") as handle:
        ends_a_line = True
        if length:
            handle.seek(length - 1)
            ends_a_line = handle.read(1) == b"\n"
        if not ends_a_line:
            log.warning("warning: %s no longer holds what the checkpoint recorded; keeping its lines by step", path)
            return False
        handle.truncate(length)
        os.fsync(handle.fileno())
    return True


def _keep_steps_up_to(path: Path, step: int) -> None:
    lines = path.read_text().splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append((json.loads(line)["step"], line))
        except (ValueError, KeyError, TypeError):
            if number < len(lines):
                raise RunFolderError(f"{path}:{number}: not a logged row; remove or repair that line, then resume again") from None
            log.warning("warning: %s: dropped its last line, torn when the run was stopped while writing it", path)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text("".join(line + "\n" for row_step, line in rows if row_step <= step))
    os.replace(staging, path)
