"""The model-free rules of one multi-turn tool rollout step (TimeSearch-R's parse rules and loss mask)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from vlm_rl.rollout.turns import (
    PARSE_ERROR_TEXT,
    PARSE_ERROR_TOOL,
    Outcome,
    Status,
    ToolCall,
    ToolCallEnvironment,
    ToolCallRejected,
    ToolEnvironment,
    Trajectory,
    parse_tool_call,
    take_turn,
    tool_turn_loss_mask,
)

THINK = "<think>look closer</think>"
GOOD_CALL = (
    '<tool_call>\n{"name": "seek_video_frames", "arguments": {"query": "red car", "start_time": 120, '
    '"end_time": 300, "num_frames": 8}}\n</tool_call>'
)


class RecordingSeek:
    """A stand-in frame-search tool that records its calls and rejects an empty query."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, conversation: Sequence[dict[str, Any]], arguments: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(dict(arguments))
        if arguments.get("query") == "":
            raise ToolCallRejected("empty query")
        return [{"type": "text", "text": "60.0s"}, {"type": "image", "image": "frame"}]


@pytest.fixture
def seek() -> RecordingSeek:
    return RecordingSeek()


@pytest.fixture
def env(seek: RecordingSeek) -> ToolCallEnvironment:
    return ToolCallEnvironment({"seek_video_frames": seek})


def test_environment_satisfies_protocol(env: ToolCallEnvironment) -> None:
    environment: ToolEnvironment = env
    assert environment.step([], THINK + "<answer>B</answer>").done


def test_good_tool_call_runs_the_tool(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    result = env.step([], THINK + GOOD_CALL)
    assert result.outcome is Outcome.TOOL and not result.done
    assert seek.calls == [{"query": "red car", "start_time": 120, "end_time": 300, "num_frames": 8}]
    assert result.tool_message == {
        "role": "tool",
        "name": "seek_video_frames",
        "arguments": seek.calls[0],
        "content": [{"type": "text", "text": "60.0s"}, {"type": "image", "image": "frame"}],
    }
    assert result.turn_text == THINK + GOOD_CALL


def test_answer_ends_the_rollout(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    result = env.step([], THINK + "<answer> B </answer> trailing words")
    assert (result.outcome, result.answer, result.tool_message) == (Outcome.ANSWER, "B", None)
    assert result.done and result.turn_text == THINK + "<answer> B </answer>"
    assert seek.calls == []


def test_text_before_the_last_think_is_dropped(env: ToolCallEnvironment) -> None:
    result = env.step([], "<think>first</think> noise <think>second</think><answer>C</answer>")
    assert result.turn_text == "<think>second</think><answer>C</answer>"
    assert result.answer == "C"


def test_answer_after_the_last_think_wins_over_an_earlier_call(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    result = env.step([], THINK + GOOD_CALL + "<think>no need</think><answer>A</answer>")
    assert (result.outcome, result.answer) == (Outcome.ANSWER, "A")
    assert seek.calls == []


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "zoom_in", "arguments": {"query": "x"}}',
        '{"arguments": {"query": "x"}}',
        '{"name": 7, "arguments": {"query": "x"}}',
        '{"name": "seek_video_frames", "arguments": [1, 2]}',
        '{"name": "seek_video_frames", "arguments": "not json"}',
    ],
    ids=["unknown-name", "no-name", "name-not-string", "arguments-list", "arguments-garbage-string"],
)
def test_unusable_parsed_call_gets_the_parse_error_message(
    env: ToolCallEnvironment, seek: RecordingSeek, body: str
) -> None:
    turn = f"{THINK}<tool_call>{body}</tool_call>"
    result = env.step([], turn)
    assert result.outcome is Outcome.PARSE_ERROR and not result.done
    assert result.tool_message == {
        "role": "tool",
        "name": PARSE_ERROR_TOOL,
        "content": [{"type": "text", "text": PARSE_ERROR_TEXT}],
    }
    assert result.turn_text == turn
    assert seek.calls == []


def test_parse_error_text_is_the_official_wording() -> None:
    assert PARSE_ERROR_TEXT.startswith("\nThe previous response is invalid. If I want to use tools, ")
    assert "within <tool_call></tool_call> tags: \nIf I want to give the final answer," in PARSE_ERROR_TEXT
    assert PARSE_ERROR_TEXT.endswith("</answer>.\nLet me try again.\n")


