"""The per-claim comparison at smoke scale: `CLAIMS_SCALE=smoke bash scripts/compare_claims.sh multi_answer`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smoke_multi_answer_part_trains_every_arm_on_its_own_reward_and_prints_their_table(tmp_path):
    env = {**os.environ, "CLAIMS_SCALE": "smoke", "CLAIMS_DIR": str(tmp_path), "CLAIMS_SEEDS": "0"}
    proc = subprocess.run(
        ["bash", "scripts/compare_claims.sh", "multi_answer"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    out = tmp_path / "multi_answer"
    records = json.loads((out / "data" / "test.json").read_text())
    assert {r["problem_type"] for r in records} == {"multi-answer"}
    rows = {arm: [json.loads(line) for line in (out / f"{arm}_0" / "metrics.jsonl").read_text().splitlines()] for arm in ("grpo", "grpo_soft", "tw_grpo")}
    assert all([r["step"] for r in arm_rows] == [1, 2] for arm_rows in rows.values())
    assert all("reward/accuracy_binary" in r for r in rows["grpo"]), "plain GRPO is rewarded by the 0/1 accuracy"
    assert not any("reward/accuracy_binary" in r for r in rows["grpo_soft"] + rows["tw_grpo"])
    assert all("token_weight_mean" in r for r in rows["tw_grpo"])
    assert not any("token_weight_mean" in r for r in rows["grpo"] + rows["grpo_soft"])
    config = (out / "grpo_0" / "config.yaml").read_text()
    assert "lr_scheduler: constant" in config and (out / "grpo_0" / "final").is_dir()
    tw_config = (out / "tw_grpo_0" / "config.yaml").read_text()
    assert "lr_scheduler: constant" in tw_config, "the same schedule for every arm, not the recipe's linear decay"
    lines = proc.stdout.splitlines()
    for arm, title in (("grpo", "GRPO"), ("grpo_soft", "GRPO, soft reward"), ("tw_grpo", "TW-GRPO")):
        report = json.loads((out / f"{arm}_0" / "eval.json").read_text())
        exact = sum(r["correct"] for r in report["results"]) / report["n"]
        line = next(line for line in lines if line.startswith(f"| {title} |"))
        assert line.split(" | ")[1] == f"{exact:.3f}"
