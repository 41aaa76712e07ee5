"""Reader for SEED-Bench-R1 records (``.jsonl``, or a ``.json`` list); SEED-Bench-R1 is arXiv 2503.24376.

Every record has ``question``, ``task_progress_metadata``, ``video_source`` and
``current_observation_basename`` (and ``video_basename`` when it has progress steps). A record with
``golden_choice_idx`` is a validation row: its options are ``choice_a``…``choice_d`` in that order and
the gold letter is ``golden_choice_idx``. Any other record is a training row: ``answer`` plus 3 of its
``negative_answers``, shuffled (GRPO-CARE's rule).

GRPO-CARE draws the 3 negatives and the order with Python's unseeded ``random``; here each training
row draws from ``random.Random(f"{seed}:{key}")``, key its ``sample_id`` (else ``#<n>``, n as in
`Sample.origin`), so a row gets the same options in every run, whatever the file order or `limit`.
Duplicate negatives count once; a row whose negatives contain the answer, or hold fewer than 3
distinct actions, is an error.

Media, relative to `media_root` (the data root holding ``annotations/``, ``videos/`` and ``images/``;
default: the annotation file's grandparent, i.e. ``<root>/annotations/x.jsonl`` → ``<root>``):
with progress steps, the sample is a video ``videos/<video_source>/<video_basename>`` followed by the
image ``images/<video_source>/<current_observation_basename>`` (`Sample.extra_images`); with an empty
``task_progress_metadata`` it is that image alone. Files are checked to exist and be non-empty,
never decoded here.

Upstream EgoPlan-Bench / EgoPlan-Bench2 rows (``video_id``, ``current_observation_frame``: frame numbers in the full
source video) lack what SEED-Bench-R1 adds (`ADDED_FIELDS`): the cut clip and the extracted frame, and for
EgoPlan-Bench2 the question and video source. Their file names are SEED-Bench-R1's own, so nothing is derived: a row
with upstream fields and no ``current_observation_basename`` fails with one error naming every missing field.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from data_pipelines.completion_format import answer_block
from data_pipelines.record_files import checked_media_file, iter_records, kind, required_text, short
from data_pipelines.schema import RecordError, Sample

CHOICE_FIELDS: tuple[str, ...] = ("choice_a", "choice_b", "choice_c", "choice_d")
"""Validation-row option fields, in option order A–D."""
NUM_NEGATIVES = 3
"""Wrong actions drawn per training row (4 options in all)."""

ADDED_FIELDS: dict[str, str] = {
    "question": "the question text (EgoPlan-Bench2 rows have only task_goal)",
    "video_source": "the sub-folder of videos/ and images/, EpicKitchens or Ego4D",
    "current_observation_basename": "the file name of the current-observation frame, extracted as an image into "
    "images/<video_source>/ (upstream rows give only its frame number, current_observation_frame)",
    "video_basename": "the file name of the task-progress clip, cut from the source video into videos/<video_source>/ "
    "(upstream rows give only video_id and frame numbers; needed when task_progress_metadata is not empty)",
}
"""Fields SEED-Bench-R1 adds to EgoPlan-Bench / EgoPlan-Bench2 rows, and what each holds."""
_UPSTREAM_FIELDS = ("video_id", "current_observation_frame", "task_start_frame")
_CONSUMED = frozenset({"question", "golden_choice_idx", "negative_answers", *CHOICE_FIELDS})


def load_seed_bench_r1(
    path: str | Path, *, media_root: str | Path | None = None, seed: int = 0, limit: int | None = None
) -> list[Sample]:
    """Read the first `limit` (default all) SEED-Bench-R1 training or validation records of `path`.

    `seed` fixes the negatives drawn and the option order of training rows. `Sample.origin` is
    ``"<path>#<n>"`` as in `load_samples`. Raises RecordError (one line naming file, record and field)
    on the first unusable record, and on a file with no records.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of records or None, got {limit}")
    path = Path(path)
    root = Path(media_root) if media_root is not None else path.absolute().parent.parent
    sizes: dict[Path, int] = {}
    samples: list[Sample] = []
    for label, index, record in iter_records(path):
        samples.append(
            _to_sample(record, label=label, index=index, origin=f"{path}#{index}", root=root, seed=seed, sizes=sizes)
        )
        if limit is not None and len(samples) >= limit:
            break
    if not samples:
        raise RecordError(f"{path}: the dataset has no records; point the loader at a file with at least one record")
    return samples


