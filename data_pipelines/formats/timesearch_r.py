"""Reader for TimeSearch-R's own training and evaluation records (``.jsonl`` or a ``.json`` list); arXiv 2511.05489.

Fields: ``id``; ``video``, a path relative to the data root; ``question``, with the options of a
multiple-choice question written into it (``"A. red"``, ``"(B) blue"``, one per line);
``type``, one of `TYPES` (``multiple_choice`` when absent, as in the official loader);
``target``, an object whose ``answer`` holds the ground truth; optionally ``duration`` in seconds.

Each type becomes a `Sample` as follows, with the official type in ``extra["type"]``:

- ``multiple_choice`` → ``"multiple choice"``; the answer is the option letter, taken from the target
  with the official strict rule (a letter A–J alone or followed by ``.`` or a space), so a target the
  official scorer could never match is refused here. The inline options become `Sample.options`
  (``"A. red"``) and ``extra["options_in_problem"]`` keeps prompts from listing them twice.
- ``open_ended`` → ``"free-form"``; the answer is the target text.
- ``grounding`` → ``"grounding"``; the answer is the time span as JSON text
  ``{"start_time": s, "end_time": e}`` (the official target form; an object is accepted too), 0 ≤ s ≤ e.
- ``sequence`` → ``"sequence"``; the answer is the target text, which must hold an index sequence such
  as ``"(a)(c)(b)"``.

``duration``, when given, is kept as ``extra["duration"]`` (a positive number of seconds); when absent
the video's length stands in for it downstream. Other fields (the original ``target`` included) go to
`Sample.extra` unchanged. Media: `media_path` under `media_root` (default: the dataset file's
directory); a relative path that climbs out of the root with ``..`` is refused; the file must exist
and be non-empty, and is never decoded here.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from data_pipelines.completion_format import answer_block
from data_pipelines.record_files import checked_media_file, kind, media_path, read_samples, required_text, short
from data_pipelines.schema import RecordError, Sample

TYPES: dict[str, str] = {
    "multiple_choice": "multiple choice",
    "open_ended": "free-form",
    "grounding": "grounding",
    "sequence": "sequence",
}
"""TimeSearch-R ``type`` → `Sample.problem_type`."""

_STRICT_LETTER = re.compile(r"([A-J])(?:[.\s]|$)")
_OPTION_LINE = re.compile(r"\(?([A-J])(?:\)|\.|:)\s*(\S.*)")
_SEQUENCE_INDEX = re.compile(r"\([a-g1-6]\)")
_CONSUMED = frozenset({"id", "video", "question", "type", "duration"})


def load_timesearch_r(
    path: str | Path, *, media_root: str | Path | None = None, limit: int | None = None
) -> list[Sample]:
    """Read the first `limit` (default all) TimeSearch-R records of `path`.

    `Sample.origin` is ``"<path>#<n>"`` as in the other readers. Raises RecordError (one line naming
    the file, the record and the field) on the first unusable record, and on a file with no records.
    """

    def convert(record: Any, label: str, origin: str, root: Path, sizes: dict[Path, int]) -> Sample:
        return _to_sample(record, label=label, origin=origin, root=root, sizes=sizes)

    return read_samples(path, convert, media_root=media_root, limit=limit)


def _to_sample(record: Any, *, label: str, origin: str, root: Path, sizes: dict[Path, int]) -> Sample:
    if not isinstance(record, dict):
        raise RecordError(
            f"{label}: expected a JSON object with id, video, question, type and target, got a {kind(record)}"
        )
    kind_name = record.get("type", "multiple_choice")
    if kind_name not in TYPES:
        raise RecordError(
            f"{label}: field 'type' is {short(kind_name)}; use one of {', '.join(repr(t) for t in TYPES)}"
        )
    question = required_text(record, "question", label, "every record needs the question text")
    target = _target_answer(record, label)
    options: tuple[str, ...] = ()
    if kind_name == "multiple_choice":
        options = _inline_options(question)
        answer = _choice_letter(target, options, label)
    elif kind_name == "grounding":
        answer = _time_span(target, label)
    else:
        answer = _text_answer(target, kind_name, label)
    extra = {k: v for k, v in record.items() if k not in _CONSUMED}
    extra["type"] = kind_name
    if "duration" in record:
        extra["duration"] = _duration(record["duration"], label)
    if options:
        extra["options_in_problem"] = True
    raw_id = record.get("id")
    return Sample(
        sample_id=origin if raw_id is None else str(raw_id),
        problem=question,
        problem_type=TYPES[kind_name],
        data_type="video",
        media_path=_video(record, label, root, sizes),
        options=options,
        solution=answer_block(answer),
        answer=answer,
        origin=origin,
        extra=extra,
    )


def _target_answer(record: dict[str, Any], label: str) -> Any:
    target = record.get("target")
    if not isinstance(target, dict) or "answer" not in target:
        got = "is missing" if target is None else f"is {short(target)}"
        raise RecordError(f'{label}: field \'target\' {got}; give the ground truth as {{"answer": ...}}')
    return target["answer"]


def _inline_options(question: str) -> tuple[str, ...]:
    """The options listed one per line in `question` (the last run labelled A, B, C, … in order), as ``"A. text"``."""
    runs: list[list[tuple[str, str]]] = []
    for line in question.split("\n"):
        match = _OPTION_LINE.fullmatch(line.strip())
        if match is None:
            continue
        letter, text = match.groups()
        if letter == "A":
            runs.append([(letter, text)])
        elif runs and letter == chr(ord(runs[-1][-1][0]) + 1):
            runs[-1].append((letter, text))
    options = runs[-1] if runs else []
    return tuple(f"{letter}. {text}" for letter, text in options) if len(options) >= 2 else ()


def _choice_letter(answer: Any, options: tuple[str, ...], label: str) -> str:
    match = _STRICT_LETTER.match(answer.strip()) if isinstance(answer, str) else None
    if match is None:
        raise RecordError(
            f"{label}: field 'target.answer' of a multiple_choice record must start with the option letter "
            f'(like "B" or "B. red"), got {short(answer)}'
        )
    letter = match.group(1)
    letters = [option[0] for option in options]
    if options and letter not in letters:
        raise RecordError(
            f"{label}: field 'target.answer': letter {letter!r} is not among the options {', '.join(letters)} "
            "listed in the question; fix the answer or the question"
        )
    return letter


def _time_span(answer: Any, label: str) -> str:
    span = answer
    if isinstance(answer, str):
        try:
            span = json.loads(answer)
        except json.JSONDecodeError:
            span = None
    start, end = (span.get("start_time"), span.get("end_time")) if isinstance(span, dict) else (None, None)
    if not (_is_seconds(start) and _is_seconds(end) and 0 <= start <= end):
        raise RecordError(
            f"{label}: field 'target.answer' of a grounding record must be a time span in seconds like "
            f'\'{{"start_time": 12.5, "end_time": 30}}\' with 0 <= start_time <= end_time, got {short(answer)}'
        )
    return json.dumps({"start_time": start, "end_time": end})


def _text_answer(answer: Any, kind_name: str, label: str) -> str:
    if not isinstance(answer, str) or not answer.strip():
        raise RecordError(f"{label}: field 'target.answer' must be a non-empty string, got {short(answer)}")
    if kind_name == "sequence" and not _SEQUENCE_INDEX.search(answer):
        raise RecordError(
            f"{label}: field 'target.answer' of a sequence record must list the order as indices like "
            f'"(a)(c)(b)", got {short(answer)}'
        )
    return answer.strip()


def _is_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _duration(value: Any, label: str) -> float:
    if not _is_seconds(value) or value <= 0:
        raise RecordError(
            f"{label}: field 'duration' must be the video length in seconds (a positive number), got {short(value)}; "
            "leave it out to use the video's own length"
        )
    return float(value)


def _video(record: dict[str, Any], label: str, root: Path, sizes: dict[Path, int]) -> Path:
    raw = required_text(record, "video", label, "give the clip's path relative to the data root")
    resolved = media_path(raw, root)
    if not Path(raw).is_absolute():
        inside = Path(os.path.normpath(resolved))
        if not inside.is_relative_to(Path(os.path.normpath(root.absolute()))):
            raise RecordError(
                f"{label}: field 'video': {raw!r} points outside the data root {root.absolute()}; "
                "give a path inside it, or an absolute path"
            )
        resolved = inside
    hint = "the directory the records' video paths are relative to"
    return checked_media_file(resolved, root=root, key="video", label=label, hint=hint, sizes=sizes, raw=raw)
