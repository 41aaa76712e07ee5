"""The `seek_video_frames` tool: schema, argument casting, window arithmetic and messages.

TimeSearch-R (arXiv:2511.05489) lets the policy ask for up to 8 frames of a time window by a text
query. Everything here is pure: the tool runs over a per-video frame cache sampled at `cache_fps`,
and a frame's timestamp is its cache index divided by `cache_fps`.
"""

from __future__ import annotations

import math
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass

from data_pipelines.search_prompt import MAX_FRAMES_PER_CALL, TOOL_NAME
from vlm_rl.rollout.turns import ToolCallRejected

OPEN_END_TIME = 65535.0
PATH_DEFUSER = "  \t."

RESULT_HEADER = "Here are selected frames."


@dataclass(frozen=True)
class SearchArgs:
    """The cast arguments of one `seek_video_frames` call."""

    query: str
    start_time: float
    end_time: float
    num_frames: int


def _to_float(value, fallback: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return fallback
    return number if math.isfinite(number) else fallback


def cast_arguments(arguments: Mapping) -> SearchArgs:
    """Cast raw call arguments the way the official tool does.

    start_time: float, 0 when missing or not a number; end_time: float, 65535 when missing or not
    a number; num_frames: int, 8 when missing or not a number, clamped to [1, 8]; query: str, ""
    when missing, with "  \\t." appended when it looks like a file path (a mimetype is guessed).
    """
    if not isinstance(arguments, Mapping):
        raise ToolCallRejected(
            f"{TOOL_NAME}: arguments must be a JSON object, got {type(arguments).__name__}"
        )
    start_time = _to_float(arguments.get("start_time"), 0.0)
    end_time = _to_float(arguments.get("end_time"), OPEN_END_TIME)
    try:
        num_frames = int(arguments.get("num_frames", MAX_FRAMES_PER_CALL))
    except (TypeError, ValueError, OverflowError):
        num_frames = MAX_FRAMES_PER_CALL
    num_frames = min(max(num_frames, 1), MAX_FRAMES_PER_CALL)
    query = arguments.get("query")
    query = "" if query is None else str(query)
    if query and mimetypes.guess_type(query)[0] is not None:
        query += PATH_DEFUSER
    return SearchArgs(query, start_time, end_time, num_frames)


def check_cache_length(num_cache_frames: int, cache_fps: float, video: str) -> None:
    """Refuse a video whose frame cache is empty (shorter than one frame at `cache_fps`)."""
    if cache_fps <= 0:
        raise ValueError(f"{video}: cache_fps must be positive, got {cache_fps}; fix search.cache_fps")
    if num_cache_frames < 1:
        raise ValueError(
            f"{video}: no frame at {cache_fps} fps (the video is shorter than one cache frame, "
            f"{1 / cache_fps:g} s); drop this record or lower search.cache_fps"
        )


def frame_window(
    args: SearchArgs, cache_fps: float, num_cache_frames: int, video: str = "video"
) -> tuple[int, int]:
    """The window [i_s, i_e] of cache indices for a call; the candidates are i_s .. min(i_e, N-1).

    i_s = max(floor(start * fps), 0) and i_e = min(ceil(end * fps), N), as in the official tool.
    A window with no candidate frame raises ToolCallRejected.
    """
    check_cache_length(num_cache_frames, cache_fps, video)
    first = max(math.floor(args.start_time * cache_fps), 0)
    last = min(math.ceil(args.end_time * cache_fps), num_cache_frames)
    if first > min(last, num_cache_frames - 1):
        duration = num_cache_frames / cache_fps
        raise ToolCallRejected(
            f"{TOOL_NAME}: window {args.start_time:g}s..{args.end_time:g}s holds no frame of "
            f"{video} ({duration:g} s)"
        )
    return first, last


def candidate_indices(first: int, last: int, num_cache_frames: int) -> range:
    """The cache indices a window [first, last] offers for selection."""
    return range(first, min(last + 1, num_cache_frames))


def frames_to_return(args: SearchArgs, num_candidates: int) -> int:
    """k = max(min(num_frames, #candidates, 8), 1)."""
    return max(min(args.num_frames, num_candidates, MAX_FRAMES_PER_CALL), 1)


def timestamp_label(cache_index: int, cache_fps: float) -> str:
    """The text placed before a returned frame, e.g. "12.5s"."""
    return f"{cache_index / cache_fps:.1f}s"


def result_text(cache_indices: list[int], cache_fps: float) -> str:
    """The closing text of a tool result, listing the returned frames' timestamps."""
    stamps = ",".join(timestamp_label(i, cache_fps) for i in cache_indices)
    return (
        f"{RESULT_HEADER} They are located at {stamps}.\n"
        "If the frames provided above are sufficient to answer the user's question, please put "
        "your final answer within <answer></answer>. Otherwise invoke the tool again with "
        "different parameters in JSON format.\n"
    )


def result_content(cache_indices: list[int], cache_fps: float, images: list) -> list[dict]:
    """The `tool` message content: a timestamp text then the image, per frame, then the closing text."""
    if len(images) != len(cache_indices):
        raise ValueError(f"{len(images)} images for {len(cache_indices)} frame indices")
    content: list[dict] = []
    for index, image in zip(cache_indices, images):
        content.append({"type": "text", "text": timestamp_label(index, cache_fps)})
        content.append({"type": "image", "image": image})
    content.append({"type": "text", "text": result_text(cache_indices, cache_fps)})
    return content

