"""Reader for Hugging Face datasets laid out as EasyR1 uses them, read row by row with the `datasets` library.

Accepted paths: a ``.parquet`` or ``.arrow`` file; a folder written by ``Dataset.save_to_disk`` (or
``DatasetDict.save_to_disk``); a folder of parquet or arrow files as ``load_dataset`` reads them (split files
like ``data/train-00000-of-00001.parquet``). ``PATH@SPLIT`` picks a split (default ``train``, or the only one).

A row has a question column (``prompt``), a ground-truth column (``answer``), and optionally images
(``images``: encoded bytes, as the `datasets` Image feature stores them, or paths) and videos (``videos``:
paths); `DatasetColumns` names the columns (``data.prompt_key`` and friends). EasyR1's ``<image>`` and
``<video>`` placeholders are removed from the question: the media are shown first, as for every other format.
Image bytes are written once to a content-addressed cache beside the dataset (``.vlm_rl_images/<sha256>.<ext>``,
or ``~/.cache/vlm-rl/images`` when that folder is read-only), so the rest of the pipeline sees image files.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from data_pipelines.completion_format import answer_or_text
from data_pipelines.formats.box_answers import BOX_TYPES, ImageBoxes
from data_pipelines.image_size import IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS
from data_pipelines.record_files import checked_media_file, media_path, short
from data_pipelines.schema import PROBLEM_TYPES, RecordError, Sample, option_letter

DATASET_SUFFIXES: frozenset[str] = frozenset({".parquet", ".arrow"})
IMAGE_CACHE_NAME = ".vlm_rl_images"
"""Folder beside the dataset that decoded image bytes are written to."""

_PLACEHOLDER = re.compile(r"<(?:image|video)>")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_OPTION_LINE = re.compile(r"\s*\(?([A-Z])[.:)]?\s+\S")
_SAVED_MARKERS = ("dataset_dict.json", "state.json")
_FORMAT_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tiff"}
_LIKELY_COLUMNS = {
    "prompt_key": ("problem", "prompt", "question", "query", "instruction"),
    "answer_key": ("answer", "solution", "ground_truth", "label"),
    "image_key": ("images", "image"),
    "video_key": ("videos", "video"),
}
_KNOWN_COLUMNS = frozenset({"problem_type", "options", "id", "problem_id"})


@dataclass(frozen=True)
class DatasetColumns:
    """Column names of a Hugging Face dataset's rows (EasyR1's defaults; ``data.*_key`` in a config)."""

    prompt_key: str = "prompt"
    answer_key: str = "answer"
    image_key: str = "images"
    video_key: str = "videos"


def split_path(path: str | Path) -> tuple[Path, str | None]:
    """``(dataset path, split)`` of ``PATH`` or ``PATH@SPLIT`` (split None when not given)."""
    given = Path(path)
    if not given.exists() and "@" in given.name:
        base, _, split = str(given).rpartition("@")
        if Path(base).exists() and split:
            return Path(base), split
    return given, None


def is_hf_dataset(path: str | Path) -> bool:
    """Whether `path` (optionally ``@SPLIT``) is a parquet/arrow file or a folder of a saved or parquet/arrow dataset."""
    base, _ = split_path(path)
    if base.is_file():
        return base.suffix.lower() in DATASET_SUFFIXES
    if not base.is_dir():
        return False
    if any((base / name).is_file() for name in _SAVED_MARKERS):
        return True
    return bool(_data_files(base))


def load_hf_dataset(
    path: str | Path,
    *,
    media_root: str | Path | None = None,
    limit: int | None = None,
    columns: DatasetColumns = DatasetColumns(),
    image_min_pixels: int = IMAGE_MIN_PIXELS,
    image_max_pixels: int = IMAGE_MAX_PIXELS,
) -> list[Sample]:
    """The first `limit` (default all) rows of the dataset at `path` as samples, read one row at a time.

    The answer becomes the solution ``<answer>{answer}</answer>``; the problem type is the row's
    ``problem_type`` column when it has one, else multiple choice (one capital letter answer and lettered
    options, in an ``options`` column or on lines of the question), numerical (a plain number) or free-form.
    Of several images the first is the sample's image, the rest `Sample.extra_images`; a video comes first.
    Media paths are taken under `media_root` (default: the dataset folder, or the file's folder).
    `Sample.origin` is ``"<path>#<row>"`` (0-based, `path` as given, with any ``@SPLIT``). RecordError naming
    the file, the row and the column.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of records or None, got {limit}")
    base, split = split_path(path)
    folder = base if base.is_dir() else base.parent
    reader = _RowReader(
        columns,
        root=Path(media_root) if media_root is not None else folder,
        cache=ImageCache(image_cache_folder(folder).absolute()),
        boxes=ImageBoxes(min_pixels=image_min_pixels, max_pixels=image_max_pixels),
    )
    samples: list[Sample] = []
    for index, row in enumerate(_rows(base, split)):
        label = f"{path} row {index}"
        if index == 0:
            _check_columns(row, columns, label)
        samples.append(reader.sample(row, label=label, origin=f"{path}#{index}"))
        if limit is not None and len(samples) >= limit:
            break
    if not samples:
        raise RecordError(f"{path}: the dataset has no rows; point the loader at a dataset with at least one row")
    return samples


# --- opening the dataset ------------------------------------------------------------------------


def _data_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix.lower() in DATASET_SUFFIXES and not _hidden(p, folder)]


