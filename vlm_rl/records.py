"""Load the record files a config names (any supported format: Video-R1, SEED-Bench-R1, MMVU) and check
every video and image before any model work starts."""

from __future__ import annotations

from data_pipelines.formats import load_benchmark_samples
from data_pipelines.record_files import MediaNotFoundError
from data_pipelines.schema import Sample
from vlm_rl.media import ImageSampling, MediaError, probe_video, read_image


def load_records(
    files: list[str], media_root: str | None, *, limit: int | None = None, reader: str = "auto"
) -> list[Sample]:
    """Read every file, then probe every video and image, so bad input stops the run before training.

    `files` and `media_root` come from the config (``data.*_files``, ``data.media_root``), so a missing
    media file's error tells the user to set ``data.media_root=``.
    """
    samples: list[Sample] = []
    try:
        for file in files:
            samples.extend(load_benchmark_samples(file, media_root=media_root))
    except MediaNotFoundError as err:
        raise err.naming("data.media_root=") from None
    if limit is not None:
        samples = samples[:limit]
    for sample in samples:
        try:
            if sample.data_type == "video":
                probe_video(sample.media_path, reader)
            elif sample.data_type == "image":
                read_image(sample.media_path, ImageSampling())
            for path in sample.extra_images:
                read_image(path, ImageSampling())
        except MediaError as err:
            raise MediaError(f"{sample.origin}: {err}") from None
    return samples
