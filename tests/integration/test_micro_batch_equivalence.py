"""Splitting a step into micro-batches changes nothing but memory: one GRPO step with one prompt per
micro-batch and with the whole step in one micro-batch gives the same update, loss and grad norm
(generation samples every prompt of the step at once, so both runs train on the same rollouts).

The untrained model never ends within the token limit, so every completion would have the same
length and every micro-batch the same share of the step under any aggregation; the engine here
ends completion i after its first ``1 + (5i + i^2) mod 23`` sampled tokens, so lengths and the
groups' token counts differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vlm_rl.rollout import Rollouts, factory
from vlm_rl.rollout.hf_engine import HFRolloutEngine
from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow

SAME_ROLLOUTS = ("reward", "reward_std", "completion_length", "truncated")


class EndsEarlyEngine(HFRolloutEngine):
    """The hf engine with completion i cut to its first ``1 + (5i + i^2) mod 23`` tokens and an EOS."""

    def generate(self, prompts, params, **kwargs) -> Rollouts:
        out = super().generate(prompts, params, **kwargs)
        eos = self.adapter.eos_token_ids
        ids = [
            [t for t in row if t not in eos][: 1 + (5 * i + i * i) % 23] + [eos[0]] for i, row in enumerate(out.completion_ids)
        ]
        texts = self.adapter.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return Rollouts(ids, texts, [False] * len(ids), out.group_ids)


def _one_step(run_config, output_dir: Path, aggregation: str, micro_batch_prompts: int):
    """The step's metrics, and the parameters before and after it."""
    config = _with(
        run_config,
        [
            "reward.custom={length: 'rewards_for_tests:text_length'}",
            "reward.weights={accuracy: 0.0, length: 1.0}",  # varies between completions
            "trainer.prompts_per_step=4",
            "rollout.max_new_tokens=24",
            f"trainer.micro_batch_prompts={micro_batch_prompts}",
            f"algo.aggregation={aggregation}",
            f"output_dir={output_dir}",
        ],
    )
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    metrics = trainer.step(1)
    after = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    return metrics, before, after


@pytest.mark.parametrize("aggregation", ["seq_mean_token_mean", "token_mean"])
def test_one_prompt_per_micro_batch_equals_the_whole_step_at_once(run_config, tmp_path, monkeypatch, aggregation):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setattr(factory, "HFRolloutEngine", EndsEarlyEngine)
    split, split_before, split_after = _one_step(run_config, tmp_path / "split", aggregation, 1)
    whole, whole_before, whole_after = _one_step(run_config, tmp_path / "whole", aggregation, 4)

    assert all(torch.equal(split_before[n], whole_before[n]) for n in whole_before)
    assert {k: split[k] for k in SAME_ROLLOUTS} == {k: whole[k] for k in SAME_ROLLOUTS}, "the same rollouts"
    assert whole["reward_std"] > 0 and whole["advantage_std"] > 0 and whole["truncated"] == 0.0
    assert any(not torch.equal(whole_after[n], whole_before[n]) for n in whole_before), "the step updated the policy"
    assert split["loss"] == pytest.approx(whole["loss"], rel=1e-4, abs=1e-6)
    # the norm sees a gradient scaled as a whole (each micro-batch weighted 1 under seq_mean_token_mean),
    # which Adam's first step hides from the parameters
    assert split["grad_norm"] == pytest.approx(whole["grad_norm"], rel=1e-4)
    assert split["entropy"] == pytest.approx(whole["entropy"], rel=1e-5)
    # Adam's first step moves a weight by lr * g / (|g| + 1e-8): where |g| is near 1e-8, float noise
    # in g moves it a little differently, so the bound is a small fraction of lr
    lr = run_config.trainer.lr
    for name in whole_after:
        torch.testing.assert_close(split_after[name], whole_after[name], rtol=0, atol=0.02 * lr)
