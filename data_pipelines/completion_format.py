"""The completion format ``<think>…</think><answer>…</answer>``: its tags and every parser of it.

A completion reasons inside a think block and gives its final answer inside an answer block (the Video-R1
format, arXiv 2503.21776). TON (arXiv 2505.16854) skips reasoning with an empty thought, `EMPTY_THOUGHT`.
A ``<tool_call>…</tool_call>`` block is how a model asks for a tool (Qwen2.5's chat template uses it).

A *block* is an opening tag and the first closing tag after it; its content is what lies between them, kept
verbatim by the ``*_BLOCK`` patterns (group 1) and stripped of surrounding whitespace by the ``find_*`` /
``extract_*`` functions. Tags are case-sensitive except where a function says otherwise. Training, rewards,
evaluation, the data pipelines and the demo all parse completions through this module, so they agree on what
a completion says.
"""

from __future__ import annotations

import re

THINK = "think"
ANSWER = "answer"
TOOL_CALL = "tool_call"

THINK_OPEN, THINK_CLOSE = f"<{THINK}>", f"</{THINK}>"
ANSWER_OPEN, ANSWER_CLOSE = f"<{ANSWER}>", f"</{ANSWER}>"
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = f"<{TOOL_CALL}>", f"</{TOOL_CALL}>"

EMPTY_THOUGHT_CONTENT = "\n\n"
"""What TON's skipped thought holds between the tags: two newline characters, nothing else."""

EMPTY_THOUGHT = THINK_OPEN + EMPTY_THOUGHT_CONTENT + THINK_CLOSE
"""TON's whole empty think block, ``"<think>\\n\\n</think>"``."""


def _block(name: str) -> re.Pattern[str]:
    return re.compile(f"<{name}>(.*?)</{name}>", re.DOTALL)


THINK_BLOCK = _block(THINK)
"""A ``<think>…</think>`` block; group 1 is its content, verbatim."""
ANSWER_BLOCK = _block(ANSWER)
"""An ``<answer>…</answer>`` block; group 1 is its content, verbatim."""
TOOL_CALL_BLOCK = _block(TOOL_CALL)
"""A ``<tool_call>…</tool_call>`` block; group 1 is its content, verbatim."""

_THINK_THEN_ANSWER = rf"{THINK_OPEN}.*?{THINK_CLOSE}\s*{ANSWER_OPEN}.*?{ANSWER_CLOSE}"
_THINK_ANSWER = re.compile(_THINK_THEN_ANSWER, re.DOTALL)
_TW_THINK_ANSWER = re.compile(_THINK_THEN_ANSWER + r"[\s!]*$", re.DOTALL)
_ANSWER_ONLY = re.compile(rf"{ANSWER_OPEN}(?:(?!</?{ANSWER}>|</?{THINK}>).)*{ANSWER_CLOSE}", re.DOTALL)
_WHOLE_ANSWER = re.compile(rf"\s*{ANSWER_OPEN}(.*?){ANSWER_CLOSE}\s*", re.DOTALL)


def tag_pattern(*names: str, ignore_case: bool = False) -> re.Pattern[str]:
    """A pattern matching the opening or closing tag of any of `names` (e.g. ``THINK, ANSWER``)."""
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(f"</?(?:{alternatives})>", re.IGNORECASE if ignore_case else 0)


def answer_block(content: str) -> str:
    """``"<answer>" + content + "</answer>"``: `content` as an answer block, verbatim."""
    return ANSWER_OPEN + content + ANSWER_CLOSE


