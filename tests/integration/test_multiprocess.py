"""`NUM_PROCESSES=2 bash scripts/train_grpo.sh ...` really trains with two processes (gloo on CPU).

A custom reward function (loaded by the trainer from `reward.custom`) records, from inside every training process,
its pid, its torch.distributed rank and world size and the samples it scores; so the test sees from the outside
how many processes trained and how the data was shared between them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from tiny_run import TINY_RUN

REPO = Path(__file__).resolve().parents[2]

PROBE = '''
import json, os

import torch.distributed as dist


def probe(ctx):
    """Varies with the completion (non-zero advantages, real gradients) and logs who computed it."""
    initialized = dist.is_available() and dist.is_initialized()
    row = {
        "pid": os.getpid(),
        "rank": dist.get_rank() if initialized else None,
        "world_size": dist.get_world_size() if initialized else 1,
        "sample_id": ctx.sample_id,
    }
    with open(os.path.join(os.environ["VLM_RL_TEST_PROBE_DIR"], f"{os.getpid()}.jsonl"), "a") as handle:
        handle.write(json.dumps(row) + "\\n")
    return len(ctx.completion) / 50.0
'''


@pytest.mark.slow
def test_grpo_script_with_two_processes(tiny_model_dir, synthetic_data, tmp_path):
    (tmp_path / "rank_probe.py").write_text(PROBE)
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    run_dir = tmp_path / "run"
    steps, prompts_per_step = 2, 2
    env = {
        **os.environ,
        "NUM_PROCESSES": "2",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "VLM_RL_TEST_PROBE_DIR": str(probe_dir),
    }
    proc = subprocess.run(
        [
            "bash",
            "scripts/train_grpo.sh",
            "configs/quickstart_grpo.yaml",
            f"model.path={tiny_model_dir}",
            f"data.train_files=[{synthetic_data.train_path}]",
            "data.eval_files=[]",
            f"output_dir={run_dir}",
            *TINY_RUN,
            f"trainer.steps={steps}",
            f"trainer.prompts_per_step={prompts_per_step}",
            "reward.custom={probe: 'rank_probe:probe'}",
            "reward.weights={accuracy: 0.0, probe: 1.0}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"2-process GRPO failed ({proc.returncode}):\n{proc.stderr[-5000:]}"

    # Two processes trained, in one process group of two.
    seen = defaultdict(list)
    for path in probe_dir.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            seen[path.stem].append(json.loads(line))
    groups = {pid: {(r["rank"], r["world_size"]) for r in records} for pid, records in seen.items()}
    assert len(seen) == 2, (
        f"rewards were computed by {len(seen)} process(es) {groups}, not 2: NUM_PROCESSES=2 did not start two "
        "distributed training processes"
    )
    assert sorted(groups.values(), key=str) == [{(0, 2)}, {(1, 2)}], groups

    # Each process trained on its own shard: disjoint samples, prompts_per_step of them per step.
    by_rank = {next(iter(groups[pid]))[0]: {r["sample_id"] for r in records} for pid, records in seen.items()}
    assert len(by_rank[0]) == len(by_rank[1]) == steps * prompts_per_step, by_rank
    assert not by_rank[0] & by_rank[1], f"both processes trained on {by_rank[0] & by_rank[1]}"

    # One metrics line per step (written by the main process only) and one final model.
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert [r["step"] for r in rows if "reward" in r] == list(range(1, steps + 1))
    final = run_dir / "final"
    assert (final / "model.safetensors").is_file() and (final / "config.json").is_file()

    # The synchronised update reached the saved model.
    from safetensors.torch import load_file

    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(final / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not before[k].equal(after[k]) for k in before), "the final model equals the initial one"
