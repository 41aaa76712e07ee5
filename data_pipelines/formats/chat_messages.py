"""Reader for chat-message records (``.jsonl`` or a ``.json`` list): qwen-vl-utils / TRL and LLaMA-Factory ShareGPT.

qwen-vl-utils / TRL: ``messages``, a list of ``{"role": "system"|"user"|"assistant", "content": ...}`` whose content
is a string or a list of parts ``{"type": "image", "image": path}``, ``{"type": "video", "video": path, "fps": 1.0,
"max_pixels": 50176}`` and ``{"type": "text", "text": ...}``; a media part without a path (TRL's ``{"type": "image"}``)
takes the next path of the record's ``images`` / ``videos`` list.
LLaMA-Factory ShareGPT: string contents whose ``<image>`` / ``<video>`` placeholders take the paths of ``images`` /
``videos`` in order, as ``messages`` (``role`` / ``content``) or ``conversations`` (``from`` human/gpt/system and
``value``), with an optional top-level ``system`` string.

A record is one exchange: system turns, then user turns, then at most one assistant turn. The user turns are the
prompt, used verbatim (no question template): their text with the media parts and placeholders taken out (several
user turns joined by a newline), their media in order; the first media item is the sample's video or image, later
images its `Sample.extra_images`, and a video part's sampling keys (``fps``, ``max_pixels``, ...) its
`Sample.media_overrides`. The assistant turn, as written, is the SFT target. The ground truth is the record's
``solution`` or ``answer`` (the content of its ``<answer>…</answer>`` when it has one), else the assistant turn's
``<answer>…</answer>`` content, else its whole text. The problem type is ``problem_type`` when given; otherwise
``multiple choice`` (or ``multi-answer``) when the answer is one letter (or comma-separated letters) of options
listed in the prompt (``A. ...`` lines), else ``free-form``.

Media paths are resolved by `media_path` under `media_root` (default the dataset file's folder), ``file://`` dropped,
and checked to be non-empty files. The prompt shows the media before the text, as every prompt here does; one log
line per file counts the records whose media came after some text, or whose user turns were joined. System turns are
kept in ``Sample.extra[SYSTEM_KEY]``, and the prompt encoder uses it in place of ``data.system_prompt``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_pipelines.completion_format import answer_block, answer_or_text
from data_pipelines.prompts import SFT_TARGET, VERBATIM_PROMPT
from data_pipelines.record_files import checked_media_file, kind, media_path, read_samples, short
from data_pipelines.schema import MEDIA_OVERRIDE_KEYS, PROBLEM_TYPES, RecordError, Sample

MEDIA_KINDS: tuple[str, ...] = ("image", "video")
PLACEHOLDERS: dict[str, str] = {"image": "<image>", "video": "<video>"}
"""LLaMA-Factory's placeholders in string contents, one per path of ``images`` / ``videos``."""
SHAREGPT_ROLES: dict[str, str] = {"human": "user", "gpt": "assistant", "system": "system"}
"""``conversations`` speaker (``from``) → chat role."""
SYSTEM_KEY = "chat_system"
"""`Sample.extra` key of a chat record's system text (its system turns joined by a newline); namespaced so another
format's ``system`` field never becomes one."""

_ROLES = ("system", "user", "assistant")
_LISTS = {"image": "images", "video": "videos"}
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))
_OPTION_LINE = re.compile(r"\s*\(?([A-Z])(?:[.:]|\))\s+\S")
_LETTERS = re.compile(r"[A-Z](?:\s*,\s*[A-Z])*")
_UNSUPPORTED_TYPES = ("box", "detection")
_CONSUMED = frozenset({"messages", "conversations", "images", "videos", "system", "solution", "answer", "problem_type"})

log = logging.getLogger(__name__)


def load_chat_messages(path: str | Path, *, media_root: str | Path | None = None, limit: int | None = None) -> list[Sample]:
    """Read the first `limit` (default all) chat records of `path` (either form, see the module docstring).

    `Sample.origin` is ``"<path>#<n>"`` as in `load_samples`. Raises RecordError, one line naming file, record and
    field, on the first unusable record and on a file with no records.
    """
    notes = {"media after text": 0, "user turns joined": 0, "system turn kept in extra": 0}

    def convert(record: Any, label: str, origin: str, root: Path, sizes: dict[Path, int]) -> Sample:
        sample, record_notes = _to_sample(record, label=label, origin=origin, root=root, sizes=sizes)
        for note in record_notes:
            notes[note] += 1
        return sample

    samples = read_samples(path, convert, media_root=media_root, limit=limit)
    if any(notes.values()):
        log.warning(
            "%s: %s (prompts show media before text; data.system_prompt sets the system turn)",
            path, ", ".join(f"{count} records with {note}" for note, count in notes.items() if count),
        )
    return samples


