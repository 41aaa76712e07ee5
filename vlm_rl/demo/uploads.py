"""Checks on an uploaded file before anything decodes it for the model: kind, size and video duration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from vlm_rl.demo.settings import DemoConfig, DemoError
from vlm_rl.media import probe_video

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def media_kind(path: Path) -> Literal["video", "image"]:
    """ "video" or "image" from the file name; DemoError for any other suffix."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise DemoError(f"{path.name}: not a video or an image (accepted: {' '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)})")


def check_upload(path: Path, config: DemoConfig) -> Literal["video", "image"]:
    """The file's kind, after checking its size and, for a video, that it decodes and is short enough.

    Raises DemoError for a file over the limits and MediaError for one that does not decode.
    """
    kind = media_kind(path)
    size = path.stat().st_size
    if size > config.max_upload_bytes:
        raise DemoError(
            f"{path.name} is {size / 2**20:.3g} MB; this demo accepts files up to {config.max_upload_mb:g} MB"
        )
    if kind == "video":
        info = probe_video(path)
        seconds = info.total_frames / info.fps
        if seconds > config.max_video_seconds:
            raise DemoError(
                f"{path.name} lasts {seconds:.1f} s; this demo accepts videos up to {config.max_video_seconds:g} s"
            )
    return kind
