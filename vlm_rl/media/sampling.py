"""Frame sampling and resize rules for video and image inputs, with qwen-vl-utils 0.0.14 semantics.

Every rule here reproduces ``qwen_vl_utils/vision_process.py`` (PyPI ``qwen-vl-utils`` 0.0.14) for the
Qwen2.5-VL geometry (14 px patches, 2x2 merge, so a resize factor of 28; temporal patch 2); the unit tests
compare them against the library's own functions. The image resize rule ``smart_resize`` lives in
`data_pipelines.image_size` (the dataset readers convert boxes with it) and is re-exported here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from data_pipelines.image_size import MAX_ASPECT_RATIO, smart_resize

__all__ = [
    "MAX_ASPECT_RATIO",
    "VIDEO_FRAME_MAX_TOKENS",
    "ImageSampling",
    "VideoSampling",
    "frame_indices",
    "frame_pixel_budget",
    "num_frames",
    "smart_resize",
]

VIDEO_FRAME_MAX_TOKENS = 768
"""qwen-vl-utils ``VIDEO_MAX_TOKEN_NUM``: the hard per-frame cap is this many ``factor x factor`` cells."""

_OVERRIDE_KEYS = ("fps", "nframes", "min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class VideoSampling:
    """How frames are picked from a video and how large each frame may be.

    Exactly one of ``fps`` (frames per second of video, bounded by ``min_frames``/``max_frames``) and
    ``nframes`` (a fixed count) is set; pass ``fps=None`` with ``nframes``. Pixel fields are per frame except
    ``total_pixels``, the budget for the whole clip. Defaults are qwen-vl-utils 0.0.14's (FPS 2.0,
    FPS_MIN_FRAMES 4, FPS_MAX_FRAMES 768, 128/768 tokens of 28x28 per frame, MODEL_SEQ_LEN 128000 * 28^2 * 0.9
    in total, FRAME_FACTOR 2). ``max_pixels`` can only lower the per-frame cap of ``frame_pixel_budget``.
    """

    fps: float | None = 2.0
    nframes: int | None = None
    min_frames: int = 4
    max_frames: int = 768
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    total_pixels: int = int(128000 * 28 * 28 * 0.9)
    image_factor: int = 28
    frame_factor: int = 2

    def __post_init__(self) -> None:
        if (self.fps is None) == (self.nframes is None):
            raise ValueError(
                f"set exactly one of fps and nframes, got fps={self.fps!r}, nframes={self.nframes!r} "
                "(use fps=None with nframes, or with_overrides({'nframes': n}))"
            )
        if self.fps is not None:
            if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)):
                raise ValueError(f"fps must be a number, got {self.fps!r}")
            if not (math.isfinite(self.fps) and self.fps > 0):
                raise ValueError(f"fps must be a positive finite number, got {self.fps}")
        _check_int("frame_factor", self.frame_factor, 1)
        _check_int("image_factor", self.image_factor, 1)
        if self.nframes is not None:
            _check_int("nframes", self.nframes, self.frame_factor)
        _check_int("min_frames", self.min_frames, 1)
        _check_int("max_frames", self.max_frames, self.frame_factor)
        if self.min_frames > self.max_frames:
            raise ValueError(f"min_frames ({self.min_frames}) must be <= max_frames ({self.max_frames})")
        _check_int("min_pixels", self.min_pixels, 1)
        _check_int("max_pixels", self.max_pixels, 1)
        _check_int("total_pixels", self.total_pixels, 1)
        if self.min_pixels > self.max_pixels:
            raise ValueError(
                f"min_pixels ({self.min_pixels}) must be <= max_pixels ({self.max_pixels}); the video min_pixels "
                f"default is 128*28*28 = {128 * 28 * 28}, so lower min_pixels together with max_pixels"
            )

    def with_overrides(self, overrides: Mapping[str, Any]) -> VideoSampling:
        """Return a copy with per-sample overrides applied (qwen-vl-utils message keys).

        Keys: fps, nframes, min_frames, max_frames, min_pixels, max_pixels, total_pixels; ``None`` values are
        ignored. Overriding ``fps`` clears ``nframes`` and vice versa; giving both is an error.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - set(_OVERRIDE_KEYS))
        if unknown:
            raise ValueError(f"unknown video sampling override(s) {unknown}; allowed: {list(_OVERRIDE_KEYS)}")
        if "fps" in given and "nframes" in given:
            raise ValueError("a video sample may set fps or nframes, not both")
        if "fps" in given:
            given["nframes"] = None
        elif "nframes" in given:
            given["fps"] = None
        return dataclasses.replace(self, **given)


