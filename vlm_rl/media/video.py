"""Video decoding with an explicit reader (decord or PyAV), qwen-vl-utils 0.0.14 sampling and resizing.

Unlike qwen-vl-utils there is no torchvision reader (``torchvision.io.read_video`` is gone since torchvision
0.28) and no fallback: a file that the chosen reader cannot decode raises ``MediaError``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from vlm_rl.media.sampling import VideoSampling, frame_indices, frame_pixel_budget, num_frames, smart_resize

ReaderName = Literal["decord", "pyav", "auto"]

_FIX_HINT = "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`) or remove it from the dataset"


class MediaError(ValueError):
    """A media file is missing, empty, undecodable or unusable with the requested sampling."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` learns from a file: frame count, average fps and frame size."""

    total_frames: int
    fps: float
    height: int
    width: int


@dataclass(frozen=True, eq=False)
class VideoClip:
    """Sampled, resized frames of one video.

    ``frames`` is uint8 ``[T, 3, H, W]`` (RGB). qwen-vl-utils resizes the uint8 frames with torchvision, which
    rounds and clamps back to uint8, and only then calls ``.float()``; so ``frames.float()`` is exactly
    qwen-vl-utils' ``fetch_video`` tensor, at a quarter of the memory. The HF video processor gives identical
    ``pixel_values_videos`` for either as long as it does not resize again, i.e. its ``size`` bounds admit the
    frames (set them to this sampling's min/max pixels, or pass ``do_resize=False``); if it does re-resize, its
    uint8 path rounds where the float path does not, so pass ``frames.float()`` to reproduce qwen-vl-utils.
    ``sample_fps = T / total_frames * source_fps`` is the ``fps`` that becomes
    ``second_per_grid_ts = temporal_patch_size / sample_fps``. Treat as read-only (clips are shared through
    ``FrameCache``).
    """

    frames: torch.Tensor
    sample_fps: float
    indices: tuple[int, ...]
    source_fps: float
    total_frames: int
    path: str


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _undecodable(path: str, reader: str, error: BaseException) -> MediaError:
    return MediaError(f"cannot decode video {path} with {reader} ({_one_line(error)}); {_FIX_HINT}")


def _check_file(path: str | os.PathLike[str], kind: str) -> str:
    """Return ``path`` as a string after checking it is an existing, non-empty regular file."""
    text = os.fspath(path)
    if not os.path.isfile(text):
        raise MediaError(f"{kind} file not found: {text} (check the path and the dataset's media root)")
    if os.path.getsize(text) == 0:
        raise MediaError(f"{kind} file is empty (0 bytes): {text}; re-download it or remove it from the dataset")
    return text


@functools.cache
def _decord_importable() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_reader(reader: ReaderName) -> Literal["decord", "pyav"]:
    """The concrete reader for ``reader``: "auto" is decord when importable, else PyAV (never torchvision)."""
    if reader == "auto":
        return "decord" if _decord_importable() else "pyav"
    if reader not in ("decord", "pyav"):
        raise ValueError(f"unknown video reader {reader!r}; choose 'decord', 'pyav' or 'auto'")
    if reader == "decord" and not _decord_importable():
        raise ImportError("video reader 'decord' is not importable: `pip install decord`, or use reader='pyav'")
    return reader


def _no_frames(path: str) -> MediaError:
    return MediaError(f"video has no video stream or no frames: {path}; {_FIX_HINT}")


def _truncated(path: str, found: int, announced: int) -> MediaError:
    return MediaError(
        f"video {path} holds only {found} of the {announced} frames its header announces (truncated?); "
        "re-download it or remove it from the dataset"
    )


def _open_decord(path: str) -> Any:
    import decord

    try:
        vr = decord.VideoReader(path)
        total = len(vr)
    except Exception as e:  # decord raises RuntimeError or DECORDError, with C++ stack traces
        if "cannot find video stream" in str(e):
            raise _no_frames(path) from e
        raise _undecodable(path, "decord", e) from e
    if total <= 0:
        raise _no_frames(path)
    return vr


def _decode_decord(vr: Any, path: str, indices: list[int]) -> np.ndarray:
    try:
        return vr.get_batch(indices).asnumpy()
    except Exception as e:
        raise _undecodable(path, "decord", e) from e


