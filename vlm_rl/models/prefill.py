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


def prefill_prompt(model, prompt: PromptInputs, *, leave_last: bool = False) -> PromptPrefill:
    """Forward one prompt (text and vision) with a fresh cache and explicit mRoPE positions.

    ``leave_last`` prefills all but the last token, for `generate` to continue from. The model's
    stored ``rope_deltas`` are set to this prompt's, so a continuation that relies on them (HF
    `generate` with a cache) places its new tokens after the prompt.
    """
    device = next(model.parameters()).device
    ids = prompt.input_ids[None].to(device)
    token_types = prompt.mm_token_type_ids[None].to(device)
    vision = {k: getattr(prompt, k).to(device) for k in VISION_KEYS if getattr(prompt, k) is not None}
    rope = hf_internals.rope_index_module(model)
    positions, deltas = hf_internals.rope_index(rope, ids, token_types, vision)
    end = ids.shape[1] - 1 if leave_last else ids.shape[1]
    output = model(
        input_ids=ids[:, :end],
        attention_mask=torch.ones_like(ids[:, :end]),
        position_ids=positions[:, :, :end],
        mm_token_type_ids=token_types[:, :end],
        use_cache=True,
        logits_to_keep=1,
        **vision,
    )
    hf_internals.set_rope_deltas(rope, deltas)
    return PromptPrefill(ids, token_types, positions, output)


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
