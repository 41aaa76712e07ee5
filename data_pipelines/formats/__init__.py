"""Readers that turn dataset files into `Sample` records, and a dispatcher that picks one by record shape."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_pipelines.formats.hf_dataset import DatasetColumns, is_hf_dataset, load_hf_dataset
from data_pipelines.formats.chat_messages import load_chat_messages
from data_pipelines.formats.mmvu import load_mmvu
from data_pipelines.formats.seed_bench_r1 import load_seed_bench_r1
from data_pipelines.formats.timesearch_r import load_timesearch_r
from data_pipelines.formats.video_r1 import load_dataset_files, load_samples
from data_pipelines.formats.vlm_r1 import load_vlm_r1
from data_pipelines.record_files import iter_records
from data_pipelines.schema import RecordError, Sample

READERS: dict[str, Callable[..., list[Sample]]] = {
    "video_r1": load_samples,
    "seed_bench_r1": load_seed_bench_r1,
    "mmvu": load_mmvu,
    "timesearch_r": load_timesearch_r,
    "vlm_r1": load_vlm_r1,
    "chat_messages": load_chat_messages,
}
"""Record format → reader; every reader takes ``(path, *, media_root=None, limit=None, ...)``."""

_SEED_BENCH_R1_KEYS = frozenset(
    {"golden_choice_idx", "negative_answers", "task_progress_metadata", "current_observation_basename"}
)


def record_format(record: Any) -> str | None:
    """The `READERS` key for one record's shape, or None when no reader fits.

    Checked in this order: ``messages``, or ``conversations`` with ``images`` / ``videos`` (and no ``image``),
    mean chat records (qwen-vl-utils / TRL, LLaMA-Factory ShareGPT); ``problem_type`` (or TW-GRPO's ``problem`` +
    ``solution``) means Video-R1;
    SEED-Bench-R1's own fields mean SEED-Bench-R1 (training or validation, told apart by
    ``golden_choice_idx`` in its reader); ``question_type`` + ``choices`` mean MMVU; ``question`` +
    ``target`` mean TimeSearch-R; ``image`` + ``conversations`` mean VLM-R1's referring-expression records.
    """
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("messages"), list) or (
        "conversations" in record and "image" not in record and {"images", "videos"} & record.keys()
    ):
        return "chat_messages"
    if record.get("problem_type") is not None or {"problem", "solution"} <= record.keys():
        return "video_r1"
    if _SEED_BENCH_R1_KEYS & record.keys():
        return "seed_bench_r1"
    if {"question_type", "choices"} <= record.keys():
        return "mmvu"
    if {"question", "target"} <= record.keys():
        return "timesearch_r"
    if {"image", "conversations"} <= record.keys():
        return "vlm_r1"
    return None


def load_benchmark_samples(
    path: str | Path,
    *,
    media_root: str | Path | None = None,
    limit: int | None = None,
    image_pixels: tuple[int, int] | None = None,
    columns: DatasetColumns = DatasetColumns(),
    **reader_kwargs: Any,
) -> list[Sample]:
    """Read `path` with the reader its first record's shape calls for (see `record_format`).

    A Hugging Face dataset (a parquet or arrow file, or a dataset folder; see `is_hf_dataset`) is read by
    `load_hf_dataset` with the column names `columns` (``data.prompt_key`` and friends); `columns` is ignored
    for every other format.

    A file holds one format; a later record of another shape fails in that reader, naming its field.
    `reader_kwargs` go to the chosen reader (``seed=`` for SEED-Bench-R1, ``multiple_choice_only=``
    for MMVU, ``image_min_pixels=`` / ``image_max_pixels=`` for Video-R1 and VLM-R1, whose box answers
    follow the image resize); one it does not take is a TypeError. `image_pixels` = (min, max) pixels of the
    resized images (``data.image``) goes to the readers whose answers depend on it and is ignored by the others.
    Raises RecordError for an empty file or a first record of unknown shape.
    """
    if is_hf_dataset(path):
        pixels = {} if image_pixels is None else {"image_min_pixels": image_pixels[0], "image_max_pixels": image_pixels[1]}
        return load_hf_dataset(path, media_root=media_root, limit=limit, columns=columns, **pixels, **reader_kwargs)
    path = Path(path)
    first = next(iter_records(path), None)
    if first is None:
        raise RecordError(f"{path}: the dataset has no records; point the loader at a file with at least one record")
    label, _, record = first
    name = record_format(record)
    if name is None:
        keys = ", ".join(sorted(record)) if isinstance(record, dict) else f"not an object but {type(record).__name__}"
        raise RecordError(
            f"{label}: unknown record shape ({keys}); expected Video-R1 (problem_type or problem + solution), "
            "SEED-Bench-R1 (golden_choice_idx, negative_answers, task_progress_metadata or "
            "current_observation_basename), MMVU (question_type + choices), TimeSearch-R (question + target), "
            "VLM-R1 (image + conversations) or chat messages (messages, or conversations + images|videos)"
        )
    reader = READERS[name]
    parameters = inspect.signature(reader).parameters
    if image_pixels is not None and "image_min_pixels" in parameters:
        reader_kwargs = {**reader_kwargs, "image_min_pixels": image_pixels[0], "image_max_pixels": image_pixels[1]}
    unknown = sorted(reader_kwargs.keys() - parameters.keys())
    if unknown:
        raise TypeError(f"{path} holds {name} records; its reader {reader.__name__} takes no {', '.join(unknown)}")
    return reader(path, media_root=media_root, limit=limit, **reader_kwargs)


__all__ = [
    "READERS",
    "DatasetColumns",
    "is_hf_dataset",
    "load_hf_dataset",
    "load_benchmark_samples",
    "load_chat_messages",
    "load_dataset_files",
    "load_mmvu",
    "load_samples",
    "load_seed_bench_r1",
    "load_timesearch_r",
    "load_vlm_r1",
    "record_format",
]