def _first_content(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return None if found is None else found.group(1).strip()


def find_answer(text: str) -> str | None:
    """Content of the first answer block, stripped; ``None`` when `text` has no complete answer block."""
    return _first_content(ANSWER_BLOCK, text)


def answer_or_text(text: str) -> str:
    """Content of the first answer block, else the whole text; stripped (how a ground truth is read)."""
    answer = find_answer(text)
    return text.strip() if answer is None else answer


def extract_answer(text: str) -> str:
    """Content of the first answer block, stripped; ``""`` when there is none.

    This is the training rule of Video-R1 and GRPO-CARE: there is no fallback to the whole text.
    """
    answer = find_answer(text)
    return "" if answer is None else answer


def extract_think(text: str) -> str | None:
    """Content of the first think block, stripped; ``None`` when there is none.

    An empty thought (TON's ``<think>\\n\\n</think>``) gives ``""``.
    """
    return _first_content(THINK_BLOCK, text)


def find_tool_call(text: str) -> str | None:
    """Content of the first ``<tool_call>…</tool_call>`` block, stripped; ``None`` when there is none.

    The content is returned as text (usually a JSON object); parsing it is the caller's business. An
    unclosed ``<tool_call>`` (a generation cut off by the token limit) is no tool call.
    """
    return _first_content(TOOL_CALL_BLOCK, text)


def answer_content_span(text: str) -> tuple[int, int] | None:
    """Character span ``[start, end)`` of the content of the last answer block, tags excluded, not stripped.

    Blocks are taken left to right without overlap, so in ``"<answer>a<answer>b</answer>"`` the one block
    spans ``"a<answer>b"``. ``None`` when `text` has no complete answer block.
    """
    blocks = list(ANSWER_BLOCK.finditer(text))
    return blocks[-1].span(1) if blocks else None


def whole_answer_content(text: str) -> str | None:
    """The content, verbatim, when all of `text` but surrounding whitespace is wrapped in answer tags.

    The content runs from the first ``<answer>`` to the last ``</answer>`` and may itself hold tags;
    ``None`` when `text` does not start with ``<answer>`` and end with ``</answer>`` (whitespace aside).
    """
    found = _WHOLE_ANSWER.fullmatch(text)
    return None if found is None else found.group(1)


def is_empty_thought(text: str) -> bool:
    """Whether the first think block of `text` holds nothing but whitespace: TON's test for a skipped thought.

    ``"<think>\\n\\n</think>"``, ``"<think></think>"`` and ``"<think> </think>"`` are skips; any other
    character inside the block is not. A text with no complete think block is not a skip (it is a format
    failure, which the format reward handles).
    """
    found = THINK_BLOCK.search(text)
    return found is not None and not found.group(1).strip()


def remove_answer_blocks(text: str, replacement: str = "") -> str:
    """`text` with every complete answer block, tags included, replaced by `replacement`."""
    return ANSWER_BLOCK.sub(replacement, text)


def before_first_answer(text: str) -> str:
    """`text` up to its first ``<answer>`` opening tag (closed or not); all of `text` when there is none."""
    index = text.find(ANSWER_OPEN)
    return text if index < 0 else text[:index]


def before_last_answer(text: str) -> str:
    """`text` up to its last ``<answer>`` opening tag (closed or not); all of `text` when there is none."""
    index = text.rfind(ANSWER_OPEN)
    return text if index < 0 else text[:index]


def open_block_content(text: str, open_tag: str, stop: str | None = None) -> str | None:
    """Text after the first `open_tag` up to the first `stop` after it (or the end), stripped.

    For a block still being written (a streamed or truncated completion), e.g.
    ``open_block_content(text, THINK_OPEN, ANSWER_OPEN)``. ``None`` when `open_tag` does not occur.
    """
    start = text.find(open_tag)
    if start < 0:
        return None
    rest = text[start + len(open_tag) :]
    if stop is not None and stop in rest:
        rest = rest[: rest.index(stop)]
    return rest.strip()


def is_think_answer(text: str) -> bool:
    """Video-R1's format rule: all of `text` is a think block, optional whitespace, then an answer block.

    Nothing may come before ``<think>`` or after ``</answer>``; an empty thought is accepted.
    """
    return _THINK_ANSWER.fullmatch(text) is not None


def is_tw_think_answer(text: str) -> bool:
    """TW-GRPO's format rule (arXiv 2505.24718): at most one ``<think>`` and one ``<answer>``, and the stripped
    text holds a think block, optional whitespace, an answer block, then only whitespace or ``!`` to its end.

    Text before ``<think>`` is allowed.
    """
    if text.count(THINK_OPEN) > 1 or text.count(ANSWER_OPEN) > 1:
        return False
    return _TW_THINK_ANSWER.search(text.strip()) is not None


def is_answer_only(text: str) -> bool:
    """The no-think format rule: all of `text` is one answer block whose content holds no think or answer tag."""
    return _ANSWER_ONLY.fullmatch(text) is not None


ACTION_BLOCK = re.compile(f"<({TOOL_CALL}|{ANSWER})>(.*?)</\\1>", re.DOTALL)
"""The first complete ``<tool_call>…</tool_call>`` or ``<answer>…</answer>`` block, whichever comes first;
group 1 is the tag name, group 2 the content, verbatim."""


def kept_turn_span(text: str) -> tuple[int, int]:
    """Character span ``[start, end)`` of the part of one generated turn that a multi-turn rollout keeps.

    TimeSearch-R's rule (arXiv 2511.05489): start at the last ``<think>`` (at 0 when there is none), then end
    right after the first ``</tool_call>`` from there, else after the first ``</answer>``, else at the end.
    """
    start = max(text.rfind(THINK_OPEN), 0)
    for close in (TOOL_CALL_CLOSE, ANSWER_CLOSE):
        index = text.find(close, start)
        if index >= 0:
            return start, index + len(close)
    return start, len(text)


def cut_turn(text: str) -> str:
    """The kept part of one generated turn (see `kept_turn_span`)."""
    start, end = kept_turn_span(text)
    return text[start:end]


def find_action(text: str) -> tuple[str, str] | None:
    """``(TOOL_CALL or ANSWER, content stripped)`` of the first complete action block; ``None`` when there is none."""
    found = ACTION_BLOCK.search(text)
    return None if found is None else (found.group(1), found.group(2).strip())
