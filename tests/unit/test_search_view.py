"""The demo's view of a frame-search rollout: turn cards, frames captioned with their timestamps, totals."""

from __future__ import annotations

import html

from PIL import Image

from vlm_rl.demo.search_view import returned_frames, view_search
from vlm_rl.rollout.frame_search import TOOL_NAME, result_content
from vlm_rl.rollout.turns import Outcome, Status, ToolCallEnvironment, ToolCallRejected, Trajectory, take_turn

FPS = 2.0
CALL = '<think>Look for red.</think><tool_call>{"name": "%s", "arguments": {"query": "red", "start_time": 1, "end_time": 2}}</tool_call>'


def _frames_tool(conversation, arguments):
    """Returns cache frames 2 and 3 (1.0 s and 1.5 s) as solid images; refuses a window past the video."""
    if float(arguments.get("start_time", 0)) > 10:
        raise ToolCallRejected("window past the end")
    images = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in (2, 3)]
    return result_content([2, 3], FPS, images)


ENV = ToolCallEnvironment({TOOL_NAME: _frames_tool})


def _run(turns: list[str], max_turns: int = 8) -> Trajectory:
    trajectory = Trajectory([])
    for text in turns:
        take_turn(trajectory, text, ENV, max_turns)
    return trajectory


def test_a_search_that_calls_errs_and_answers():
    trajectory = _run([CALL % TOOL_NAME, CALL % "zoom", "<think>It was red.</think><answer>B</answer>"])
    view = view_search(trajectory)

    assert [t.outcome for t in view.turns] == [Outcome.TOOL, Outcome.PARSE_ERROR, Outcome.ANSWER]
    assert [t.number for t in view.turns] == [1, 2, 3]
    call, error, answer = view.turns
    tool_images = [item["image"] for item in trajectory.results[0].tool_message["content"] if item["type"] == "image"]
    assert [caption for _, caption in call.frames] == ["1.0s", "1.5s"]
    assert [image for image, _ in call.frames] == tool_images, "the gallery shows the images the tool returned"
    assert call.gallery_label == "Turn 1: 2 frames returned"
    assert "Look for red." in call.html and f"call {TOOL_NAME}" in call.html
    assert html.escape('"query": "red", "start_time": 1, "end_time": 2') in call.html
    assert "Returned frames at 1.0s, 1.5s." in call.html

    assert error.frames == [] and "Parse error" in error.html and "zoom" in error.html
    assert "vr-outcome-parse_error" in error.html
    assert answer.frames == [] and "It was red." in answer.html and "<pre>B</pre>" in answer.html

    assert view.answer == "B"
    for part in ("<b>answered</b>", "3 turns", "1 tool call", "1 parse error", "2 frames returned", "final answer: <b>B</b>"):
        assert part in view.totals, part


def test_a_rejected_call_is_a_parse_error_and_the_turn_limit_ends_the_search():
    rejected = (CALL % TOOL_NAME).replace('"start_time": 1', '"start_time": 99')
    trajectory = _run([CALL % TOOL_NAME, rejected], max_turns=2)
    view = view_search(trajectory)
    assert trajectory.status is Status.MAX_TURNS
    assert [t.outcome for t in view.turns] == [Outcome.TOOL, Outcome.PARSE_ERROR]
    assert view.answer is None and "final answer" not in view.totals
    assert "turn limit without an answer" in view.totals and "2 turns" in view.totals and "1 parse error" in view.totals


def test_a_turn_without_action_ends_the_search_and_says_when_it_was_cut():
    trajectory = _run(["<think>Still thinking about the"])
    cut, whole = view_search(trajectory, truncated=True), view_search(trajectory)
    assert trajectory.status is Status.NO_ACTION
    assert cut.turns[0].outcome is Outcome.NO_ACTION
    assert "cut at the tokens-per-turn limit" in cut.turns[0].html
    assert "cut at" not in whole.turns[0].html
    assert "no tool call and no answer" in cut.totals and "0 tool calls" in cut.totals and "0 frames returned" in cut.totals


def test_model_text_is_escaped():
    trajectory = _run(['<think><img src=x onerror="alert(1)"></think><answer><script>alert(2)</script></answer>'])
    view = view_search(trajectory)
    for shown in (view.turns[0].html, view.totals):
        assert "<script>" not in shown and "<img" not in shown
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in view.totals


def test_frames_are_captioned_by_the_text_before_them():
    a, b = Image.new("RGB", (4, 4)), Image.new("RGB", (4, 4), "white")
    message = {"role": "tool", "name": TOOL_NAME, "content": [
        {"type": "text", "text": "0.5s"}, {"type": "image", "image": a},
        {"type": "image", "image": b}, {"type": "text", "text": "Here are selected frames."},
    ]}  # fmt: skip
    assert returned_frames(message) == [(a, "0.5s"), (b, "frame 2")]
