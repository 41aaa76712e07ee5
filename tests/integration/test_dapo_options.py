"""DAPO options in the GRPO loop: dynamic sampling refills zero-variance groups; overlong masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vlm_rl.rollout import factory
from vlm_rl.rollout.hf_engine import HFRolloutEngine
from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


@pytest.fixture
def half_constant_reward(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    return [
        "reward.custom={probe: 'rewards_for_tests:constant_for_even_ids'}",
        "reward.weights={accuracy: 0.0, probe: 1.0}",
        "trainer.prompts_per_step=4",
    ]


@pytest.fixture
def generated_prompts(monkeypatch) -> list[int]:
    """How many prompts each generate call of the run's hf engine got."""
    calls: list[int] = []

    class CountingEngine(HFRolloutEngine):
        def generate(self, prompts, params, **kwargs):
            calls.append(len(prompts))
            return super().generate(prompts, params, **kwargs)

    monkeypatch.setattr(factory, "HFRolloutEngine", CountingEngine)
    return calls


def _step_rows(config) -> list[dict]:
    rows = [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward" in r]
    assert len(steps) == config.trainer.steps, rows
    return steps


def test_dynamic_sampling_keeps_only_groups_with_reward_variance(run_config, half_constant_reward, generated_prompts):
    config = _with(run_config, [*half_constant_reward, "algo.dynamic_sampling=true", "algo.dynamic_sampling_max_rounds=6"])
    GRPOTrainer(config).train()
    steps = _step_rows(config)
    assert steps[0]["dropped_groups"] >= 1 and steps[0]["refill_rounds"] >= 1, "even records give zero-variance groups"
    for r in steps:
        assert r["zero_std_groups"] == 0.0 and r["reward_std"] > 0 and r["advantage_std"] > 0
    refilled = sum(config.trainer.prompts_per_step + r["dropped_groups"] for r in steps)
    assert sum(generated_prompts) == refilled, "every dropped group is replaced by a new prompt until the batch is full"


def test_without_dynamic_sampling_zero_variance_groups_stay(run_config, half_constant_reward, generated_prompts):
    config = _with(run_config, half_constant_reward)
    GRPOTrainer(config).train()
    steps = _step_rows(config)
    assert steps[0]["zero_std_groups"] > 0, "the same first draw as above, with its even records"
    assert all(r["dropped_groups"] == 0.0 and r["refill_rounds"] == 0.0 for r in steps)
    assert generated_prompts == [config.trainer.prompts_per_step] * config.trainer.steps


@pytest.mark.parametrize("mask_truncated", [True, False])
def test_overlong_masking_removes_truncated_completions_from_the_loss(run_config, tmp_path, monkeypatch, mask_truncated):
    monkeypatch.syspath_prepend(str(HERE))
    config = _with(
        run_config,
        [
            "reward.custom={length: 'rewards_for_tests:text_length'}",
            "reward.weights={accuracy: 0.0, length: 1.0}",
            "rollout.max_new_tokens=2",
            "trainer.steps=1",
            f"algo.mask_truncated={str(mask_truncated).lower()}",
            f"output_dir={tmp_path / str(mask_truncated)}",
        ],
    )
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    (row,) = _step_rows(config)
    changed = any(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())
    assert row["truncated"] == 1.0, "two new tokens never reach EOS with this seed: every completion is cut"
    assert changed is not mask_truncated
    if mask_truncated:
        assert row["loss"] == 0.0


def test_tw_grpo_token_weights_reach_the_loss(run_config, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    config = _with(
        run_config,
        [
            "reward.custom={length: 'rewards_for_tests:text_length'}",
            "reward.weights={accuracy: 0.0, length: 1.0}",
            "algo.token_weighting=tw_grpo",
            "algo.aggregation=token_mean",
            "algo.tw_grpo.chunk=3",
            f"output_dir={tmp_path / 'tw'}",
        ],
    )
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert all(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())
    steps = _step_rows(config)
    assert all(1.0 <= r["token_weight_mean"] <= r["token_weight_max"] <= config.algo.tw_grpo.alpha + 1e-6 for r in steps)
    assert any(r["token_weight_max"] > 1.0 for r in steps), "some positions diverge within a group"
