"""Run logging: metrics.jsonl, TensorBoard events, Weights & Biases, sample completions, and cutting the
files back on resume."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlm_rl.config import ConfigError, RunConfig, WandbConfig, to_dict
from vlm_rl.training.run_folder import RunFolderError
from vlm_rl.training.tb_events import truncate_event_files

LOG_FILES = ("metrics.jsonl", "samples.jsonl")
WANDB_ID_FILE = "wandb_run_id"
"""Holds the Weights & Biases run id, so a resumed run continues the same wandb run."""

log = logging.getLogger(__name__)


class RunLogger:
    """Appends one JSON line per logged step to metrics.jsonl and sends the same row to each sink in
    `report_to` ("tensorboard", "wandb"; "none" adds nothing). Only the main process logs."""

    def __init__(
        self,
        run_dir: Path,
        *,
        enabled: bool = True,
        report_to: Sequence[str] = ("tensorboard",),
        wandb_settings: WandbConfig | None = None,
        run_config: dict[str, Any] | None = None,
        resuming: bool = False,
    ) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self._tb = None
        self._wandb = None
        if not enabled:
            return
        self.check_report_to(report_to)
        run_dir.mkdir(parents=True, exist_ok=True)
        if "tensorboard" in report_to:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"))
        if "wandb" in report_to:
            self._wandb = _start_wandb(run_dir, wandb_settings or WandbConfig(), run_config or {}, resuming)

    @classmethod
    def for_run(cls, config: RunConfig, *, enabled: bool, resuming: bool) -> RunLogger:
        """The logger of a training run: its output_dir, trainer.report_to and trainer.wandb settings."""
        trainer = config.trainer
        return cls(
            Path(config.output_dir), enabled=enabled, report_to=trainer.report_to, wandb_settings=trainer.wandb,
            run_config=to_dict(config), resuming=resuming,
        )

    @staticmethod
    def check_report_to(report_to: Sequence[str]) -> None:
        """Raise a ConfigError when a listed sink's package is not installed (call before writing anything)."""
        if "wandb" in report_to and importlib.util.find_spec("wandb") is None:
            raise ConfigError(
                "trainer.report_to lists wandb, which is not installed: pip install wandb "
                "(or the extra: pip install 'vlm-rl[tracking]'), or drop wandb from trainer.report_to"
            )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log({"step": step, **metrics}, step=step)

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / "samples.jsonl", "a") as handle:
            for sample in samples:
                handle.write(json.dumps({"step": step, **sample}) + "\n")
        if self._wandb is not None and samples:
            self._wandb.log({"samples": _samples_table(step, samples)}, step=step)

    def sync(self) -> dict[str, int]:
        """Put everything logged so far on disk (called before a checkpoint is written); returns the
        byte length of each log file, which a checkpoint records so a resume can cut back exactly."""
        if not self.enabled:
            return {}
        if self._tb is not None:
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
        warning. TensorBoard events after `step` are dropped as well; what wandb already received stays
        there (wandb keeps the first value logged for a step).
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
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _start_wandb(run_dir: Path, settings: WandbConfig, run_config: dict[str, Any], resuming: bool):
    """Start (or, resuming, continue under the id kept in the run folder) this run's wandb run."""
    import wandb

    id_file = run_dir / WANDB_ID_FILE
    run_id = id_file.read_text().strip() if resuming and id_file.is_file() else None
    run = wandb.init(
        project=settings.project,
        name=settings.name or run_dir.resolve().name,
        entity=settings.entity,
        tags=list(settings.tags),
        config=run_config,
        dir=str(run_dir),
        id=run_id,
        resume="allow" if run_id else None,
    )
    id_file.write_text(run.id + "\n")
    return run


def _samples_table(step: int, samples: list[dict[str, Any]]):
    """The sample completions of one step as a wandb.Table: the samples.jsonl rows, one column per key."""
    import wandb

    rows = [{"step": step, **sample} for sample in samples]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return wandb.Table(columns=columns, data=[[row.get(key) for key in columns] for row in rows])


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
