"""A frame-search rollout as the demo shows it: each model turn (thought, then its tool call or answer), the frames
each call returned captioned with their timestamps, parse errors, and the totals of the whole search.

All model text is escaped; the views are built from the trajectory alone (no model, no UI), so they can be tested.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from data_pipelines.completion_format import find_action
from vlm_rl.demo.completion_view import view_completion
from vlm_rl.rollout.search_stats import retrieved_frames
from vlm_rl.rollout.turns import Message, Outcome, Status, Trajectory, TurnResult

STATUS_TEXT = {
    Status.ACTIVE: "still searching",
    Status.ANSWERED: "answered",
    Status.NO_ACTION: "stopped: a turn had no tool call and no answer",
    Status.MAX_TURNS: "stopped at the turn limit without an answer",
}
OUTCOME_TITLE = {
    Outcome.TOOL: "tool call",
    Outcome.PARSE_ERROR: "parse error",
    Outcome.ANSWER: "answer",
    Outcome.NO_ACTION: "no action",
}


@dataclass(frozen=True, eq=False)
class TurnView:
    """One model turn: its card (HTML) and the frames its tool call returned, as (image, timestamp) pairs."""

    number: int
    outcome: Outcome
    html: str
    frames: list[tuple[Image.Image, str]]

    @property
    def gallery_label(self) -> str:
        return f"Turn {self.number}: {_count(len(self.frames), 'frame')} returned"


@dataclass(frozen=True, eq=False)
class SearchView:
    """The turns of one search in order, the totals line (HTML) and the final answer (None without one).

    Views compare and hash by identity: the page keeps one in a `gr.State`, which Gradio hashes to notice a new search.
    """

    turns: list[TurnView]
    totals: str
    answer: str | None


def returned_frames(message: Message) -> list[tuple[Image.Image, str]]:
    """The images of a tool message, each captioned with the text item just before it (the tool's timestamp)."""
    frames, caption = [], ""
    for item in message["content"]:
        if item.get("type") == "text":
            caption = item["text"]
        elif item.get("type") == "image":
            frames.append((item["image"], caption or f"frame {len(frames) + 1}"))
            caption = ""
    return frames


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _part(label: str, body: str) -> str:
    return f'<div class="vr-part"><b>{html.escape(label)}</b><pre>{html.escape(body)}</pre></div>'


def _action_parts(result: TurnResult, truncated: bool) -> list[str]:
    """The card lines after the thought: what the turn did and what came back."""
    action = find_action(result.turn_text)
    written = action[1] if action else ""
    if result.outcome is Outcome.TOOL:
        message = result.tool_message
        arguments = json.dumps(message.get("arguments", {}), ensure_ascii=False)
        stamps = ", ".join(caption for _, caption in returned_frames(message))
        return [_part(f"call {message['name']}", arguments), f"<div>Returned frames at {html.escape(stamps)}.</div>"]
    if result.outcome is Outcome.PARSE_ERROR:
        note = "No such tool or unusable arguments: the model was told to try again."
        return [_part("tool call (not usable)", written), f'<div class="vr-error">Parse error. {note}</div>']
    if result.outcome is Outcome.ANSWER:
        return [_part("answer", result.answer or "")]
    cut = " (cut at the tokens-per-turn limit)" if truncated else ""
    note = f"No complete &lt;tool_call&gt; or &lt;answer&gt; block{cut}: the search ends here."
    return [_part("text", result.turn_text), f'<div class="vr-error">{note}</div>']


def view_turn(number: int, result: TurnResult, truncated: bool = False) -> TurnView:
    """The card and frames of the `number`-th turn; `truncated`: the turn stopped at the token limit."""
    think = view_completion(result.turn_text).think
    parts = [] if think is None else [_part("think", think)]
    parts += _action_parts(result, truncated)
    title = f"Turn {number} · {OUTCOME_TITLE[result.outcome]}"
    card = (
        f'<div class="vr-search-turn vr-outcome-{result.outcome.value}">'
        f'<div class="vr-title">{html.escape(title)}</div>{"".join(parts)}</div>'
    )
    frames = returned_frames(result.tool_message) if result.outcome is Outcome.TOOL else []
    return TurnView(number, result.outcome, card, frames)


def totals_html(trajectory: Trajectory) -> str:
    """Status, turns, tool calls, parse errors, frames returned and the final answer, as one HTML line."""
    outcomes = [result.outcome for result in trajectory.results]
    answer = final_answer(trajectory.results)
    parts = [
        f"<b>{html.escape(STATUS_TEXT[trajectory.status])}</b>",
        _count(trajectory.turns, "turn"),
        _count(outcomes.count(Outcome.TOOL), "tool call"),
        _count(outcomes.count(Outcome.PARSE_ERROR), "parse error"),
        f"{_count(retrieved_frames(trajectory), 'frame')} returned",
    ]
    if answer is not None:
        parts.append(f"final answer: <b>{html.escape(answer)}</b>")
    return f'<div class="vr-summary">{" · ".join(parts)}</div>'


def final_answer(results: Sequence[TurnResult]) -> str | None:
    return next((r.answer for r in reversed(results) if r.outcome is Outcome.ANSWER), None)


def view_search(trajectory: Trajectory, truncated: bool = False) -> SearchView:
    """What the demo shows of one search rollout; `truncated`: its last turn stopped at the token limit."""
    last = len(trajectory.results)
    turns = [view_turn(i, result, truncated and i == last) for i, result in enumerate(trajectory.results, 1)]
    return SearchView(turns, totals_html(trajectory), final_answer(trajectory.results))
