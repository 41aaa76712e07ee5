"""Reader for Video-R1 and TW-GRPO records (``.json`` list or ``.jsonl``), checked record by record.

Video-R1 (arXiv 2503.21776): ``problem``, ``problem_type``, ``options`` (``"A. ..."``),
``solution`` (``"<answer>…</answer>"``), ``data_type``, ``path`` (``"./Source/clip.mp4"``).
TW-GRPO (arXiv 2505.24718): ``problem`` with its options inline (``"…\\nA took\\nB put down"``),
``solution``, ``video`` (``"/NExTQA/videos/x.mp4"``), optionally ``options`` (``"(A) ..."``); no
``problem_type``.

Media paths are resolved by `media_path` (a leading ``./`` or ``/`` dropped, the rest under
`media_root`, default the dataset file's directory; an absolute path that exists is kept) and
checked for existence and non-zero size, never decoded here.

``box`` and ``detection`` records (one box ``[x1, y1, x2, y2]``, or a list of them, in the solution) must be
images; their boxes, in original image pixels, are checked to lie inside the image and rewritten in the pixels
of the resized image the model sees (`box_answers`), the originals kept in `Sample.extra`.

``data_type: "frame"`` (MVBench's frame-folder tasks; TW-GRPO's ``eval_mvbench.json`` keeps it on
rows whose ``path`` is an ``.mp4``) is read from what the path holds: a video file becomes a video
sample, a directory of images a frame list (an image sample whose `extra_images` are the later
frames, in natural name order). One log line per file says how many rows were read either way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_pipelines.completion_format import find_answer
from data_pipelines.formats.box_answers import BOX_TYPES, ImageBoxes
from data_pipelines.image_size import IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS
from data_pipelines.record_files import checked_media_file, kind, media_path, read_samples, required_text, short
from data_pipelines.schema import (
    MEDIA_OVERRIDE_KEYS,
    PROBLEM_TYPES,
    RecordError,
    Sample,
    option_letter,
)

DATA_TYPES: tuple[str, ...] = ("video", "image", "text", "frame")
"""Values of ``data_type``; ``"frame"`` rows become video or image samples (see the module docstring)."""
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".flv", ".wmv", ".mpg", ".mpeg"}
)
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})

_LETTERS = re.compile(r"[A-Z](?:\s*,\s*[A-Z])*")
_OPTION_LABEL = re.compile(r"\s*\(?[A-Z](?:[.):]|\s|$)")
_INLINE_OPTION = re.compile(r"\(?([A-Z])\)?[.:]?\s+\S")
_FRAME_NUMBER = re.compile(r"(\d+)")
_CHOICE_TYPES = ("multiple choice", "multi-answer")
_MEDIA_KEYS = ("path", "video")
_SAMPLE_FIELDS = frozenset({"problem", "problem_type", "options", "solution", "process", "data_type", *_MEDIA_KEYS})

log = logging.getLogger(__name__)


def load_samples(
    path: str | Path,
    *,
    media_root: str | Path | None = None,
    limit: int | None = None,
    image_min_pixels: int = IMAGE_MIN_PIXELS,
    image_max_pixels: int = IMAGE_MAX_PIXELS,
) -> list[Sample]:
    """Read the first `limit` (default all) records of a Video-R1 / TW-GRPO ``.json`` or ``.jsonl`` file.

    `Sample.origin` is ``"<path>#<n>"`` with n the 0-based list index for ``.json`` and the 1-based
    line number for ``.jsonl``. Raises RecordError (one line naming file, record and field) on the
    first unusable record, and on a file with no records. The image pixel bounds are those the model's
    images are resized within (``data.image``); box answers are converted to that size.
    """
    frame_rows: dict[str, int] = {"video": 0, "image": 0}
    boxes = ImageBoxes(min_pixels=image_min_pixels, max_pixels=image_max_pixels)

    def convert(record: Any, label: str, origin: str, root: Path, sizes: dict[Path, int]) -> Sample:
        sample = _to_sample(record, label=label, origin=origin, root=root, sizes=sizes, boxes=boxes)
        if isinstance(record, dict) and record.get("data_type") == "frame":
            frame_rows[sample.data_type] += 1
        return sample

    samples = read_samples(path, convert, media_root=media_root, limit=limit)
    if any(frame_rows.values()):
        log.warning(
            "%s: %d data_type 'frame' rows read as video (their path is a video file), %d as frame lists "
            "(their path is a directory of images)", path, frame_rows["video"], frame_rows["image"],
        )
    return samples


def load_dataset_files(
    paths: Sequence[str | Path], *, media_root: str | Path | None = None, limit: int | None = None
) -> list[Sample]:
    """Concatenate `load_samples` over `paths` in order; `limit` caps the total number of samples."""
    if not paths:
        raise ValueError("load_dataset_files needs at least one dataset file")
    samples: list[Sample] = []
    for path in paths:
        remaining = None if limit is None else limit - len(samples)
        if remaining is not None and remaining < 1:
            break
        samples.extend(load_samples(path, media_root=media_root, limit=remaining))
    return samples


# --- one record ---------------------------------------------------------------------------------


def _to_sample(
    record: Any, *, label: str, origin: str, root: Path, sizes: dict[Path, int], boxes: ImageBoxes
) -> Sample:
    if not isinstance(record, dict):
        raise RecordError(
            f"{label}: expected a JSON object with problem, solution and path|video, got a {kind(record)}"
        )
    problem = required_text(record, "problem", label, "every record needs the question text")
    solution = record.get("solution")
    if solution is None:
        raise RecordError(f'{label}: field \'solution\' is missing; every record needs "<answer>…</answer>"')
    if not isinstance(solution, str):
        raise RecordError(
            f'{label}: field \'solution\' must be a string like "<answer>B</answer>", got a {kind(solution)}'
        )
    answer = find_answer(solution)
    if answer is None:
        raise RecordError(
            f'{label}: field \'solution\' has no <answer>…</answer> tags (got {short(solution)}); '
            'wrap the ground truth as "<answer>B</answer>"'
        )

    options = _options(record, label)
    option_letters = tuple(option_letter(o) for o in options) or _inline_option_letters(problem)
    problem_type = _problem_type(record, answer, option_letters, label)
    if problem_type in _CHOICE_TYPES:
        _check_answer_letters(answer, problem_type, option_letters, label)

    data_type = _data_type(record, label)
    media, extra_images = None, ()
    if data_type == "frame":
        data_type, media, extra_images = _frame_media(record, label, root, sizes)
    elif data_type != "text":
        media = _media_file(record, data_type, label, root, sizes)
    process = record.get("process")
    if process is not None and not isinstance(process, str):
        raise RecordError(
            f'{label}: field \'process\' must be a string like "<think>…</think>", got a {kind(process)}'
        )

    overrides = {key: _override(record, key, label) for key in sorted(MEDIA_OVERRIDE_KEYS & record.keys())}
    extra = {k: v for k, v in record.items() if k not in _SAMPLE_FIELDS and k not in MEDIA_OVERRIDE_KEYS}
    if problem_type in BOX_TYPES:
        if data_type != "image" or extra_images:
            raise RecordError(
                f"{label}: field 'data_type': a {problem_type} record needs one image (its boxes are in image pixels), "
                f"got {short(record.get('data_type'))}; set data_type 'image' and path to the image"
            )
        key = next(k for k in _MEDIA_KEYS if k in record)
        answer, box_fields = boxes.answer(answer, problem_type, media, label=label, field="solution", image_key=key)
        solution = f"<answer>{answer}</answer>"
        extra.update(box_fields)
    if options and _inline_option_letters(problem):
        extra["options_in_problem"] = True
    sample_id = record.get("problem_id", record.get("id"))
    return Sample(
        sample_id=origin if sample_id is None else str(sample_id),
        problem=problem,
        problem_type=problem_type,
        data_type=data_type,
        media_path=media,
        options=options,
        solution=solution,
        answer=answer,
        origin=origin,
        process=process,
        media_overrides=overrides,
        extra=extra,
        extra_images=extra_images,
    )


def _options(record: dict[str, Any], label: str) -> tuple[str, ...]:
    options = record.get("options")
    if options is None:
        return ()
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise RecordError(
            f'{label}: field \'options\' must be a list of strings like ["A. red", "B. blue"], got {short(options)}'
        )
    for position, option in enumerate(options):
        if not _OPTION_LABEL.match(option):
            raise RecordError(
                f'{label}: field \'options\' item {position} ({short(option)}) has no letter label; '
                'label options like "A. red" or "(A) red"'
            )
    letters = [option_letter(option) for option in options]
    if len(set(letters)) != len(letters):
        raise RecordError(
            f"{label}: field 'options' repeats a letter label ({', '.join(letters)}); give every option its own letter"
        )
    return tuple(options)


def _inline_option_letters(problem: str) -> tuple[str, ...]:
    """Letters of options written into the problem after the question (``"\\nA took\\nB put down"``), A first."""
    letters = []
    for line in problem.split("\n")[1:]:
        match = _INLINE_OPTION.match(line.strip())
        if match and match.group(1) == chr(ord("A") + len(letters)):
            letters.append(match.group(1))
    return tuple(letters) if len(letters) >= 2 else ()


def _problem_type(record: dict[str, Any], answer: str, option_letters: tuple[str, ...], label: str) -> str:
    problem_type = record.get("problem_type")
    if problem_type is not None:
        if problem_type not in PROBLEM_TYPES:
            raise RecordError(
                f"{label}: field 'problem_type' is {short(problem_type)}, not a known type; "
                f"use one of {', '.join(repr(t) for t in PROBLEM_TYPES)}"
            )
        return problem_type
    if _LETTERS.fullmatch(answer) and "," in answer:
        return "multi-answer"
    if _LETTERS.fullmatch(answer) and option_letters:
        return "multiple choice"
    raise RecordError(
        f"{label}: field 'problem_type' is missing and cannot be inferred from answer {short(answer)} "
        f"(only comma-separated letters, or one letter with options, can be); set it to one of "
        f"{', '.join(repr(t) for t in PROBLEM_TYPES)}"
    )


def _check_answer_letters(answer: str, problem_type: str, option_letters: tuple[str, ...], label: str) -> None:
    pattern = _LETTERS if problem_type == "multi-answer" else re.compile(r"[A-Z]")
    if not pattern.fullmatch(answer):
        expected = "comma-separated option letters like B,C" if problem_type == "multi-answer" else "one option letter"
        raise RecordError(
            f"{label}: field 'solution': a {problem_type} answer must be {expected}, got {short(answer)}"
        )
    if not option_letters:
        return
    for letter in (part.strip() for part in answer.split(",")):
        if letter not in option_letters:
            raise RecordError(
                f"{label}: field 'solution': answer letter {letter!r} is not among the option letters "
                f"{', '.join(option_letters)}; fix the answer or the options"
            )


def _data_type(record: dict[str, Any], label: str) -> str:
    data_type = record.get("data_type")
    if data_type is not None:
        if data_type not in DATA_TYPES:
            raise RecordError(f"{label}: field 'data_type' is {short(data_type)}; use one of {', '.join(DATA_TYPES)}")
        return data_type
    if "video" in record:
        return "video"
    if isinstance(record.get("path"), str):
        suffix = Path(record["path"]).suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            return "video"
        if suffix in IMAGE_SUFFIXES:
            return "image"
    raise RecordError(
        f"{label}: field 'data_type' is missing and cannot be inferred from the media path; "
        f"set it to one of {', '.join(DATA_TYPES)}"
    )


def _raw_media(record: dict[str, Any], data_type: str, label: str) -> tuple[str, str]:
    """``(key, path)`` of the record's media field."""
    key = next((k for k in _MEDIA_KEYS if k in record), None)
    if key is None:
        raise RecordError(
            f'{label}: field \'path\' is missing; a {data_type} record needs "path" (Video-R1) or "video" (TW-GRPO) '
            "naming its media file"
        )
    raw = record[key]
    if not isinstance(raw, str) or not raw.strip():
        raise RecordError(f"{label}: field '{key}' must be a non-empty file path, got {short(raw)}")
    return key, raw