@dataclass(frozen=True)
class ImageSampling:
    """Pixel bounds for images: qwen-vl-utils 0.0.14 defaults of 4 and 16384 tokens of 28x28."""

    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 16384 * 28 * 28
    factor: int = 28

    def __post_init__(self) -> None:
        _check_int("min_pixels", self.min_pixels, 1)
        _check_int("max_pixels", self.max_pixels, 1)
        _check_int("factor", self.factor, 1)
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels ({self.min_pixels}) must be <= max_pixels ({self.max_pixels})")


def num_frames(sampling: VideoSampling, total_frames: int, video_fps: float) -> int:
    """Number of frames to sample: qwen-vl-utils ``smart_nframes``.

    With ``nframes``: round it to a multiple of ``frame_factor`` (half-to-even). With ``fps``:
    ``total_frames / video_fps * fps`` clamped to [ceil(min_frames), floor(max_frames)] (each to a multiple of
    ``frame_factor``) and to ``total_frames``, then floored to a multiple. Raises ValueError unless the result
    lies in [frame_factor, total_frames] (e.g. a 1-frame video, or nframes above the frame count).
    """
    if total_frames <= 0:
        raise ValueError(f"total_frames must be positive, got {total_frames}")
    f = sampling.frame_factor
    if sampling.nframes is not None:
        n = round(sampling.nframes / f) * f
    else:
        if not video_fps > 0:
            raise ValueError(f"video fps must be positive, got {video_fps}")
        lo = math.ceil(sampling.min_frames / f) * f
        hi = math.floor(sampling.max_frames / f) * f
        wanted = total_frames / video_fps * sampling.fps
        n = math.floor(min(max(wanted, lo), hi, total_frames) / f) * f
    if not f <= n <= total_frames:
        raise ValueError(f"number of sampled frames must lie in [{f}, {total_frames}], got {n}")
    return n


def frame_indices(n: int, total_frames: int) -> list[int]:
    """Indices of ``n`` frames spread uniformly over ``total_frames``.

    qwen-vl-utils: ``torch.linspace(0, total_frames - 1, n).round()`` in float32 (round half to even), so the
    first and last frames are always included; as there, float32 can repeat an index when ``n`` is close to
    ``total_frames`` on videos of thousands of frames.
    """
    if not 1 <= n <= total_frames:
        raise ValueError(f"n must lie in [1, {total_frames}], got {n}")
    return torch.linspace(0, total_frames - 1, n, dtype=torch.float32).round().long().tolist()


def frame_pixel_budget(sampling: VideoSampling, nframes: int) -> tuple[int, float]:
    """Per-frame (min_pixels, max_pixels) for a clip of ``nframes`` frames, for ``smart_resize``.

    qwen-vl-utils ``fetch_video``: ``max = max(min(768 * factor^2, total_pixels / nframes * frame_factor),
    int(min_pixels * 1.05))``, then ``min(sampling.max_pixels, max)`` (a user max_pixels only lowers it). The
    max is left unrounded (it may be fractional) because ``smart_resize`` divides by it.
    """
    if nframes <= 0:
        raise ValueError(f"nframes must be positive, got {nframes}")
    hard_cap = VIDEO_FRAME_MAX_TOKENS * sampling.image_factor**2
    cap = max(
        min(hard_cap, sampling.total_pixels / nframes * sampling.frame_factor),
        int(sampling.min_pixels * 1.05),
    )
    return sampling.min_pixels, min(sampling.max_pixels, cap)
