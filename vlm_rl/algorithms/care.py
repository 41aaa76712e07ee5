"""GRPO-CARE pure pieces (Chen et al., "GRPO-CARE: Consistency-Aware Reinforcement Learning for
Multimodal Reasoning", arXiv 2506.16141; code TencentARC/GRPO-CARE @ b0628fc).

A slowly evolving reference ``pi_phi`` (an EMA of the policy) scores the likelihood of each
sampled answer given the prompt and the sampled reasoning. High-accuracy completions whose
(clipped) likelihood is at least their high-accuracy peers' mean minus a margin get a bonus:

    selected_g = r_acc,g > min_accuracy  and  r_acc,g >= mean_group(r_acc)          [CODE form]
    p~_g       = min(p_g, confidence_upper_bound)
    mu_p       = mean_{selected} p~ - margin
    bonus_g    = bonus_coefficient * r_acc,g * [selected_g and p~_g >= mu_p]

The bonus is added to the base reward before GRPO normalisation (``grpo_advantages``, unbiased
std + 1e-4), and the policy loss uses ``beta = 0``. After every ``interval``-th optimizer step
the reference is updated with ``phi <- decay * phi + (1 - decay) * theta``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def _group_mean(values: Tensor, index: Tensor, num_groups: int, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Weighted per-group mean ``[K]`` and weight sum ``[K]`` of ``values[N]`` (weights 0/1).

    Values are shifted by the per-group minimum over weighted entries, so a constant group's mean
    equals its value exactly. Groups with zero total weight get mean 0 and count 0.
    """
    big = torch.finfo(values.dtype).max
    shift = torch.full((num_groups,), big, dtype=values.dtype, device=values.device).scatter_reduce(
        0, index, torch.where(weight > 0, values, torch.full_like(values, big)), reduce="amin", include_self=True
    )
    count = torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add(0, index, weight)
    shift = torch.where(count > 0, shift, torch.zeros_like(shift))
    shifted = torch.zeros_like(count).index_add(0, index, weight * (values - shift[index]))
    return shift + shifted / count.clamp(min=1), count


@torch.no_grad()
def care_bonus(
    accuracy: Tensor,
    ref_confidence: Tensor,
    group_ids: Tensor,
    *,
    margin: float = 0.0,
    bonus_coefficient: float = 0.5,
    confidence_upper_bound: float = 0.95,
    min_accuracy: float = 0.1,
) -> Tensor:
    """GRPO-CARE consistency bonus per completion, computed per group (formulas: module docstring).

    Selection follows the released code (``acc > min_accuracy and acc >= group mean``); the
    paper's ``acc >= max(mean, min_accuracy)`` differs only at ``acc == min_accuracy`` exactly.
    A group with no selected completion (e.g. all wrong) gets no bonus (the code's NaN mean, made
    explicit). Completions that are consistent but not selected get no bonus.

    Args:
        accuracy: ``[N]`` accuracy rewards ``r_acc`` (binary in the recipes).
        ref_confidence: ``[N]`` answer likelihoods ``p`` under the EMA reference
            (see :func:`answer_span_confidence`).
        group_ids: ``[N]`` integer group ids (arbitrary values, any order, any group sizes).
        margin: consistency margin ``epsilon_p >= 0`` (0 for SEED-Bench-R1, 0.01 for general data).
        bonus_coefficient: ``lambda_cons`` (0.5 in the scripts).
        confidence_upper_bound: clip ``gamma_p`` of the likelihood (0.95).
        min_accuracy: ``gamma_acc`` (0.1, hard-coded in the released trainer).

    Returns:
        ``[N]`` bonus, to be added to ``r_acc + r_fmt``.
    """
    if accuracy.dim() != 1:
        raise ValueError(f"accuracy must be 1-D [N], got shape {tuple(accuracy.shape)}")
    for name, tensor in {"ref_confidence": ref_confidence, "group_ids": group_ids}.items():
        if tensor.shape != accuracy.shape:
            raise ValueError(f"{name} shape {tuple(tensor.shape)} must equal accuracy shape {tuple(accuracy.shape)}")
    if group_ids.dtype.is_floating_point or group_ids.dtype.is_complex or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids must be an integer tensor, got {group_ids.dtype}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    dtype = ref_confidence.dtype if ref_confidence.dtype.is_floating_point else torch.get_default_dtype()
    acc = accuracy.to(dtype)
    conf = ref_confidence.to(dtype).clamp(max=confidence_upper_bound)

    unique_ids, index = torch.unique(group_ids, return_inverse=True)
    num_groups = unique_ids.numel()
    acc_mean, _ = _group_mean(acc, index, num_groups, torch.ones_like(acc))
    selected = (acc > min_accuracy) & (acc >= acc_mean[index])
    conf_mean, num_selected = _group_mean(conf, index, num_groups, selected.to(dtype))
    threshold = conf_mean - margin
    consistent = conf >= threshold[index]
    rewarded = selected & consistent & (num_selected[index] > 0)
    return torch.where(rewarded, bonus_coefficient * acc, torch.zeros_like(acc))


def answer_span_confidence(
    token_logprobs: Tensor, token_offsets: list[tuple[int, int]], span: tuple[int, int]
) -> Tensor:
    """Likelihood of an answer span under the reference: ``exp(mean log-prob)`` of its tokens.

    This is the released code's geometric mean (chosen for parity with it), not the paper's
    arithmetic mean of probabilities; they differ only for answers of several tokens
    (probabilities ``[0.99, 0.6]`` give 0.7707 here and 0.795 arithmetically). A token belongs
    to the span when its character range ``[s, e)`` overlaps ``span = [a, b)``, i.e.
    ``s < b and e > a``; a token straddling a tag boundary (e.g. ``">A"``) is therefore
    included. Zero-width tokens, such as special tokens, never overlap. An empty selection gives
    ``exp(0) = 1``, as in the code.

    Args:
        token_logprobs: ``[T]`` log-probs of the sampled tokens under the reference.
        token_offsets: ``T`` character ranges ``(start, end)`` of the tokens in the same text as
            ``span`` (a tokenizer offset mapping).
        span: character range ``(start, end)`` of the answer contents.

    Returns:
        0-d tensor in ``(0, 1]``.
    """
    if token_logprobs.dim() != 1 or token_logprobs.numel() != len(token_offsets):
        raise ValueError(
            f"token_logprobs must be 1-D with one entry per offset; got shape {tuple(token_logprobs.shape)} "
            f"and {len(token_offsets)} offsets"
        )
    start, end = span
    if end < start:
        raise ValueError(f"span end {end} must be >= start {start}")
    keep = [s < end and e > start and e > s for s, e in token_offsets]
    inside = token_logprobs[torch.tensor(keep, dtype=torch.bool, device=token_logprobs.device)]
    if inside.numel() == 0:
        return token_logprobs.new_ones(())
    return inside.mean().exp()


def should_update_ema(step: int, interval: int) -> bool:
    """True when the EMA reference is due after optimizer step ``step`` (1-based count).

    GRPO-CARE updates after every ``interval``-th step (``global_step % 10 == 0``); step 0 (no
    optimizer step yet) never triggers.
    """
    if interval < 1:
        raise ValueError(f"interval must be >= 1, got {interval}")
    return step > 0 and step % interval == 0


@torch.no_grad()
def ema_update_(ema_params: Iterable[Tensor], params: Iterable[Tensor], *, decay: float) -> None:
    """In place ``phi <- decay * phi + (1 - decay) * theta`` for paired tensors.

    ``params`` are cast to each EMA tensor's dtype and device. Both iterables must have the same
    length and pairwise shapes (e.g. ``ref_model.parameters()`` and ``model.parameters()``).

    Raises:
        ValueError: on ``decay`` outside ``[0, 1]``, a length mismatch or a shape mismatch.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    ema_list, param_list = list(ema_params), list(params)
    if len(ema_list) != len(param_list):
        raise ValueError(f"got {len(ema_list)} EMA tensors but {len(param_list)} parameters")
    for phi, theta in zip(ema_list, param_list):
        if phi.shape != theta.shape:
            raise ValueError(f"EMA shape {tuple(phi.shape)} != parameter shape {tuple(theta.shape)}")
    for phi, theta in zip(ema_list, param_list):
        phi.lerp_(theta.to(dtype=phi.dtype, device=phi.device), 1.0 - decay)
