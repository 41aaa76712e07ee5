"""Split a completion, finished or still streaming, into its thought and its answer for display.

A closed block is read with the reward functions' own parsers (`extract_think`, `find_answer`), so the panels
show exactly what training would score; an unclosed block (mid-stream, or cut off by the token limit) shows its
text so far. Skipping is TON's test (`is_empty_thought`): an empty ``<think></think>`` block.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_pipelines.thought_dropout import is_empty_thought
from vlm_rl.rewards.answers import extract_think, find_answer

DIRECT_PREFILL = "<think>\n\n</think>"
"""What the "direct" prompt mode starts the answer with: TON's empty thought, so the model answers at once."""


@dataclass(frozen=True)
class CompletionView:
    """The parts of a completion: `think`/`answer` are None when the block never opened."""

    think: str | None
    answer: str | None
    think_closed: bool
    answer_closed: bool
    skipped_thinking: bool


def _open_block(text: str, tag: str, stop: str | None = None) -> str | None:
    """Text after the first ``<tag>`` up to `stop` (or the end), stripped; None without an opening tag."""
    start = text.find(f"<{tag}>")
    if start < 0:
        return None
    rest = text[start + len(tag) + 2 :]
    if stop is not None and stop in rest:
        rest = rest[: rest.index(stop)]
    return rest.strip()


def view_completion(text: str) -> CompletionView:
    """The thought and answer of `text` as the demo shows them."""
    think = extract_think(text)
    think_closed = think is not None
    if not think_closed:
        think = _open_block(text, "think", "<answer>")
    answer = find_answer(text)
    answer_closed = answer is not None
    if not answer_closed:
        answer = _open_block(text, "answer")
    return CompletionView(think, answer, think_closed, answer_closed, is_empty_thought(text))