def _to_sample(
    record: Any, *, label: str, index: int, origin: str, root: Path, seed: int, sizes: dict[Path, int]
) -> Sample:
    if not isinstance(record, dict):
        raise RecordError(
            f"{label}: expected a JSON object with question, task_progress_metadata and media basenames, "
            f"got a {kind(record)}"
        )
    _check_not_upstream(record, label)
    question = required_text(record, "question", label, "every record needs the question text")
    raw_id = record.get("sample_id", record.get("id"))
    if "golden_choice_idx" in record:
        choices = [required_text(record, key, label, "a validation row needs choice_a to choice_d") for key in CHOICE_FIELDS]
        letter = _golden_letter(record, label)
    else:
        key = f"#{index}" if raw_id is None else str(raw_id)
        choices, letter = _training_options(record, label, random.Random(f"{seed}:{key}"))
    data_type, media_path, extra_images = _media(record, label, root, sizes)
    return Sample(
        sample_id=origin if raw_id is None else str(raw_id),
        problem=question,
        problem_type="multiple choice",
        data_type=data_type,
        media_path=media_path,
        options=tuple(f"{chr(ord('A') + i)}. {choice}" for i, choice in enumerate(choices)),
        solution=answer_block(letter),
        answer=letter,
        origin=origin,
        extra={k: v for k, v in record.items() if k not in _CONSUMED},
        extra_images=extra_images,
    )


def _check_not_upstream(record: dict[str, Any], label: str) -> None:
    """RecordError naming every `ADDED_FIELDS` field an upstream EgoPlan row lacks: a row with upstream fields and no
    ``current_observation_basename``, which every SEED-Bench-R1 row has."""
    upstream = [key for key in _UPSTREAM_FIELDS if key in record]
    if not upstream or "current_observation_basename" in record:
        return
    missing = [key for key in ADDED_FIELDS if key not in record]
    if not record.get("task_progress_metadata") and "video_basename" in missing:
        missing.remove("video_basename")
    added = "; ".join(f"{key}: {ADDED_FIELDS[key]}" for key in missing)
    raise RecordError(
        f"{label}: field '{missing[0]}' is missing: this is an upstream EgoPlan row ({', '.join(upstream)}) without "
        f"what SEED-Bench-R1 adds ({added}); use SEED-Bench-R1's annotations/*.jsonl with its videos/ and images/ "
        "folders"
    )


def _golden_letter(record: dict[str, Any], label: str) -> str:
    letter = record["golden_choice_idx"]
    letters = [chr(ord("A") + i) for i in range(len(CHOICE_FIELDS))]
    if letter not in letters:
        raise RecordError(
            f"{label}: field 'golden_choice_idx' must be one of the letters {', '.join(letters)}, got {short(letter)}"
        )
    return letter


def _training_options(record: dict[str, Any], label: str, rng: random.Random) -> tuple[list[str], str]:
    """The answer and `NUM_NEGATIVES` sampled negatives in shuffled order, and the answer's letter."""
    answer = required_text(record, "answer", label, "a training row needs the text of the correct action")
    negatives = record.get("negative_answers")
    if negatives is None:
        raise RecordError(
            f"{label}: field 'negative_answers' is missing; a training row needs at least {NUM_NEGATIVES} wrong "
            "actions (a validation row needs choice_a to choice_d and golden_choice_idx)"
        )
    if not isinstance(negatives, list) or not all(isinstance(n, str) and n.strip() for n in negatives):
        raise RecordError(
            f"{label}: field 'negative_answers' must be a list of non-empty strings, got {short(negatives)}"
        )
    if answer in negatives:
        raise RecordError(
            f"{label}: field 'negative_answers' contains the answer {short(answer)}; remove it so the gold "
            "option is unique"
        )
    pool = list(dict.fromkeys(negatives))
    if len(pool) < NUM_NEGATIVES:
        raise RecordError(
            f"{label}: field 'negative_answers' has {len(pool)} distinct actions, needs at least {NUM_NEGATIVES}"
        )
    options = [*rng.sample(pool, NUM_NEGATIVES), answer]
    rng.shuffle(options)
    return options, chr(ord("A") + options.index(answer))


def _media(
    record: dict[str, Any], label: str, root: Path, sizes: dict[Path, int]
) -> tuple[str, Path, tuple[Path, ...]]:
    """``(data_type, media_path, extra_images)``: progress video then observation image, or the image alone."""
    progress = record.get("task_progress_metadata")
    if progress is None:
        raise RecordError(
            f"{label}: field 'task_progress_metadata' is missing; give the finished steps as a list "
            "(an empty list means no progress video, image only)"
        )
    if not isinstance(progress, list):
        raise RecordError(f"{label}: field 'task_progress_metadata' must be a list, got a {kind(progress)}")
    source = required_text(record, "video_source", label, "it names the sub-folder of videos/ and images/")
    hint = "the SEED-Bench-R1 data root that holds videos/ and images/"
    image_name = required_text(record, "current_observation_basename", label, "it names the current-observation image")
    image = checked_media_file(
        (root / "images" / source / image_name).absolute(), root=root, key="current_observation_basename",
        label=label, hint=hint, sizes=sizes,
    )
    if not progress:
        return "image", image, ()
    video_name = required_text(record, "video_basename", label, "a row with progress steps needs its task-progress video")
    video = checked_media_file(
        (root / "videos" / source / video_name).absolute(), root=root, key="video_basename", label=label, hint=hint,
        sizes=sizes,
    )
    return "video", video, (image,)
