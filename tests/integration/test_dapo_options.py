"""DAPO options in the GRPO loop: dynamic sampling refills zero-variance groups; overlong masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vlm_rl.algorithms.advantages import group_reward_std
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
    ]


def test_dynamic_sampling_keeps_only_groups_with_reward_variance(run_config, half_constant_reward):
    config = _with(run_config, [*half_constant_reward, "algo.dynamic_sampling=true", "trainer.prompts_per_step=4",
                                "algo.dynamic_sampling_max_rounds=6"])
    trainer = GRPOTrainer(config)
    samples, prompts, rollouts, rewards, stats = trainer._collect_groups(4)
    assert len(samples) == len(prompts) == 4 and len(rollouts) == 4 * config.rollout.num_generations
    assert all(int(s.sample_id) % 2 == 1 for s in samples), "even records give zero-variance groups"
    assert torch.all(group_reward_std(rewards.total, rollouts.group_ids) > 0)
    assert stats["dropped_groups"] >= 1 and stats["refill_rounds"] >= 1
    assert rollouts.group_ids.tolist() == [g for g in range(4) for _ in range(config.rollout.num_generations)]

    trainer.train()
    rows = [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert all("dropped_groups" in r and "advantage_std" in r for r in rows if "reward" in r)


def test_without_dynamic_sampling_zero_variance_groups_stay(run_config, half_constant_reward):
    trainer = GRPOTrainer(_with(run_config, [*half_constant_reward, "trainer.prompts_per_step=4"]))
    samples, _, rollouts, rewards, stats = trainer._collect_groups(4)
    assert len(samples) == 4 and stats == {"dropped_groups": 0.0, "refill_rounds": 0.0}


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
    row = json.loads((tmp_path / str(mask_truncated) / "metrics.jsonl").read_text().splitlines()[0])
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
            "algo.tw_chunk=3",
            f"output_dir={tmp_path / 'tw'}",
        ],
    )
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert all(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())
    rows = [json.loads(line) for line in (tmp_path / "tw" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward" in r]
    assert all(1.0 <= r["token_weight_mean"] <= r["token_weight_max"] <= config.algo.tw_alpha + 1e-6 for r in steps)
    assert any(r["token_weight_max"] > 1.0 for r in steps), "some positions diverge within a group"
