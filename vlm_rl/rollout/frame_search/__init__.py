"""TimeSearch-R's `seek_video_frames` tool: call casting, windows, DPP selection, frame cache, scorers, environment."""

from vlm_rl.rollout.frame_search.environment import FrameSearchTool, search_environment
from vlm_rl.rollout.frame_search.frames import SearchFrames, SearchVideo
from vlm_rl.rollout.frame_search.scorers import (
    SCORERS,
    ColorScorer,
    FrameScorer,
    ScoredFrames,
    SiglipScorer,
    make_scorer,
)
from vlm_rl.rollout.frame_search.selection import choose_frames
from data_pipelines.search_prompt import MAX_FRAMES_PER_CALL, TOOL_NAME, TOOL_SCHEMA
from vlm_rl.rollout.frame_search.tool import (
    SearchArgs,
    cast_arguments,
    frame_window,
    result_content,
)

__all__ = [
    "MAX_FRAMES_PER_CALL",
    "SCORERS",
    "TOOL_NAME",
    "TOOL_SCHEMA",
    "ColorScorer",
    "FrameScorer",
    "FrameSearchTool",
    "ScoredFrames",
    "SearchArgs",
    "SearchFrames",
    "SearchVideo",
    "SiglipScorer",
    "cast_arguments",
    "choose_frames",
    "frame_window",
    "make_scorer",
    "result_content",
    "search_environment",
]
