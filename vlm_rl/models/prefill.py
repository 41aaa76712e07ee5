"""A Qwen-VL prompt run once and continued from its KV cache: the shared prefill of generation
(through `QwenVLAdapter.shared_generation_inputs`) and of the shared-prefix loss forward.

Qwen2-VL and Qwen2.5-VL place tokens with 3-axis mRoPE positions, which depend on the prompt's
vision grids; a forward that continues from a cache is given them explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from vlm_rl.models import hf_internals

if TYPE_CHECKING:
    from vlm_rl.models.adapter import PromptInputs

VISION_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "pixel_values", "image_grid_thw")


class PromptPrefill(NamedTuple):
    """One prompt run once with its KV cache kept: its ids [1, P] and mRoPE positions [3, 1, P], and the
    model output of the prefilled part (logits of its last position, ``past_key_values``)."""

    ids: torch.Tensor
    token_types: torch.Tensor
    positions: torch.Tensor
    output: Any


def prefill_prompt(model, prompt: PromptInputs) -> PromptPrefill:
    """Forward one prompt (text and vision) with a fresh cache and explicit mRoPE positions (the shared-prefix
    loss forward continues from it with its completions)."""
    device = next(model.parameters()).device
    ids = prompt.input_ids[None].to(device)
    token_types = prompt.mm_token_type_ids[None].to(device)
    vision = {k: getattr(prompt, k).to(device) for k in VISION_KEYS if getattr(prompt, k) is not None}
    rope = hf_internals.rope_index_module(model)
    positions, deltas = hf_internals.rope_index(rope, ids, token_types, vision)
    output = model(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        position_ids=positions,
        mm_token_type_ids=token_types,
        use_cache=True,
        logits_to_keep=1,
        **vision,
    )
    hf_internals.set_rope_deltas(rope, deltas)
    return PromptPrefill(ids, token_types, positions, output)


def prefill_batch(model, inputs: dict[str, torch.Tensor], repeats: int) -> Any:
    """Forward a left-padded batch of prompts (``input_ids`` [k, W] and their vision inputs, as collated) but its
    last column, and repeat each row's KV cache `repeats` times for `generate` to continue with the last prompt
    token; returns that cache.

    Each row gets the mRoPE positions of its own unpadded tokens, and the model's stored ``rope_deltas`` are set
    to each row's, repeated, so the generated tokens of every row follow its own prompt.
    """
    ids, mask, token_types = inputs["input_ids"], inputs["attention_mask"], inputs["mm_token_type_ids"]
    vision = {k: inputs[k] for k in VISION_KEYS if k in inputs}
    rope = hf_internals.rope_index_module(model)
    positions, deltas = hf_internals.rope_index(rope, ids, token_types, vision, attention_mask=mask)
    output = model(
        input_ids=ids[:, :-1],
        attention_mask=mask[:, :-1],
        position_ids=positions[:, :, :-1],
        mm_token_type_ids=token_types[:, :-1],
        use_cache=True,
        logits_to_keep=1,
        **vision,
    )
    hf_internals.set_rope_deltas(rope, deltas.repeat_interleave(repeats, dim=0))
    return hf_internals.repeat_rows(output.past_key_values, repeats)


def group_cache(prefill: PromptPrefill, repeats: int, *, read_only: bool = False):
    """The prompt's cache repeated for the `repeats` completions of its group (the prefill's own cache,
    changed in place). ``read_only``: completions read it without storing their own keys, so a
    checkpointed forward replays against the same states."""
    cache = hf_internals.repeat_rows(prefill.output.past_key_values, repeats)
    return hf_internals.read_only(cache) if read_only else cache


def completion_positions(prefill: PromptPrefill, rows: int, length: int) -> torch.Tensor:
    """mRoPE positions [3, rows, length] of `length` text tokens right after the prompt (all three axes
    advance together past the prompt's largest position)."""
    text = prefill.positions.max() + 1 + torch.arange(length, device=prefill.positions.device)
    return text.view(1, 1, -1).expand(3, rows, -1)
