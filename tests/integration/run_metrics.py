"""Compare the metrics two runs logged (a resumed run against an uninterrupted one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def metric_rows(run_dir: Path) -> dict[int, dict]:
    """Each step's logged metrics, without the wall-clock ones."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: {k: v for k, v in r.items() if k != "sec_per_step" and not k.startswith("time/")} for r in rows}


def assert_same_metrics(a_dir: Path, b_dir: Path, steps: list[int], compared: list[int]) -> None:
    """Both runs logged exactly `steps`, and the same values (to float noise) at the `compared` ones."""
    a, b = metric_rows(a_dir), metric_rows(b_dir)
    assert sorted(a) == sorted(b) == steps
    for step in compared:
        assert a[step].keys() == b[step].keys()
        for key, value in a[step].items():
            assert b[step][key] == pytest.approx(value, rel=1e-5, abs=1e-7), (step, key)
