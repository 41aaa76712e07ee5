"""Model FLOPs of one GRPO training pass (the loss forward and backward), for MFU.

The usual count (Kaplan et al. 2020, "Scaling Laws for Neural Language Models"; PaLM, Chowdhery et
al. 2022, appendix B): a forward pass costs 2 FLOPs per weight per token the weight multiplies, plus
attention's two products QK^T and AV, 4 * head_dim * heads FLOPs per (query, key) pair a layer
computes; the backward costs twice the forward, so a training pass is 3x its forward. Model FLOPs
leave out recomputation (activation checkpointing) and norms, activations and the softmax.

What is counted is what the chosen form computes. Per group of G completions of C tokens after a
prompt of P tokens (of which V are merged vision tokens made from 4V patches):
- text decoder weights: P + G*C tokens with the shared prefix, G*(P + C) repeated;
- causal attention: P(P+1)/2 + G*(C*P + C(C+1)/2) pairs shared, G*(P+C)(P+C+1)/2 repeated (padding left out);
- the vocabulary projection: only the G*C positions that predict a completion token;
- the vision tower: once per group shared, G times repeated; windowed blocks attend within windows
  of `window_size` pixels, the full-attention blocks within each temporal slice of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupShape:
    """Token counts of one group: its prompt, its merged vision tokens, and its completions."""

    prompt_tokens: int
    vision_tokens: int
    vision_slices: int
    """Temporal slices of the clip (frames / temporal patch size); 1 for an image."""
    generations: int
    completion_tokens: int

    @property
    def patches(self) -> int:
        return 4 * self.vision_tokens


def decoder_weights(text_config) -> int:
    """Weights one text token multiplies in the decoder layers (attention and MLP projections, biases out)."""
    d, heads, kv = text_config.hidden_size, text_config.num_attention_heads, text_config.num_key_value_heads
    head_dim = d // heads
    attention = d * heads * head_dim * 2 + d * kv * head_dim * 2
    return text_config.num_hidden_layers * (attention + 3 * d * text_config.intermediate_size)


def vision_weights(vision_config) -> tuple[int, int]:
    """(weights per patch in the patch embedding and the vision blocks, weights per merged token in the merger)."""
    d, inner = vision_config.hidden_size, vision_config.intermediate_size
    embed = vision_config.in_channels * vision_config.temporal_patch_size * vision_config.patch_size**2 * d
    per_patch = embed + vision_config.depth * (4 * d * d + 3 * d * inner)
    merged = 4 * d
    per_merged = merged * merged + merged * vision_config.out_hidden_size
    return per_patch, per_merged


def forward_parts(config, group: GroupShape, *, shared_prefix: bool) -> dict[str, float]:
    """Model FLOPs of the loss forward of one group under `config` (a Qwen2.5-VL config), by part: ``decoder``
    (the text layers' weights), ``attention`` (text), ``vocabulary`` (the projection), ``vision`` (weights and
    attention of the vision tower)."""
    text, vision = config.text_config, config.vision_config
    p, g, c = group.prompt_tokens, group.generations, group.completion_tokens
    if shared_prefix:
        text_tokens, pairs, vision_passes = p + g * c, p * (p + 1) / 2 + g * (c * p + c * (c + 1) / 2), 1
    else:
        text_tokens, pairs, vision_passes = g * (p + c), g * (p + c) * (p + c + 1) / 2, g
    parts = {
        "decoder": 2.0 * decoder_weights(text) * text_tokens,
        "attention": 4.0 * text.hidden_size * text.num_hidden_layers * pairs,
        "vocabulary": 2.0 * text.hidden_size * text.vocab_size * g * c,
        "vision": 0.0,
    }
    if group.vision_tokens:
        per_patch, per_merged = vision_weights(vision)
        patches = group.patches
        slice_patches = patches / group.vision_slices
        window = min((vision.window_size // vision.patch_size) ** 2, slice_patches)
        full = len(vision.fullatt_block_indexes)
        vision_pairs = patches * (full * slice_patches + (vision.depth - full) * window)
        one = 2 * per_patch * patches + 2 * per_merged * group.vision_tokens + 4 * vision.hidden_size * vision_pairs
        parts["vision"] = float(vision_passes * one)
    return parts


def forward_flops(config, group: GroupShape, *, shared_prefix: bool) -> float:
    """Model FLOPs of the loss forward of one group: the sum of `forward_parts`."""
    return sum(forward_parts(config, group, shared_prefix=shared_prefix).values())


def training_flops(config, group: GroupShape, *, shared_prefix: bool) -> float:
    """Model FLOPs of the forward and backward of one group: 3x the forward."""
    return 3 * forward_flops(config, group, shared_prefix=shared_prefix)


PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "H200": 989.4, "A100": 312.0}
"""Dense bf16 tensor-core peaks from NVIDIA's data sheets (no sparsity), matched against the device name in
this order."""


def peak_tflops(device_name: str) -> float | None:
    """The data-sheet bf16 peak of a device by name; None for a device not listed."""
    for key, value in PEAK_BF16_TFLOPS.items():
        if all(part in device_name for part in key.split()):
            return value
    return None