def _hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def _rows(base: Path, split: str | None) -> Iterator[dict[str, Any]]:
    """The rows of the chosen split, images left encoded (``{"bytes", "path"}``)."""
    import datasets
    import pyarrow

    try:
        if base.is_file():
            if split not in (None, "train"):
                raise RecordError(f"{base}@{split}: a single {base.suffix} file has one split, train; drop @{split}")
            dataset = datasets.load_dataset(base.suffix[1:].lower(), data_files=str(base), split="train", streaming=True)
        elif any((base / name).is_file() for name in _SAVED_MARKERS):
            saved = datasets.load_from_disk(str(base))
            if isinstance(saved, datasets.DatasetDict):
                saved = _chosen_split(saved, split, base)
            elif split is not None:
                raise RecordError(f"{base}@{split}: the saved dataset has no splits; drop @{split}")
            dataset = saved.to_iterable_dataset()
        else:
            builder = "parquet" if any(p.suffix.lower() == ".parquet" for p in _data_files(base)) else "arrow"
            dataset = _chosen_split(datasets.load_dataset(builder, data_dir=str(base), streaming=True), split, base)
        yield from dataset.decode(False)
    except (OSError, pyarrow.ArrowException) as exc:
        raise RecordError(f"{base}: cannot read the dataset ({exc}); check that it is a Hugging Face dataset") from None


def _chosen_split(splits: Any, split: str | None, base: Path) -> Any:
    names = list(splits)
    if split is None:
        if "train" in splits or len(names) == 1:
            return splits["train" if "train" in splits else names[0]]
        raise RecordError(f"{base}: the dataset has splits {', '.join(names)} and no train split; write {base}@{names[0]}")
    if split not in splits:
        raise RecordError(f"{base}@{split}: no split {split!r}; the dataset has {', '.join(names)}")
    return splits[split]


def _check_columns(row: dict[str, Any], columns: DatasetColumns, label: str) -> None:
    """RecordError when a question or answer column is missing, or the media columns look misnamed."""
    present = ", ".join(row)
    for field in ("prompt_key", "answer_key", "image_key", "video_key"):
        key = getattr(columns, field)
        if key in row:
            continue
        guess = next((name for name in _LIKELY_COLUMNS[field] if name in row), None)
        if field in ("image_key", "video_key") and guess is None:
            continue
        fix = f"set data.{field}={guess}" if guess else f"set data.{field} to the column that holds it"
        raise RecordError(f"{label} has no column {key!r}; its columns are {present}: {fix}")


# --- one row ------------------------------------------------------------------------------------


def image_cache_folder(dataset_folder: Path) -> Path:
    """``<dataset folder>/.vlm_rl_images`` when it can be written, else ``~/.cache/vlm-rl/images``."""
    beside = dataset_folder / IMAGE_CACHE_NAME
    if os.access(beside if beside.is_dir() else dataset_folder, os.W_OK):
        return beside
    return Path.home() / ".cache" / "vlm-rl" / "images"


