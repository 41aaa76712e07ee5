"""Load the record files a config names (any supported format: Video-R1, SEED-Bench-R1, MMVU, Hugging Face
datasets) and check every video and image before any model work starts."""

from __future__ import annotations

from data_pipelines.formats import DatasetColumns, load_benchmark_samples
from data_pipelines.record_files import MediaNotFoundError
from data_pipelines.schema import Sample
from vlm_rl.config import DataConfig
from vlm_rl.media import ImageSampling, MediaError, probe_video, read_image


def dataset_columns(data: DataConfig) -> DatasetColumns:
    """The Hugging Face dataset columns a config names: ``data.prompt_key``, ``answer_key``, ``image_key``, ``video_key``."""
    return DatasetColumns(data.prompt_key, data.answer_key, data.image_key, data.video_key)


def load_records(
    files: list[str],
    media_root: str | None,
    *,
    limit: int | None = None,
    reader: str = "auto",
    search_fps: float | None = None,
    image: ImageSampling | None = None,
    columns: DatasetColumns = DatasetColumns(),
) -> list[Sample]:
    """Read every file, then probe every video and image, so bad input stops the run before training.

    `files` and `media_root` come from the config (``data.*_files``, ``data.media_root``), so a missing
    media file's error tells the user to set ``data.media_root=``. `image` (``data.image``) is the resize that
    box answers are converted to (default: the readers' own, Qwen2.5-VL's image defaults); `columns` names the
    columns of Hugging Face datasets (`dataset_columns` of the config). Only the first `limit` samples are read.
    With `search_fps` (frame search on), every record must be a video that lasts at least one frame of the
    search cache.
    """
    samples: list[Sample] = []
    pixels = None if image is None else (image.min_pixels, image.max_pixels)
    try:
        for file in files:
            remaining = None if limit is None else limit - len(samples)
            if remaining is not None and remaining < 1:
                break
            samples.extend(
                load_benchmark_samples(file, media_root=media_root, limit=remaining, image_pixels=pixels, columns=columns)
            )
    except MediaNotFoundError as err:
        raise err.naming("data.media_root=") from None
    for sample in samples:
        try:
            if search_fps is not None and sample.data_type != "video":
                raise MediaError(f"frame search needs a video, got data_type {sample.data_type!r}; remove the record or turn search.enabled off")
            if sample.data_type == "video":
                info = probe_video(sample.media_path, reader)
                if search_fps is not None and info.total_frames / info.fps * search_fps < 1:
                    raise MediaError(
                        f"video {sample.media_path} lasts {info.total_frames / info.fps:.3g} s, less than one frame of the "
                        f"search cache at search.cache_fps={search_fps:g}; raise search.cache_fps or remove the record"
                    )
            elif sample.data_type == "image":
                read_image(sample.media_path, ImageSampling())
            for path in sample.extra_images:
                read_image(path, ImageSampling())
        except MediaError as err:
            raise MediaError(f"{sample.origin}: {err}") from None
    return samples
