"""The runnable `seek_video_frames` tool over one video, and the turn environment that offers it.

Both are cheap to build per rollout: frames come from `SearchFrames` and embeddings from
`ScoredFrames`, which outlive the rollouts and decode / embed each video frame once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from data_pipelines.search_prompt import TOOL_NAME

from vlm_rl.rollout.frame_search.frames import SearchFrames
from vlm_rl.rollout.frame_search.scorers import ScoredFrames
from vlm_rl.rollout.frame_search.selection import choose_frames, uniform_frames
from vlm_rl.rollout.frame_search.tool import (
    candidate_indices,
    cast_arguments,
    frame_window,
    frames_to_return,
    result_content,
)
from vlm_rl.rollout.turns import Message, ToolCallEnvironment


@dataclass(frozen=True)
class FrameSearchTool:
    """`seek_video_frames` over the cache frames of `video_path`: (conversation, arguments) -> content items.

    A call whose window holds no frame raises `ToolCallRejected` (the turn loop answers it with the
    parse-error message); a missing or unusable video raises `MediaError`. An empty query returns
    frames spread evenly over the window without embedding any frame.
    """

    frames: SearchFrames
    scores: ScoredFrames
    video_path: str | os.PathLike[str]

    def __call__(self, conversation: Sequence[Message], arguments: Mapping[str, Any]) -> list[dict[str, Any]]:
        args = cast_arguments(arguments)
        video = self.frames.video(self.video_path)
        first, last = frame_window(args, video.fps, video.num_frames, video.path)
        candidates = candidate_indices(first, last, video.num_frames)
        k = frames_to_return(args, len(candidates))
        if args.query.strip():
            query = self.scores.embed_text(args.query)
            positions = choose_frames(query, self.scores.frame_embeddings(video, candidates), k)
        else:
            positions = uniform_frames(len(candidates), k)
        chosen = [candidates[p] for p in positions]
        images = [Image.fromarray(video.frames[i].permute(1, 2, 0).numpy()) for i in chosen]
        return result_content(chosen, video.fps, images)


def search_environment(
    video_path: str | os.PathLike[str], frames: SearchFrames, scores: ScoredFrames
) -> ToolCallEnvironment:
    """The turn environment of one rollout on `video_path`, offering `seek_video_frames` only."""
    return ToolCallEnvironment({TOOL_NAME: FrameSearchTool(frames, scores, video_path)})
