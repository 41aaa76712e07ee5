"""One step of a multi-turn tool rollout, the model-free rules (TimeSearch-R, arXiv 2511.05489).

A rollout alternates model turns and tool turns. Each generated turn is cut (`cut_turn`), its first action
block is read, and the environment answers with one of four outcomes:

- ``ANSWER``: the turn holds an answer block first; the rollout is done.
- ``TOOL``: a tool call whose JSON parsed and whose tool ran; the tool message is appended, still active.
- ``PARSE_ERROR``: a tool call whose JSON parsed but which names no known tool, has no usable arguments or
  which the tool rejects; a ``parse_error`` tool message asking the model to retry is appended, still active.
- ``NO_ACTION``: no complete action block, or a tool-call body that is not a JSON object even after
  repair; the rollout ends without an answer.

A rollout still active after ``max_turns`` turns ends without an answer. Generated text never raises here.
Deviation from the official code, which turns *any* exception of a tool into a parse error: only
`ToolCallRejected` does, so that a bug or a missing file in our own tool code fails loudly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import json_repair

from data_pipelines.completion_format import ANSWER, cut_turn, find_action

Message = dict[str, Any]
"""A chat message: ``{"role": …, "content": [{"type": "text", "text": …}, …]}``, tool turns also with ``name``."""

PARSE_ERROR_TOOL = "parse_error"
PARSE_ERROR_TEXT = (
    "\nThe previous response is invalid. "
    "If I want to use tools, I should output a json object with function name and arguments within "
    "<tool_call></tool_call> tags: \n"
    "If I want to give the final answer, I should put the answer between <answer> and </answer>.\n"
    "Let me try again.\n"
)
"""The text of the tool message that answers an unusable tool call (the official wording)."""


class Outcome(enum.Enum):
    ANSWER = "answer"
    TOOL = "tool"
    PARSE_ERROR = "parse_error"
    NO_ACTION = "no_action"


@dataclass(frozen=True)
class TurnResult:
    """What became of one generated turn: the kept text, the outcome and the tool message to append, if any."""

    turn_text: str
    outcome: Outcome
    tool_message: Message | None = None
    answer: str | None = None

    @property
    def done(self) -> bool:
        """Whether the rollout ends with this turn (an answer, or no usable action)."""
        return self.outcome in (Outcome.ANSWER, Outcome.NO_ACTION)


class ToolEnvironment(Protocol):
    """Given the conversation so far and a generated turn: done, or the tool message to append."""

    def step(self, conversation: Sequence[Message], turn_text: str) -> TurnResult: ...


class ToolCallRejected(Exception):
    """Raised by a tool for a call it cannot serve (bad arguments, empty window); the model is asked to retry."""


Tool = Callable[[Sequence[Message], Mapping[str, Any]], list[dict[str, Any]]]
"""A tool: (conversation, arguments) -> the content items of its tool message."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


def parse_tool_call(body: str) -> ToolCall | None:
    """The call in a ``<tool_call>`` body, read with json-repair; ``None`` when the body is no JSON object.

    A string ``arguments`` is parsed again; missing arguments are ``{}``. A call whose name is not a string or
    whose arguments are not an object gets the name ``""``, which no tool has, so it is answered with a parse error.
    """
    parsed = json_repair.loads(body)
    if not isinstance(parsed, dict):
        return None
    name, arguments = parsed.get("name"), parsed.get("arguments", {})
    if isinstance(arguments, str):
        arguments = json_repair.loads(arguments) if arguments.strip() else {}
    if not isinstance(name, str) or not isinstance(arguments, dict):
        return ToolCall("", {})
    return ToolCall(name, arguments)


def tool_message(name: str, content: list[dict[str, Any]], arguments: Mapping[str, Any] | None = None) -> Message:
    """A ``tool`` chat message; `arguments` are the call's, kept for the record."""
    message: Message = {"role": "tool", "name": name, "content": content}
    if arguments is not None:
        message["arguments"] = dict(arguments)
    return message


def parse_error_message() -> Message:
    return tool_message(PARSE_ERROR_TOOL, [{"type": "text", "text": PARSE_ERROR_TEXT}])


def assistant_message(text: str) -> Message:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


@dataclass(frozen=True)
class ToolCallEnvironment:
    """The official turn rules over a set of named tools; implements `ToolEnvironment`."""

    tools: Mapping[str, Tool]

    def step(self, conversation: Sequence[Message], turn_text: str) -> TurnResult:
        kept = cut_turn(turn_text)
        action = find_action(kept)
        if action is None:
            return TurnResult(kept, Outcome.NO_ACTION)
        tag, body = action
        if tag == ANSWER:
            return TurnResult(kept, Outcome.ANSWER, answer=body)
        call = parse_tool_call(body)
        if call is None:
            return TurnResult(kept, Outcome.NO_ACTION)
        tool = self.tools.get(call.name)
        if tool is None:
            return TurnResult(kept, Outcome.PARSE_ERROR, parse_error_message())
        try:
            content = tool(conversation, call.arguments)
        except ToolCallRejected:
            return TurnResult(kept, Outcome.PARSE_ERROR, parse_error_message())
        return TurnResult(kept, Outcome.TOOL, tool_message(call.name, content, call.arguments))


class Status(enum.Enum):
    ACTIVE = "active"
    ANSWERED = "answered"
    NO_ACTION = "no_action"
    MAX_TURNS = "max_turns"


@dataclass
class Trajectory:
    """The messages of one rollout (prompt first) and whether it goes on."""

    messages: list[Message]
    turns: int = 0
    status: Status = Status.ACTIVE
    results: list[TurnResult] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status is Status.ACTIVE


def take_turn(trajectory: Trajectory, turn_text: str, environment: ToolEnvironment, max_turns: int) -> TurnResult:
    """Apply one generated turn: append the kept assistant text and any tool message, then update the status.

    After its `max_turns`-th turn a trajectory that is still active ends with ``MAX_TURNS`` (no answer).
    """
    if not trajectory.active:
        raise ValueError(f"take_turn: the trajectory has already ended ({trajectory.status.value})")
    result = environment.step(trajectory.messages, turn_text)
    trajectory.messages.append(assistant_message(result.turn_text))
    if result.tool_message is not None:
        trajectory.messages.append(result.tool_message)
    trajectory.results.append(result)
    trajectory.turns += 1
    if result.outcome is Outcome.ANSWER:
        trajectory.status = Status.ANSWERED
    elif result.outcome is Outcome.NO_ACTION:
        trajectory.status = Status.NO_ACTION
    elif trajectory.turns >= max_turns:
        trajectory.status = Status.MAX_TURNS
    return result


def tool_turn_loss_mask(token_ids: Sequence[int], im_start_id: int, tool_role_id: int) -> list[int]:
    """1 for tokens the loss trains on, 0 for tool turns.

    A tool turn starts at an ``<|im_start|>`` token immediately followed by the ``tool`` role token and runs up
    to (not including) the next ``<|im_start|>``; everything else, the ``<|im_start|>assistant`` headers of
    later model turns included, is trained.
    """
    mask, in_tool = [], False
    for index, token in enumerate(token_ids):
        if token == im_start_id:
            in_tool = index + 1 < len(token_ids) and token_ids[index + 1] == tool_role_id
        mask.append(0 if in_tool else 1)
    return mask
