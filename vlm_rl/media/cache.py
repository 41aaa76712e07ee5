"""An in-memory LRU of decoded media, so a prompt's frames are decoded once across rollouts and epochs."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

from PIL import Image

from vlm_rl.media.image import read_image
from vlm_rl.media.sampling import ImageSampling, VideoSampling
from vlm_rl.media.video import ReaderName, VideoClip, _check_file, read_video, resolve_reader

_T = TypeVar("_T")


class FrameCache:
    """Thread-safe LRU of decoded videos and images: at most ``max_items`` entries and ``max_bytes`` of pixels
    (None: no bound of that kind).

    An item larger than ``max_bytes`` is returned but not kept, so ``max_bytes=0`` turns caching off.
    Keys are (resolved path, mtime_ns, size, sampling, reader), so a file that changes on disk is decoded again.
    Decoding happens outside the lock: two threads missing the same key at once both decode it (each counts a
    miss) and the later result is kept. Returned clips and images are shared: treat them as read-only.
    """

    def __init__(self, max_items: int | None = 256, max_bytes: int | None = None) -> None:
        if max_items is not None and max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0 or None, got {max_bytes}")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._items.clear()
            self.nbytes = 0
            self.hits = 0
            self.misses = 0

    def get_video(
        self, path: str | os.PathLike[str], sampling: VideoSampling, reader: ReaderName = "auto"
    ) -> VideoClip:
        """``read_video(path, sampling, reader=reader)``, cached."""
        name = resolve_reader(reader)
        return self._get(path, "video", (sampling, name), lambda: read_video(path, sampling, reader=name))

    def get_image(self, path: str | os.PathLike[str], sampling: ImageSampling) -> Image.Image:
        """``read_image(path, sampling)``, cached."""
        return self._get(path, "image", (sampling, None), lambda: read_image(path, sampling))

    def _get(
        self, path: str | os.PathLike[str], kind: str, extra: tuple[Hashable, ...], load: Callable[[], _T]
    ) -> _T:
        resolved = Path(_check_file(path, kind)).resolve()
        stat = resolved.stat()
        key = (str(resolved), stat.st_mtime_ns, stat.st_size, *extra)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]  # type: ignore[return-value]
            self.misses += 1
        value = load()
        with self._lock:
            if key in self._items:
                self.nbytes -= _size(self._items.pop(key))
            self._items[key] = value
            self.nbytes += _size(value)
            while self._items and (
                (self.max_items is not None and len(self._items) > self.max_items)
                or (self.max_bytes is not None and self.nbytes > self.max_bytes)
            ):
                self.nbytes -= _size(self._items.popitem(last=False)[1])
        return value


def _size(item: object) -> int:
    """Bytes of a cached clip's frames or of an image's pixels."""
    if isinstance(item, VideoClip):
        return item.frames.numel() * item.frames.element_size()
    if isinstance(item, Image.Image):
        return item.width * item.height * len(item.getbands())
    raise TypeError(f"cannot size a cached {type(item).__name__}")
