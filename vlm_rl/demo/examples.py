"""The bundled examples: a few synthetic clips (and one image) with their questions, made once into a cache folder.

They come from the synthetic generator the quickstart trains on (4 frames, 56x56, two distractors), drawn from
fixed seeds, so every machine gets the same files and a quickstart model can answer them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from data_pipelines.synthetic.mp4 import write_mp4
from data_pipelines.synthetic.scenes import Difficulty, make_instance

EXAMPLES_VERSION = 1
_VIDEO_TASKS = ("count", "color", "direction", "order")
_DIFFICULTY = Difficulty(distractors=2)


@dataclass(frozen=True)
class Example:
    """One bundled input: a media file and its question, options (one per line) and correct answer."""

    path: str
    question: str
    options: str
    answer: str
    problem_type: str


def ensure_examples(cache_dir: Path) -> tuple[Path, list[Example]]:
    """The examples folder under `cache_dir` and its examples, written on first use (atomically)."""
    folder = Path(cache_dir) / f"examples-v{EXAMPLES_VERSION}"
    index = folder / "examples.json"
    if not index.is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".examples-", dir=folder.parent))
        try:
            _write_examples(staging)
            os.replace(staging, folder)
        except OSError:
            if not index.is_file():  # another process did not win the race: a real failure
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    records = json.loads(index.read_text())
    return folder, [Example(**{**r, "path": str(folder / r["path"])}) for r in records]


def _write_examples(folder: Path) -> None:
    records = []
    for seed, task in enumerate(_VIDEO_TASKS):
        instance = make_instance(task, np.random.default_rng(seed), _DIFFICULTY)
        name = f"{task}.mp4"
        write_mp4(folder / name, instance.frames, _DIFFICULTY.fps)
        records.append(
            Example(name, instance.problem, "\n".join(instance.options), instance.answer, instance.problem_type)
        )
        if task == "count":  # the count scene is static, so its first frame makes an image question
            Image.fromarray(instance.frames[0]).save(folder / "count.png")
            question = instance.problem.replace("in the video", "in the image")
            records.append(Example("count.png", question, "", instance.answer, instance.problem_type))
    (folder / "examples.json").write_text(json.dumps([asdict(r) for r in records], indent=2) + "\n")
