"""The completion format module: tags, block parsers, format rules and the helpers built on them."""

from __future__ import annotations

import pytest

from data_pipelines import thought_dropout
from data_pipelines.completion_format import (
    ACTION_BLOCK,
    ANSWER,
    ANSWER_BLOCK,
    ANSWER_OPEN,
    EMPTY_THOUGHT,
    THINK,
    THINK_BLOCK,
    THINK_OPEN,
    TOOL_CALL,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    answer_block,
    answer_content_span,
    before_first_answer,
    before_last_answer,
    cut_turn,
    extract_answer,
    extract_think,
    find_action,
    find_answer,
    find_tool_call,
    is_answer_only,
    is_empty_thought,
    is_think_answer,
    is_tw_think_answer,
    kept_turn_span,
    open_block_content,
    remove_answer_blocks,
    tag_pattern,
    whole_answer_content,
)
from vlm_rl import rewards


def test_tags() -> None:
    assert (THINK, ANSWER, TOOL_CALL) == ("think", "answer", "tool_call")
    assert (THINK_OPEN, ANSWER_OPEN) == ("<think>", "<answer>")
    assert (TOOL_CALL_OPEN, TOOL_CALL_CLOSE) == ("<tool_call>", "</tool_call>")
    assert EMPTY_THOUGHT == "<think>\n\n</think>"
    assert answer_block(" B ") == "<answer> B </answer>"


def test_callers_share_one_parser() -> None:
    assert rewards.find_answer is find_answer
    assert rewards.extract_answer is extract_answer
    assert rewards.extract_think is extract_think
    assert thought_dropout.is_empty_thought is is_empty_thought
    assert thought_dropout.EMPTY_THOUGHT is EMPTY_THOUGHT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>x</think><answer> B </answer>", "B"),
        ("<answer>\n 12.5 \t</answer>", "12.5"),
        ("<answer>A</answer> then <answer>C</answer>", "A"),  # the first block
        ("<answer>a<answer>b</answer>", "a<answer>b"),  # the first opening tag, the first closing tag after it
        ("<answer></answer>", ""),
        ("<answer>\u00a0\u3000</answer>", ""),  # Unicode whitespace is stripped too
        ("<answer>视频 é 🙂</answer>", "视频 é 🙂"),
        ("<answer>line 1\nline 2</answer>", "line 1\nline 2"),
        ("<answer>B", None),  # unclosed
        ("B</answer>", None),
        ("<Answer>B</Answer>", None),  # tags are case-sensitive
        ("no tags at all", None),
        ("", None),
    ],
)
def test_find_and_extract_answer(text: str, expected: str | None) -> None:
    assert find_answer(text) == expected
    assert extract_answer(text) == ("" if expected is None else expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think> look at frame 3 </think><answer>B</answer>", "look at frame 3"),
        ("<think>\n\n</think><answer>B</answer>", ""),
        ("<think>one</think><think>two</think>", "one"),
        ("<think>a <think>b</think> c</think>", "a <think>b"),
        ("<think>still thinking", None),
        ("<answer>B</answer>", None),
        ("<think>思考 🙂</think>", "思考 🙂"),
    ],
)
def test_extract_think(text: str, expected: str | None) -> None:
    assert extract_think(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '<tool_call>\n{"name": "frames", "arguments": {"t": 3}}\n</tool_call>',
            '{"name": "frames", "arguments": {"t": 3}}',
        ),
        ("<think>need frames</think><tool_call>first</tool_call><tool_call>second</tool_call>", "first"),
        ("<tool_call>  </tool_call>", ""),
        ("<tool_call>{\"q\": \"红色\"}</tool_call>", '{"q": "红色"}'),
        ("<tool_call>{cut off by the token limit", None),
        ("<answer>B</answer>", None),
        ("<TOOL_CALL>x</TOOL_CALL>", None),
    ],
)
def test_find_tool_call(text: str, expected: str | None) -> None:
    assert find_tool_call(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>B</answer>", (8, 9)),
        ("<answer>A</answer> <answer> C </answer>", (27, 30)),  # the last block, whitespace kept
        ("<answer>a<answer>b</answer>", (8, 18)),  # one block, left to right
        ("<answer>A</answer><answer>unclosed", (8, 9)),
        ("<answer></answer>", (8, 8)),
        ("思考<answer>视频</answer>", (10, 12)),  # character offsets, not bytes
        ("<answer>B", None),
        ("", None),
    ],
)
def test_answer_content_span(text: str, expected: tuple[int, int] | None) -> None:
    assert answer_content_span(text) == expected
    if expected is not None:
        start, end = expected
        assert text[start - len(ANSWER_OPEN) : start] == ANSWER_OPEN
        assert text[end : end + len("</answer>")] == "</answer>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>B</answer>", "B"),
        (" \n<answer> B </answer>\t", " B "),
        ("<answer>A</answer><answer>C</answer>", "A</answer><answer>C"),
        ("x<answer>B</answer>", None),
        ("<answer>B</answer>.", None),
        ("<answer>B", None),
        ("B", None),
    ],
)
def test_whole_answer_content(text: str, expected: str | None) -> None:
    assert whole_answer_content(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EMPTY_THOUGHT + "<answer>B</answer>", True),
        ("<think></think>", True),
        ("<think> \t\u00a0</think>", True),
        ("<think>.</think>", False),
        ("<think>\n\n</think>x<think>y</think>", True),  # only the first block counts
        ("<think>x</think><think></think>", False),
        ("<think>\n\n", False),  # unclosed: a format failure, not a skip
        ("<answer>B</answer>", False),
        ("", False),
    ],
)
def test_is_empty_thought(text: str, expected: bool) -> None:
    assert is_empty_thought(text) is expected


