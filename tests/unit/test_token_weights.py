"""Unit tests for vlm_rl.algorithms.token_weights: TW-GRPO's weights (arXiv 2505.24718) in the official code's form.

The worked example is stated in docs/algorithms.md ("Worked examples the unit tests check").
"""

from __future__ import annotations

import pytest
import torch

from vlm_rl.algorithms.policy_loss import clipped_surrogate
from vlm_rl.algorithms.registry import Registry
from vlm_rl.algorithms.token_weights import (
    TOKEN_WEIGHTINGS,
    TokenWeighting,
    get_token_weight_fn,
    tw_grpo_position_scores,
    tw_grpo_token_weights,
    tw_grpo_token_weights_chunked,
    tw_grpo_token_weights_grouped,
)

ALPHA = 1.7


def _close(actual: torch.Tensor, expected: list[float] | list[list[float]] | float, atol: float = 1e-6) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


def _worked_example() -> tuple[torch.Tensor, torch.Tensor]:
    """The TW-GRPO worked example of docs/algorithms.md: G=2, V=2, T=4; the masked entries must not matter."""
    probs = torch.tensor(
        [
            [[0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5]],
            [[0.5, 0.5], [0.1, 0.9], [0.7, 0.3], [0.5, 0.5]],
        ],
        dtype=torch.float64,
    )
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    return probs.log(), mask


def _random_group(g: int, t: int, v: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logprobs = torch.log_softmax(3.0 * torch.randn(g, t, v, generator=gen), dim=-1)
    lengths = torch.randint(1, t + 1, (g,), generator=gen)
    mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).long()
    return logprobs, mask


def test_worked_example_scores_and_weights() -> None:
    logprobs, mask = _worked_example()
    _close(tw_grpo_position_scores(logprobs, mask), [0.0, 1.333333, 0.010389, 0.0])
    weights = tw_grpo_token_weights(logprobs, mask, alpha=ALPHA)
    _close(weights, [[1.0, 1.7, 1.005454, 0.0], [1.0, 1.7, 0.0, 0.0]])
    k_hat = (weights[0, :3] - 1.0) / (ALPHA - 1.0)
    _close(k_hat, [0.0, 1.0, 0.007791])


def test_masked_entries_are_replaced_by_uniform() -> None:
    logprobs, mask = _worked_example()
    altered = logprobs.clone()
    altered[1, 2] = torch.tensor([0.99, 0.01], dtype=torch.float64).log()
    altered[:, 3] = torch.tensor([0.2, 0.8], dtype=torch.float64).log()
    torch.testing.assert_close(
        tw_grpo_token_weights(altered, mask, alpha=ALPHA), tw_grpo_token_weights(logprobs, mask, alpha=ALPHA)
    )


def test_loss_example_value_and_gradient() -> None:
    logprobs, mask = _worked_example()
    weights = tw_grpo_token_weights(logprobs, mask, alpha=ALPHA)
    advantages = torch.tensor([0.706907, -0.706907], dtype=torch.float64)
    logp = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    out = clipped_surrogate(
        logp, logp.detach(), advantages, mask, token_weights=weights, aggregation="token_mean"
    )
    _close(out.loss.detach(), -0.142152)
    out.loss.backward()
    assert logp.grad is not None
    _close(logp.grad, -advantages.unsqueeze(1) * weights / 5.0)
    _close(logp.grad, [[-0.141381, -0.240348, -0.142152, 0.0], [0.141381, 0.240348, 0.0, 0.0]])


def test_detach_flag() -> None:
    logprobs, mask = _worked_example()
    leaf = logprobs.clone().requires_grad_(True)
    assert not tw_grpo_token_weights(leaf, mask, alpha=ALPHA).requires_grad
    kept = tw_grpo_token_weights(leaf, mask, alpha=ALPHA, detach=False)
    assert kept.requires_grad
    torch.testing.assert_close(kept.detach(), tw_grpo_token_weights(logprobs, mask, alpha=ALPHA))


def test_low_precision_input_is_scored_in_float32() -> None:
    logprobs, mask = _random_group(3, 6, 11, seed=1)
    weights = tw_grpo_token_weights(logprobs.to(torch.bfloat16), mask, alpha=ALPHA)
    assert weights.dtype == torch.float32


