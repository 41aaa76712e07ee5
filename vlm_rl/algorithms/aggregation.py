"""Loss aggregation: reduce a per-token loss ``[B, T]`` under a completion mask to a scalar.

The mask is 1 for completion tokens (up to and including the first EOS) and 0 for padding; it
may be bool or float. Padding positions are excluded with ``torch.where``, so a non-finite loss
value at a padding position does not leak into the result.

Names (see Dr.GRPO, arXiv 2503.20783, and DAPO, arXiv 2503.14476, for the length biases):

- ``seq_mean_token_mean``: ``mean_i [ sum_t m_it l_it / sum_t m_it ]`` (GRPO / R1-V default).
- ``token_mean``: ``sum_it m_it l_it / sum_it m_it`` (DAPO token-level loss; TW-GRPO).
- ``seq_mean_token_sum_norm``: ``sum_it m_it l_it / (B * C)`` with a constant ``C`` such as
  the maximum completion length (Dr.GRPO), so the weight of a token does not depend on lengths.

A training step splits its batch into micro-batches (and processes). Each aggregation declares the
unit of its normaliser (rows or tokens) when it is registered, and :func:`micro_batch_share` turns a
micro-batch's mean into its share of the whole step's loss from the step's global counts, so the
accumulated gradient equals the gradient of the unsplit batch for every registered aggregation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Literal, Protocol

import torch
from torch import Tensor

from vlm_rl.algorithms.registry import Registry


class LossAggregation(StrEnum):
    """Built-in loss aggregation names."""

    SEQ_MEAN_TOKEN_MEAN = "seq_mean_token_mean"
    TOKEN_MEAN = "token_mean"
    SEQ_MEAN_TOKEN_SUM_NORM = "seq_mean_token_sum_norm"


class AggregationFn(Protocol):
    """``fn(loss[B,T], mask[B,T], *, norm_const) -> scalar``."""

    def __call__(self, loss: Tensor, mask: Tensor, *, norm_const: int | None = ...) -> Tensor: ...


AGGREGATIONS: Registry[AggregationFn] = Registry("loss aggregation")

NormaliserUnit = Literal["rows", "sequences", "tokens"]
_UNITS: dict[str, NormaliserUnit] = {}


@dataclass(frozen=True)
class StepNormaliser:
    """Counts over one whole optimizer step: every micro-batch of every process.

    ``rows`` are the step's completions, ``sequences`` those with at least one unmasked token and
    ``tokens`` the unmasked tokens, each divided by the number of processes whose gradients are
    averaged (DDP / DeepSpeed average, so each process's share is scaled up by that number and the
    average is the global mean).
    """

    rows: float
    sequences: float
    tokens: float

    @staticmethod
    def count(masks: list[Tensor]) -> Tensor:
        """``[rows, sequences, tokens]`` of completion masks ``[B, T]`` (to be summed over processes)."""
        return torch.tensor(
            [
                sum(m.shape[0] for m in masks),
                sum(int((m.sum(dim=1) != 0).sum()) for m in masks),
                int(sum(m.sum() for m in masks)),
            ]
        )


def aggregation(name: str | Enum, unit: NormaliserUnit) -> Callable[[AggregationFn], AggregationFn]:
    """Register an aggregation under ``name`` with the unit its micro-batch mean divides by: every row
    (``rows``), rows with an unmasked token (``sequences``) or unmasked tokens (``tokens``)."""

    def decorator(fn: AggregationFn) -> AggregationFn:
        AGGREGATIONS.register(name)(fn)
        _UNITS[_name(name)] = unit
        return fn

    return decorator


def _name(name: str | Enum) -> str:
    return name.value if isinstance(name, Enum) else name


def micro_batch_share(name: str | Enum, mask: Tensor, step: StepNormaliser | None) -> float:
    """Share of the step's loss carried by a micro-batch with completion mask ``mask`` [B, T].

    A micro-batch's mean counts its own number of units over the step's: ``B / step.rows``,
    ``non-empty rows / step.sequences`` or ``mask.sum() / step.tokens``. ``step`` None means the
    micro-batch is the whole step (share 1).
    """
    AGGREGATIONS.get(name)
    unit = _UNITS.get(_name(name))
    if unit is None:
        raise KeyError(
            f"loss aggregation {_name(name)!r} was registered without a normaliser unit; register it with "
            "vlm_rl.algorithms.aggregation.aggregation(name, unit=...) so micro-batches can be weighted"
        )
    if step is None:
        return 1.0
    if unit == "tokens":
        return float(mask.sum()) / step.tokens
    if unit == "sequences":
        return int((mask.sum(dim=1) != 0).sum()) / step.sequences
    return mask.shape[0] / step.rows


def _masked(loss: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Validate shapes; return ``(loss * mask with padding set to 0, float mask)``."""
    if loss.dim() != 2:
        raise ValueError(f"loss must be 2-D [B, T], got shape {tuple(loss.shape)}")
    if mask.shape != loss.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} must equal loss shape {tuple(loss.shape)}")
    mask_f = mask.to(loss.dtype)
    return torch.where(mask_f != 0, loss * mask_f, torch.zeros_like(loss)), mask_f