def test_block_patterns_keep_content_verbatim() -> None:
    found = THINK_BLOCK.search("x<think> a \n</think>")
    assert found is not None and found.group(1) == " a \n"
    assert [m.group(1) for m in ANSWER_BLOCK.finditer("<answer> A</answer><answer>B </answer>")] == [" A", "B "]


@pytest.mark.parametrize(
    ("text", "replacement", "expected"),
    [
        ("so <answer>A</answer> wait <answer>B</answer> end", "", "so  wait  end"),
        ("a<answer>A</answer>b", " ", "a b"),
        ("a<answer>unclosed", "", "a<answer>unclosed"),
        ("no block", "", "no block"),
    ],
)
def test_remove_answer_blocks(text: str, replacement: str, expected: str) -> None:
    assert remove_answer_blocks(text, replacement) == expected


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("r <answer>A</answer> s <answer>B", "r ", "r <answer>A</answer> s "),
        ("</answer> only", "</answer> only", "</answer> only"),
        ("思考<answer>视频", "思考", "思考"),
        ("", "", ""),
    ],
)
def test_before_first_and_last_answer(text: str, first: str, last: str) -> None:
    assert before_first_answer(text) == first
    assert before_last_answer(text) == last


@pytest.mark.parametrize(
    ("text", "open_tag", "stop", "expected"),
    [
        ("<think> counting the cu", THINK_OPEN, ANSWER_OPEN, "counting the cu"),
        ("<think> done </think><answer>B", THINK_OPEN, ANSWER_OPEN, "done </think>"),
        ("<answer> B", ANSWER_OPEN, None, "B"),
        ("<answer> B</answer>", ANSWER_OPEN, None, "B</answer>"),
        ("no tag", THINK_OPEN, ANSWER_OPEN, None),
        ("<think>视频", THINK_OPEN, None, "视频"),
    ],
)
def test_open_block_content(text: str, open_tag: str, stop: str | None, expected: str | None) -> None:
    assert open_block_content(text, open_tag, stop) == expected


