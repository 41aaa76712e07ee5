"""Checkpoints are atomic and verified: a crash while writing leaves the last complete one intact, resume
skips a damaged one for the newest good one, and state files that would run code are refused."""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil

import pytest
import torch
from safetensors.torch import save_file

from vlm_rl.training.checkpoint import (
    find_resume_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from vlm_rl.training.checkpoint_files import MANIFEST_FILE, CheckpointError
from vlm_rl.training.sampler import PromptSampler


def _optim():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    param.grad = torch.full((3,), 0.5)
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    return optimizer, scheduler


def _write(path):
    """A model directory as save_pretrained leaves one: a config and safetensors weights."""
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "toy"}')
    save_file({"w": torch.arange(64, dtype=torch.float32)}, path / "model.safetensors")


def _save(root, step, keep=5, **kwargs):
    optimizer, scheduler = _optim()
    return save_checkpoint(root, step, write_model=_write, optimizer=optimizer, scheduler=scheduler, extra={}, keep=keep, **kwargs)


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
    with pytest.raises(FileNotFoundError, match="no checkpoint directory there"):
        find_resume_checkpoint(str(tmp_path / "nowhere"), tmp_path)


def test_checkpoints_are_ordered_by_step_not_by_name(tmp_path):
    """Nine digits sort before eight by name: step 100000000 must still count as the newest."""
    for step in (99_999_998, 99_999_999):
        _save(tmp_path, step, keep=2)
    _save(tmp_path, 100_000_000, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_99999999", "step_100000000"]
    assert find_resume_checkpoint("auto", tmp_path).name == "step_100000000"


def test_the_manifest_records_every_file_with_its_size_and_sha256(tmp_path):
    import hashlib

    path = _save(tmp_path, 1)
    entries = json.loads((path / MANIFEST_FILE).read_text())["files"]
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST_FILE}
    assert set(entries) == on_disk >= {"model/model.safetensors", "optimizer.pt", "rng.pt", "trainer_state.json"}
    for name, entry in entries.items():
        data = (path / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated model.safetensors": (lambda c: _truncate(c / "model" / "model.safetensors"), "model/model.safetensors is"),
    "garbage trainer_state.json": (lambda c: (c / "trainer_state.json").write_text("\x00garbage" * 5), "trainer_state.json"),
    "partial trainer_state.json": (lambda c: _truncate(c / "trainer_state.json"), "trainer_state.json is"),
    "truncated rng.pt": (lambda c: _truncate(c / "rng.pt"), "rng.pt is"),
    "missing model/": (lambda c: shutil.rmtree(c / "model"), "missing model/"),
    "a flipped byte in optimizer.pt": (lambda c: _flip_last_byte(c / "optimizer.pt"), "optimizer.pt changed"),
}


CASES = [(damage, True) for damage in DAMAGE] + [
    (damage, False) for damage in DAMAGE if damage != "a flipped byte in optimizer.pt"  # needs the checksum
]


@pytest.mark.parametrize(("damage", "manifest"), CASES, ids=[f"{d}-{'manifest' if m else 'no manifest'}" for d, m in CASES])
def test_resume_skips_a_damaged_checkpoint_for_the_newest_good_one(tmp_path, caplog, damage, manifest):
    """Checkpoints written before manifests existed are checked for their parts and for loading."""
    damage_fn, reason = DAMAGE[damage]
    for step in (1, 2, 3):
        _save(tmp_path, step)
    if not manifest:
        for path in list_checkpoints(tmp_path):
            (path / MANIFEST_FILE).unlink()
        reason = reason.split()[0].rstrip(":")
    damage_fn(tmp_path / "step_00000003")
    with caplog.at_level(logging.WARNING):
        found = find_resume_checkpoint("auto", tmp_path)
    assert found.name == "step_00000002"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "step_00000003" in line and reason in line, line
    with pytest.raises(CheckpointError, match="step_00000003.*damaged"):
        find_resume_checkpoint(str(tmp_path / "step_00000003"), tmp_path)


def test_auto_resume_with_every_checkpoint_damaged_is_an_error_and_with_none_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert find_resume_checkpoint("auto", tmp_path / "checkpoints") is None
    assert "no checkpoint under" in caplog.records[-1].getMessage()
    caplog.clear()
    for step in (1, 2):
        _truncate(_save(tmp_path, step) / "rng.pt")
    with caplog.at_level(logging.WARNING), pytest.raises(CheckpointError, match="all 2 checkpoints .* are damaged"):
        find_resume_checkpoint("auto", tmp_path)
    assert [("step_00000002" in r.getMessage(), "step_00000001" in r.getMessage()) for r in caplog.records] == [
        (True, False),
        (False, True),
    ], "one line per skipped checkpoint, newest first"


class _RunsShell:
    """Unpickling this runs a shell command: what a malicious 'checkpoint' would carry."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "rng.pt"])
def test_a_crafted_pickle_in_a_checkpoint_is_refused_and_nothing_runs(tmp_path, name):
    from vlm_rl.training.checkpoint_files import write_manifest

    path = _save(tmp_path / "ckpt", 1)
    marker = tmp_path / "code-ran"
    torch.save({"state": _RunsShell(f"touch {marker}")}, path / name)
    optimizer, scheduler = _optim()
    with pytest.raises(CheckpointError, match=rf"{name}: refused to load: it would call posix.system"):
        load_checkpoint(path, optimizer, scheduler)
    (path / MANIFEST_FILE).unlink()
    write_manifest(path)  # the manifest matches the crafted file: verification must still refuse it
    with pytest.raises(CheckpointError, match=f"{name} was refused: loading it could run code"):
        find_resume_checkpoint(str(path), tmp_path)
    assert not marker.exists(), "the crafted file's code ran"


def test_a_full_disk_while_writing_is_one_clear_error_and_keeps_the_previous_checkpoint(tmp_path):
    _save(tmp_path, 1)

    def disk_full(path):
        _write(path)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CheckpointError, match=r"checkpoint step 2 could not be written .*No space left on device.*resume=auto"):
        save_checkpoint(tmp_path, 2, write_model=disk_full, optimizer=None, scheduler=None, extra={}, keep=5)
    assert not list(tmp_path.glob(".tmp-*")), "the partial checkpoint is removed to give the space back"
    assert find_resume_checkpoint("auto", tmp_path).name == "step_00000001"


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