@pytest.mark.parametrize("chunk", [1, 5, 16, 37, 100])
def test_chunked_equals_exact(chunk: int) -> None:
    logprobs, mask = _random_group(4, 37, 50, seed=0)
    exact = tw_grpo_token_weights(logprobs, mask, alpha=ALPHA)
    _close(tw_grpo_token_weights_chunked(logprobs, mask, alpha=ALPHA, chunk=chunk), exact.tolist())


def test_chunked_accepts_a_chunk_function() -> None:
    logprobs, mask = _random_group(4, 37, 50, seed=2)
    calls: list[tuple[int, int]] = []

    def fetch(start: int, stop: int) -> torch.Tensor:
        calls.append((start, stop))
        return logprobs[:, start:stop]

    weights = tw_grpo_token_weights_chunked(fetch, mask, alpha=ALPHA, chunk=16)
    assert calls == [(0, 16), (16, 32), (32, 37)]
    _close(weights, tw_grpo_token_weights(logprobs, mask, alpha=ALPHA).tolist())


def test_chunked_rejects_bad_chunk_shapes() -> None:
    logprobs, mask = _random_group(2, 5, 7, seed=3)
    with pytest.raises(ValueError, match="chunk"):
        tw_grpo_token_weights_chunked(logprobs, mask, alpha=ALPHA, chunk=0)
    with pytest.raises(ValueError, match="must have shape"):
        tw_grpo_token_weights_chunked(lambda s, e: logprobs[:1, s:e], mask, alpha=ALPHA, chunk=2)


@pytest.mark.parametrize("chunk", [None, 8])
def test_grouped_equals_per_group_calls(chunk: int | None) -> None:
    groups = [_random_group(4, 37, 50, seed=s) for s in (10, 11, 12)]
    ids = torch.tensor([7, -2, 30])
    logprobs = torch.cat([lp for lp, _ in groups])
    mask = torch.cat([m for _, m in groups])
    group_ids = ids.repeat_interleave(4)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    weights = tw_grpo_token_weights_grouped(logprobs[perm], mask[perm], group_ids[perm], alpha=ALPHA, chunk=chunk)
    expected = torch.cat([tw_grpo_token_weights(lp, m, alpha=ALPHA) for lp, m in groups])
    torch.testing.assert_close(weights, expected[perm], atol=1e-6, rtol=0)


def test_alpha_one_gives_the_mask() -> None:
    logprobs, mask = _random_group(4, 9, 13, seed=4)
    _close(tw_grpo_token_weights(logprobs, mask, alpha=1.0), mask.double().tolist())
    _close(tw_grpo_token_weights_chunked(logprobs, mask, alpha=1.0, chunk=4), mask.double().tolist())


def test_invalid_inputs() -> None:
    logprobs, mask = _worked_example()
    with pytest.raises(ValueError, match="alpha"):
        tw_grpo_token_weights(logprobs, mask, alpha=0.7)
    with pytest.raises(ValueError, match="mask shape"):
        tw_grpo_token_weights(logprobs, mask[:, :3], alpha=ALPHA)
    with pytest.raises(ValueError, match="group_ids"):
        tw_grpo_token_weights_grouped(logprobs, mask, torch.zeros(3, dtype=torch.long), alpha=ALPHA)
    with pytest.raises(ValueError, match="detached"):
        tw_grpo_token_weights_grouped(
            logprobs, mask, torch.zeros(2, dtype=torch.long), alpha=ALPHA, chunk=2, detach=False
        )


def test_registry() -> None:
    assert get_token_weight_fn("tw_grpo") is tw_grpo_token_weights_grouped
    assert get_token_weight_fn(TokenWeighting.TW_GRPO) is tw_grpo_token_weights_grouped
    assert TOKEN_WEIGHTINGS.names() == ["tw_grpo"]
    assert isinstance(TOKEN_WEIGHTINGS, Registry)
    with pytest.raises(ValueError, match="already registered"):
        TOKEN_WEIGHTINGS.register(TokenWeighting.TW_GRPO)(tw_grpo_token_weights)
    with pytest.raises(KeyError, match="tw_grpo"):
        get_token_weight_fn("nope")
