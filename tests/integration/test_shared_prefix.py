"""The shared-prefix loss forward is the repeated-prompt forward: same per-token log-probs and the same
gradient for every parameter (float32, relative difference < 1e-5), with video prompts of different
lengths (so the repeated form pads), G in {2, 8}, and completions of different lengths."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.models.loading import load_adapter, load_model
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest

pytestmark = pytest.mark.slow


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


@pytest.mark.parametrize("group_size, checkpointing", [(2, False), (8, False), (8, True)])
def test_log_probs_and_every_gradient_equal_the_repeated_forward(run_config, synthetic_data, group_size, checkpointing):
    adapter = load_adapter(run_config.model.path)
    model = load_model(dataclasses.replace(run_config.model, gradient_checkpointing=checkpointing), trainable=True)
    model.train()
    assert model.is_activation_checkpointing == checkpointing
    encoder = PromptEncoder(adapter, run_config.data)
    samples = load_samples(synthetic_data.train_path)
    chosen = [samples[0], next(s for s in samples if encoder.encode(s).length != encoder.encode(samples[0]).length)]
    prompts = [encoder.encode(s) for s in chosen]
    assert prompts[0].length != prompts[1].length and prompts[0].pixel_values_videos is not None
    generator = torch.Generator().manual_seed(group_size)
    vocab = [t for t in range(10, 600) if t not in adapter.blocked_token_ids]
    completions = [
        [vocab[int(i)] for i in torch.randint(len(vocab), (int(n),), generator=generator)]
        for n in torch.randint(3, 12, (2 * group_size,), generator=generator)
    ]
    batch = adapter.collate(prompts, group_size, completions)
    weights = torch.randn(batch.completion_mask.shape, generator=generator)

    attention_calls = []
    first_attention = next(m for n, m in model.named_modules() if n.endswith("language_model.layers.0.self_attn"))
    first_attention.register_forward_hook(lambda *_: attention_calls.append(1))
    results = {}
    for shared in (False, True):
        model.zero_grad(set_to_none=True)
        attention_calls.clear()
        logp, entropy, _ = completion_logprobs(model, batch, with_entropy=True, shared_prefix=shared)
        (logp * weights * batch.completion_mask).sum().backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        results[shared] = (logp.detach(), entropy, grads)
    # per prompt: its prefill, its completions' forward, and with checkpointing their replay in the backward
    assert len(attention_calls) == len(prompts) * (3 if checkpointing else 2)

    mask = batch.completion_mask.bool()
    (naive_logp, naive_entropy, naive_grads), (logp, entropy, grads) = results[False], results[True]
    assert _relative(logp[mask], naive_logp[mask]) < 1e-5
    assert _relative(entropy[mask], naive_entropy[mask]) < 1e-5
    assert grads.keys() == naive_grads.keys() and any(n.startswith("model.visual") for n in grads)
    worst = max(grads, key=lambda n: _relative(grads[n], naive_grads[n]))
    assert _relative(grads[worst], naive_grads[worst]) < 1e-5, worst


def test_a_grpo_step_logs_the_same_loss_and_gradient_with_and_without_shared_prefix(run_config, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    rows = {}
    for shared in (False, True):
        config = _with(run_config, [
            f"model.shared_prefix={str(shared).lower()}", "trainer.steps=1", "algo.beta=0.04",
            "reward.custom={length: 'rewards_for_tests:text_length'}", "reward.weights={accuracy: 0.0, length: 1.0}",
            f"output_dir={tmp_path / str(shared)}",
        ])
        trainer = GRPOTrainer(config)
        assert trainer.update.shared_prefix is shared
        trainer.train()
        rows[shared] = json.loads((tmp_path / str(shared) / "metrics.jsonl").read_text().splitlines()[0])
    assert rows[True]["reward"] == rows[False]["reward"], "the same completions were sampled"
    for key in ("loss", "entropy", "grad_norm", "kl"):
        assert rows[True][key] == pytest.approx(rows[False][key], rel=1e-4, abs=1e-7), key