class ImageCache:
    """Image bytes → a file named by their SHA-256, written once (atomically) and reused after."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_of(self, data: bytes, *, label: str, key: str) -> Path:
        """The cached file holding `data`; RecordError naming `label` and `key` when PIL cannot decode it."""
        digest = hashlib.sha256(data).hexdigest()
        try:
            with Image.open(io.BytesIO(data)) as image:
                suffix = _FORMAT_SUFFIXES.get(image.format or "", ".png")
                target = self.folder / f"{digest}{suffix}"
                if target.is_file():
                    return target
                image.load()
                if image.format not in _FORMAT_SUFFIXES:
                    buffer = io.BytesIO()
                    image.convert("RGB").save(buffer, "PNG")
                    data = buffer.getvalue()
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise RecordError(f"{label}: column '{key}': cannot decode the image bytes ({exc}); re-encode or drop the row") from None
        self._write(target, data)
        return target

    def _write(self, target: Path, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise


class _RowReader:
    """Turns rows into samples: media resolved and checked, images cached, the problem type chosen."""

    def __init__(self, columns: DatasetColumns, *, root: Path, cache: ImageCache, boxes: ImageBoxes) -> None:
        self.columns, self.root, self.cache, self.boxes = columns, root, cache, boxes
        self.sizes: dict[Path, int] = {}

    def sample(self, row: dict[str, Any], *, label: str, origin: str) -> Sample:
        prompt_key, answer_key = self.columns.prompt_key, self.columns.answer_key
        problem = row.get(prompt_key)
        if not isinstance(problem, str) or not _PLACEHOLDER.sub("", problem).strip():
            raise RecordError(
                f"{label}: column '{prompt_key}' must hold the question text, got {short(problem)}; "
                "fix the row or set data.prompt_key"
            )
        problem = _PLACEHOLDER.sub("", problem).strip()
        answer = _answer_text(row.get(answer_key), label, answer_key)
        options = _options(row.get("options"), label)
        problem_type = _problem_type(row.get("problem_type"), answer, options, problem, label)
        images = [self._image(item, label) for item in _items(row.get(self.columns.image_key))]
        videos = [self._video(item, label) for item in _items(row.get(self.columns.video_key))]
        if len(videos) > 1:
            raise RecordError(
                f"{label}: column '{self.columns.video_key}' holds {len(videos)} videos; a row may have one video"
            )
        media = [*videos, *images]
        data_type = "video" if videos else "image" if images else "text"
        extra = {
            key: value for key, value in row.items()
            if key not in _KNOWN_COLUMNS and key not in vars(self.columns).values()
            and isinstance(value, (str, int, float, bool))
        }
        if problem_type in BOX_TYPES:
            if data_type != "image" or len(images) > 1:
                raise RecordError(f"{label}: a {problem_type} row needs exactly one image (its boxes are in image pixels)")
            answer, box_fields = self.boxes.answer(
                answer, problem_type, images[0], label=label, field=answer_key, image_key=self.columns.image_key
            )
            extra.update(box_fields)
        if options and _inline_letters(problem):
            extra["options_in_problem"] = True
        sample_id = row.get("problem_id", row.get("id"))
        return Sample(
            sample_id=origin if sample_id is None else str(sample_id),
            problem=problem,
            problem_type=problem_type,
            data_type=data_type,
            media_path=media[0] if media else None,
            options=options,
            solution=f"<answer>{answer}</answer>",
            answer=answer,
            origin=origin,
            extra=extra,
            extra_images=tuple(media[1:]),
        )

    def _image(self, item: Any, label: str) -> Path:
        key = self.columns.image_key
        data, raw = _encoded(item)
        if data is not None:
            return self.cache.path_of(data, label=label, key=key)
        if raw is None:
            raise RecordError(
                f"{label}: column '{key}' holds {short(item)}; an image is encoded bytes, a path or a "
                '{"bytes", "path"} object'
            )
        return self._media_file(raw, key, label)

    def _video(self, item: Any, label: str) -> Path:
        key = self.columns.video_key
        _, raw = _encoded(item)
        if raw is None:
            raise RecordError(f"{label}: column '{key}' holds {short(item)}; a video is a file path")
        return self._media_file(raw, key, label)

    def _media_file(self, raw: str, key: str, label: str) -> Path:
        hint = "the folder the dataset's media paths are relative to"
        return checked_media_file(
            media_path(raw, self.root), root=self.root, key=key, label=label, hint=hint, sizes=self.sizes, raw=raw
        )


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _encoded(item: Any) -> tuple[bytes | None, str | None]:
    """``(bytes, path)`` of one media item: bytes, a path, or a ``{"bytes", "path"}`` object (bytes win)."""
    if isinstance(item, bytes):
        return item, None
    if isinstance(item, str) and item.strip():
        return None, item
    if isinstance(item, dict):
        data, raw = item.get("bytes"), item.get("path")
        if isinstance(data, bytes) and data:
            return data, None
        if isinstance(raw, str) and raw.strip():
            return None, raw
    return None, None


def _answer_text(value: Any, label: str, key: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(
            f"{label}: column '{key}' must hold the ground truth (text or a number), got {short(value)}; "
            "fix the row or set data.answer_key"
        )
    return answer_or_text(value)


def _options(value: Any, label: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
        raise RecordError(f'{label}: column \'options\' must be a list of strings like ["A. red", "B. blue"], got {short(value)}')
    try:
        [option_letter(o) for o in value]
    except ValueError as exc:
        raise RecordError(f"{label}: column 'options': {exc}; label options like \"A. red\"") from None
    return tuple(value)


def _inline_letters(problem: str) -> set[str]:
    """Letters of lettered options on the lines after the first (``"(A) 3"``, ``"B. 4"``)."""
    return {match.group(1) for line in problem.split("\n")[1:] if (match := _OPTION_LINE.match(line))}


def _problem_type(value: Any, answer: str, options: tuple[str, ...], problem: str, label: str) -> str:
    if value is not None:
        if value not in PROBLEM_TYPES:
            raise RecordError(
                f"{label}: column 'problem_type' is {short(value)}; use one of {', '.join(map(repr, PROBLEM_TYPES))}"
            )
        if value == "multiple choice" and not re.fullmatch(r"[A-Z]", answer):
            raise RecordError(f"{label}: a multiple choice answer must be one option letter, got {short(answer)}")
        return value
    letters = {option_letter(o) for o in options} or _inline_letters(problem)
    if re.fullmatch(r"[A-Z]", answer) and answer in letters and len(letters) >= 2:
        return "multiple choice"
    if _NUMBER.fullmatch(answer):
        return "numerical"
    return "free-form"


__all__ = ["DATASET_SUFFIXES", "DatasetColumns", "ImageCache", "image_cache_folder", "is_hf_dataset", "load_hf_dataset", "split_path"]
