"""The KL estimators' default bounds: |log(pi_ref/pi)| <= 20 and k3 <= 10, with finite values and
gradients at extreme or infinite inputs, and the plain formulas for ordinary inputs."""

from __future__ import annotations

import math

import pytest
import torch

from vlm_rl.algorithms.kl import K3_MAX, LOG_RATIO_CLAMP, kl_k1, kl_k2, kl_k3

ESTIMATORS = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}
# the largest |value| each estimator can reach under the default bounds
BOUNDS = {"k1": LOG_RATIO_CLAMP, "k2": LOG_RATIO_CLAMP**2 / 2, "k3": K3_MAX}
FORMULAS = {"k1": lambda d: -d, "k2": lambda d: d * d / 2, "k3": lambda d: math.exp(d) - d - 1}
SLOPES = {"k1": lambda d: 1.0, "k2": lambda d: -d, "k3": lambda d: 1 - math.exp(d)}  # d/d logp, with d = ref - logp
# |d| < 20 everywhere and k3 < 10 (k3(-10.9) ~ 9.9, k3(2.6) ~ 9.9) for k3
MODERATE = {
    "k1": [-19.5, -3.0, -0.5, 0.0, 1e-4, 2.0, 19.5],
    "k2": [-19.5, -3.0, -0.5, 0.0, 1e-4, 2.0, 19.5],
    "k3": [-10.9, -3.0, -0.5, 0.0, 1e-4, 0.7, 2.0, 2.6],
}


def _kl_and_grad(name: str, logp: torch.Tensor, ref: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    logp = logp.clone().requires_grad_(True)
    kl = ESTIMATORS[name](logp, ref, **kwargs)
    kl.sum().backward()
    return kl.detach(), logp.grad


def test_default_bounds_are_verls() -> None:
    assert (LOG_RATIO_CLAMP, K3_MAX) == (20.0, 10.0)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("d", [29.0, -29.0, 1000.0, -1000.0])
def test_extreme_log_ratios_give_bounded_values_and_finite_gradients(name: str, d: float) -> None:
    logp = torch.tensor([[-1.0]])
    kl, grad = _kl_and_grad(name, logp, logp + d)
    assert torch.isfinite(kl).all() and torch.isfinite(grad).all()
    assert kl.abs().max() <= BOUNDS[name]
    assert grad.abs().max() == 0.0, "a clamped token gets no gradient from its KL term"


def test_k3_at_a_log_ratio_of_29_is_capped_not_4e12() -> None:
    logp = torch.tensor([[-30.0]])
    assert kl_k3(logp, torch.tensor([[-1.0]])).item() == K3_MAX
    assert kl_k3(logp.double(), torch.tensor([[-1.0]], dtype=torch.float64), clamp=1e9).item() == K3_MAX


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_infinite_inputs_give_finite_values_and_gradients(name: str, dtype: torch.dtype) -> None:
    inf = float("inf")
    logp = torch.tensor([[-inf, -2.0, -0.5]], dtype=dtype)
    ref = torch.tensor([[-3.0, -inf, -0.7]], dtype=dtype)  # d = +inf, -inf, -0.2
    kl, grad = _kl_and_grad(name, logp, ref)
    assert torch.isfinite(kl).all() and torch.isfinite(grad).all()
    assert kl.float().abs().max() <= BOUNDS[name]
    assert grad[0, :2].abs().max() == 0.0 and grad[0, 2] != 0.0


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_moderate_log_ratios_keep_the_plain_formulas_and_slopes(name: str) -> None:
    ds = MODERATE[name]
    logp = torch.full((1, len(ds)), -4.0, dtype=torch.float64)
    ref = logp + torch.tensor([ds], dtype=torch.float64)
    kl, grad = _kl_and_grad(name, logp, ref)
    torch.testing.assert_close(kl, torch.tensor([[FORMULAS[name](d) for d in ds]], dtype=torch.float64), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, torch.tensor([[SLOPES[name](d) for d in ds]], dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_k3_is_capped_where_its_value_reaches_10_even_with_an_explicit_clamp() -> None:
    logp = torch.tensor([[-5.0, -5.0]])
    ref = logp + torch.tensor([[3.0, -10.5]])  # k3 = e^3 - 4 ~ 16.1, and ~ 9.50003 (below the cap)
    kl, grad = _kl_and_grad("k3", logp, ref, clamp=11.0)
    torch.testing.assert_close(kl, torch.tensor([[K3_MAX, math.exp(-10.5) + 9.5]]))
    assert grad[0, 0] == 0.0 and grad[0, 1] != 0.0


@pytest.mark.parametrize("clamp", [1.0, 10.0, 11.0])
def test_an_explicit_log_ratio_clamp_works_as_before(clamp: float) -> None:
    logp = torch.tensor([[-1.0, -1.0, -1.0]])
    ref = logp + torch.tensor([[-50.0, 0.5, 50.0]])
    torch.testing.assert_close(kl_k1(logp, ref, clamp=clamp), torch.tensor([[clamp, -min(0.5, clamp), -clamp]]))
    torch.testing.assert_close(kl_k2(logp, ref, clamp=clamp), torch.tensor([[clamp**2 / 2, min(0.5, clamp) ** 2 / 2, clamp**2 / 2]]))
    expected_k3 = [min(math.exp(-clamp) + clamp - 1, K3_MAX), math.exp(0.5) - 1.5, min(math.exp(clamp) - clamp - 1, K3_MAX)]
    torch.testing.assert_close(kl_k3(logp, ref, clamp=clamp), torch.tensor([expected_k3]))


@pytest.mark.parametrize("clamp", [0.0, -1.0])
def test_non_positive_clamp_is_refused(clamp: float) -> None:
    with pytest.raises(ValueError, match="clamp must be positive"):
        kl_k3(torch.zeros(1, 1), torch.zeros(1, 1), clamp=clamp)
