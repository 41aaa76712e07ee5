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
import torch
from safetensors.torch import load_file
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


def _train_two_processes(tmp_path: Path, run_dir: Path, overrides: list[str], *, accelerate_config: str | None = None):
    """`NUM_PROCESSES=2 bash scripts/train_grpo.sh ...`; returns {rank: [probe rows in call order]}."""
    (tmp_path / "rank_probe.py").write_text(PROBE)
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir(exist_ok=True)
    for old in probe_dir.glob("*.jsonl"):
        old.unlink()
    env = {
        **os.environ,
        "NUM_PROCESSES": "2",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "VLM_RL_TEST_PROBE_DIR": str(probe_dir),
    }
    if accelerate_config is not None:
        env["ACCELERATE_CONFIG"] = accelerate_config
    proc = subprocess.run(
        ["bash", "scripts/train_grpo.sh", "configs/quickstart_grpo.yaml", f"output_dir={run_dir}", *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"2-process GRPO failed ({proc.returncode}):\n{proc.stderr[-5000:]}"
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
    return {next(iter(groups[pid]))[0]: records for pid, records in seen.items()}


def _common(tiny_model_dir, synthetic_data, steps: int, prompts_per_step: int) -> list[str]:
    return [
        f"model.path={tiny_model_dir}",
        f"data.train_files=[{synthetic_data.train_path}]",
        "data.eval_files=[]",
        *TINY_RUN,
        f"trainer.steps={steps}",
        f"trainer.prompts_per_step={prompts_per_step}",
        "reward.custom={probe: 'rank_probe:probe'}",
        "reward.weights={accuracy: 0.0, probe: 1.0}",
    ]


def _sample_ids(records: list[dict], per_step: int, generations: int) -> list[set[str]]:
    """The samples each step scored (rows come G per prompt, steps in order)."""
    ids = [r["sample_id"] for r in records]
    chunk = per_step * generations
    return [set(ids[i : i + chunk]) for i in range(0, len(ids), chunk)]


@pytest.mark.slow
def test_grpo_script_with_two_processes(tiny_model_dir, synthetic_data, tmp_path):
    run_dir = tmp_path / "run"
    steps, prompts_per_step = 2, 2
    by_rank = _train_two_processes(tmp_path, run_dir, _common(tiny_model_dir, synthetic_data, steps, prompts_per_step))

    # Each process trained on its own shard: disjoint samples, prompts_per_step of them per step.
    by_rank = {rank: {r["sample_id"] for r in records} for rank, records in by_rank.items()}
    assert len(by_rank[0]) == len(by_rank[1]) == steps * prompts_per_step, by_rank
    assert not by_rank[0] & by_rank[1], f"both processes trained on {by_rank[0] & by_rank[1]}"

    # One metrics line per step (written by the main process only) and one final model.
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert [r["step"] for r in rows if "reward" in r] == list(range(1, steps + 1))
    final = run_dir / "final"
    assert (final / "model.safetensors").is_file() and (final / "config.json").is_file()

    # The synchronised update reached the saved model.
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(final / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not before[k].equal(after[k]) for k in before), "the final model equals the initial one"


@pytest.mark.slow
def test_deepspeed_zero2_with_two_processes_checkpoints_and_resumes(tiny_model_dir, synthetic_data, tmp_path):
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    from vlm_rl.config import ModelConfig
    from vlm_rl.models.loading import load_model

    run_dir = tmp_path / "run"
    per_step, generations = 2, 4
    common = [*_common(tiny_model_dir, synthetic_data, 2, per_step), "trainer.save_every=1", "trainer.log_every=1"]
    first = _train_two_processes(tmp_path, run_dir, common, accelerate_config="configs/accelerate/zero2.yaml")
    steps = {rank: _sample_ids(records, per_step, generations) for rank, records in first.items()}
    assert [len(s) for s in steps[0]] == [len(s) for s in steps[1]] == [per_step, per_step]
    assert not (set().union(*steps[0]) & set().union(*steps[1])), "each process trains on its own prompts"

    # Process 0 wrote each checkpoint once; DeepSpeed added one optimizer shard per process.
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_00000001", "step_00000002"], "no staging leftovers"
    last = checkpoints / "step_00000002"
    shards = sorted(p.name for p in (last / "deepspeed" / "state").glob("zero_pp_rank_*_optim_states.pt"))
    assert shards == ["zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    engine_state = torch.load(last / "deepspeed" / "state" / "mp_rank_00_model_states.pt", weights_only=False)
    assert engine_state["global_steps"] == 2, "one optimizer step per training step: the 2 micro-batches accumulated"

    # In sync: the fp32 master weights, half of them updated by each process's optimizer shard, are the
    # weights process 0 saved; and they moved.
    master = get_fp32_state_dict_from_zero_checkpoint(str(last / "deepspeed"), tag="state")
    saved = load_model(ModelConfig(path=str(last / "model")), trainable=False).state_dict()
    initial = load_model(ModelConfig(path=str(tiny_model_dir)), trainable=False).state_dict()
    assert master.keys() <= saved.keys() and len(master) > 10
    for name, tensor in master.items():
        torch.testing.assert_close(saved[name], tensor, rtol=0, atol=0, msg=name)
    assert any(not torch.equal(initial[k], master[k]) for k in master), "training moved the weights"

    # Resume for one more step: both processes continue from their sampler positions with DeepSpeed's state.
    resumed = _train_two_processes(
        tmp_path, run_dir, [*common, "trainer.steps=3", "trainer.resume=auto"], accelerate_config="configs/accelerate/zero2.yaml"
    )
    for rank, records in resumed.items():
        (third,) = _sample_ids(records, per_step, generations)
        assert len(third) == per_step and not third & set().union(*steps[rank]), "the resumed step takes new prompts"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert [r["step"] for r in rows if "reward" in r] == [1, 2, 3]
    assert (checkpoints / "step_00000003" / "deepspeed" / "state").is_dir()


@pytest.mark.slow
def test_deepspeed_zero3_gathers_for_the_ema_reference_and_the_rollout_server(tiny_model_dir, synthetic_data, tmp_path):
    """ZeRO-3 partitions the policy: the CARE EMA update and the weight push to a rollout server must gather it."""
    import threading

    from hf_vllm_backend import HFBackend

    from vlm_rl.config import ModelConfig
    from vlm_rl.models.loading import load_adapter, load_model
    from vlm_rl.rollout.vllm_server import make_server

    backend = HFBackend(load_model(ModelConfig(path=str(tiny_model_dir)), trainable=False), load_adapter(str(tiny_model_dir)))
    httpd = make_server(backend, "127.0.0.1", 0, model=str(tiny_model_dir))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    run_dir = tmp_path / "run"
    overrides = [
        *_common(tiny_model_dir, synthetic_data, 2, 2),
        "trainer.save_every=1",
        "algo.beta=0.04",
        "algo.care.enabled=true",
        "algo.care.ema_every=1",
        "algo.care.ema_decay=0.5",
        "rollout.engine=vllm-server",
        f"rollout.vllm.server_url=http://127.0.0.1:{httpd.server_address[1]}",
    ]
    try:
        _train_two_processes(tmp_path, run_dir, overrides, accelerate_config="configs/accelerate/zero3.yaml")
    finally:
        httpd.shutdown()
        httpd.server_close()

    def weights(path):
        return load_model(ModelConfig(path=str(path)), trainable=False).state_dict()

    initial = weights(tiny_model_dir)
    policies = [weights(run_dir / "checkpoints" / f"step_0000000{k}" / "model") for k in (1, 2)]
    emas = [load_file(run_dir / "checkpoints" / f"step_0000000{k}" / "care_ema.safetensors") for k in (1, 2)]
    assert any(not torch.equal(initial[k], policies[1][k]) for k in initial), "training moved the weights"
    previous = initial
    for policy, ema in zip(policies, emas):
        for name, value in ema.items():
            torch.testing.assert_close(value, 0.5 * previous[name] + 0.5 * policy[name], msg=name)
        previous = ema
    final = weights(run_dir / "final")
    assert all(torch.equal(final[k], policies[1][k]) for k in final)
    served = backend.model.state_dict()
    assert len(backend.pushes) == 3, "one push at the start and one after each optimizer step, by process 0 only"
    assert all(torch.equal(served[k], final[k]) for k in final), "the rollout server holds the final policy"
