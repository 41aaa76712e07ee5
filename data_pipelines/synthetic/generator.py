"""Write a synthetic video-reasoning dataset: mp4 clips (PNG images for the perception tasks) plus Video-R1
style train/test json files."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_pipelines.synthetic.claims import make_claim_instance
from data_pipelines.synthetic.mp4 import write_mp4
from data_pipelines.synthetic.needle import NEEDLE_KINDS, NeedleSettings, make_needle_clip
from data_pipelines.synthetic.perception import PerceptionSettings, make_perception_image, write_png
from data_pipelines.synthetic.scenes import Difficulty, TaskInstance, make_instance
from data_pipelines.synthetic.vocabulary import CLAIM_TASKS, NEEDLE_TASK, PERCEPTION_TASKS, TASKS

SPLITS: tuple[str, ...] = ("train", "test")
KNOWN_TASKS: tuple[str, ...] = (*TASKS, NEEDLE_TASK, *PERCEPTION_TASKS, *CLAIM_TASKS)
"""Every task `make_dataset` can write; the default is TASKS, the needle, perception and claim tasks are opt-in."""
_MAX_REDRAWS = 100


@dataclass(frozen=True)
class SyntheticDataset:
    """Where `make_dataset` wrote its files; `counts[split][task]` is the number of clips (or images).
    `image_dir` holds the perception tasks' images (None when none was asked for)."""

    root: Path
    train_path: Path
    test_path: Path
    video_dir: Path
    counts: Mapping[str, Mapping[str, int]]
    image_dir: Path | None = None


