"""Per-token KL estimators between the policy and a reference policy.

Schulman, "Approximating KL Divergence" (2020, http://joschu.net/blog/kl-approx.html).
The tokens are sampled from the policy ``pi``; with ``d = log pi_ref(o_t) - log pi(o_t)``:

- ``k1 = -d``                  unbiased for KL(pi || pi_ref), high variance, can be negative;
- ``k2 = d^2 / 2``             biased, low variance, non-negative;
- ``k3 = exp(d) - d - 1``      unbiased, low variance, non-negative (GRPO's choice).

Safety bounds, on by default (the bounds verl uses): every estimator clamps ``d`` to
``[-clamp, clamp]`` with ``clamp = LOG_RATIO_CLAMP = 20`` unless the caller passes its own
(TW-GRPO passes 11, GRPO-CARE 10), and k3 is further capped at ``K3_MAX = 10``. Without them one
token the reference finds unlikely (``d = 29``) gives ``k3 ~ 3.9e12``, and ``d`` past about 88
overflows float32 to ``inf``. A clamped token gets no gradient from its KL term. Inputs of
``-inf`` on one side give the bounded value; both ``-inf`` (``d`` undefined) gives NaN. For
``|d| < clamp`` and ``k3 < K3_MAX`` the values are the unclamped formulas exactly.
All shapes are ``[B, T]`` (any matching shapes work: the estimators are elementwise); padding
positions are not special here and are removed by the loss mask downstream.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

import torch
from torch import Tensor

from vlm_rl.algorithms.registry import Registry


class KLEstimator(StrEnum):
    """Built-in KL estimator names."""

    K1 = "k1"
    K2 = "k2"
    K3 = "k3"


class KLFn(Protocol):
    """``fn(logp[B,T], ref_logp[B,T], *, clamp) -> kl[B,T]``."""

    def __call__(self, logp: Tensor, ref_logp: Tensor, *, clamp: float | None = ...) -> Tensor: ...


KL_ESTIMATORS: Registry[KLFn] = Registry("KL estimator")

LOG_RATIO_CLAMP = 20.0
"""Bound of ``|d|`` when the caller passes ``clamp=None``."""
K3_MAX = 10.0
"""Cap of the k3 value, whatever the log-ratio clamp."""


def _log_ratio(logp: Tensor, ref_logp: Tensor, clamp: float | None) -> Tensor:
    """``d = ref_logp - logp`` clamped to ``[-clamp, clamp]`` (``LOG_RATIO_CLAMP`` when ``clamp`` is None)."""
    if logp.shape != ref_logp.shape:
        raise ValueError(f"logp shape {tuple(logp.shape)} != ref_logp shape {tuple(ref_logp.shape)}")
    bound = LOG_RATIO_CLAMP if clamp is None else clamp
    if bound <= 0:
        raise ValueError(f"clamp must be positive or None (None = {LOG_RATIO_CLAMP}), got {clamp}")
    return (ref_logp - logp).clamp(min=-bound, max=bound)


@KL_ESTIMATORS.register(KLEstimator.K1)
def kl_k1(logp: Tensor, ref_logp: Tensor, *, clamp: float | None = None) -> Tensor:
    """k1 estimator ``-d = logp - ref_logp``; inputs and output ``[B, T]``."""
    return -_log_ratio(logp, ref_logp, clamp)


@KL_ESTIMATORS.register(KLEstimator.K2)
def kl_k2(logp: Tensor, ref_logp: Tensor, *, clamp: float | None = None) -> Tensor:
    """k2 estimator ``d^2 / 2`` with ``d = ref_logp - logp``; inputs and output ``[B, T]``."""
    d = _log_ratio(logp, ref_logp, clamp)
    return 0.5 * d * d


@KL_ESTIMATORS.register(KLEstimator.K3)
def kl_k3(logp: Tensor, ref_logp: Tensor, *, clamp: float | None = None) -> Tensor:
    """k3 estimator ``exp(d) - d - 1`` with ``d = ref_logp - logp``, capped at ``K3_MAX``; inputs and output ``[B, T]``."""
    d = _log_ratio(logp, ref_logp, clamp)
    return (torch.exp(d) - d - 1.0).clamp(max=K3_MAX)
