"""Checkpoints are atomic: a crash while writing leaves the last complete one intact."""

from __future__ import annotations

import random

import pytest
import torch

from vlm_rl.training.checkpoint import (
    find_resume_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from vlm_rl.training.sampler import PromptSampler


def _optim():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    param.grad = torch.full((3,), 0.5)
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    return optimizer, scheduler


def _write(path):
    path.mkdir()
    (path / "weights.bin").write_bytes(b"w")


def test_save_load_round_trip_restores_rng_and_state(tmp_path):
    optimizer, scheduler = _optim()
    torch.manual_seed(3)
    random.seed(3)
    path = save_checkpoint(tmp_path, 5, write_model=_write, optimizer=optimizer, scheduler=scheduler, extra={"sampler": {"epoch": 1, "position": 2}}, keep=2)
    expected = (torch.rand(4), random.random())
    fresh_opt, fresh_sched = _optim()
    state = load_checkpoint(path, fresh_opt, fresh_sched)
    assert state.step == 5 and state.extra == {"sampler": {"epoch": 1, "position": 2}}
    assert torch.equal(torch.rand(4), expected[0]) and random.random() == expected[1]
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_crash_while_writing_keeps_previous_checkpoint(tmp_path):
    optimizer, scheduler = _optim()
    save_checkpoint(tmp_path, 1, write_model=_write, optimizer=optimizer, scheduler=scheduler, extra={}, keep=3)

    def crash(path):
        _write(path)
        raise KeyboardInterrupt("killed mid-write")

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, write_model=crash, optimizer=optimizer, scheduler=scheduler, extra={}, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000001"]
    assert find_resume_checkpoint("auto", tmp_path).name == "step_00000001"
    save_checkpoint(tmp_path, 3, write_model=_write, optimizer=optimizer, scheduler=scheduler, extra={}, keep=3)
    assert not list(tmp_path.glob(".tmp-*")), "leftovers of the crashed write are cleaned up"


def test_pruning_and_resume_modes(tmp_path):
    optimizer, scheduler = _optim()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, write_model=_write, optimizer=optimizer, scheduler=scheduler, extra={}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002", "step_00000003"]
    assert find_resume_checkpoint("none", tmp_path) is None
    assert find_resume_checkpoint("auto", tmp_path / "empty") is None
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        find_resume_checkpoint(str(tmp_path / "nowhere"), tmp_path)


def test_sampler_order_is_seeded_resumable_and_sharded():
    items = list(range(10))
    a = PromptSampler(items, seed=1)
    first = a.take(7)
    state = a.state_dict()
    rest = a.take(8)
    b = PromptSampler(items, seed=1)
    b.load_state_dict(state)
    assert b.take(8) == rest
    assert sorted(first + rest[:3]) == items, "one epoch visits every sample once"
    shards = [PromptSampler(items, seed=1, rank=r, world_size=2).take(5) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == items
    with pytest.raises(ValueError, match="cannot be shared"):
        PromptSampler([1], seed=0, world_size=2)
