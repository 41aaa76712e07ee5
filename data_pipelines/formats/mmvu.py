"""Reader for MMVU records (yale-nlp/MMVU ``validation.json``, a JSON list; or ``.jsonl``); MMVU is arXiv 2501.12380.

Fields: ``id``, ``question``, ``question_type`` (``"multiple-choice"`` or ``"open-ended"``), ``choices``
(letter → text; open-ended records carry the same keys with empty texts), ``answer`` (the letter, or a
short free text), and the video as ``video_path`` (lmms-eval's ``videos/<Subject>/<n>.mp4``) or
``video`` (the HF URL ``…/resolve/<revision>/videos/<Subject>/<n>.mp4``, or a path).

Multiple-choice records become ``"multiple choice"`` samples with options ``"A. <text>"`` in the
``choices`` order. Open-ended answers are free text, so those records become ``"free-form"`` samples:
the Video-R1 free-form reward (mean ROUGE F) can score them, unlike MMVU's official GPT-4o judge;
``extra["question_type"]`` keeps the original type for a judge-based scorer, and
``extra["discipline"]`` the discipline of the record's subject (`DISCIPLINES`), for per-discipline accuracy.

Media: a URL is mapped to its path after ``/resolve/<revision>/``; that path and any other are
resolved by `media_path` (a leading ``./`` or ``/`` dropped, the rest under `media_root`, default:
the dataset file's directory, where the HF dataset keeps ``validation.json`` next to ``videos/``;
an absolute path that exists is kept). Files are checked to exist and be non-empty, never decoded here.
Records in Video-R1 format (``eval_mmvu.json``, "MMVU (mc)") are read by `load_samples` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from data_pipelines.completion_format import answer_block
from data_pipelines.record_files import checked_media_file, kind, media_path, read_samples, required_text, short
from data_pipelines.schema import RecordError, Sample

QUESTION_TYPES: dict[str, str] = {"multiple-choice": "multiple choice", "open-ended": "free-form"}
"""MMVU ``question_type`` → `Sample.problem_type`."""

_DISCIPLINE_SUBJECTS: dict[str, tuple[str, ...]] = {
    "Science": (
        "Astronomy", "Biology", "Chemistry", "Electromagnetism", "Geography", "Materials Science", "Mechanics",
        "Modern Physics", "Neurobiology", "Thermodynamics",
    ),
    "Engineering": (
        "Biomedical Engineering", "Civil Engineering", "Computer Science", "Electrical Engineering",
        "Electronics and Communication", "Mechanical Engineering",
    ),
    "Healthcare": ("Basic Medicine", "Clinical Medicine", "Dentistry", "Pharmacy", "Preventive Medicine"),
    "Humanities and Social Science": ("Art", "Economics", "History", "Law", "Literature", "Management"),
}
DISCIPLINES: dict[str, str] = {subject: d for d, subjects in _DISCIPLINE_SUBJECTS.items() for subject in subjects}
"""MMVU's 27 subjects → its 4 disciplines (the paper's taxonomy; folder names use ``_`` for spaces)."""

_MEDIA_KEYS = ("video_path", "video")
_CONSUMED = frozenset({"question", "choices", "answer", *_MEDIA_KEYS})


def load_mmvu(
    path: str | Path,
    *,
    media_root: str | Path | None = None,
    multiple_choice_only: bool = False,
    limit: int | None = None,
) -> list[Sample]:
    """Read the first `limit` (default all) MMVU records of `path`.

    `multiple_choice_only` leaves out open-ended records (after checking their ``question_type``),
    giving the 625-question "MMVU (mc)" subset of the validation split. `Sample.origin` is
    ``"<path>#<n>"`` as in `load_samples`. Raises RecordError (one line naming file, record and
    field) on the first unusable record, and on a file with no records.
    """

    def convert(record: Any, label: str, origin: str, root: Path, sizes: dict[Path, int]) -> Sample | None:
        if not isinstance(record, dict):
            raise RecordError(
                f"{label}: expected a JSON object with question, question_type, choices, answer and video, "
                f"got a {kind(record)}"
            )
        problem_type = _problem_type(record, label)
        if multiple_choice_only and problem_type != "multiple choice":
            return None
        return _to_sample(record, problem_type, label=label, origin=origin, root=root, sizes=sizes)

    kept = "multiple-choice" if multiple_choice_only else ""
    return read_samples(path, convert, media_root=media_root, limit=limit, kind=kept)


def _problem_type(record: dict[str, Any], label: str) -> str:
    question_type = record.get("question_type")
    if question_type not in QUESTION_TYPES:
        missing = "is missing" if question_type is None else f"is {short(question_type)}"
        raise RecordError(
            f"{label}: field 'question_type' {missing}; use one of {', '.join(repr(t) for t in QUESTION_TYPES)}"
        )
    return QUESTION_TYPES[question_type]


def _to_sample(
    record: dict[str, Any], problem_type: str, *, label: str, origin: str, root: Path, sizes: dict[Path, int]
) -> Sample:
    question = required_text(record, "question", label, "every record needs the question text")
    answer = required_text(record, "answer", label, "every record needs its ground truth").strip()
    options: tuple[str, ...] = ()
    if problem_type == "multiple choice":
        choices = _choices(record, label)
        if answer not in choices:
            raise RecordError(
                f"{label}: field 'answer' must be one of the choice letters {', '.join(choices)}, got {short(answer)}"
            )
        options = tuple(f"{letter}. {text}" for letter, text in choices.items())
    raw_id = record.get("id")
    media_path = _video(record, label, root, sizes)
    return Sample(
        sample_id=origin if raw_id is None else str(raw_id),
        problem=question,
        problem_type=problem_type,
        data_type="video",
        media_path=media_path,
        options=options,
        solution=answer_block(answer),
        answer=answer,
        origin=origin,
        extra={**{k: v for k, v in record.items() if k not in _CONSUMED}, "discipline": _discipline(record, media_path)},
    )


def _discipline(record: dict[str, Any], media_path: Path) -> str:
    """The discipline of the record's subject (``metadata.subject``, else the video's folder).

    A subject outside MMVU's 27 gives ``"unmapped: <subject>"``, a row of its own in the report.
    """
    metadata = record.get("metadata")
    subject = metadata.get("subject") if isinstance(metadata, dict) else None
    subject = str(subject or media_path.parent.name).replace("_", " ").strip()
    return DISCIPLINES.get(subject, f"unmapped: {subject}")


def _choices(record: dict[str, Any], label: str) -> dict[str, str]:
    """The choices of a multiple-choice record: keys A, B, C, … in order, each a non-empty text."""
    choices = record.get("choices")
    if not isinstance(choices, dict) or len(choices) < 2:
        raise RecordError(
            f'{label}: field \'choices\' must be an object like {{"A": "red", "B": "blue"}} with at least two '
            f"options, got {short(choices)}"
        )
    expected = [chr(ord("A") + i) for i in range(len(choices))]
    if list(choices) != expected:
        raise RecordError(
            f"{label}: field 'choices' has keys {', '.join(map(str, choices))}; label the options "
            f"{', '.join(expected)} in order"
        )
    for letter, text in choices.items():
        if not isinstance(text, str) or not text.strip():
            raise RecordError(
                f"{label}: field 'choices' option {letter} must be a non-empty string in a multiple-choice record, "
                f"got {short(text)}"
            )
    return choices


def _video(record: dict[str, Any], label: str, root: Path, sizes: dict[Path, int]) -> Path:
    key = next((k for k in _MEDIA_KEYS if k in record), None)
    if key is None:
        raise RecordError(
            f"{label}: field 'video' is missing; give the clip as \"video\" (HF URL or path) or \"video_path\" "
            "(relative to media_root)"
        )
    raw = record[key]
    if not isinstance(raw, str) or not raw.strip():
        raise RecordError(f"{label}: field '{key}' must be a non-empty URL or file path, got {short(raw)}")
    if raw.startswith(("http://", "https://")):
        _, _, after_resolve = unquote(urlsplit(raw).path).partition("/resolve/")
        _, _, in_repo = after_resolve.partition("/")
        if not in_repo:
            raise RecordError(
                f"{label}: field '{key}': cannot map URL {short(raw)} to a local file (no /resolve/<revision>/ "
                "part); download the video and give its path relative to media_root in \"video_path\""
            )
        raw = in_repo
    hint = "the directory that holds the MMVU videos/ folder"
    return checked_media_file(media_path(raw, root), root=root, key=key, label=label, hint=hint, sizes=sizes, raw=raw)