def _nonzero(x: Tensor) -> Tensor:
    """Replace zeros by ones, for use as a denominator whose numerator is then 0."""
    return torch.where(x != 0, x, torch.ones_like(x))


@aggregation(LossAggregation.SEQ_MEAN_TOKEN_MEAN, unit="sequences")
def seq_mean_token_mean(loss: Tensor, mask: Tensor, *, norm_const: int | None = None) -> Tensor:
    """Mean over sequences of each sequence's masked token mean.

    A sequence whose mask is all zero contributes 0 and is not counted in the mean over
    sequences (so it neither dilutes nor biases the others); if every sequence is empty the
    result is 0. ``norm_const`` is ignored.

    Args:
        loss: ``[B, T]`` per-token loss.
        mask: ``[B, T]`` completion mask (bool or float).

    Returns:
        A 0-d tensor.
    """
    masked, mask_f = _masked(loss, mask)
    tokens = mask_f.sum(dim=1)
    per_seq = masked.sum(dim=1) / _nonzero(tokens)
    num_seqs = (tokens != 0).sum().to(loss.dtype)
    return per_seq.sum() / _nonzero(num_seqs)


@aggregation(LossAggregation.TOKEN_MEAN, unit="tokens")
def token_mean(loss: Tensor, mask: Tensor, *, norm_const: int | None = None) -> Tensor:
    """Sum over all masked tokens divided by the number of masked tokens (DAPO).

    Returns 0 when the mask is empty. ``norm_const`` is ignored.

    Args:
        loss: ``[B, T]`` per-token loss.
        mask: ``[B, T]`` completion mask (bool or float).

    Returns:
        A 0-d tensor.
    """
    masked, mask_f = _masked(loss, mask)
    return masked.sum() / _nonzero(mask_f.sum())


@aggregation(LossAggregation.SEQ_MEAN_TOKEN_SUM_NORM, unit="rows")
def seq_mean_token_sum_norm(loss: Tensor, mask: Tensor, *, norm_const: int | None = None) -> Tensor:
    """Sum over all masked tokens divided by ``B * norm_const`` (Dr.GRPO, arXiv 2503.20783).

    Args:
        loss: ``[B, T]`` per-token loss.
        mask: ``[B, T]`` completion mask (bool or float).
        norm_const: required positive constant, e.g. the configured maximum completion length.

    Returns:
        A 0-d tensor.
    """
    if norm_const is None:
        raise ValueError("seq_mean_token_sum_norm needs norm_const (e.g. the max completion length)")
    if norm_const <= 0:
        raise ValueError(f"norm_const must be positive, got {norm_const}")
    masked, _ = _masked(loss, mask)
    return masked.sum() / (max(loss.shape[0], 1) * norm_const)
