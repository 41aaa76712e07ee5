"""Unit tests for vlm_rl.training.replay: VL-Rethinker's selective sample replay (arXiv 2504.08837).

The drawing rules are those of the official code, summarised in docs/algorithms.md
("VL-Rethinker: notes on the official code").
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from vlm_rl.training.replay import ReplayBuffer, ReplayItem, effective_ratio


def _item(origin: str, advantage: float, step: int = 0, n_tokens: int = 3) -> ReplayItem:
    ids = tuple(range(10, 10 + n_tokens))
    logps = tuple(-0.1 * (t + 1) for t in range(n_tokens))
    return ReplayItem(origin=origin, completion_ids=ids, advantage=advantage, old_logps=logps, step=step)


def _group(query: str, rewards: list[float], step: int) -> list[ReplayItem]:
    """VL-Rethinker's advantages for one query's rollouts: reward minus group mean, no std scaling."""
    mean = sum(rewards) / len(rewards)
    return [_item(f"{query}.jsonl#{i}", r - mean, step) for i, r in enumerate(rewards)]


def _draw_counts(buffer: ReplayBuffer, calls: int, k: int, seed: int = 0) -> Counter[str]:
    generator = torch.Generator().manual_seed(seed)
    counts: Counter[str] = Counter()
    for _ in range(calls):
        drawn = buffer.sample(k, generator)
        assert len(drawn) == k
        counts.update(item.origin for item in drawn)
    return counts


def test_worked_example_ssr_sampling():
    """Query A rewards [1, 0, 0, 0] (advantages 0.75, -0.25 x3) and all-correct query B fill a 4-item buffer
    with A only; a later step with only vanished groups adds nothing, and draws from the buffer pick A's
    first item with probability (0.75 + 1e-4) / (0.75 + 3 * 0.25 + 4e-4) = 0.49993."""
    first = _group("A", [1, 0, 0, 0], step=0) + _group("B", [1, 1, 1, 1], step=0)
    assert [it.advantage for it in first[:4]] == [0.75, -0.25, -0.25, -0.25]
    buffer = ReplayBuffer(capacity=len(first) // 2)
    assert buffer.add(first) == 4
    assert len(buffer) == 4
    assert {it.origin for it in buffer.sample(4, torch.Generator().manual_seed(1))} <= {f"A.jsonl#{i}" for i in range(4)}

    second = _group("C", [1, 1, 1, 1], step=1) + _group("D", [0, 0, 0, 0], step=1)
    assert buffer.add(second) == 0
    assert len(buffer) == 4

    counts = _draw_counts(buffer, calls=25_000, k=4)
    total = sum(counts.values())
    assert total == 100_000
    assert set(counts) <= {f"A.jsonl#{i}" for i in range(4)}
    expected = 0.7501 / (0.7501 + 3 * 0.2501)
    assert expected == pytest.approx(0.49993, abs=1e-5)
    assert counts["A.jsonl#0"] / total == pytest.approx(expected, abs=0.01)


def test_fifo_evicts_oldest():
    buffer = ReplayBuffer(capacity=3)
    assert buffer.add(_item(f"f#{s}", 0.5, step=s) for s in range(5)) == 5
    assert len(buffer) == 3
    assert [it["step"] for it in buffer.state_dict()["items"]] == [2, 3, 4]
    buffer.add([_item("f#5", -1.0, step=5), _item("f#6", 0.0, step=6)])
    assert [it["step"] for it in buffer.state_dict()["items"]] == [3, 4, 5]


def test_k_larger_than_buffer_takes_whole_copies_then_draws():
    buffer = ReplayBuffer(capacity=4)
    buffer.add([_item("f#0", 10.0), _item("f#1", 1e-3), _item("f#2", -1e-3), _item("f#3", 1e-3)])
    generator = torch.Generator().manual_seed(0)
    origins = [f"f#{i}" for i in range(4)]
    for k in (5, 7, 10, 13):
        drawn = buffer.sample(k, generator)
        assert len(drawn) == k
        counts = Counter(it.origin for it in drawn)
        assert all(counts[o] >= k // 4 for o in origins)
        assert [it.origin for it in drawn[: 4 * (k // 4)]] == origins * (k // 4)
    # k equal to a multiple of the size: the last full multiple is drawn by priority (the code copies only while
    # strictly more than the buffer size remains).
    drawn = buffer.sample(8, generator)
    assert [it.origin for it in drawn[:4]] == origins
    assert len(drawn) == 8


def test_alpha_zero_is_uniform():
    buffer = ReplayBuffer(capacity=4, alpha=0.0)
    buffer.add([_item("f#0", 5.0), _item("f#1", 0.01), _item("f#2", -1.0), _item("f#3", 2.0)])
    counts = _draw_counts(buffer, calls=10_000, k=4, seed=3)
    for origin in ("f#0", "f#1", "f#2", "f#3"):
        assert counts[origin] / 40_000 == pytest.approx(0.25, abs=0.01)


def test_empty_buffer():
    buffer = ReplayBuffer(capacity=2)
    generator = torch.Generator().manual_seed(0)
    assert buffer.sample(0, generator) == []
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1, generator)
    buffer.add([_item("f#0", 1.0)])
    with pytest.raises(ValueError, match="negative"):
        buffer.sample(-1, generator)


def test_same_seed_same_draws():
    buffer = ReplayBuffer(capacity=6)
    buffer.add(_item(f"f#{i}", 0.1 * (i + 1) * (-1) ** i) for i in range(6))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for k in (3, 6, 11):
        assert buffer.sample(k, g1) == buffer.sample(k, g2)


def test_state_dict_json_round_trip():
    buffer = ReplayBuffer(capacity=5)
    buffer.add(_item(f"f#{i}", (i + 1) / 3 * (-1) ** i, step=i, n_tokens=i + 1) for i in range(7))
    state = json.loads(json.dumps(buffer.state_dict()))
    restored = ReplayBuffer(capacity=5)
    restored.load_state_dict(state)
    assert len(restored) == len(buffer) == 5
    assert restored.state_dict() == buffer.state_dict()
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    for k in (2, 5, 9):
        assert restored.sample(k, g1) == buffer.sample(k, g2)
    restored.add([_item("f#new", 1.0, step=9)])
    buffer.add([_item("f#new", 1.0, step=9)])
    assert restored.state_dict() == buffer.state_dict()


def test_state_dict_capacity_mismatch():
    buffer = ReplayBuffer(capacity=5)
    buffer.add([_item("f#0", 1.0)])
    with pytest.raises(ValueError, match="capacity 5 .* capacity 4"):
        ReplayBuffer(capacity=4).load_state_dict(buffer.state_dict())


def test_item_validation_and_plain_types():
    with pytest.raises(ValueError, match="3 completion tokens but 2 old log-probs"):
        ReplayItem(origin="f#0", completion_ids=(1, 2, 3), advantage=0.5, old_logps=(-0.1, -0.2), step=0)
    with pytest.raises(ValueError, match="not finite"):
        ReplayItem(origin="f#0", completion_ids=(1,), advantage=float("nan"), old_logps=(-0.1,), step=0)
    item = ReplayItem(
        origin="f#0",
        completion_ids=torch.tensor([4, 5]),
        advantage=torch.tensor(0.25),
        old_logps=torch.tensor([-0.5, -1.5]),
        step=torch.tensor(3),
    )
    assert item.completion_ids == (4, 5) and item.old_logps == (-0.5, -1.5)
    assert type(item.advantage) is float and type(item.step) is int
    buffer = ReplayBuffer(capacity=1)
    buffer.add([item])
    json.dumps(buffer.state_dict())


def test_constructor_rejects_bad_settings():
    with pytest.raises(ValueError):
        ReplayBuffer(capacity=0)
    with pytest.raises(ValueError):
        ReplayBuffer(capacity=1, alpha=-1.0)


def test_effective_ratio():
    advantages = torch.tensor([0.75, -0.25, -0.25, -0.25, 0.0, 0.0, 0.0, 0.0])
    assert effective_ratio(advantages) == 0.5
    assert effective_ratio(torch.tensor([1.0, 1.1, 1.0, 1.0]) - 1.025) == 1.0
    assert effective_ratio(torch.tensor([])) == 0.0
