"""GRPO-CARE in the loop: answer-span likelihoods under the EMA reference, the EMA schedule, and
the EMA weights in checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.config import CareConfig
from vlm_rl.models.loading import load_adapter, load_model
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardResult
from vlm_rl.rollout import Rollouts
from vlm_rl.training.care import EMA_FILE, ConsistencyReference
from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest

pytestmark = pytest.mark.slow

TEXTS = [
    "<think>two squares</think><answer>3</answer>",
    "<think>hmm</think><answer>12</answer>",
    "<think>no answer here</think>",
    "<answer>7</answer> and again <answer>4</answer>",
]


@pytest.fixture
def reference(tiny_model_dir, run_config):
    adapter = load_adapter(str(tiny_model_dir))
    policy = load_model(run_config.model, trainable=True)
    return adapter, policy, run_config


def _rollouts(adapter, texts):
    ids = [adapter.tokenizer(t, add_special_tokens=False)["input_ids"] + [adapter.tokenizer.eos_token_id] for t in texts]
    decoded = adapter.tokenizer.batch_decode(ids, skip_special_tokens=True)
    return Rollouts(ids, decoded, [False] * len(ids), torch.zeros(len(ids), dtype=torch.long))


def test_confidence_is_the_geometric_mean_over_the_answer_tokens_of_the_last_answer(reference, synthetic_data):
    adapter, policy, config = reference
    care = ConsistencyReference(policy, CareConfig(enabled=True), adapter.tokenizer)
    sample = load_samples(synthetic_data.train_path)[0]
    prompt = PromptEncoder(adapter, config.data).encode(sample)
    rollouts = _rollouts(adapter, TEXTS)
    batch = adapter.collate([prompt], len(TEXTS), rollouts.completion_ids)
    confidence, has_span = care.confidences(rollouts, [(batch, torch.arange(len(TEXTS)))])

    assert has_span.tolist() == [True, True, False, True]
    logp = completion_logprobs(care.model, batch)[0]
    tokenizer = adapter.tokenizer
    for row, answer in ((0, "3"), (1, "12"), (3, "4")):
        ids = rollouts.completion_ids[row]
        # brute force: token k covers the characters its prefix adds to the decoded text
        ends = [len(tokenizer.decode(ids[: k + 1], skip_special_tokens=True)) for k in range(len(ids))]
        starts = [0, *ends[:-1]]
        text = rollouts.texts[row]
        a = text.rindex("<answer>") + len("<answer>")
        b = a + len(answer)
        inside = [k for k in range(len(ids)) if starts[k] < b and ends[k] > a and ends[k] > starts[k]]
        assert inside, f"no token covers {answer!r}"
        assert answer in tokenizer.decode([ids[k] for k in inside])
        expected = math.exp(float(logp[row, inside].mean()))
        assert confidence[row].item() == pytest.approx(expected, rel=1e-5)
        assert 0 < confidence[row] < 1
    assert confidence[2] == 1.0, "no answer span: exp(0) as in the released code"


def test_bonus_goes_to_accurate_consistent_completions_before_normalisation(reference, synthetic_data):
    adapter, policy, config = reference
    care = ConsistencyReference(policy, CareConfig(enabled=True, bonus_coefficient=0.5), adapter.tokenizer)
    sample = load_samples(synthetic_data.train_path)[0]
    prompt = PromptEncoder(adapter, config.data).encode(sample)
    rollouts = _rollouts(adapter, TEXTS)
    chunks = [(adapter.collate([prompt], len(TEXTS), rollouts.completion_ids), torch.arange(len(TEXTS)))]
    accuracy = torch.tensor([1.0, 1.0, 0.0, 1.0])
    base = RewardResult({"accuracy": accuracy}, accuracy.clone(), ("accuracy",))
    shaped, stats = care.add_bonus(base, rollouts, chunks)

    confidence, _ = care.confidences(rollouts, chunks)
    clipped = confidence.clamp(max=0.95)
    threshold = clipped[[0, 1, 3]].mean()
    expected = torch.tensor([0.5 if i != 2 and clipped[i] >= threshold else 0.0 for i in range(4)])
    assert torch.equal(shaped.scores["care_bonus"], expected)
    assert torch.equal(shaped.total, accuracy + expected)
    assert expected.sum() > 0, "at least the most confident accurate completion is consistent"
    assert stats["care/bonus_rate"] == pytest.approx(float((expected > 0).float().mean()))
    assert stats["care/answer_span_rate"] == 0.75
    assert stats["care/confidence"] == pytest.approx(float(confidence[[0, 1, 3]].mean()))


def test_ema_updates_only_on_schedule_with_the_exact_average(reference):
    adapter, policy, _ = reference
    care = ConsistencyReference(policy, CareConfig(enabled=True, ema_decay=0.75, ema_every=2), adapter.tokenizer)
    initial = [p.detach().clone() for p in care.model.parameters()]
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    assert care.after_optimizer_step(policy, 1) is False
    assert all(torch.equal(p, q) for p, q in zip(care.model.parameters(), initial))
    assert care.after_optimizer_step(policy, 2) is True
    for phi, phi0, theta in zip(care.model.parameters(), initial, policy.parameters()):
        torch.testing.assert_close(phi, 0.75 * phi0 + 0.25 * theta.detach())
    assert not any(p.requires_grad for p in care.model.parameters())


def test_checkpoints_carry_the_ema_reference_and_resume_restores_it(run_config, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    overrides = [
        "algo.care.enabled=true",
        "algo.care.ema_every=1",
        "algo.care.ema_decay=0.5",
        "reward.custom={length: 'rewards_for_tests:text_length'}",
        "reward.weights={accuracy: 0.0, length: 1.0}",
        "trainer.save_every=1",
        f"output_dir={tmp_path / 'care'}",
    ]
    trainer = GRPOTrainer(_with(run_config, overrides))
    initial = {k: v.clone() for k, v in trainer.method(ConsistencyReference).model.state_dict().items()}
    trainer.train()
    ema = {k: v.clone() for k, v in trainer.method(ConsistencyReference).model.state_dict().items()}
    assert any(not torch.equal(ema[k], initial[k]) for k in ema), "two EMA updates moved the reference"
    policy = trainer.policy.state_dict()
    assert any(not torch.equal(ema[k], policy[k]) for k in ema), "the EMA lags the policy"

    saved = load_file(tmp_path / "care" / "checkpoints" / "step_00000002" / EMA_FILE)
    assert saved and all(torch.equal(v, ema[k]) for k, v in saved.items())
    resumed = GRPOTrainer(_with(run_config, [*overrides, "trainer.resume=auto"]))
    assert resumed.start_step == 2
    assert all(torch.equal(v, ema[k]) for k, v in resumed.method(ConsistencyReference).model.state_dict().items())

    plain = [o for o in overrides if not o.startswith("algo.care")]
    GRPOTrainer(_with(run_config, [*plain, f"output_dir={tmp_path / 'plain'}"])).train()
    with pytest.raises(FileNotFoundError, match=f"no {EMA_FILE}.*without algo.care.enabled"):
        GRPOTrainer(_with(run_config, [*overrides, f"output_dir={tmp_path / 'plain'}", "trainer.resume=auto"]))
