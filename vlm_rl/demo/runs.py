"""The run browser's reading side: the runs under the given folders, their curves and their logged samples."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from vlm_rl.demo.settings import DemoError
from vlm_rl.training.plots import CURVES, plot_run

_SEARCH_DEPTH = 3


def find_runs(roots: Sequence[Path]) -> dict[str, Path]:
    """Run folders (those holding ``metrics.jsonl``) at or up to three levels under each root, by display name."""
    runs: dict[str, Path] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise DemoError(f"run folder {root} does not exist")
        found = [root] if (root / "metrics.jsonl").is_file() else []
        for depth in range(1, _SEARCH_DEPTH + 1):
            found += sorted(p.parent for p in root.glob("/".join(["*"] * depth) + "/metrics.jsonl"))
        for run in found:
            name = str(Path(root.name) / run.relative_to(root)) if run != root else root.name
            runs[name if name not in runs else str(run)] = run
    return runs


def curve_files(run_dir: Path) -> list[Path]:
    """Where `vlm-rl plot` writes the run's curves (whether drawn yet or not): the only files of a run the demo serves."""
    return [Path(run_dir) / "plots" / f"{key.replace('/', '_')}.png" for key in CURVES]


def run_curves(run_dir: Path) -> list[Path]:
    """The run's `vlm-rl plot` PNGs, drawn again only when ``metrics.jsonl`` is newer than them."""
    metrics = run_dir / "metrics.jsonl"
    existing = [p for p in curve_files(run_dir) if p.is_file()]
    if existing and min(p.stat().st_mtime for p in existing) >= metrics.stat().st_mtime:
        return existing
    return plot_run(run_dir)


def logged_samples(run_dir: Path) -> dict[int, list[dict]]:
    """The completions the trainer logged (``samples.jsonl``), by step; empty when it logged none."""
    path = run_dir / "samples.jsonl"
    steps: dict[int, list[dict]] = {}
    if not path.is_file():
        return steps
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = int(record.pop("step"))
        except (ValueError, KeyError, TypeError) as error:
            raise DemoError(f"{path} line {number} is not a logged sample ({error})") from error
        steps.setdefault(step, []).append(record)
    return steps
