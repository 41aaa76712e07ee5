"""Per-token log-probabilities of completions under a model (the loss forward)."""

from __future__ import annotations

import torch

from vlm_rl.models.adapter import Batch


def completion_logprobs(
    model, batch: Batch, *, with_entropy: bool = False, with_vocab: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Log-probs [B, C] of `batch.completion_ids`, token entropies [B, C] and the detached
    full-vocabulary log-probs [B, C, V] (the last two only when asked, else None).

    The forward receives the full multimodal inputs (pixel values, grids, `second_per_grid_ts`,
    `mm_token_type_ids`), so the vision tower runs and its gradient flows. Only the last C + 1
    positions are projected to the vocabulary: position ``prompt_width - 1 + t`` predicts token t.
    """
    c_len = batch.completion_ids.shape[1]
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.model_inputs.items()}
    logits = model(**inputs, logits_to_keep=c_len + 1, use_cache=False).logits[:, :-1].float()
    targets = batch.completion_ids.to(device)
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
