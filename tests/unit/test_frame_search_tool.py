"""seek_video_frames core: casting, windows, messages and DPP selection (TimeSearch-R, arXiv:2511.05489)."""

import json

import pytest
import torch

from vlm_rl.rollout.frame_search.selection import (
    choose_frames,
    dpp_kernel,
    greedy_map_dpp,
    select_frames,
    uniform_frames,
)
from data_pipelines.search_prompt import TOOL_SCHEMA
from vlm_rl.rollout.frame_search.tool import (
    SearchArgs,
    candidate_indices,
    cast_arguments,
    frame_window,
    frames_to_return,
    result_content,
    result_text,
)
from vlm_rl.rollout.turns import ToolCallRejected

EXAMPLE_EMBEDDINGS = torch.tensor([[1.0, 0.0], [0.995, 0.0999], [0.6, 0.8], [0.0, 1.0]])
EXAMPLE_TEXT = torch.tensor([0.8, 0.6])


def test_schema_declares_the_four_arguments():
    function = TOOL_SCHEMA["function"]
    assert function["name"] == "seek_video_frames"
    assert set(function["parameters"]["properties"]) == {"query", "start_time", "end_time", "num_frames"}
    assert function["parameters"]["properties"]["num_frames"]["type"] == "integer"
    assert function["parameters"]["required"] == ["query"]
    json.dumps(TOOL_SCHEMA)


def test_worked_example_cast_and_window():
    args = cast_arguments({"query": "red car", "start_time": "12", "end_time": None, "num_frames": 20})
    assert (args.start_time, args.end_time, args.num_frames) == (12.0, 65535.0, 8)
    assert args.query == "red car"
    first, last = frame_window(args, cache_fps=2, num_cache_frames=1000)
    assert (first, last) == (24, 1000)
    candidates = candidate_indices(first, last, 1000)
    assert len(candidates) == 976 and candidates[-1] == 999
    assert frames_to_return(args, len(candidates)) == 8


def test_cast_defaults_and_failed_values():
    args = cast_arguments({"start_time": "soon", "end_time": "later", "num_frames": "many"})
    assert args == SearchArgs("", 0.0, 65535.0, 8)


@pytest.mark.parametrize("given, expected", [(0, 1), (100, 8), (-3, 1), (5, 5), ("3", 3)])
def test_num_frames_is_clamped_to_one_through_eight(given, expected):
    assert cast_arguments({"query": "q", "num_frames": given}).num_frames == expected


def test_file_path_query_is_defused():
    assert cast_arguments({"query": "clip.mp4"}).query == "clip.mp4  \t."
    assert cast_arguments({"query": "a red car"}).query == "a red car"


def test_non_object_arguments_are_refused():
    with pytest.raises(ToolCallRejected, match="arguments must be a JSON object, got str"):
        cast_arguments("not a dict")


@pytest.mark.parametrize("start, end", [(600.0, 700.0), (30.0, 10.0), (-20.0, -5.0)])
def test_windows_outside_the_video_hold_no_frame(start, end):
    args = SearchArgs("q", start, end, 8)
    with pytest.raises(ToolCallRejected, match="holds no frame of clip.mp4"):
        frame_window(args, cache_fps=2, num_cache_frames=100, video="clip.mp4")


def test_window_clipped_to_the_video():
    first, last = frame_window(SearchArgs("q", -5.0, 49.9, 8), cache_fps=2, num_cache_frames=100)
    assert (first, last) == (0, 100)
    assert list(candidate_indices(first, last, 100)) == list(range(100))
    first, last = frame_window(SearchArgs("q", 49.6, 60.0, 8), cache_fps=2, num_cache_frames=100)
    assert list(candidate_indices(first, last, 100)) == [99]


def test_video_shorter_than_one_cache_frame_is_refused():
    with pytest.raises(ValueError, match="short.mp4: no frame at 2 fps"):
        frame_window(SearchArgs("q", 0.0, 1.0, 8), cache_fps=2, num_cache_frames=0, video="short.mp4")


def test_result_message_lists_timestamps():
    text = result_text([24, 25, 61], cache_fps=2)
    assert text.startswith("Here are selected frames. They are located at 12.0s,12.5s,30.5s.\n")
    assert text.endswith("different parameters in JSON format.\n")
    content = result_content([24, 61], 2, ["img24", "img61"])
    assert [item.get("text", item.get("image")) for item in content[:4]] == ["12.0s", "img24", "30.5s", "img61"]
    assert content[-1]["text"] == result_text([24, 61], 2)


def test_worked_example_dpp_picks_one_and_two():
    relevance = EXAMPLE_EMBEDDINGS @ EXAMPLE_TEXT
    kernel = dpp_kernel(relevance, EXAMPLE_EMBEDDINGS)
    assert kernel.diagonal().tolist() == pytest.approx([0.309, 0.505, 1.0, 0.0], abs=1e-3)
    assert greedy_map_dpp(kernel, 2) == [2, 1]
    assert select_frames(relevance, EXAMPLE_EMBEDDINGS, 2) == [1, 2]
    assert choose_frames(EXAMPLE_TEXT, EXAMPLE_EMBEDDINGS, 2) == [1, 2]


def test_dpp_prefers_diversity_over_a_near_duplicate():
    # Frames 1 and 2 are the two most relevant but nearly identical; the DPP takes 3 instead of 2.
    embeddings = torch.tensor([[0.7, 0.7], [1.0, 0.0], [0.9999, 0.01], [0.0, 1.0]])
    relevance = torch.tensor([0.5, 1.0, 0.95, 0.8])
    assert select_frames(relevance, embeddings, 2) == [1, 3]


def test_dpp_fills_up_when_residuals_run_out():
    # Min-max gives frame 3 zero relevance; asking for all 4 still returns four distinct frames.
    relevance = EXAMPLE_EMBEDDINGS @ EXAMPLE_TEXT
    kernel = dpp_kernel(relevance, EXAMPLE_EMBEDDINGS)
    assert sorted(greedy_map_dpp(kernel, 4)) == [0, 1, 2, 3]
    assert select_frames(relevance, EXAMPLE_EMBEDDINGS, 8) == [0, 1, 2, 3]


def test_empty_query_takes_uniform_frames():
    assert uniform_frames(976, 8) == [0, 139, 279, 418, 557, 696, 836, 975]
    assert choose_frames(None, torch.randn(976, 4), 8) == uniform_frames(976, 8)
    assert choose_frames(None, torch.randn(3, 4), 8) == [0, 1, 2]


def test_selection_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"relevance must be \[F\]"):
        select_frames(torch.ones(3), torch.ones(4, 2), 2)