# --- one record ---------------------------------------------------------------------------------


@dataclass
class _Prompt:
    """What the user turns hold, in order: each turn's text (media taken out) and the media items."""

    turns: list[str] = field(default_factory=list)
    media: list[tuple[str, Path, dict[str, float]]] = field(default_factory=list)
    media_after_text: bool = False

    def add_text(self, text: str) -> None:
        self.turns[-1] += text

    def add_media(self, media_kind: str, path: Path, overrides: dict[str, float]) -> None:
        self.media_after_text |= any(turn.strip() for turn in self.turns)
        self.media.append((media_kind, path, overrides))


def _to_sample(record: Any, *, label: str, origin: str, root: Path, sizes: dict[Path, int]) -> tuple[Sample, list[str]]:
    if not isinstance(record, dict):
        raise RecordError(f"{label}: expected a JSON object with messages (or conversations), got a {kind(record)}")
    key, turns = _turns(record, label)
    systems = [t for t in turns if t[1] == "system"]
    users = [t for t in turns if t[1] == "user"]
    assistant = turns[-1] if turns[-1][1] == "assistant" else None
    _check_order(turns, key, label)

    lists = {kind_: _MediaList(record, kind_, label) for kind_ in MEDIA_KINDS}
    prompt = _Prompt()
    for index, _, content in users:
        _read_user_turn(content, f"{key}[{index}]", label, prompt, lists, root, sizes)
    for media_list in lists.values():
        media_list.check_used()
    system_texts = [_text_only(content, f"{key}[{index}]", label) for index, _, content in systems]
    if record.get("system") is not None:
        system_texts.insert(0, _text_only(record["system"], "system", label))
    target = None if assistant is None else _text_only(assistant[2], f"{key}[{assistant[0]}]", label)

    problem = "\n".join(prompt.turns)
    if not problem.strip():
        raise RecordError(f"{label}: field '{key}': the user turns hold no text besides their media; add the question")
    answer = _ground_truth(record, target, key, label)
    problem_type = _problem_type(record, answer, problem, label)
    data_type, primary, extra_images, overrides = _media(prompt.media, key, label)

    extra: dict[str, Any] = {k: v for k, v in record.items() if k not in _CONSUMED}
    extra[VERBATIM_PROMPT] = True
    if target is not None:
        extra[SFT_TARGET] = target
    if system_texts:
        extra[SYSTEM_KEY] = "\n".join(system_texts)
    notes = [
        note
        for note, present in (
            ("media after text", prompt.media_after_text),
            ("user turns joined", len(users) > 1),
            ("system turn kept in extra", bool(system_texts)),
        )
        if present
    ]
    sample_id = next((record[k] for k in ("id", "sample_id", "problem_id") if record.get(k) is not None), None)
    sample = Sample(
        sample_id=origin if sample_id is None else str(sample_id),
        problem=problem,
        problem_type=problem_type,
        data_type=data_type,
        media_path=primary,
        options=(),
        solution=answer_block(answer),
        answer=answer,
        origin=origin,
        media_overrides=overrides,
        extra=extra,
        extra_images=extra_images,
    )
    return sample, notes


def _turns(record: dict[str, Any], label: str) -> tuple[str, list[tuple[int, str, Any]]]:
    """``(field, [(index, role, content), ...])`` from ``messages`` or ``conversations``."""
    key = "messages" if "messages" in record else "conversations"
    turns = record.get(key)
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"{label}: field '{key}' must be a non-empty list of turns, got {short(turns)}")
    out = []
    for index, turn in enumerate(turns):
        where = f"{key}[{index}]"
        if not isinstance(turn, dict):
            raise RecordError(f"{label}: field '{where}' must be an object, got a {kind(turn)}")
        if key == "messages":
            role, content = turn.get("role"), turn.get("content")
            if role not in _ROLES:
                raise RecordError(
                    f"{label}: field '{where}.role' is {short(role)}; use one of {', '.join(_ROLES)} "
                    "(tool and function turns are not supported)"
                )
        else:
            speaker, content = turn.get("from"), turn.get("value")
            if speaker not in SHAREGPT_ROLES:
                raise RecordError(
                    f"{label}: field '{where}.from' is {short(speaker)}; use one of {', '.join(SHAREGPT_ROLES)} "
                    "(observation and function_call turns are not supported)"
                )
            role = SHAREGPT_ROLES[speaker]
            if not isinstance(content, str):
                raise RecordError(f"{label}: field '{where}.value' must be a string, got a {kind(content)}")
        out.append((index, role, content))
    return key, out


