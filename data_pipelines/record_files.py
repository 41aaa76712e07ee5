"""Reading and writing record files: a JSON list (``.json``) or JSON Lines (``.jsonl``), and finding the
media files records name.

Every reader and offline pipeline goes through these, so their errors label records the same way
(``"x.json record 6"``, ``"x.jsonl line 7"``) and their outputs are written atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from data_pipelines.schema import RecordError, Sample


SampleConverter = Callable[[Any, str, str, Path, dict[Path, int]], "Sample | None"]
"""``convert(record, label, origin, media_root, sizes) -> Sample`` (None leaves the record out)."""


def read_samples(
    path: str | Path, convert: SampleConverter, *, media_root: str | Path | None, limit: int | None, kind: str = ""
) -> list[Sample]:
    """The first `limit` (default all) samples `convert` makes of the records of `path`.

    Media paths are taken under `media_root` (default: the file's folder); `sizes` caches the checked size
    of each media file across records. `Sample.origin` is ``"<path>#<n>"``. RecordError when no record
    gives a sample (`kind`, e.g. ``"multiple-choice"``, names what was kept).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of records or None, got {limit}")
    path = Path(path)
    root = Path(media_root) if media_root is not None else path.parent
    sizes: dict[Path, int] = {}
    samples: list[Sample] = []
    for label, index, record in iter_records(path):
        sample = convert(record, label, f"{path}#{index}", root, sizes)
        if sample is None:
            continue
        samples.append(sample)
        if limit is not None and len(samples) >= limit:
            break
    if not samples:
        kept = f" {kind}" if kind else ""
        raise RecordError(f"{path}: the dataset has no{kept} records; point the loader at a file with at least one record")
    return samples


def iter_records(path: Path) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(label, index, record)``: label like ``"x.json record 6"`` or ``"x.jsonl line 7"``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(f"{path}: dataset file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(
            f"{path}: cannot read the dataset file ({exc}); it must be UTF-8 JSON or JSON Lines"
        ) from None
    if not text.strip():
        return
    if path.suffix == ".jsonl" or _json_lines_in_disguise(text):
        yield from _json_lines(path, text)
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"{path} line {exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno}); "
            "a .json dataset must be one list of record objects"
        ) from None
    if not isinstance(data, list):
        raise RecordError(
            f"{path}: top level is a JSON {kind(data)}, expected a list of records; wrap the records in [...] "
            "or write one object per line to a .jsonl file"
        )
    for index, record in enumerate(data):
        yield f"{path} record {index}", index, record


def _json_lines_in_disguise(text: str) -> bool:
    """A ``.json`` file holding JSON Lines (one object per line), as some datasets ship."""
    if not text.lstrip().startswith("{"):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.msg == "Extra data"
    return False


def _json_lines(path: Path, text: str) -> Iterator[tuple[str, int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(
                f"{path} line {number}: invalid JSON ({exc.msg}, column {exc.colno}); "
                "a .jsonl dataset holds one JSON object per line"
            ) from None
        yield f"{path} line {number}", number, record


def write_records(path: Path, records: Iterable[Any]) -> None:
    """Write `records` as JSON Lines (``.jsonl``) or one JSON list (any other suffix), replacing `path` in one step."""
    records = list(records)
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class MediaNotFoundError(RecordError):
    """A record's media file does not exist. The message says how to point the reader at the right media
    root, in the words of the entry point that was used: `setting` is ``"media_root="`` for the Python
    readers; a command line re-raises with its own (``"--media-root "``, ``"data.media_root="``) through
    `naming`."""

    def __init__(
        self, label: str, key: str, path: Path, root: Path, hint: str, *, also: str = "", setting: str = "media_root="
    ) -> None:
        self.label, self.key, self.path, self.root, self.hint, self.also = label, key, path, root, hint, also
        super().__init__(
            f"{label}: field '{key}': media file {path} not found{also}; pass {setting}DIR where DIR is {hint} "
            f"(now {root.absolute()})"
        )

    def naming(self, setting: str) -> MediaNotFoundError:
        """The same error, telling the user to set `setting` (e.g. ``"--media-root "``)."""
        return MediaNotFoundError(
            self.label, self.key, self.path, self.root, self.hint, also=self.also, setting=setting
        )


def media_path(raw: str, root: Path) -> Path:
    """Where a record's media path points: an absolute path that exists is kept; any other path, with a
    leading ``./`` or ``/`` dropped, is taken under `root` (Video-R1's ``./Source/clip.mp4``, TW-GRPO's
    ``/NExTQA/videos/x.mp4``)."""
    given = Path(raw)
    if given.is_absolute() and given.exists():
        return given
    return (root / (raw[2:] if raw.startswith("./") else raw.lstrip("/"))).absolute()


def checked_media_file(
    path: Path, *, root: Path, key: str, label: str, hint: str, sizes: dict[Path, int], raw: str | None = None
) -> Path:
    """`path` after checking it is an existing non-empty file; RecordError naming `label` and `key` otherwise.

    `root` and `hint` (what the media root must be) go into the not-found message, with `raw`, the path as
    the record wrote it, when that was absolute. `sizes` caches file sizes across records.
    """
    if path not in sizes:
        if not path.exists():
            also = f" (nor at {raw} itself)" if raw is not None and Path(raw).is_absolute() else ""
            raise MediaNotFoundError(label, key, path, root, hint, also=also)
        if not path.is_file():
            raise RecordError(f"{label}: field '{key}': {path} is a directory, not a media file; name the file")
        sizes[path] = path.stat().st_size
    if sizes[path] == 0:
        raise RecordError(f"{label}: field '{key}': media file {path} is empty (0 bytes); re-download or regenerate it")
    return path


def kind(value: Any) -> str:
    """The JSON name of `value`'s type ("object", "list", "string", ...)."""
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def short(value: Any, width: int = 60) -> str:
    """A one-line repr of `value`, cut to `width` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def required_text(record: dict[str, Any], key: str, label: str, why: str) -> str:
    """``record[key]`` as a non-empty string, or a RecordError naming `label` and `key` (`why` says what it is for)."""
    value = record.get(key)
    if value is None:
        raise RecordError(f"{label}: field '{key}' is missing; {why}")
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{label}: field '{key}' must be a non-empty string, got {short(value)}")
    return value
