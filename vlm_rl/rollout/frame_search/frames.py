"""The frame cache `seek_video_frames` selects from: each video decoded once at `cache_fps`, kept in an LRU.

Cache frame j of a video shows time j / fps, where fps is the clip's effective sampling rate (the
requested `cache_fps`, or the source rate when the source has fewer frames than that). Frames are
resized within [min_pixels, max_pixels] with sides that are multiples of 28, as Qwen-VL needs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import torch

from vlm_rl.media import FrameCache, MediaError, ReaderName, VideoSampling, resolve_reader

DEFAULT_MIN_PIXELS = 32 * 28 * 28
DEFAULT_MAX_PIXELS = 256 * 28 * 28
DEFAULT_CACHE_BYTES = 1024 * 2**20


@dataclass(frozen=True, eq=False)
class SearchVideo:
    """One video's cache frames: uint8 ``[T, 3, H, W]`` RGB, shared and read-only.

    `key` identifies the decoded file and sampling (path, mtime, size, sampling, reader), so caches
    of per-frame data (embeddings) can be keyed the same way.
    """

    key: Hashable
    path: str
    frames: torch.Tensor
    fps: float
    duration: float

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]


class SearchFrames:
    """Per-video frame caches at `cache_fps`, decoded once and shared by every rollout and step.

    At most `max_cache_frames` frames per video (longer videos are subsampled uniformly, which lowers
    their fps). `max_bytes` bounds the decoded pixels over all videos (LRU); a single video larger
    than that is decoded on every call, so size it to hold at least the videos of one batch.
    """

    def __init__(
        self,
        cache_fps: float = 2.0,
        *,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_cache_frames: int = 2048,
        max_bytes: int | None = DEFAULT_CACHE_BYTES,
        reader: ReaderName = "auto",
    ) -> None:
        self.cache_fps = cache_fps
        self.sampling = VideoSampling(
            fps=cache_fps,
            min_frames=1,
            max_frames=max_cache_frames,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            total_pixels=max_pixels * max_cache_frames,
            frame_factor=1,
        )
        self.reader = resolve_reader(reader)
        self.cache = FrameCache(max_items=None, max_bytes=max_bytes)

    def video(self, path: str | os.PathLike[str]) -> SearchVideo:
        """The cache frames of `path`; MediaError when it is missing, undecodable or shorter than one frame."""
        clip = self.cache.get_video(path, self.sampling, reader=self.reader)
        duration = clip.total_frames / clip.source_fps
        if math.floor(duration * self.cache_fps) < 1:
            raise MediaError(
                f"video {clip.path} lasts {duration:g} s, shorter than one frame of the search cache at "
                f"{self.cache_fps:g} fps ({1 / self.cache_fps:g} s); drop this record or lower search.cache_fps"
            )
        resolved = Path(clip.path).resolve()
        stat = resolved.stat()
        key = (str(resolved), stat.st_mtime_ns, stat.st_size, self.sampling, self.reader)
        return SearchVideo(key=key, path=clip.path, frames=clip.frames, fps=clip.sample_fps, duration=duration)
