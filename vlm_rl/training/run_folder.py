"""One run per output_dir: an exclusive lock for the life of a run, and the rule that a fresh run does not
start over a folder that already holds one."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import time
import weakref
from pathlib import Path

from vlm_rl.config import ConfigError

LOCK_FILE = ".vlm-rl.lock"
RUN_MARKERS = ("metrics.jsonl", "checkpoints", "final")
"""A folder holding any of these holds a run."""
RUN_FILES = (*RUN_MARKERS, "samples.jsonl", "config.yaml", "tensorboard", "wandb", "wandb_run_id", "plots", "synthetic")
"""Everything a run (and `vlm-rl plot`) writes into its folder: what trainer.overwrite=true removes."""

log = logging.getLogger(__name__)


class RunFolderError(ConfigError):
    """The output_dir cannot be used as asked: another run holds it, or it holds a run a fresh start would destroy."""


class RunLock:
    """An exclusive `flock` on ``output_dir/.vlm-rl.lock``, which names the holder's pid and host.

    The kernel drops the lock when its process ends, however it ends, so a lock file that can be
    locked but still names a holder was left by a process that died: it is taken over with a warning.
    The lock is released (and its file removed, and the folder too if this lock created it and nothing
    else was written) by `release`, when the object is collected, or at exit.
    """

    def __init__(self, run_dir: Path) -> None:
        for folder in (run_dir, *run_dir.parents):
            if folder.exists() and not folder.is_dir():
                where = "" if folder == run_dir else f" is inside {folder}, which"
                raise RunFolderError(f"output_dir {run_dir}{where} is a file, not a folder: choose another output_dir")
        created = None if run_dir.is_dir() else run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / LOCK_FILE
        fd, previous = _lock(self.path, run_dir)
        if fd is None:
            self._release = None
            return
        if previous.get("pid") is not None:
            log.warning(
                "warning: %s: taking over the lock of pid %s on host %s, which ended without releasing it",
                run_dir, previous["pid"], previous.get("host", "?"),
            )
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        os.fsync(fd)
        self._release = weakref.finalize(self, _unlock, fd, self.path, os.fstat(fd).st_ino, created)

    def release(self) -> None:
        if self._release is not None:
            self._release()


def _lock(path: Path, run_dir: Path) -> tuple[int | None, dict]:
    """Open and lock `path`: the locked descriptor and what the file said about a previous holder."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd, retries=5)
            os.close(fd)
            raise RunFolderError(
                f"output_dir {run_dir} is in use by another run: pid {holder.get('pid', '?')} on host "
                f"{holder.get('host', '?')} (since {holder.get('since', '?')}); wait for it to end or stop it, "
                "or choose another output_dir"
            ) from None
        except OSError as err:
            os.close(fd)
            log.warning(
                "warning: cannot lock %s (%s): a second run on this folder will not be detected", path, err.strerror
            )
            return None, {}
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:  # else the holder removed the file between our open and our lock: lock the new one
            return fd, _holder(fd)
        os.close(fd)


def _holder(fd: int, retries: int = 1) -> dict:
    """The pid, host and start time a lock file names; {} when it is empty or unreadable. A live holder
    writes its name just after it takes the lock: `retries` reads, 50 ms apart, give it that moment."""
    for attempt in range(retries):
        try:
            found = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            if isinstance(found, dict) and found:
                return found
        except ValueError:
            pass
        if attempt + 1 < retries:
            time.sleep(0.05)
    return {}


def _unlock(fd: int, path: Path, inode: int, created: Path | None) -> None:
    try:
        if os.stat(path).st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass
    os.close(fd)
    if created is not None:
        with contextlib.suppress(OSError):  # not empty: the run wrote into it
            created.rmdir()


def check_fresh_start(run_dir: Path, overwrite: bool) -> None:
    """A fresh run (trainer.resume=none) must not start over a folder that holds a run, unless told to."""
    found = [name for name in RUN_MARKERS if (run_dir / name).exists()]
    if found and not overwrite:
        raise RunFolderError(
            f"output_dir {run_dir} already holds a run ({', '.join(found)}) and trainer.resume=none would start over "
            "in it: continue that run with trainer.resume=auto, choose a new output_dir, or replace it with "
            "trainer.overwrite=true"
        )


def remove_run_files(run_dir: Path) -> list[str]:
    """Delete a previous run's files (RUN_FILES) from `run_dir`, nothing else; returns the names removed."""
    removed = []
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed
