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

import torch

from vlm_rl.models.adapter import Batch
from vlm_rl.models import hf_internals
from vlm_rl.models.hf_internals import checkpointing
from vlm_rl.models.prefill import completion_positions, group_cache, prefill_prompt


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
        with checkpointing(model, "off"):
            prefill = prefill_prompt(model, prompt)
        cache = group_cache(prefill, repeats, read_only=True)
        length = prefill.ids.shape[1]
        completion_mask = completion_attention[start : start + repeats].to(device)
        attention = torch.cat([torch.ones(repeats, length, dtype=completion_mask.dtype, device=device), completion_mask], 1)
        completion_ids = batch.completion_ids[start : start + repeats].to(device)
        media = batch.completion_media[start : start + repeats] if batch.completion_media else ()
        if any(m is not None and m.pixel_values is not None for m in media):
            token_types = batch.model_inputs["mm_token_type_ids"][start : start + repeats, batch.prompt_width :].to(device)
            extra = _tool_image_inputs(model, prefill, prompt, media, completion_ids, token_types, attention, device)
        else:
            extra = {"position_ids": completion_positions(prefill, repeats, c_len)}
        with checkpointing(model, "with_cache"):
            completion_out = model(
                input_ids=completion_ids,
                attention_mask=attention,
                past_key_values=cache,
                cache_position=torch.arange(length, length + c_len, device=device),
                use_cache=False,
                **extra,
            )
        first = prefill.output.logits[:, -1:].expand(repeats, 1, -1)
        rows.append(torch.cat([first, completion_out.logits[:, :-1]], dim=1).float())
        start += repeats
    return torch.cat(rows)


def _tool_image_inputs(model, prefill, prompt, media, completion_ids, token_types, attention, device) -> dict[str, torch.Tensor]:
    """Inputs of a completion forward whose rows hold tool-turn images: the images and their grids in row order,
    the completion's token types, and mRoPE positions of the whole rows (prompt then completion) cut to the
    completion, so the images after the prompt get their 3-axis positions."""
    repeats = completion_ids.shape[0]
    grids, pixels = [], []
    for row in media:
        if prompt.image_grid_thw is not None:
            grids.append(prompt.image_grid_thw)
        if row is not None and row.pixel_values is not None:
            grids.append(row.image_grid_thw)
            pixels.append(row.pixel_values)
    vision = {"image_grid_thw": torch.cat(grids).to(device)}
    if prompt.video_grid_thw is not None:
        vision["video_grid_thw"] = prompt.video_grid_thw.repeat(repeats, 1).to(device)
        vision["second_per_grid_ts"] = prompt.second_per_grid_ts.repeat(repeats).to(device)
    ids = torch.cat([prefill.ids.expand(repeats, -1), completion_ids], 1)
    types = torch.cat([prefill.token_types.expand(repeats, -1), token_types], 1)
    rope = hf_internals.rope_index_module(model)
    positions, _ = hf_internals.rope_index(rope, ids, types, vision, attention_mask=attention)
    return {
        "position_ids": positions[:, :, prefill.ids.shape[1] :],
        "pixel_values": torch.cat(pixels).to(device),
        "image_grid_thw": torch.cat([row.image_grid_thw for row in media if row is not None and row.pixel_values is not None]).to(device),
        "mm_token_type_ids": token_types,
    }
