"""Atomic, verified checkpoints: model, optimizer, scheduler, RNG states, step and data position.

A checkpoint is written into a temporary directory next to its final place, a manifest of every
file's size and sha256 is added last, and the directory is renamed when complete, so a run killed at
any moment leaves the previous checkpoints intact. Only directories named ``step_NNNNNNNN`` are
checkpoints, ordered by their step; ``.tmp-*`` leftovers are ignored and cleaned up. Resume checks a
checkpoint against its manifest before trusting it and falls back to the newest good one; state files
are read with a loader that cannot run code (see checkpoint_files.py).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlm_rl.training.checkpoint_files import (
    STATE_FILE,
    CheckpointError,
    checkpoint_problems,
    checkpoint_step,
    load_torch_state,
    write_manifest,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointState:
    path: Path
    step: int
    extra: dict[str, Any]


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def staging_dir(root: Path, step: int, *, shared: bool = False) -> Path:
    """Where checkpoint `step` is assembled; `shared` gives every process the same name (DeepSpeed
    shards are written into it by all processes), otherwise the name carries this process id."""
    suffix = "shared" if shared else str(os.getpid())
    return root / f".tmp-step_{step:08d}-{suffix}"


def make_staging_dir(root: Path, step: int, *, shared: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir(root, step, shared=shared)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def save_checkpoint(
    root: Path,
    step: int,
    *,
    write_model: Callable[[Path], None],
    write_state: Callable[[Path], None] | None = None,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    extra: dict[str, Any],
    keep: int,
    staged: Path | None = None,
) -> Path:
    """Write checkpoint `step` under `root` atomically and prune old ones down to `keep`.

    `write_model(dir)` writes the model; `write_state(dir)`, if given, adds files beside it.
    `staged` is a staging directory other processes already wrote into (DeepSpeed's sharded
    optimizer and scheduler, `optimizer` None); it is completed and renamed like a fresh one.
    """
    tmp = staged if staged is not None else make_staging_dir(root, step)
    final = root / f"step_{step:08d}"
    try:
        write_model(tmp / "model")
        if write_state is not None:
            write_state(tmp)
        if optimizer is not None:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **extra}, indent=1))
        write_manifest(tmp)
        _fsync_tree(tmp)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CheckpointError(
                f"checkpoint step {step} could not be written under {root}: {err.strerror}; the checkpoints before it are "
                "intact: free some space, then continue with trainer.resume=auto"
            ) from None
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    for leftover in root.glob(".tmp-step_*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint directories under `root` (``step_N``, complete or damaged), oldest step first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def find_resume_checkpoint(resume: str, root: Path) -> Path | None:
    """Resolve ``trainer.resume``: 'none', 'auto' or a checkpoint path; only a checkpoint that checks out is returned.

    'auto' takes the newest good checkpoint under `root`, logging one warning line per newer one it
    skips and why; with none there at all it warns and returns None (a start from step 0), and when
    every one is damaged it raises CheckpointError rather than silently starting over. A path that
    does not check out is an error.
    """
    if resume == "none":
        return None
    if resume != "auto":
        path = Path(resume)
        if not path.is_dir():
            raise FileNotFoundError(f"trainer.resume={resume}: no checkpoint directory there")
        problems = checkpoint_problems(path)
        if problems:
            raise CheckpointError(f"trainer.resume={resume}: the checkpoint is damaged: {'; '.join(problems)}")
        return path
    found = list_checkpoints(root)
    if not found:
        log.warning("warning: trainer.resume=auto: no checkpoint under %s, starting from step 0", root)
        return None
    for path in reversed(found):
        problems = checkpoint_problems(path)
        if not problems:
            return path
        log.warning("warning: skipping damaged checkpoint %s: %s", path, "; ".join(problems))
    raise CheckpointError(
        f"trainer.resume=auto: all {len(found)} checkpoints under {root} are damaged (reasons above); resume one you "
        "repaired with trainer.resume=PATH, or start over with trainer.resume=none trainer.overwrite=true"
    )


def remove_checkpoints_after(root: Path, step: int) -> list[Path]:
    """Delete the checkpoints of steps after `step` (a resumed run abandons them, as it does the
    metrics logged after it); returns what was deleted."""
    later = [p for p in list_checkpoints(root) if checkpoint_step(p) > step]
    for path in later:
        shutil.rmtree(path)
    return later


def load_checkpoint(path: Path, optimizer: torch.optim.Optimizer | None, scheduler: Any) -> CheckpointState:
    """Restore optimizer, scheduler and RNG states; the caller loads the model from ``path / 'model'``
    (and, with `optimizer` None, DeepSpeed's sharded states from ``path / 'deepspeed'``)."""
    if optimizer is not None:
        optimizer.load_state_dict(load_torch_state(path / "optimizer.pt"))
        scheduler.load_state_dict(load_torch_state(path / "scheduler.pt"))
    set_rng_state(load_torch_state(path / "rng.pt"))
    state = json.loads((path / STATE_FILE).read_text())
    step = state.pop("step")
    return CheckpointState(path, step, state)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_json_state(directory: Path, name: str, state: dict[str, Any]) -> None:
    """Write a method's JSON state (e.g. a replay buffer) into a checkpoint being assembled."""
    (directory / name).write_text(json.dumps(state))


def load_json_state(directory: Path, name: str, flag: str) -> dict[str, Any]:
    """Read a method's JSON state from a checkpoint; a clear error when the run that wrote it had `flag` off."""
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} has no {name}: the checkpoint was written without {flag}; resume it without that "
            "setting or start a fresh run"
        )
    return json.loads(path.read_text())


def generator_state(generator: torch.Generator) -> list[int]:
    """A torch.Generator's state as JSON-ready integers."""
    return generator.get_state().tolist()


def set_generator_state(generator: torch.Generator, state: list[int]) -> None:
    generator.set_state(torch.tensor(state, dtype=torch.uint8))
