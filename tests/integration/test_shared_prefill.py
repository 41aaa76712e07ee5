"""Generation with a shared prefill (each prompt run once, its cache repeated for its n samples) gives the
same greedy tokens as `generate` on the repeated prompts, for video, image and text-only prompts, and
keeps sampling's EOS and truncation bookkeeping."""

from __future__ import annotations

import pytest
import torch
from prompt_kinds import prompt_kinds

from vlm_rl.models.loading import load_adapter, load_model
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rollout import HFRolloutEngine, SamplingParams

pytestmark = pytest.mark.slow


@pytest.fixture
def setup(run_config, synthetic_data, tmp_path):
    adapter = load_adapter(run_config.model.path)
    model = load_model(run_config.model, trainable=False)
    prompts = prompt_kinds(PromptEncoder(adapter, run_config.data), synthetic_data.train_path, tmp_path)
    return model, adapter, prompts


@pytest.mark.parametrize("rows_per_call", [64, 6, 3], ids=["all-prompts-one-call", "two-per-call", "one-per-call"])
def test_greedy_tokens_equal_the_repeated_prompt_generation(setup, rows_per_call):
    """Ragged prompts (video, image, text) prefilled together, left-padded, or in smaller calls."""
    model, adapter, prompts = setup
    params = SamplingParams(n=3, max_new_tokens=12, temperature=0.0)
    batched = HFRolloutEngine(model, adapter).generate(prompts, params)
    shared = HFRolloutEngine(model, adapter, max_rows_per_call=rows_per_call, shared_prefill=True).generate(prompts, params)
    assert shared.completion_ids == batched.completion_ids
    assert shared.truncated == batched.truncated and shared.texts == batched.texts
    assert torch.equal(shared.group_ids, batched.group_ids)


def test_sampling_with_a_shared_prefill_respects_the_engine_rules(setup):
    model, adapter, prompts = setup
    torch.manual_seed(0)
    out = HFRolloutEngine(model, adapter, shared_prefill=True).generate(prompts, SamplingParams(n=4, max_new_tokens=10, temperature=1.0))
    assert len(out) == 16 and out.group_ids.tolist() == [g for g in range(4) for _ in range(4)]
    eos = set(adapter.eos_token_ids)
    for ids, cut in zip(out.completion_ids, out.truncated):
        assert not set(ids) & set(adapter.blocked_token_ids), "vision placeholders are never generated"
        assert cut == (ids[-1] not in eos) and (cut or len(ids) <= 10)
        assert not cut or len(ids) == 10
    assert len({tuple(ids) for ids in out.completion_ids[:4]}) > 1, "the samples of a group differ"


def test_a_seeded_sample_draws_the_same_completions_as_the_repeated_form(setup):
    """Both forms sample the same rows in the same order from one seed, so they draw the same tokens (the scores
    differ only by float rounding): switching the default moves a seeded run only where rounding tips a draw."""
    model, adapter, prompts = setup
    params = SamplingParams(n=4, max_new_tokens=12, temperature=1.0)
    outs = []
    for shared_prefill in (False, True):
        torch.manual_seed(7)
        outs.append(HFRolloutEngine(model, adapter, shared_prefill=shared_prefill).generate(prompts, params))
    assert outs[1].completion_ids == outs[0].completion_ids
    assert len({tuple(ids) for ids in outs[1].completion_ids[:4]}) > 1, "a real sample: the group's draws differ"


def test_the_shared_prefill_continues_every_row_with_the_repeated_forms_scores(setup):
    """Stronger than equal greedy tokens: every generated position's logits match, so each row of the left-padded
    prefill continues with its own prompt's positions (a wrong rope delta shifts them and changes the logits)."""
    model, adapter, prompts = setup
    kwargs = {"max_new_tokens": 6, "do_sample": False, "output_logits": True, "return_dict_in_generate": True,
              "pad_token_id": adapter.pad_token_id, "eos_token_id": [], "temperature": None, "top_p": None, "top_k": None}
    with torch.no_grad():
        plain = model.generate(**adapter.collate(prompts, repeats=2).model_inputs, **kwargs)
        shared = model.generate(**adapter.shared_generation_inputs(model, prompts, 2), **kwargs)
    assert torch.equal(plain.sequences, shared.sequences)
    for step, (a, b) in enumerate(zip(plain.logits, shared.logits)):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), f"generated position {step}"
