"""The quickstart path at smoke scale: `QUICKSTART_SCALE=smoke bash scripts/quickstart.sh` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LABELS = ("untrained", "SFT", "SFT+GRPO")


def _table(stdout: str) -> dict[str, list[str]]:
    """The Markdown table the script prints: row title -> cells, plus the header under 'metric'."""
    rows = {}
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|") and not set(line) <= set("|-: "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_smoke_quickstart_runs_end_to_end_and_prints_the_table(tmp_path):
    out = tmp_path / "quickstart"
    env = {**os.environ, "QUICKSTART_SCALE": "smoke", "QUICKSTART_DIR": str(out)}
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", "scripts/quickstart.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    wall = time.perf_counter() - started
    print(f"smoke quickstart wall time: {wall:.1f} s")
    assert proc.returncode == 0, f"quickstart failed ({proc.returncode}) after {wall:.0f} s:\n{proc.stderr[-5000:]}"

    print("\n".join(line for line in proc.stdout.splitlines() if line.startswith("|")))
    table = _table(proc.stdout)
    assert table.get("metric") == list(LABELS), f"no before/after table with the three labels in:\n{proc.stdout}"
    assert "accuracy" in table and len(table["accuracy"]) == 3
    assert all(cell.endswith("%") for cell in table["accuracy"]), table["accuracy"]

    test_records = json.loads((out / "data" / "test.json").read_text())
    assert len(test_records) > 0
    reports = {}
    for label, name in zip(LABELS, ("eval_untrained.json", "eval_sft.json", "eval_grpo.json")):
        path = out / name
        assert path.is_file(), f"{name} was not written"
        report = json.loads(path.read_text())
        assert report["n"] == len(test_records), f"{name}: n={report['n']} for {len(test_records)} test records"
        assert len(report["results"]) == len(test_records)
        reports[label] = report
    # The table shows the numbers of the reports, in the labelled order.
    assert table["accuracy"] == [f"{reports[label]['accuracy']:.1%}" for label in LABELS]
    assert table["records"] == [str(len(test_records))] * 3
    # Each stage evaluated its own model.
    assert reports["untrained"]["settings"]["model"] == str(out / "model-init")
    assert reports["SFT"]["settings"]["model"] == str(out / "sft" / "final")
    assert reports["SFT+GRPO"]["settings"]["model"] == str(out / "grpo" / "final")
    # Both training stages ran and logged.
    for stage in ("sft", "grpo"):
        assert (out / stage / "metrics.jsonl").stat().st_size > 0, stage
        assert json.loads((out / stage / "final" / "train_summary.json").read_text())["stage"] == stage
    assert "total wall time" in proc.stdout


def test_a_second_quickstart_into_the_same_folder_is_refused_before_any_work(tmp_path):
    out = tmp_path / "quickstart"
    (out / "sft").mkdir(parents=True)
    env = {**os.environ, "QUICKSTART_SCALE": "smoke", "QUICKSTART_DIR": str(out)}
    proc = subprocess.run(["bash", "scripts/quickstart.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert f"{out} already holds a quickstart run" in proc.stderr and "QUICKSTART_DIR" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["sft"], "nothing was written"
