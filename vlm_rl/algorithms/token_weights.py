"""Per-token loss weights from intra-group disagreement (TW-GRPO).

TW-GRPO ("Reinforcing Video Reasoning with Focused Thinking", arXiv 2505.24718) multiplies the
policy loss at each completion position by a weight in ``[1, alpha]`` that grows with how much
the ``G`` completions of one prompt disagree in their full next-token distributions there.

Only the paper's abstract could be read, not its weight equation, so this module implements the form
of the official code (``longmalongma/TW-GRPO``, ``compute_token_importance_kl_logs_uniform``).
For one group, with full-vocabulary log-probs ``l[i, t, :]`` (size ``V``) and mask ``m[i, t]``:

1. ``l~[i, t] = l[i, t]`` where ``m[i, t] = 1``, else the uniform log-prob vector ``-log V``;
2. ``lbar[t] = mean_i l~[i, t]`` (elementwise mean of log-probs, not renormalised);
3. ``D[i, t] = sum_v exp(d) - d - 1`` with ``d = clip(lbar[t, v] - l~[i, t, v], -11, 11)``;
4. ``K[t] = mean_i D[i, t]``;
5. ``Khat = (K - min K) / (max K - min K + 1e-8)``, min and max over all ``T`` positions
   (including all-padding ones, where ``K = 0``);
6. ``w[i, t] = (1 + (alpha - 1) * Khat[t]) * m[i, t]``.

``alpha = 1`` gives weights equal to the mask. The code default is ``alpha = 1.4``; the TW-GRPO
script uses ``1.7``. A later work suggests the paper writes ``w = 1 + alpha * Khat`` (so code
1.7 = paper 0.7); that is unverified, and ``alpha < 1`` is refused here to catch the mix-up.

The divergence is computed in at least float32: it sums over the whole vocabulary without
probability weighting, so tail entries with log-probs near -30 dominate it and bfloat16 is too
coarse there. The official code keeps the autograd graph through the weights; the loss here
treats weights as constants, so the default is to detach them (the extra gradient cancels where
all ``G`` completions are unmasked, since the weight is shared and the advantages sum to zero;
see docs/algorithms.md, "TW-GRPO memory: exact and bounded forms").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum, StrEnum
from typing import Protocol

import torch
from torch import Tensor

from vlm_rl.algorithms.registry import Registry

LOG_RATIO_CLIP = 11.0
NORM_EPS = 1e-8

LogprobChunkFn = Callable[[int, int], Tensor]
"""``fn(start, stop) -> [G, stop - start, V]`` log-probs of positions ``start:stop``."""


class TokenWeighting(StrEnum):
    """Built-in token weighting names."""

    TW_GRPO = "tw_grpo"


class TokenWeightFn(Protocol):
    """``fn(logprobs[N,T,V], mask[N,T], group_ids[N], *, alpha, chunk, detach) -> weights[N,T]``."""

    def __call__(
        self,
        logprobs: Tensor,
        mask: Tensor,
        group_ids: Tensor,
        *,
        alpha: float,
        chunk: int | None = ...,
        detach: bool = ...,
    ) -> Tensor: ...


TOKEN_WEIGHTINGS: Registry[TokenWeightFn] = Registry("token weighting")


def _check_alpha(alpha: float) -> None:
    """Raise ValueError unless ``alpha >= 1`` (code parameterisation, weights in ``[1, alpha]``)."""
    if not math.isfinite(alpha) or alpha < 1.0:
        raise ValueError(
            f"alpha must be a finite number >= 1 (weights lie in [1, alpha]; alpha = 1 is uniform), got {alpha}"
        )


def _check_mask(mask: Tensor, num_completions: int) -> None:
    """Raise ValueError unless ``mask`` is a non-empty ``[G, T]`` tensor with ``G = num_completions``."""
    if mask.dim() != 2 or mask.shape[0] != num_completions or mask.shape[1] == 0:
        raise ValueError(f"mask must be a non-empty [G={num_completions}, T] tensor, got shape {tuple(mask.shape)}")


def _check_logprobs(logprobs: Tensor, mask: Tensor) -> None:
    """Raise ValueError unless ``logprobs`` is ``[G, T, V]`` matching ``mask`` ``[G, T]``."""
    if logprobs.dim() != 3 or logprobs.shape[-1] == 0:
        raise ValueError(f"logprobs must be [G, T, V] with V > 0, got shape {tuple(logprobs.shape)}")
    if logprobs.shape[:2] != mask.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} must equal logprobs shape[:2] {tuple(logprobs.shape[:2])}")


def _slicer(logprobs: Tensor) -> LogprobChunkFn:
    """Return ``fn(start, stop) -> logprobs[:, start:stop]``."""

    def fetch(start: int, stop: int) -> Tensor:
        return logprobs[:, start:stop]

    return fetch


def _divergence_scores(logprobs: Tensor, mask: Tensor) -> Tensor:
    """Per-position score ``K[t]`` (steps 1-4) of one group; ``[G, T, V]``, ``[G, T]`` -> ``[T]``."""
    lp = logprobs.to(torch.promote_types(logprobs.dtype, torch.float32))
    uniform = lp.new_full((), -math.log(lp.shape[-1]))
    filled = torch.where((mask != 0).unsqueeze(-1), lp, uniform)
    d = (filled.mean(dim=0, keepdim=True) - filled).clamp(-LOG_RATIO_CLIP, LOG_RATIO_CLIP)
    return (torch.exp(d) - d - 1.0).sum(dim=-1).mean(dim=0)


def _weights_from_scores(scores: Tensor, mask: Tensor, alpha: float) -> Tensor:
    """Steps 5-6: min-max normalise ``K[T]`` over positions and broadcast to ``[G, T]`` under the mask."""
    k_min, k_max = scores.min(), scores.max()
    k_hat = (scores - k_min) / (k_max - k_min + NORM_EPS)
    return (1.0 + (alpha - 1.0) * k_hat).unsqueeze(0) * mask.to(scores.dtype)


def tw_grpo_position_scores(logprobs: Tensor, mask: Tensor) -> Tensor:
    """TW-GRPO per-position divergence ``K[t]`` of one group, before min-max normalisation.

    Args:
        logprobs: ``[G, T, V]`` full-vocabulary log-softmax of the ``G`` completions of one prompt.
        mask: ``[G, T]`` completion mask (bool or float).

    Returns:
        ``[T]`` scores in ``promote(logprobs.dtype, float32)``, carrying the graph of ``logprobs``.
    """
    _check_logprobs(logprobs, mask)
    _check_mask(mask, logprobs.shape[0])
    return _divergence_scores(logprobs, mask)


def tw_grpo_token_weights(logprobs: Tensor, mask: Tensor, *, alpha: float, detach: bool = True) -> Tensor:
    """Exact TW-GRPO token weights of one group (arXiv 2505.24718, official-code form).

    ``w[i, t] = (1 + (alpha - 1) * Khat[t]) * m[i, t]`` with ``Khat`` the min-max normalised
    intra-group divergence of the module docstring. Masked positions get weight 0; a position
    where some completions are masked uses the uniform distribution for those completions.

    Args:
        logprobs: ``[G, T, V]`` full-vocabulary log-softmax of the ``G`` completions of one prompt.
        mask: ``[G, T]`` completion mask (bool or float).
        alpha: maximum weight, ``>= 1`` (code parameterisation; ``1`` gives uniform weights).
        detach: return weights without autograd graph (default). ``False`` keeps the graph
            through ``logprobs``, as the official code does.

    Returns:
        ``[G, T]`` weights in ``promote(logprobs.dtype, float32)``.
    """
    _check_alpha(alpha)
    _check_logprobs(logprobs, mask)
    _check_mask(mask, logprobs.shape[0])
    if detach:
        with torch.no_grad():
            return _weights_from_scores(_divergence_scores(logprobs, mask), mask, alpha)
    return _weights_from_scores(_divergence_scores(logprobs, mask), mask, alpha)


@torch.no_grad()
def tw_grpo_token_weights_chunked(
    logprobs: Tensor | LogprobChunkFn, mask: Tensor, *, alpha: float, chunk: int
) -> Tensor:
    """Memory-bounded, detached TW-GRPO token weights of one group.

    Same value as :func:`tw_grpo_token_weights` (up to float summation order): ``K[t]`` depends
    only on position ``t``, so it is computed ``chunk`` positions at a time and the min-max
    normalisation runs once on the full ``[T]`` score vector. Intermediates are
    ``O(G * chunk * V)`` instead of ``O(G * T * V)``.

    Args:
        logprobs: ``[G, T, V]`` log-probs, or a callable ``fn(start, stop)`` returning the
            ``[G, stop - start, V]`` log-probs of positions ``start:stop`` (e.g. a log-softmax of
            a slice of the LM head output), so the full tensor never has to exist at once.
        mask: ``[G, T]`` completion mask (bool or float).
        alpha: maximum weight, ``>= 1``.
        chunk: number of positions per chunk, ``>= 1``.

    Returns:
        ``[G, T]`` detached weights in ``promote(logprobs.dtype, float32)``.
    """
    _check_alpha(alpha)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if isinstance(logprobs, Tensor):
        _check_logprobs(logprobs, mask)
        fetch = _slicer(logprobs)
    else:
        fetch = logprobs
    num_completions, length = mask.shape[0], mask.shape[-1]
    _check_mask(mask, num_completions)
    scores = []
    for start in range(0, length, chunk):
        stop = min(start + chunk, length)
        block = fetch(start, stop)
        if block.dim() != 3 or block.shape[:2] != (num_completions, stop - start):
            raise ValueError(
                f"log-probs for positions {start}:{stop} must have shape [{num_completions}, {stop - start}, V], "
                f"got {tuple(block.shape)}"
            )
        scores.append(_divergence_scores(block, mask[:, start:stop]))
    return _weights_from_scores(torch.cat(scores), mask, alpha)


@TOKEN_WEIGHTINGS.register(TokenWeighting.TW_GRPO)
def tw_grpo_token_weights_grouped(
    logprobs: Tensor,
    mask: Tensor,
    group_ids: Tensor,
    *,
    alpha: float,
    chunk: int | None = None,
    detach: bool = True,
) -> Tensor:
    """TW-GRPO token weights of a batch holding several groups, each group computed on its own.

    Group ids are arbitrary integers; completions of one group need not be contiguous.

    Args:
        logprobs: ``[N, T, V]`` full-vocabulary log-softmax.
        mask: ``[N, T]`` completion mask (bool or float).
        group_ids: ``[N]`` integer group id per completion.
        alpha: maximum weight, ``>= 1``.
        chunk: if set, use :func:`tw_grpo_token_weights_chunked` with this chunk size.
        detach: see :func:`tw_grpo_token_weights`; must be True when ``chunk`` is set.

    Returns:
        ``[N, T]`` weights in ``promote(logprobs.dtype, float32)``.
    """
    _check_logprobs(logprobs, mask)
    if group_ids.shape != logprobs.shape[:1]:
        raise ValueError(f"group_ids must have shape [N]={tuple(logprobs.shape[:1])}, got {tuple(group_ids.shape)}")
    if chunk is not None and not detach:
        raise ValueError("the chunked form is always detached; use chunk=None with detach=False")
    out_dtype = torch.promote_types(logprobs.dtype, torch.float32)
    weights = torch.zeros(mask.shape, dtype=out_dtype, device=logprobs.device)
    for group in torch.unique(group_ids):
        index = torch.nonzero(group_ids == group).squeeze(1)
        if chunk is None:
            group_weights = tw_grpo_token_weights(logprobs[index], mask[index], alpha=alpha, detach=detach)
        else:
            group_weights = tw_grpo_token_weights_chunked(logprobs[index], mask[index], alpha=alpha, chunk=chunk)
        weights = weights.index_copy(0, index, group_weights)
    return weights


def get_token_weight_fn(name: str | Enum) -> TokenWeightFn:
    """Token weighting registered under ``name`` (``"tw_grpo"``)."""
    return TOKEN_WEIGHTINGS.get(name)
