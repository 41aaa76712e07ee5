"""Multi-turn rollouts over any engine: every active rollout of a batch generates one turn at a time.

TimeSearch-R's loop (arXiv 2511.05489): the first turn samples G completions per prompt; each turn is cut
and read by the rollout's `ToolEnvironment` (`vlm_rl.rollout.turns`); rollouts that called a tool get the
tool message appended and generate their next turn from the whole conversation, until they answer, stop
acting, or reach ``max_turns``.

What is trained is what was sampled: each row's completion is built from token ids, never re-tokenised
text. A model turn keeps its sampled ids up to the end of its first action block (the tokens after a
``</tool_call>`` or ``</answer>`` are dropped, as the official cut drops that text) and is closed with the
template's end-of-turn tokens; a tool turn is the processor's encoding of the rendered tool message with its
images (loss mask 0); the ``<|im_start|>assistant`` header before a later turn is trained, as in the official
mask. Unlike the official cleaning, text before the turn's last ``<think>`` stays in the token sequence (it
was sampled, and the next turn was generated after it); the environment and the rewards read the cut text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from data_pipelines.completion_format import kept_turn_span
from vlm_rl.models.adapter import CompletionMedia, PromptInputs, QwenVLAdapter
from vlm_rl.rollout.base import RolloutEngine, Rollouts, SamplingParams
from vlm_rl.rollout.turns import Message, Outcome, ToolCallEnvironment, Trajectory, take_turn, tool_message, tool_turn_loss_mask


@dataclass
class _Row:
    """One rollout being built: its prompt, conversation, token ids and the media of its tool turns."""

    prompt: int
    trajectory: Trajectory = field(default_factory=lambda: Trajectory([]))
    ids: list[int] = field(default_factory=list)
    token_types: list[torch.Tensor] = field(default_factory=list)
    loss_mask: list[torch.Tensor] = field(default_factory=list)
    pixels: list[torch.Tensor] = field(default_factory=list)
    grids: list[torch.Tensor] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    truncated: bool = False

    def add(self, ids: Sequence[int], segment: CompletionMedia, text: str, images: Sequence[Image.Image] = ()) -> None:
        self.ids.extend(int(i) for i in ids)
        self.token_types.append(segment.token_types.long())
        self.loss_mask.append(segment.loss_mask.float())
        if segment.pixel_values is not None:
            self.pixels.append(segment.pixel_values)
            self.grids.append(segment.image_grid_thw)
        self.text.append(text)
        self.images.extend(images)

    def media(self) -> CompletionMedia:
        return CompletionMedia(
            token_types=torch.cat(self.token_types) if self.token_types else torch.zeros(0, dtype=torch.long),
            loss_mask=torch.cat(self.loss_mask) if self.loss_mask else torch.zeros(0),
            pixel_values=torch.cat(self.pixels) if self.pixels else None,
            image_grid_thw=torch.cat(self.grids) if self.grids else None,
        )


class TurnLoop:
    """Runs multi-turn rollouts with any `RolloutEngine` (the HF and vLLM engines run the same loop).

    ``placeholder_call`` = (tool name, arguments): a rollout that never got a tool result gets the result
    of this call appended at the end (masked, no model turn), so every rollout carries an image.
    """

    def __init__(
        self,
        engine: RolloutEngine | None,
        adapter: QwenVLAdapter,
        *,
        max_turns: int,
        max_turn_tokens: int,
        placeholder_call: tuple[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.engine = engine
        self.adapter = adapter
        self.max_turns = max_turns
        self.max_turn_tokens = max_turn_tokens
        self.placeholder_call = placeholder_call
        tokenizer = adapter.tokenizer
        self._eos = set(adapter.eos_token_ids)
        self._header_text = adapter.generation_header
        self._header_ids = tokenizer(self._header_text, add_special_tokens=False)["input_ids"]
        closing = adapter.message_text({"role": "assistant", "content": [{"type": "text", "text": "\x00"}]})
        self._closing_text = closing.split("\x00", 1)[1]
        self._closing_ids = tokenizer(self._closing_text, add_special_tokens=False)["input_ids"]
        self._im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
        self._tool_role = tokenizer("tool", add_special_tokens=False)["input_ids"][0]

    def generate(
        self, prompts: Sequence[PromptInputs], environments: Sequence[ToolCallEnvironment], params: SamplingParams
    ) -> Rollouts:
        """``params.n`` multi-turn rollouts per prompt; `environments[i]` serves the tool calls of prompt i."""
        if len(environments) != len(prompts):
            raise ValueError(f"{len(environments)} environments for {len(prompts)} prompts")
        turn_params = dataclasses.replace(params, max_new_tokens=self.max_turn_tokens)
        first = self.engine.generate(prompts, turn_params)
        rows = [_Row(int(g)) for g in first.group_ids]
        pending = list(zip(rows, first.completion_ids, first.truncated))
        while pending:
            for row, ids, truncated in pending:
                self._take(row, ids, truncated, environments[row.prompt])
            active = [row for row in rows if row.trajectory.active]
            if not active:
                break
            for row in active:
                self._add_text(row, self._header_ids, self._header_text)
            follow = [
                self.adapter.extend(prompts[row.prompt], row.ids, row.media(), "".join(row.text), row.images) for row in active
            ]
            out = self.engine.generate(follow, dataclasses.replace(turn_params, n=1))
            pending = list(zip(active, out.completion_ids, out.truncated))
        if self.placeholder_call is not None:
            for row in rows:
                if not any(result.outcome is Outcome.TOOL for result in row.trajectory.results):
                    self._placeholder(row, environments[row.prompt])
        return Rollouts(
            [row.ids for row in rows],
            ["\n".join(result.turn_text for result in row.trajectory.results) for row in rows],
            [row.truncated for row in rows],
            first.group_ids,
            tuple(row.media() for row in rows),
            tuple(row.trajectory for row in rows),
        )

    def replay(self, turns: Sequence[str], environment: ToolCallEnvironment) -> tuple[list[int], CompletionMedia, Trajectory]:
        """The completion of a written conversation (an SFT cold-start trace): each model turn's text is tokenised
        as if it had been sampled and run through the same rules and tools as a rollout.

        Raises ValueError when the trace does not end with its last turn or does not end with an answer.
        """
        row = _Row(0)
        eos = self.adapter.eos_token_ids[0]
        for index, text in enumerate(turns):
            if not row.trajectory.active:
                raise ValueError(f"the trace ended at turn {index} of {len(turns)} ({row.trajectory.status.value})")
            if index:
                self._add_text(row, self._header_ids, self._header_text)
            ids = self.adapter.tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
            self._take(row, ids, False, environment)
        last = row.trajectory.results[-1].outcome if row.trajectory.results else None
        if last is not Outcome.ANSWER:
            raise ValueError(f"the trace does not end with an answer (its last turn gave {last.value if last else 'nothing'})")
        return row.ids, row.media(), row.trajectory

    def _take(self, row: _Row, ids: Sequence[int], truncated: bool, environment: ToolCallEnvironment) -> None:
        """Apply one generated turn: keep its ids up to the end of its first action, close it, add any tool turn."""
        body = list(ids[:-1]) if ids and ids[-1] in self._eos else list(ids)
        text = self._decode(body)
        kept = body[: self._kept_tokens(body, kept_turn_span(text)[1], len(text))]
        result = take_turn(row.trajectory, text, environment, self.max_turns)
        self._add_text(row, kept, self._decode(kept))
        self._add_text(row, self._closing_ids, self._closing_text)
        if result.outcome is Outcome.NO_ACTION and truncated:
            row.truncated = True
        if result.tool_message is not None:
            self._add_tool_turn(row, result.tool_message)

    def _placeholder(self, row: _Row, environment: ToolCallEnvironment) -> None:
        name, arguments = self.placeholder_call
        message = tool_message(name, environment.tools[name](row.trajectory.messages, arguments), arguments)
        row.trajectory.messages.append(message)
        self._add_tool_turn(row, message)

    def _add_tool_turn(self, row: _Row, message: Message) -> None:
        images = [item["image"] for item in message["content"] if item.get("type") == "image"]
        text = self.adapter.message_text(message)
        ids, segment = self.adapter.encode_continuation(text, images)
        mask = torch.tensor(tool_turn_loss_mask(ids.tolist(), self._im_start, self._tool_role), dtype=torch.float32)
        row.add(ids.tolist(), dataclasses.replace(segment, loss_mask=mask), text, images)

    def _add_text(self, row: _Row, ids: Sequence[int], text: str) -> None:
        """Trained text tokens (a model turn, its closing tokens, a turn header)."""
        n = len(ids)
        row.add(ids, CompletionMedia(torch.zeros(n, dtype=torch.long), torch.ones(n)), text)

    def _decode(self, ids: Sequence[int]) -> str:
        return self.adapter.tokenizer.decode(ids, skip_special_tokens=True)

    def _kept_tokens(self, ids: Sequence[int], end: int, length: int) -> int:
        """The fewest leading tokens whose text reaches character `end` of the turn's text (all of them at the end)."""
        if end >= length:
            return len(ids)
        low, high = 1, len(ids)
        while low < high:
            middle = (low + high) // 2
            if len(self._decode(ids[:middle])) >= end:
                high = middle
            else:
                low = middle + 1
        return low