def _check_order(turns: list[tuple[int, str, Any]], key: str, label: str) -> None:
    """System turns, then user turns, then at most one assistant turn, the last."""
    rank = {"system": 0, "user": 1, "assistant": 2}
    previous = "system"
    for index, role, _ in turns:
        if rank[role] < rank[previous] or (role == "assistant" and index != turns[-1][0]):
            after = "the assistant turn must be the last turn" if role == "assistant" else f"a {role} turn after a {previous} turn"
            raise RecordError(
                f"{label}: field '{key}[{index}]': {after}; a record holds one exchange (system turns, user turns, then "
                "one assistant turn): split multi-turn conversations into one record per answer"
            )
        previous = role
    if not any(role == "user" for _, role, _ in turns):
        raise RecordError(f"{label}: field '{key}' has no user turn; the user turns are the prompt")


class _MediaList:
    """The record's ``images`` or ``videos`` list, taken in order by placeholders and path-less parts."""

    def __init__(self, record: dict[str, Any], media_kind: str, label: str) -> None:
        self.key, self.label = _LISTS[media_kind], label
        paths = record.get(self.key)
        if paths is None:
            paths = []
        if not isinstance(paths, list) or not all(isinstance(p, str) and p.strip() for p in paths):
            raise RecordError(f"{label}: field '{self.key}' must be a list of file paths, got {short(paths)}")
        self.paths, self.used, self.placeholder = paths, 0, PLACEHOLDERS[media_kind]

    def take(self, where: str) -> tuple[str, str]:
        """``(field, raw path)`` of the next unused path."""
        if self.used == len(self.paths):
            raise RecordError(
                f"{self.label}: field '{where}' asks for {self.key[:-1]} {self.used + 1} ({self.placeholder} or a part "
                f"without a path) but field '{self.key}' holds {len(self.paths)}; give one path per {self.placeholder}"
            )
        self.used += 1
        return f"{self.key}[{self.used - 1}]", self.paths[self.used - 1]

    def check_used(self) -> None:
        if self.used != len(self.paths):
            raise RecordError(
                f"{self.label}: field '{self.key}' holds {len(self.paths)} paths but the user turns ask for {self.used} "
                f"({self.placeholder} placeholders or parts without a path); make the counts match"
            )


def _read_user_turn(
    content: Any, where: str, label: str, prompt: _Prompt, lists: dict[str, _MediaList], root: Path, sizes: dict[Path, int]
) -> None:
    prompt.turns.append("")
    if isinstance(content, str):
        start = 0
        for match in _PLACEHOLDER.finditer(content):
            prompt.add_text(content[start : match.start()])
            media_kind = next(k for k, p in PLACEHOLDERS.items() if p == match.group())
            field_name, raw = lists[media_kind].take(where)
            prompt.add_media(media_kind, _media_file(field_name, raw, label, root, sizes), {})
            start = match.end()
        prompt.add_text(content[start:])
        return
    if not isinstance(content, list):
        raise RecordError(f"{label}: field '{where}.content' must be a string or a list of parts, got a {kind(content)}")
    for position, part in enumerate(content):
        part_where = f"{where}.content[{position}]"
        part = _present(part)
        part_type = part.get("type") if isinstance(part, dict) else None
        if part_type == "text" and isinstance(part.get("text"), str):
            prompt.add_text(part["text"])
        elif part_type in MEDIA_KINDS:
            overrides = _part_overrides(part, part_type, part_where, label)
            if part_type in part:
                field_name, raw = f"{part_where}.{part_type}", part[part_type]
            else:
                field_name, raw = lists[part_type].take(part_where)
            prompt.add_media(part_type, _media_file(field_name, raw, label, root, sizes), overrides)
        else:
            raise RecordError(
                f"{label}: field '{part_where}' must be {{\"type\": \"text\", \"text\": ...}}, {{\"type\": \"image\", "
                f"\"image\": path}} or {{\"type\": \"video\", \"video\": path}}, got {short(part)}"
            )


def _present(part: Any) -> Any:
    """A content part without its null keys (datasets saved from Arrow tables fill absent keys with null)."""
    return {k: v for k, v in part.items() if v is not None} if isinstance(part, dict) else part