def make_dataset(
    out_dir: str | Path,
    *,
    n_train: int,
    n_test: int,
    seed: int = 0,
    tasks: Sequence[str] = TASKS,
    difficulty: Difficulty = Difficulty(),
    needle: NeedleSettings = NeedleSettings(),
    perception: PerceptionSettings = PerceptionSettings(),
) -> SyntheticDataset:
    """Generate `n_train` + `n_test` clips into `out_dir`: ``videos/``, ``{train,test}.json``, ``dataset_info.json``.

    Tasks are assigned round-robin in the order given, so every split is balanced. Clip ``i`` of a
    split draws from its own seed stream ``(seed, split, i)``: the output is a pure function of the
    arguments, and a test clip whose frames equal any train clip's is redrawn from the next stream.
    Clips are encoded on a small thread pool (PyAV releases the GIL while encoding).

    Needle clips (task ``needle``, see `needle.py`) take their length, rate and preview from `needle` and
    their frame and object size from `difficulty`; their question kinds go round-robin over a split's
    needle clips, and their records carry the event, duration and search trace besides the Video-R1 keys.

    Perception images (tasks ``rec`` and ``detection``, see `perception.py`) are PNGs in ``images/`` drawn with
    `perception`; their records are ``data_type: "image"`` with box answers and list every shape under ``objects``.

    Claim clips (tasks ``compare`` and ``difficulty_mix``, see `claims.py`) are drawn with `difficulty`; a compare
    record adds the two ``counts``, a difficulty_mix record its ``difficulty`` (easy or hard).
    """
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in KNOWN_TASKS]
    if not tasks or unknown or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be distinct names from {KNOWN_TASKS}, got {list(tasks)}")
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be >= 0, got {n_train} and {n_test}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if NEEDLE_TASK in tasks:
        needle.check_fits(difficulty)
    root = Path(out_dir)
    video_dir = root / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    image_dir = root / "images"
    with_images = bool(set(PERCEPTION_TASKS) & set(tasks))
    if with_images:
        image_dir.mkdir(exist_ok=True)

    seen: set[bytes] = set()
    counts: dict[str, dict[str, int]] = {}
    paths: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for split_index, (split, n) in enumerate(zip(SPLITS, (n_train, n_test))):
            avoid = frozenset(seen)
            records, writes = [], []
            for index in range(n):
                task = tasks[index % len(tasks)]
                build = _builder(task, index // len(tasks), difficulty, needle, perception)
                (instance, extra), digest = _draw(build, task, seed, split_index, index, avoid)
                seen.add(digest)
                if task in PERCEPTION_TASKS:
                    data_type, media = "image", image_dir / f"{split}_{index}.png"
                    writes.append(pool.submit(write_png, media, instance.frames))
                else:
                    data_type, media = "video", video_dir / f"{split}_{index}.mp4"
                    fps = needle.fps if task == NEEDLE_TASK else difficulty.fps
                    writes.append(pool.submit(write_mp4, media, instance.frames, fps))
                path = f"./{media.parent.name}/{media.name}"
                records.append({**_record(index, instance, data_type, path), **extra})
            for write in writes:
                write.result()
            paths[split] = root / f"{split}.json"
            _write_json(paths[split], records)
            tally = Counter(record["task"] for record in records)
            counts[split] = {task: tally[task] for task in tasks}

    info = {
        "generator": "data_pipelines.synthetic",
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "tasks": list(tasks),
        "difficulty": dataclasses.asdict(difficulty),
        "counts": counts,
    }
    if NEEDLE_TASK in tasks:
        info["needle"] = needle.info()
    if with_images:
        info["perception"] = perception.info()
    _write_json(root / "dataset_info.json", info)
    return SyntheticDataset(root, paths["train"], paths["test"], video_dir, counts, image_dir if with_images else None)


Builder = Callable[[np.random.Generator], tuple[TaskInstance, dict[str, Any]]]
"""Draws one clip from a generator: its instance and the record fields it adds to the Video-R1 ones."""


def _builder(
    task: str, turn: int, difficulty: Difficulty, needle: NeedleSettings, perception: PerceptionSettings
) -> Builder:
    """The builder of a `task` clip; `turn` counts the split's earlier clips of that task (it picks the needle kind)."""
    if task in PERCEPTION_TASKS:
        return lambda rng: make_perception_image(task, rng, perception)
    if task in CLAIM_TASKS:
        return lambda rng: make_claim_instance(task, rng, difficulty)
    if task != NEEDLE_TASK:
        return lambda rng: (make_instance(task, rng, difficulty), {})
    kind = NEEDLE_KINDS[turn % len(NEEDLE_KINDS)]

    def build(rng: np.random.Generator) -> tuple[TaskInstance, dict[str, Any]]:
        clip = make_needle_clip(rng, kind, needle, difficulty)
        return clip.instance, clip.record_fields()

    return build


def _draw(
    build: Builder, task: str, seed: int, split_index: int, index: int, avoid: frozenset[bytes]
) -> tuple[tuple[TaskInstance, dict[str, Any]], bytes]:
    """What `build` draws for one clip, redrawn from the next stream while its frames are in `avoid`."""
    for attempt in range(_MAX_REDRAWS):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split_index, index, attempt)))
        drawn = build(rng)
        digest = hashlib.sha1(drawn[0].frames.tobytes()).digest()
        if digest not in avoid:
            return drawn, digest
    raise ValueError(
        f"could not draw a {task!r} clip that differs from every train clip after {_MAX_REDRAWS} tries; "
        "the difficulty settings leave too few distinct scenes: raise size, frames or distractors"
    )


def _record(index: int, instance: TaskInstance, data_type: str, path: str) -> dict[str, Any]:
    """A Video-R1 record (plus ``task``) for one clip or image; `path` is relative to the json's directory."""
    return {
        "problem_id": index,
        "problem": instance.problem,
        "data_type": data_type,
        "problem_type": instance.problem_type,
        "options": list(instance.options),
        "solution": f"<answer>{instance.answer}</answer>",
        "process": f"<think>{instance.thought}</think>",
        "path": path,
        "data_source": f"synthetic/{instance.task}",
        "task": instance.task,
    }


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
