"""The GRPO vs Syn-GRPO comparison at smoke scale: `SYN_REC_SCALE=smoke bash scripts/syn_grpo_rec.sh` end to end."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smoke_comparison_trains_both_arms_and_prints_their_table(tmp_path):
    out = tmp_path / "rec"
    env = {**os.environ, "SYN_REC_SCALE": "smoke", "SYN_REC_DIR": str(out), "SYN_REC_SEEDS": "0"}
    proc = subprocess.run(["bash", "scripts/syn_grpo_rec.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    reports = {arm: json.loads((out / arm / "eval.json").read_text()) for arm in ("grpo_0", "syn_grpo_0")}
    rows = {arm: [json.loads(line) for line in (out / arm / "metrics.jsonl").read_text().splitlines()] for arm in reports}
    assert all(r["n"] == 16 for r in reports.values())
    assert [r["step"] for r in rows["grpo_0"]] == [r["step"] for r in rows["syn_grpo_0"]] == [1, 2, 3]
    assert not any(k.startswith("syn/") for r in rows["grpo_0"] for k in r)
    assert max(r["syn/synthetic_fraction"] for r in rows["syn_grpo_0"]) > 0, "synthesised samples were trained on"
    lines = proc.stdout.splitlines()
    grpo = next(line for line in lines if line.startswith("| GRPO |"))
    syn = next(line for line in lines if line.startswith("| Syn-GRPO |"))
    assert f"{reports['grpo_0']['accuracy']:.3f}" in grpo and f"{reports['syn_grpo_0']['accuracy']:.3f}" in syn
    assert sum(line.startswith("| GRPO |") for line in lines) == 2, "an accuracy row and a diversity row per arm"
