"""Model FLOPs of the training pass (vlm_rl/flops.py): the weight terms equal what torch's FLOP counter
measures on the real model's loss forward, the forms agree where they compute the same thing, and the
published configurations give the published parameter counts."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import Qwen2_5_VLForConditionalGeneration

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.config import load_config
from vlm_rl.flops import GroupShape, decoder_weights, forward_flops, forward_parts, peak_tflops, training_flops, vision_weights
from vlm_rl.models.loading import load_adapter, load_model
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.models.tiny import QWEN25_VL_SIZES, build_config, build_tokenizer, default_corpus


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(default_corpus())


def _meta_model(config):
    with torch.device("meta"):
        return Qwen2_5_VLForConditionalGeneration(config)


def _matmul_weights(module) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight") and "norm" not in n and "ln_q" not in n)


@pytest.mark.parametrize("size", ["3b", "7b"])
def test_the_published_sizes_and_the_weight_counts(tokenizer, size):
    config = build_config(size, tokenizer)
    model = _meta_model(config)
    total = sum(p.numel() for p in model.parameters())
    assert {"3b": total == 3_754_622_976, "7b": round(total / 1e9, 2) == 8.29}[size], total
    assert config.text_config.vocab_size == 151936 and config.vision_config.fullatt_block_indexes == [7, 15, 23, 31]
    assert config.tie_word_embeddings == (size == "3b")
    assert decoder_weights(config.text_config) == _matmul_weights(model.model.language_model.layers)
    assert sum(vision_weights(config.vision_config)) == _matmul_weights(model.model.visual)


def test_a_reduced_depth_keeps_the_widths(tokenizer):
    dims = dataclasses.replace(QWEN25_VL_SIZES["3b"], num_layers=2, vision_depth=9)
    config = build_config(dims, tokenizer)
    assert (config.text_config.num_hidden_layers, config.vision_config.depth) == (2, 9)
    assert config.text_config.hidden_size == 2048 and config.vision_config.fullatt_block_indexes == [7]
    with pytest.raises(ValueError, match="below the tokenizer"):
        build_config(dataclasses.replace(dims, vocab_size=100), tokenizer)


@pytest.mark.slow
@pytest.mark.parametrize("shared", [False, True])
def test_the_weight_terms_equal_torchs_flop_counter_on_the_loss_forward(tiny_model_dir, synthetic_data, shared):
    """torch's counter sees the matrix products of weights (not CPU attention), so those terms must match it:
    exactly for the decoder and the vision tower, and for the vocabulary projection up to the one extra position
    a forward projects and drops (the prompt's last, once per prompt shared and once per row repeated)."""
    config = load_config(None, [f"model.path={tiny_model_dir}", f"data.train_files=[{synthetic_data.train_path}]"])
    adapter = load_adapter(str(tiny_model_dir))
    model = load_model(config.model, trainable=True)
    prompt = PromptEncoder(adapter, config.data).encode(load_samples(synthetic_data.train_path)[0])
    generations, length = 4, 9
    batch = adapter.collate([prompt], generations, [[100 + i for i in range(length)]] * generations)
    t, h, w = (int(v) for v in prompt.video_grid_thw[0])
    group = GroupShape(prompt.length, t * h * w // 4, t, generations, length)
    with FlopCounterMode(display=False) as counter:
        completion_logprobs(model, batch, shared_prefix=shared)
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    parts = forward_parts(model.config, group, shared_prefix=shared)
    prefix = "Qwen2_5_VLForConditionalGeneration."
    assert counts[prefix + "model.language_model"] == parts["decoder"]
    per_position = 2 * model.config.text_config.hidden_size * model.config.text_config.vocab_size
    assert counts[prefix + "lm_head"] == parts["vocabulary"] + per_position * (1 if shared else generations)
    assert counts[prefix + "model.visual"] == _vision_weight_flops(model.config, group, shared)
    assert parts["vision"] > counts[prefix + "model.visual"]  # plus the vision attention, which the counter misses


def _vision_weight_flops(config, group, shared) -> float:
    per_patch, per_merged = vision_weights(config.vision_config)
    passes = 1 if shared else group.generations
    return passes * (2 * per_patch * group.patches + 2 * per_merged * group.vision_tokens)


def test_one_completion_costs_the_same_in_both_forms_and_more_completions_favour_sharing(tokenizer):
    config = build_config("3b", tokenizer)
    one = GroupShape(prompt_tokens=1000, vision_tokens=968, vision_slices=8, generations=1, completion_tokens=128)
    assert forward_flops(config, one, shared_prefix=True) == pytest.approx(forward_flops(config, one, shared_prefix=False))
    eight = dataclasses.replace(one, generations=8)
    shared, repeated = (forward_flops(config, eight, shared_prefix=s) for s in (True, False))
    assert 3 < repeated / shared < 8
    assert training_flops(config, eight, shared_prefix=True) == 3 * shared


def test_causal_attention_pairs_by_hand(tokenizer):
    """A 3-token prompt and 2 completions of 2 tokens: prompt pairs 1+2+3 = 6, each completion 4+5 = 9."""
    config = build_config("3b", tokenizer)
    group = GroupShape(prompt_tokens=3, vision_tokens=0, vision_slices=1, generations=2, completion_tokens=2)
    per_pair = 4 * config.text_config.hidden_size * config.text_config.num_hidden_layers
    assert forward_parts(config, group, shared_prefix=True)["attention"] == per_pair * (6 + 2 * 9)
    assert forward_parts(config, group, shared_prefix=False)["attention"] == per_pair * 2 * 15
    assert forward_parts(config, group, shared_prefix=True)["vision"] == 0


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.4), ("Tesla T4", None),
])
def test_data_sheet_peaks_by_device_name(name, peak):
    assert peak_tflops(name) == peak