def _pyav_stream_info(path: str, *, demux_all: bool) -> tuple[int, float]:
    """(total_frames, fps) of the first video stream.

    Packets are counted by demuxing when the header lacks a frame count, or always with ``demux_all`` (which
    also catches a truncated file whose header is intact).
    """
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise _no_frames(path)
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            total = stream.frames
            if total <= 0 or demux_all:
                counted = sum(1 for packet in container.demux(stream) if packet.size)
                if counted < total:
                    raise _truncated(path, counted, total)
                total = total if total > 0 else counted
    except MediaError:
        raise
    except Exception as e:  # av.FFmpegError subclasses, EOFError
        raise _undecodable(path, "pyav", e) from e
    if total <= 0:
        raise _no_frames(path)
    if not rate:
        raise MediaError(f"video has no frame rate in its header: {path}; {_FIX_HINT}")
    return total, float(rate)


def _decode_pyav(path: str, indices: list[int], total_frames: int) -> np.ndarray:
    """Decode sequentially from the start and keep the frames at ``indices`` (presentation order)."""
    import av

    wanted = set(indices)
    last = max(indices)
    picked: dict[int, np.ndarray] = {}
    decoded = 0
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                decoded = i + 1
                if i in wanted:
                    picked[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
    except Exception as e:
        raise _undecodable(path, "pyav", e) from e
    if len(picked) < len(wanted):
        raise _truncated(path, decoded, total_frames)
    return np.stack([picked[i] for i in indices])


def probe_video(path: str | os.PathLike[str], reader: ReaderName = "auto") -> VideoInfo:
    """Check that ``path`` is a decodable video and return its header facts; raise MediaError otherwise.

    Opens the file with the reader ``read_video`` would use, reads every packet (decord's open does so anyway;
    for PyAV a demux pass without decoding) so truncated files are caught, and decodes the first frame.
    """
    text = _check_file(path, "video")
    name = resolve_reader(reader)
    if name == "decord":
        vr = _open_decord(text)
        total, fps = len(vr), float(vr.get_avg_fps())
        first = _decode_decord(vr, text, [0])[0]
    else:
        total, fps = _pyav_stream_info(text, demux_all=True)
        first = _decode_pyav(text, [0], total)[0]
    return VideoInfo(total_frames=total, fps=fps, height=int(first.shape[0]), width=int(first.shape[1]))


def read_video(path: str | os.PathLike[str], sampling: VideoSampling, *, reader: ReaderName = "auto") -> VideoClip:
    """Decode the frames ``sampling`` picks from ``path`` and resize them as qwen-vl-utils ``fetch_video`` does.

    Frame count: ``num_frames``; indices: ``frame_indices``; size: ``smart_resize`` within
    ``frame_pixel_budget``; resize: torchvision bicubic with antialias on the uint8 frames. decord and PyAV
    use the same indices. Any failure (missing, empty, undecodable, too few frames) raises MediaError.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    text = _check_file(path, "video")
    name = resolve_reader(reader)
    decode: Callable[[list[int]], np.ndarray]
    if name == "decord":
        vr = _open_decord(text)
        total, fps = len(vr), float(vr.get_avg_fps())
        decode = functools.partial(_decode_decord, vr, text)
    else:
        total, fps = _pyav_stream_info(text, demux_all=False)
        decode = functools.partial(_decode_pyav, text, total_frames=total)
    try:
        n = num_frames(sampling, total, fps)
    except ValueError as e:
        raise MediaError(
            f"video {text} ({total} frames at {fps:.3f} fps) cannot be sampled: {e}; "
            "lower nframes/min_frames for it or remove it from the dataset"
        ) from e
    indices = frame_indices(n, total)
    frames = torch.from_numpy(np.ascontiguousarray(decode(indices))).permute(0, 3, 1, 2)
    min_pixels, max_pixels = frame_pixel_budget(sampling, n)
    try:
        height, width = smart_resize(
            frames.shape[2], frames.shape[3], sampling.image_factor, min_pixels, max_pixels
        )
    except ValueError as e:
        raise MediaError(f"video {text} cannot be resized: {e}; crop it or remove it from the dataset") from e
    frames = tvf.resize(frames, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return VideoClip(
        frames=frames.contiguous(),
        sample_fps=n / total * fps,
        indices=tuple(indices),
        source_fps=fps,
        total_frames=total,
        path=text,
    )