@pytest.mark.parametrize(
    ("text", "video_r1", "tw_grpo"),
    [
        ("<think>r</think><answer>B</answer>", True, True),
        ("<think>r</think>\n <answer>B</answer>", True, True),
        (EMPTY_THOUGHT + "<answer>B</answer>", True, True),
        ("<think>r</think><answer>B</answer>\n", False, True),  # trailing whitespace: TW-GRPO strips it
        ("<think>r</think><answer>B</answer> !!", False, True),
        ("<think>r</think><answer>B</answer>.", False, False),
        ("intro <think>r</think><answer>B</answer>", False, True),  # TW-GRPO allows text before <think>
        ("<think>r</think>x<answer>B</answer>", False, False),
        ("<think>r</think><answer>A</answer><answer>B</answer>", True, False),  # two <answer>: TW-GRPO says no
        ("<think>a</think><think>b</think><answer>B</answer>", True, False),
        ("<answer>B</answer>", False, False),
        ("<think>r</think><answer>B", False, False),
        ("<think>视频</think><answer>é</answer>", True, True),
    ],
)
def test_think_answer_rules(text: str, video_r1: bool, tw_grpo: bool) -> None:
    assert is_think_answer(text) is video_r1
    assert is_tw_think_answer(text) is tw_grpo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>B</answer>", True),
        ("<answer></answer>", True),
        ("<answer>视频\n🙂</answer>", True),
        (" <answer>B</answer>", False),
        ("<answer>B</answer>\n", False),
        ("<answer>A</answer><answer>B</answer>", False),
        ("<answer><think>r</think>B</answer>", False),
        ("<answer>a<answer>b</answer>", False),
        (EMPTY_THOUGHT + "<answer>B</answer>", False),
        ("<answer>B", False),
    ],
)
def test_is_answer_only(text: str, expected: bool) -> None:
    assert is_answer_only(text) is expected


def test_tag_pattern() -> None:
    both = tag_pattern(THINK, ANSWER)
    assert both.sub("|", "<think>a</think><answer>b</answer><tool_call>") == "|a||b|<tool_call>"
    assert both.sub("|", "<Answer>b</ANSWER>") == "<Answer>b</ANSWER>"
    assert tag_pattern(THINK, ANSWER, ignore_case=True).sub("|", "<Answer>b</ANSWER>") == "|b|"
    assert tag_pattern(TOOL_CALL).findall("<tool_call>x</tool_call><answer>") == ["<tool_call>", "</tool_call>"]




@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("<think>a</think><tool_call>{}</tool_call> more", "<think>a</think><tool_call>{}</tool_call>"),
        ("<think>a</think><answer>B</answer><think>", "<think>"),
        ("x<think>a</think><think>b</think><answer>B</answer>y", "<think>b</think><answer>B</answer>"),
        ("<answer>B</answer><tool_call>{}</tool_call>z", "<answer>B</answer><tool_call>{}</tool_call>"),
        ("<tool_call>{}</tool_call><answer>B</answer>", "<tool_call>{}</tool_call>"),
        ("no tags at all", "no tags at all"),
        ("<answer>B", "<answer>B"),
        ("", ""),
    ],
)
def test_cut_turn(text: str, kept: str) -> None:
    assert cut_turn(text) == kept
    start, end = kept_turn_span(text)
    assert text[start:end] == kept


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("<think>t</think><tool_call> {\"a\": 1} </tool_call>", (TOOL_CALL, '{"a": 1}')),
        ("<answer> B </answer><tool_call>{}</tool_call>", (ANSWER, "B")),
        ("<tool_call>{}</tool_call><answer>B</answer>", (TOOL_CALL, "{}")),
        ("<tool_call>{}</answer>", None),
        ("<answer>B", None),
        ("<think>t</think>", None),
    ],
)
def test_find_action(text: str, action: tuple[str, str] | None) -> None:
    assert find_action(text) == action
    assert (ACTION_BLOCK.search(text) is None) is (action is None)
