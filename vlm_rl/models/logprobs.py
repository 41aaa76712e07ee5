"""Per-token log-probabilities of completions under a model (the loss forward).

Two forms give the same numbers (equal up to float summation order, tested to 1e-5):

- batched: every row is ``[left-padded prompt | completion]``, so a prompt and its frames are
  computed once per completion (G times per group);
- shared prefix: each prompt (text and vision) is computed once, and its key/value cache is
  repeated for the G completions that attend to it; autograd sums the G completions' gradients
  back into the single prompt computation. The completions read the prompt's cache without
  writing to it, so with gradient checkpointing their layers are recomputed in the backward as
  usual; the prompt itself (run once per group) keeps its activations, since its forward writes
  the cache.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from transformers import PreTrainedModel
from transformers.cache_utils import Cache, DynamicLayer

from vlm_rl.models.adapter import Batch, PromptInputs

VISION_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "pixel_values", "image_grid_thw")


def completion_logprobs(
    model, batch: Batch, *, with_entropy: bool = False, with_vocab: bool = False, shared_prefix: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Log-probs [B, C] of `batch.completion_ids`, token entropies [B, C] and the detached
    full-vocabulary log-probs [B, C, V] (the last two only when asked, else None).

    The forward receives the full multimodal inputs (pixel values, grids, `second_per_grid_ts`,
    `mm_token_type_ids`), so the vision tower runs and its gradient flows. Only the positions that
    predict completion tokens are projected to the vocabulary. `shared_prefix` computes each
    prompt once per group (module docstring).
    """
    logits = _shared_prefix_logits(model, batch) if shared_prefix else _batched_logits(model, batch)
    targets = batch.completion_ids.to(logits.device)
    log_norm = torch.logsumexp(logits, dim=-1)
    logp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_norm
    entropy = vocab = None
    with torch.no_grad():
        if with_entropy:
            probs = torch.softmax(logits, dim=-1)
            entropy = log_norm - (probs * logits).sum(-1)
        if with_vocab:
            vocab = logits - log_norm.unsqueeze(-1)
    return logp, entropy, vocab


def _batched_logits(model, batch: Batch) -> torch.Tensor:
    """Logits [B, C, V] of the positions that predict the completion tokens; position
    ``prompt_width - 1 + t`` predicts token t."""
    c_len = batch.completion_ids.shape[1]
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.model_inputs.items()}
    return model(**inputs, logits_to_keep=c_len + 1, use_cache=False).logits[:, :-1].float()


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
    rope = next(m for m in model.modules() if hasattr(m, "get_rope_index"))
    positions, deltas = rope.get_rope_index(
        ids,
        token_types,
        image_grid_thw=vision.get("image_grid_thw"),
        video_grid_thw=vision.get("video_grid_thw"),
        second_per_grid_ts=vision.get("second_per_grid_ts"),
    )
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
    rope.rope_deltas = deltas
    return PromptPrefill(ids, token_types, positions, output)


def _shared_prefix_logits(model, batch: Batch) -> torch.Tensor:
    """The same logits with each prompt computed once for its rows (Prefix Grouper's idea, done with
    the model's KV cache): forward the prompt alone, repeat its cache for its G rows, forward the G
    completions with explicit mRoPE text positions after the prompt's last position."""
    if not batch.prompts:
        raise ValueError("the shared-prefix forward needs a Batch built by QwenVLAdapter.collate (prompts and repeats)")
    device = next(model.parameters()).device
    c_len = batch.completion_ids.shape[1]
    completion_attention = batch.model_inputs["attention_mask"][:, batch.prompt_width :]
    rows, start = [], 0
    for prompt, repeats in zip(batch.prompts, batch.repeats):
        with _checkpointing(model, "off"):
            prefill = prefill_prompt(model, prompt)
        cache = prefill.output.past_key_values
        cache.batch_repeat_interleave(repeats)
        cache = Cache(layers=[_ReadOnlyPrefix(layer.keys, layer.values) for layer in cache.layers])
        length = prefill.ids.shape[1]
        text = prefill.positions.max() + 1 + torch.arange(c_len, device=device)
        completion_mask = completion_attention[start : start + repeats].to(device)
        with _checkpointing(model, "with_cache"):
            completion_out = model(
                input_ids=batch.completion_ids[start : start + repeats].to(device),
                attention_mask=torch.cat([torch.ones(repeats, length, dtype=completion_mask.dtype, device=device), completion_mask], 1),
                position_ids=text.view(1, 1, -1).expand(3, repeats, -1),
                past_key_values=cache,
                cache_position=torch.arange(length, length + c_len, device=device),
                use_cache=False,
            )
        first = prefill.output.logits[:, -1:].expand(repeats, 1, -1)
        rows.append(torch.cat([first, completion_out.logits[:, :-1]], dim=1).float())
        start += repeats
    return torch.cat(rows)


class _ReadOnlyPrefix(DynamicLayer):
    """One layer's cache of a prompt: hands out the prompt's keys/values with the new tokens' appended,
    storing nothing, so a (re)computed completion forward always sees the same states."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.lazy_initialization(keys, values)
        self.keys, self.values = keys, values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)


@contextlib.contextmanager
def _checkpointing(model, mode: str) -> Iterator[None]:
    """For the decoder layers transformers checkpoints: "off" runs them plainly, with the cache the
    models' forwards would otherwise refuse (a forward that writes the cache cannot be replayed);
    "with_cache" lets them keep a cache they only read."""
    checkpointed = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False)]
    decoder_layers = [
        m
        for m in checkpointed
        if hasattr(m, "_can_checkpoint_with_cache") and "past_key_values" in inspect.signature(type(m).forward).parameters
    ]
    if mode == "off":
        switched = decoder_layers + [m for m in checkpointed if isinstance(m, PreTrainedModel)]
        for module in switched:
            module.gradient_checkpointing = False
    else:
        for layer in decoder_layers:
            layer._can_checkpoint_with_cache = True
    try:
        yield
    finally:
        if mode == "off":
            for module in switched:
                module.gradient_checkpointing = True
        else:
            for layer in decoder_layers:
                del layer._can_checkpoint_with_cache