def _part_overrides(part: dict[str, Any], part_type: str, where: str, label: str) -> dict[str, float]:
    """A video part's sampling keys; an image part takes none (``data.image`` sizes every image)."""
    keys = set(part) - {"type", part_type}
    allowed = MEDIA_OVERRIDE_KEYS if part_type == "video" else frozenset()
    unknown = sorted(keys - allowed)
    if unknown:
        supported = f"a video part takes {', '.join(sorted(MEDIA_OVERRIDE_KEYS))}" if part_type == "video" else (
            "image parts take no sampling keys; data.image.min_pixels / max_pixels size every image"
        )
        raise RecordError(f"{label}: field '{where}' has unsupported key(s) {', '.join(unknown)}; {supported}")
    overrides = {}
    for key in sorted(keys):
        value = part[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise RecordError(f"{label}: field '{where}.{key}' must be a positive number, got {short(value)}")
        overrides[key] = value
    return overrides


def _media_file(where: str, raw: Any, label: str, root: Path, sizes: dict[Path, int]) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        hint = " (a list of frames is not supported: give a video file)" if isinstance(raw, list) else ""
        raise RecordError(f"{label}: field '{where}' must be a file path, got {short(raw)}{hint}")
    if re.match(r"(https?|data):", raw):
        raise RecordError(f"{label}: field '{where}' is a URL or inline data ({short(raw)}); save the file and give its path")
    local = raw.removeprefix("file://")
    hint = "the folder the record's media paths are relative to (default: the dataset file's folder)"
    return checked_media_file(media_path(local, root), root=root, key=where, label=label, hint=hint, sizes=sizes, raw=local)


def _text_only(content: Any, where: str, label: str) -> str:
    """The text of a system or assistant turn, which holds no media."""
    if isinstance(content, str):
        if _PLACEHOLDER.search(content):
            raise RecordError(f"{label}: field '{where}' holds a media placeholder; only user turns may hold media")
        return content
    if isinstance(content, list):
        parts = [_present(p) for p in content]
        if all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in parts):
            return "".join(p["text"] for p in parts)
        raise RecordError(f"{label}: field '{where}.content' must hold only text parts; only user turns may hold media")
    raise RecordError(f"{label}: field '{where}' must be a string or a list of text parts, got a {kind(content)}")


def _ground_truth(record: dict[str, Any], target: str | None, key: str, label: str) -> str:
    for name in ("solution", "answer"):
        value = record.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RecordError(f"{label}: field '{name}' must be a string or a number, got a {kind(value)}")
        answer = answer_or_text(str(value))
        if not answer:
            raise RecordError(f"{label}: field '{name}' is empty; give the ground-truth answer")
        return answer
    if target is None:
        raise RecordError(
            f"{label}: field 'solution' is missing and '{key}' has no assistant turn; give the ground truth as "
            "solution (or answer), or end the conversation with the assistant's answer"
        )
    answer = answer_or_text(target)
    if not answer:
        raise RecordError(f"{label}: field '{key}': the assistant turn is empty; it is the answer")
    return answer


def _problem_type(record: dict[str, Any], answer: str, problem: str, label: str) -> str:
    problem_type = record.get("problem_type")
    letters = _listed_option_letters(problem)
    if problem_type is None:
        if _LETTERS.fullmatch(answer) and letters and all(a.strip() in letters for a in answer.split(",")):
            return "multi-answer" if "," in answer else "multiple choice"
        return "free-form"
    if problem_type not in PROBLEM_TYPES:
        raise RecordError(
            f"{label}: field 'problem_type' is {short(problem_type)}, not a known type; "
            f"use one of {', '.join(repr(t) for t in PROBLEM_TYPES)}"
        )
    if problem_type in _UNSUPPORTED_TYPES:
        raise RecordError(
            f"{label}: field 'problem_type' is {problem_type!r}, whose boxes must be converted to the resized image; "
            "write such records in the Video-R1 format (problem, solution, path)"
        )
    pattern = {"multiple choice": re.compile(r"[A-Z]"), "multi-answer": _LETTERS}.get(problem_type)
    if pattern is not None and not pattern.fullmatch(answer):
        raise RecordError(
            f"{label}: field 'problem_type' is {problem_type!r} but the answer {short(answer)} is not option letters"
        )
    return problem_type


def _listed_option_letters(problem: str) -> tuple[str, ...]:
    """Letters of option lines in the prompt (``A. red``, ``(B) blue``), consecutive from A; at least two."""
    letters: list[str] = []
    for line in problem.split("\n"):
        match = _OPTION_LINE.match(line)
        if match and match.group(1) == chr(ord("A") + len(letters)):
            letters.append(match.group(1))
    return tuple(letters) if len(letters) >= 2 else ()


def _media(
    media: list[tuple[str, Path, dict[str, float]]], key: str, label: str
) -> tuple[str, Path | None, tuple[Path, ...], dict[str, float]]:
    """``(data_type, media_path, extra_images, media_overrides)``: the first item, then images only."""
    if not media:
        return "text", None, (), {}
    (first_kind, first, overrides), rest = media[0], media[1:]
    if any(media_kind == "video" for media_kind, _, _ in rest):
        raise RecordError(
            f"{label}: field '{key}': a prompt holds at most one video, and only as its first media item "
            "(images may follow it); split the record or drop the extra video"
        )
    return first_kind, first, tuple(path for _, path, _ in rest), overrides
