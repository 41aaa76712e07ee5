"""A checkpoint's files: the loader of torch state files that cannot run code, the manifest of every
file's size and sha256 written when the checkpoint is assembled, and the checks resume makes before
trusting a checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlm_rl.config import ConfigError

STATE_FILE = "trainer_state.json"
MANIFEST_FILE = "manifest.json"
TORCH_STATES = ("optimizer.pt", "scheduler.pt", "rng.pt")
MODEL_CONFIGS = ("config.json", "adapter_config.json")

NUMPY_GLOBALS = [np.ndarray, np.dtype, np.zeros(0).__reduce__()[0], type(np.dtype(np.uint32))]
"""What numpy's RNG state (a uint32 array inside rng.pt) unpickles through: the array class, its dtype
and the function numpy arrays are rebuilt with; none of them runs code of the file's choosing."""


class CheckpointError(ConfigError):
    """A checkpoint cannot be used: damaged, refused as unsafe, or not writable; the message says what to do."""


def load_torch_state(path: Path, *, mmap: bool = False) -> Any:
    """`torch.load` restricted to tensors, plain Python data and numpy arrays (`weights_only=True`).

    A file that would need anything else to load (a crafted pickle calling os.system, say) is refused
    with a CheckpointError before any of it runs.
    """
    try:
        with torch.serialization.safe_globals(NUMPY_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        named = re.search(r"GLOBAL ([\w.]+)", str(err))
        wanted = f"call {named.group(1)}" if named else "build objects other than tensors and plain data"
        raise CheckpointError(
            f"{path}: refused to load: it would {wanted}, which can run code; checkpoints written by vlm-rl hold "
            "only tensors and plain data, so this file was made or changed elsewhere: do not resume from it"
        ) from None


def write_manifest(directory: Path) -> None:
    """Record the size and sha256 of every file under `directory` (call it last, before the rename)."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p != directory / MANIFEST_FILE)
    digests = _sha256_all(files)
    entries = {
        p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": digest} for p, digest in zip(files, digests)
    }
    (directory / MANIFEST_FILE).write_text(json.dumps({"files": entries}, indent=1))


def checkpoint_step(path: Path) -> int | None:
    """The step in a checkpoint directory's name (``step_00000012`` -> 12), None for other names."""
    found = re.fullmatch(r"step_(\d+)", path.name)
    return int(found.group(1)) if found else None


def checkpoint_problems(path: Path) -> list[str]:
    """Why the checkpoint at `path` cannot be trusted (empty when it checks out).

    With a manifest every recorded file must be there with its size and sha256; checkpoints written
    before manifests existed are only checked for their parts and for loading. Either way the state
    files must load (torch files through `load_torch_state`, without reading their tensors).
    """
    problems = _manifest_problems(path) if (path / MANIFEST_FILE).exists() else []
    return problems or _part_problems(path) or _loading_problems(path)


def _manifest_problems(path: Path) -> list[str]:
    try:
        entries = json.loads((path / MANIFEST_FILE).read_text())["files"]
        recorded = {name: (int(e["size"]), str(e["sha256"])) for name, e in entries.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return [f"{MANIFEST_FILE} is unreadable"]
    missing = [name for name in recorded if not (path / name).is_file()]
    problems = [f"missing {_names(missing)}"] if missing else []
    present = [name for name in recorded if name not in missing]
    resized = [name for name in present if (path / name).stat().st_size != recorded[name][0]]
    problems += [f"{name} is {(path / name).stat().st_size} bytes, {recorded[name][0]} were written" for name in resized]
    same_size = [name for name in present if name not in resized]
    digests = _sha256_all([path / name for name in same_size])
    changed = [name for name, digest in zip(same_size, digests) if digest != recorded[name][1]]
    return problems + ([f"{_names(changed)} changed since it was written (sha256 differs)"] if changed else [])


def _part_problems(path: Path) -> list[str]:
    model = path / "model"
    problems = []
    if not model.is_dir():
        problems.append("missing model/")
    elif not any((model / name).is_file() for name in MODEL_CONFIGS) or not any(model.glob("*.safetensors")):
        problems.append("model/ has no config.json or no .safetensors weights")
    wanted = [STATE_FILE, "rng.pt"] + ([] if (path / "deepspeed").is_dir() else ["optimizer.pt", "scheduler.pt"])
    missing = [name for name in wanted if not (path / name).is_file()]
    return problems + ([f"missing {_names(missing)}"] if missing else [])


def _loading_problems(path: Path) -> list[str]:
    from safetensors import safe_open

    problems = []
    try:
        step = json.loads((path / STATE_FILE).read_text())["step"]
        named = checkpoint_step(path)
        if not isinstance(step, int) or named not in (None, step):
            problems.append(f"{STATE_FILE} says step {step!r}")
    except (ValueError, KeyError, TypeError) as err:
        problems.append(f"{STATE_FILE} is unreadable ({type(err).__name__})")
    files = sorted(p for folder in (path, path / "model") for p in folder.glob("*") if p.is_file())
    for file in files:
        name = file.relative_to(path).as_posix()
        try:
            if file.suffix == ".json" and file.name != STATE_FILE:
                json.loads(file.read_text())
            elif file.suffix == ".safetensors":
                with safe_open(file, "pt"):
                    pass
            elif file.name in TORCH_STATES:
                load_torch_state(file, mmap=True)
        except CheckpointError:
            problems.append(f"{name} was refused: loading it could run code")
        except Exception as err:  # any failure to parse means the file is damaged
            problems.append(f"{name} is unreadable ({_first_line(err)})")
    return problems


def _sha256_all(files: list[Path]) -> list[str]:
    def digest(file: Path) -> str:
        with open(file, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(digest, files))


def _names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:120]}" if text else type(err).__name__
