"""Group-relative advantage estimators (GRPO family).

A batch holds ``N`` scalar rewards, one per completion, and a group id per completion: the
completions of one prompt share a group id. Group ids are arbitrary integers (they need not be
contiguous or sorted), groups may differ in size, and one batch may hold many groups. Every
per-group statistic is computed with index/scatter operations over the whole batch.

Conventions shared by every function here:

- the std is the unbiased sample std (divisor ``G - 1``), as ``torch.std`` computes by default;
- a group of size 1 has std 0 and mean equal to its only reward, hence advantage 0;
- a group whose rewards are all equal gets advantage exactly 0 and std exactly 0 (statistics are
  computed on rewards shifted by the group minimum, so no rounding residue survives).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NamedTuple, Protocol

import torch
from torch import Tensor

from vlm_rl.algorithms.registry import Registry

StdMode = Literal["group", "batch"]


class AdvantageEstimator(StrEnum):
    """Built-in advantage estimator names."""

    GRPO = "grpo"
    DR_GRPO = "dr_grpo"


class AdvantageFn(Protocol):
    """``fn(rewards[N], group_ids[N], *, scale_by_std, std_mode, eps) -> advantages[N]``."""

    def __call__(
        self,
        rewards: Tensor,
        group_ids: Tensor,
        *,
        scale_by_std: bool = ...,
        std_mode: StdMode = ...,
        eps: float = ...,
    ) -> Tensor: ...


ADVANTAGE_ESTIMATORS: Registry[AdvantageFn] = Registry("advantage estimator")


class GroupStats(NamedTuple):
    """Per-sample statistics of the sample's group, each of shape ``[N]``."""

    mean: Tensor
    std: Tensor
    size: Tensor


def _check_inputs(rewards: Tensor, group_ids: Tensor) -> Tensor:
    """Validate shapes/dtypes and return the rewards as a floating tensor."""
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [N], got shape {tuple(rewards.shape)}")
    if group_ids.shape != rewards.shape:
        raise ValueError(
            f"group_ids shape {tuple(group_ids.shape)} must equal rewards shape {tuple(rewards.shape)}"
        )
    if group_ids.dtype.is_floating_point or group_ids.dtype.is_complex or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids must be an integer tensor, got {group_ids.dtype}")
    if not rewards.dtype.is_floating_point:
        rewards = rewards.to(torch.get_default_dtype())
    return rewards


class GroupMoments(NamedTuple):
    """Per-group quantities ``[K]`` for dense group indices in ``[0, K)``."""

    size: Tensor
    mean: Tensor
    var: Tensor


def group_moments(values: Tensor, index: Tensor, num_groups: int, ddof: int = 1) -> GroupMoments:
    """Size, mean and variance (divisor ``size - ddof``, clamped to >= 1) of ``values[N]`` per group.

    ``index[N]`` holds dense group indices in ``[0, num_groups)``. Values are shifted by a detached
    per-group minimum before summing, so a constant group has variance exactly 0; the shift cancels
    in the gradient, so ``values`` may carry a graph.
    """
    size = torch.bincount(index, minlength=num_groups)
    shift = (
        values.detach()
        .new_full((num_groups,), float("inf"))
        .scatter_reduce(0, index, values.detach(), reduce="amin", include_self=False)
    )
    shifted_sum = values.new_zeros(num_groups).index_add(0, index, values - shift[index])
    mean = shift + shifted_sum / size
    dev = values - mean[index]
    sq_sum = values.new_zeros(num_groups).index_add(0, index, dev * dev)
    return GroupMoments(size=size, mean=mean, var=sq_sum / (size - ddof).clamp(min=1))


def _stats_by_index(values: Tensor, index: Tensor, num_groups: int) -> GroupStats:
    """Mean, unbiased std and size per group for ``values[N]`` with dense ``index[N]`` in [0, K)."""
    moments = group_moments(values, index, num_groups, ddof=1)
    return GroupStats(mean=moments.mean[index], std=moments.var.sqrt()[index], size=moments.size[index])


def _group_stats_checked(rewards: Tensor, group_ids: Tensor) -> GroupStats:
    """:func:`group_stats` on already validated inputs."""
    unique_ids, index = torch.unique(group_ids, return_inverse=True)
    return _stats_by_index(rewards, index, unique_ids.numel())