def _media_file(record: dict[str, Any], data_type: str, label: str, root: Path, sizes: dict[Path, int]) -> Path:
    key, raw = _raw_media(record, data_type, label)
    return _checked(media_path(raw, root), key, raw, label, root, sizes)


def _checked(path: Path, key: str, raw: str, label: str, root: Path, sizes: dict[Path, int]) -> Path:
    hint = f"the directory that {raw!r} is relative to"
    return checked_media_file(path, root=root, key=key, label=label, hint=hint, sizes=sizes, raw=raw)


def _frame_media(
    record: dict[str, Any], label: str, root: Path, sizes: dict[Path, int]
) -> tuple[str, Path, tuple[Path, ...]]:
    """``(data_type, media_path, extra_images)`` of a ``"frame"`` row: a video file, or a directory of frames."""
    key, raw = _raw_media(record, "frame", label)
    resolved = media_path(raw, root)
    if not resolved.is_dir():
        if resolved.exists() and resolved.suffix.lower() not in VIDEO_SUFFIXES:
            raise RecordError(
                f"{label}: field '{key}': a data_type 'frame' row needs a video file or a directory of frames, "
                f"got {resolved}; fix the path or the data_type"
            )
        return "video", _checked(resolved, key, raw, label, root, sizes), ()
    frames = sorted(
        (p for p in resolved.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: [int(part) if part.isdigit() else part for part in _FRAME_NUMBER.split(p.name)],
    )
    if not frames:
        raise RecordError(
            f"{label}: field '{key}': frame directory {resolved} holds no images "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}); add the frames or fix the path"
        )
    frames = [_checked(frame, key, raw, label, root, sizes) for frame in frames]
    return "image", frames[0], tuple(frames[1:])


def _override(record: dict[str, Any], key: str, label: str) -> float:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise RecordError(
            f"{label}: field '{key}' must be a positive number (a media sampling override), got {short(value)}"
        )
    return value
