"""End to end GRPO steps on the tiny model: parameters move, frames reach the loss forward, resume is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vlm_rl.models.loading import vision_tower
from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest
from run_metrics import assert_same_metrics

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


@pytest.fixture
def varied_reward(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    return ["reward.custom={length: 'rewards_for_tests:text_length'}", "reward.weights={accuracy: 0.0, length: 1.0}"]


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_every_trainable_parameter_changes_and_vision_tower_sees_frames_in_loss(run_config, varied_reward, shared_prefix):
    config = _with(run_config, [*varied_reward, f"model.shared_prefix={str(shared_prefix).lower()}"])
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    calls: list[tuple[bool, torch.Tensor]] = []
    hook = vision_tower(trainer.model).register_forward_hook(
        lambda module, args, kwargs, out: calls.append((torch.is_grad_enabled(), kwargs.get("grid_thw", args[1] if len(args) > 1 else None))),
        with_kwargs=True,
    )
    trainer.train()
    hook.remove()
    unchanged = [n for n, p in trainer.model.named_parameters() if p.requires_grad and torch.equal(p.detach(), before[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    assert any(n.startswith("model.visual") for n in before), "the vision tower must be trainable by default"

    G = config.rollout.num_generations
    with_grad = [grid for grad, grid in calls if grad]
    without_grad = [grid for grad, grid in calls if not grad]
    steps, micro_batches = config.trainer.steps, config.trainer.prompts_per_step // config.trainer.micro_batch_prompts
    if shared_prefix:
        assert len(with_grad) == steps * config.trainer.prompts_per_step, "one vision forward with grad per group"
        rows = 1
    else:
        assert len(with_grad) == steps * micro_batches, "one vision forward with grad per loss micro-batch"
        rows = config.trainer.micro_batch_prompts * G  # every completion row carries its prompt's video grid
    for grid in with_grad:
        assert grid.shape == (rows, 3)
        assert torch.all(grid == grid[0]) and int(grid[0].prod()) > 0
    assert len(without_grad) >= steps, "generation also encodes the frames"


def test_frozen_vision_tower_stays_fixed(run_config, varied_reward):
    config = _with(run_config, [*varied_reward, "model.freeze_vision=true", "model.gradient_checkpointing=true", "trainer.steps=1"])
    trainer = GRPOTrainer(config)
    visual = vision_tower(trainer.model)
    before = [p.detach().clone() for p in visual.parameters()]
    trainer.train()
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, visual.parameters()))
    assert not any(p.requires_grad for p in visual.parameters())



def test_resume_logs_the_same_metrics_as_an_uninterrupted_run(run_config, varied_reward, tmp_path):
    common = [*varied_reward, "trainer.steps=4", "trainer.save_every=2", "trainer.keep_checkpoints=5"]
    straight = _with(run_config, [*common, f"output_dir={tmp_path / 'straight'}"])
    GRPOTrainer(straight).train()

    first_half = _with(run_config, [*common, "trainer.steps=2", f"output_dir={tmp_path / 'resumed'}"])
    GRPOTrainer(first_half).train()
    resumed = _with(run_config, [*common, "trainer.resume=auto", f"output_dir={tmp_path / 'resumed'}"])
    trainer = GRPOTrainer(resumed)
    assert trainer.start_step == 2
    trainer.train()

    assert_same_metrics(tmp_path / "straight", tmp_path / "resumed", [1, 2, 3, 4], [3, 4])
    sa = torch.load(tmp_path / "straight" / "checkpoints" / "step_00000004" / "optimizer.pt", weights_only=False)
    sb = torch.load(tmp_path / "resumed" / "checkpoints" / "step_00000004" / "optimizer.pt", weights_only=False)
    for key, state in sa["state"].items():
        assert torch.allclose(state["exp_avg"], sb["state"][key]["exp_avg"], atol=1e-7)


def test_lora_trains_only_adapters_resumes_and_exports_merged_weights(run_config, varied_reward, tmp_path):
    lora = [*varied_reward, "model.lora.enabled=true", "model.lora.r=4", "trainer.save_every=1", f"output_dir={tmp_path / 'lora'}"]
    trainer = GRPOTrainer(_with(run_config, [*lora, "trainer.steps=1"]))
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert not any(".visual." in n for n in trainable), "LoRA stays out of the vision tower"
    final = trainer.train()

    resumed = GRPOTrainer(_with(run_config, [*lora, "trainer.steps=2", "trainer.resume=auto"]))
    assert resumed.start_step == 1
    assert {n for n, p in resumed.model.named_parameters() if p.requires_grad} == trainable
    final = resumed.train()
    from safetensors.torch import load_file

    merged = load_file(final / "model.safetensors")
    assert not any("lora_" in key for key in merged), "the exported model has the adapters merged in"