def test_tool_rejection_gets_the_parse_error_message(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    result = env.step([], THINK + '<tool_call>{"name": "seek_video_frames", "arguments": {"query": ""}}</tool_call>')
    assert result.outcome is Outcome.PARSE_ERROR
    assert result.tool_message is not None and result.tool_message["name"] == PARSE_ERROR_TOOL
    assert seek.calls == [{"query": ""}]


def test_other_tool_exceptions_propagate() -> None:
    def broken(conversation: Sequence[dict[str, Any]], arguments: Mapping[str, Any]) -> list[dict[str, Any]]:
        raise FileNotFoundError("frame cache missing")

    with pytest.raises(FileNotFoundError):
        ToolCallEnvironment({"seek_video_frames": broken}).step([], THINK + GOOD_CALL)


def test_truncated_json_is_repaired(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    result = env.step([], THINK + '<tool_call>{"name": "seek_video_frames", "arguments": {"query": "dog"</tool_call>')
    assert result.outcome is Outcome.TOOL
    assert seek.calls == [{"query": "dog"}]


def test_string_arguments_are_parsed_again(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    body = '{"name": "seek_video_frames", "arguments": "{\\"query\\": \\"cat\\", \\"num_frames\\": 2}"}'
    assert env.step([], f"{THINK}<tool_call>{body}</tool_call>").outcome is Outcome.TOOL
    assert seek.calls == [{"query": "cat", "num_frames": 2}]


@pytest.mark.parametrize("body", ["", "   ", "not json at all", "[1, 2]", "42", '"seek"'])
def test_body_that_is_no_json_object_ends_the_rollout(env: ToolCallEnvironment, seek: RecordingSeek, body: str) -> None:
    result = env.step([], f"{THINK}<tool_call>{body}</tool_call>")
    assert result.outcome is Outcome.NO_ACTION and result.done and result.tool_message is None
    assert seek.calls == []


@pytest.mark.parametrize(
    "turn",
    [
        THINK + '<tool_call>{"name": "seek_video_frames", "arguments": {"query": "dog"}}',
        THINK + "<answer>B",
        THINK + "I think it is B.",
        "",
        "<tool_call></answer>",
    ],
    ids=["unclosed-call", "unclosed-answer", "no-tags", "empty", "mismatched-tags"],
)
def test_no_closing_tag_ends_without_answer(env: ToolCallEnvironment, seek: RecordingSeek, turn: str) -> None:
    result = env.step([], turn)
    assert (result.outcome, result.answer, result.tool_message) == (Outcome.NO_ACTION, None, None)
    assert seek.calls == []


def test_two_tool_calls_in_one_turn_run_only_the_first(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    second = '<tool_call>{"name": "seek_video_frames", "arguments": {"query": "second"}}</tool_call>'
    result = env.step([], THINK + GOOD_CALL + second)
    assert result.outcome is Outcome.TOOL
    assert [call["query"] for call in seek.calls] == ["red car"]
    assert result.turn_text == THINK + GOOD_CALL


def test_tool_call_then_answer_keeps_the_call(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    result = env.step([], THINK + GOOD_CALL + "<answer>B</answer>")
    assert result.outcome is Outcome.TOOL and result.answer is None
    assert result.turn_text == THINK + GOOD_CALL
    assert len(seek.calls) == 1


def test_answer_then_tool_call_answers(env: ToolCallEnvironment, seek: RecordingSeek) -> None:
    result = env.step([], THINK + "<answer>B</answer>" + GOOD_CALL)
    assert (result.outcome, result.answer) == (Outcome.ANSWER, "B")
    assert seek.calls == []


def test_parse_tool_call() -> None:
    assert parse_tool_call('{"name": "f"}') == ToolCall("f", {})
    assert parse_tool_call('{"name": "f", "arguments": ""}') == ToolCall("f", {})
    assert parse_tool_call("{'name': 'f', 'arguments': {'a': 1,}}") == ToolCall("f", {"a": 1})
    assert parse_tool_call('{"name": "f", "arguments": null}') == ToolCall("", {})
    assert parse_tool_call("nonsense") is None


def test_trajectory_search_then_answer(env: ToolCallEnvironment) -> None:
    prompt = [{"role": "user", "content": [{"type": "text", "text": "Q"}]}]
    trajectory = Trajectory(list(prompt))
    first = take_turn(trajectory, THINK + GOOD_CALL + " junk", env, max_turns=8)
    assert first.outcome is Outcome.TOOL and trajectory.active
    take_turn(trajectory, THINK + "<answer>B</answer>", env, max_turns=8)
    assert trajectory.status is Status.ANSWERED and trajectory.turns == 2
    assert [m["role"] for m in trajectory.messages] == ["user", "assistant", "tool", "assistant"]
    assert trajectory.messages[1]["content"] == [{"type": "text", "text": THINK + GOOD_CALL}]
    with pytest.raises(ValueError, match="already ended"):
        take_turn(trajectory, "<answer>C</answer>", env, max_turns=8)


def test_trajectory_without_action_ends_without_answer(env: ToolCallEnvironment) -> None:
    trajectory = Trajectory([])
    take_turn(trajectory, THINK + "maybe B", env, max_turns=8)
    assert trajectory.status is Status.NO_ACTION
    assert [m["role"] for m in trajectory.messages] == ["assistant"]


def test_trajectory_ends_after_max_turns(env: ToolCallEnvironment) -> None:
    trajectory = Trajectory([])
    outcomes = []
    for _ in range(3):
        outcomes.append(take_turn(trajectory, THINK + "<tool_call>{}</tool_call>", env, max_turns=3).outcome)
        if not trajectory.active:
            break
    assert outcomes == [Outcome.PARSE_ERROR] * 3
    assert trajectory.status is Status.MAX_TURNS and trajectory.turns == 3
    assert [m["role"] for m in trajectory.messages] == ["assistant", "tool"] * 3


def test_loss_mask_worked_example() -> None:
    a, im_start, tool, x, im_end, newline, assistant, y = range(8)
    tokens = [a, a, im_start, tool, x, x, im_end, newline, im_start, assistant, y]
    assert tool_turn_loss_mask(tokens, im_start, tool) == [1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1]


def test_loss_mask_edges() -> None:
    im_start, tool, other = 100, 200, 5
    assert tool_turn_loss_mask([], im_start, tool) == []
    assert tool_turn_loss_mask([other, im_start], im_start, tool) == [1, 1]
    assert tool_turn_loss_mask([tool, other], im_start, tool) == [1, 1]
    assert tool_turn_loss_mask([im_start, tool, other], im_start, tool) == [0, 0, 0]
    tokens = [im_start, tool, other, im_start, tool, other, im_start, other]
    assert tool_turn_loss_mask(tokens, im_start, tool) == [0, 0, 0, 0, 0, 0, 1, 1]