def group_stats(rewards: Tensor, group_ids: Tensor) -> GroupStats:
    """Statistics of each sample's group, broadcast back to the samples.

    Args:
        rewards: ``[N]`` float rewards.
        group_ids: ``[N]`` integer group ids (arbitrary values, any order).

    Returns:
        :class:`GroupStats` with ``mean`` ``[N]``, ``std`` ``[N]`` (unbiased; 0 for a group of
        size 1) and ``size`` ``[N]`` (long).
    """
    rewards = _check_inputs(rewards, group_ids)
    return _group_stats_checked(rewards, group_ids)


def group_reward_std(rewards: Tensor, group_ids: Tensor) -> Tensor:
    """Unbiased std of each sample's group, ``[N]``.

    Exactly 0 for groups whose rewards are all equal and for groups of size 1, so
    ``group_reward_std(r, g) > 0`` selects the samples that carry a learning signal (DAPO dynamic
    sampling, VL-Rethinker selective sample replay).
    """
    return group_stats(rewards, group_ids).std


def _batch_std(rewards: Tensor) -> Tensor:
    """Unbiased std of all rewards as a 0-d tensor (0 when ``N < 2``)."""
    index = torch.zeros_like(rewards, dtype=torch.long)
    std = _stats_by_index(rewards, index, 1).std
    return std[0] if std.numel() else rewards.new_zeros(())


@ADVANTAGE_ESTIMATORS.register(AdvantageEstimator.GRPO)
def grpo_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    *,
    scale_by_std: bool = True,
    std_mode: StdMode = "group",
    eps: float = 1e-4,
) -> Tensor:
    """GRPO group-normalised advantage (DeepSeekMath, arXiv 2402.03300).

    ``A_i = (r_i - mean_g(r)) / (std + eps)`` where ``g`` is the group of sample ``i`` and
    ``std`` is the unbiased std of group ``g`` (``std_mode="group"``) or of the whole batch
    (``std_mode="batch"``, the REINFORCE++ "batch std" variant; the mean stays per group).
    ``eps`` is added to the std, not inside the square root. With ``scale_by_std=False`` the
    result is the mean-centred reward ``r_i - mean_g(r)``.

    A group of size 1 gets advantage 0; a group whose rewards are all equal gets exactly 0 (also
    with ``eps=0``).

    Args:
        rewards: ``[N]`` rewards.
        group_ids: ``[N]`` integer group ids (arbitrary values, any order, any group sizes).
        scale_by_std: divide the centred rewards by ``std + eps``.
        std_mode: ``"group"`` or ``"batch"``.
        eps: non-negative constant added to the std.

    Returns:
        ``[N]`` advantages, one per completion (shared by all of its tokens).
    """
    if std_mode not in ("group", "batch"):
        raise ValueError(f"std_mode must be 'group' or 'batch', got {std_mode!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    rewards = _check_inputs(rewards, group_ids)
    stats = _group_stats_checked(rewards, group_ids)
    centred = rewards - stats.mean
    if not scale_by_std:
        return centred
    std = stats.std if std_mode == "group" else _batch_std(rewards).expand_as(rewards)
    denom = std + eps
    # denom == 0 only when eps == 0 and the rewards are all equal, where centred is exactly 0.
    return centred / torch.where(denom > 0, denom, torch.ones_like(denom))


@ADVANTAGE_ESTIMATORS.register(AdvantageEstimator.DR_GRPO)
def dr_grpo_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    *,
    scale_by_std: bool = False,
    std_mode: StdMode = "group",
    eps: float = 1e-4,
) -> Tensor:
    """Dr.GRPO advantage (Liu et al., "Understanding R1-Zero-Like Training", arXiv 2503.20783).

    ``A_i = r_i - mean_g(r)``: mean-centred within the group, never divided by the std (the
    std division is the question-level difficulty bias Dr.GRPO removes). ``std_mode`` and
    ``eps`` are accepted for a uniform signature and have no effect.

    Args:
        rewards: ``[N]`` rewards.
        group_ids: ``[N]`` integer group ids.
        scale_by_std: must be False; True is refused (use ``"grpo"`` for std scaling).

    Returns:
        ``[N]`` advantages.
    """
    if scale_by_std:
        raise ValueError("dr_grpo never scales by the std; use the 'grpo' estimator for that")
    return grpo_advantages(rewards, group_ids, scale_by_std=False, std_mode=std_mode, eps=eps)
