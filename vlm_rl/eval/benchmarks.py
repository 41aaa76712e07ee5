"""The benchmarks `vlm-rl eval --benchmark` knows: where their files are, which preset, how to group.

Presets are the papers' frame, resolution and decoding settings as config files in ``configs/``
(``eval_seed_bench_r1.yaml``, ``eval_mmvu_mc.yaml``, ``eval_mmvu_official.yaml``); every value
used is written into the report's ``settings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_rl.config import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
BENCHMARKS = ("seed-bench-r1", "mmvu", "synthetic")
SEED_BENCH_R1_LEVELS = ("L1", "L2", "L3")


@dataclass(frozen=True)
class EvalJob:
    """One evaluation: a record file, its preset config, its breakdowns and its scoring."""

    name: str
    data: Path
    preset: Path | None
    group_by: tuple[str, ...] = ()
    reader_kwargs: dict[str, Any] = field(default_factory=dict)
    judge: bool = False


def benchmark_jobs(benchmark: str, *, data_root: Path | None, data: Path | None, levels: str, mode: str) -> list[EvalJob]:
    """The evaluations of one `--benchmark` call; ConfigError naming the missing or wrong argument."""
    if benchmark == "seed-bench-r1":
        root = _root(data_root, benchmark)
        chosen = [level.strip() for level in levels.split(",") if level.strip()]
        unknown = [level for level in chosen if level not in SEED_BENCH_R1_LEVELS]
        if unknown or not chosen:
            raise ConfigError(f"--levels: {unknown or levels!r} not among {', '.join(SEED_BENCH_R1_LEVELS)}")
        return [
            EvalJob(f"seed_bench_r1_{level}", root / "annotations" / f"validation_{level}.jsonl", CONFIGS / "eval_seed_bench_r1.yaml", ("domain",))
            for level in chosen
        ]
    if benchmark == "mmvu":
        root = _root(data_root, benchmark)
        if mode == "mc":
            return [EvalJob("mmvu_mc", root / "validation.json", CONFIGS / "eval_mmvu_mc.yaml", ("discipline", "subject"), {"multiple_choice_only": True})]
        if mode == "official":
            return [EvalJob("mmvu_official", root / "validation.json", CONFIGS / "eval_mmvu_official.yaml", ("discipline", "subject"), judge=True)]
        raise ConfigError(f"--mode: {mode!r} is not 'mc' or 'official'")
    if benchmark == "synthetic" or benchmark is None:
        if data is None:
            raise ConfigError("--data is required (a .json or .jsonl record file)")
        return [EvalJob(data.stem, data, None)]
    raise ConfigError(f"--benchmark: {benchmark!r} is not one of {', '.join(BENCHMARKS)}")


def _root(data_root: Path | None, benchmark: str) -> Path:
    if data_root is None:
        raise ConfigError(f"--benchmark {benchmark} needs --data-root, the folder the benchmark was downloaded to")
    if not data_root.is_dir():
        raise ConfigError(f"--data-root {data_root} is not a directory")
    return data_root
