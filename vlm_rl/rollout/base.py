"""The engine interface every rollout backend (transformers, vLLM) implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from vlm_rl.models.adapter import CompletionMedia, PromptInputs
from vlm_rl.rollout.turns import Trajectory


@dataclass(frozen=True)
class SamplingParams:
    """How completions are drawn; temperature 0 means greedy decoding."""

    n: int = 1
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0


@dataclass(frozen=True)
class Rollouts:
    """Completions for a batch of prompts, ordered prompt by prompt (row i belongs to prompt group_ids[i]).

    `completion_ids[i]` runs up to and including the first EOS token (the completion mask of the
    GRPO papers); `truncated[i]` is True when no EOS came within max_new_tokens. Multi-turn rollouts
    (tool use) also carry each row's tool-turn `media` (token types, loss mask, images) and its
    `trajectories` (messages, turn outcomes); their `texts` are the kept model turns, one per line.
    """

    completion_ids: list[list[int]]
    texts: list[str]
    truncated: list[bool]
    group_ids: torch.Tensor
    media: tuple[CompletionMedia | None, ...] | None = None
    trajectories: tuple[Trajectory, ...] | None = None

    @property
    def lengths(self) -> list[int]:
        return [len(c) for c in self.completion_ids]

    def __len__(self) -> int:
        return len(self.completion_ids)

    def select_groups(self, groups: list[int]) -> Rollouts:
        """The rollouts of `groups` (in that order), renumbered 0..len(groups)-1."""
        rows = [i for g in groups for i in torch.nonzero(self.group_ids == g).flatten().tolist()]
        counts = [int((self.group_ids == g).sum()) for g in groups]
        return Rollouts(
            [self.completion_ids[i] for i in rows],
            [self.texts[i] for i in rows],
            [self.truncated[i] for i in rows],
            torch.arange(len(groups)).repeat_interleave(torch.tensor(counts, dtype=torch.long)),
            None if self.media is None else tuple(self.media[i] for i in rows),
            None if self.trajectories is None else tuple(self.trajectories[i] for i in rows),
        )

    @staticmethod
    def concat(parts: Sequence[Rollouts]) -> Rollouts:
        """Rollouts of several batches, group ids offset so they stay distinct."""
        offset, ids = 0, []
        for part in parts:
            ids.append(part.group_ids + offset)
            offset += int(part.group_ids.max()) + 1 if len(part) else 0
        multi_turn = [part.trajectories is not None for part in parts]
        if any(multi_turn) and not all(multi_turn):
            raise ValueError("cannot concatenate multi-turn rollouts with single-turn ones")
        return Rollouts(
            [c for part in parts for c in part.completion_ids],
            [t for part in parts for t in part.texts],
            [x for part in parts for x in part.truncated],
            torch.cat(ids) if ids else torch.zeros(0, dtype=torch.long),
            tuple(m for part in parts for m in part.media) if any(multi_turn) else None,
            tuple(t for part in parts for t in part.trajectories) if any(multi_turn) else None,
        )


class RolloutEngine(Protocol):
    """What the trainer, evaluation and the demo call on an engine (tests/integration/test_engine_protocol.py
    checks every engine against it)."""

    def generate(self, prompts: Sequence[PromptInputs], params: SamplingParams, *, streamer=None) -> Rollouts:
        """Sample `params.n` completions for each prompt. A transformers `streamer` (one prompt, n = 1)
        receives the tokens as they are generated; an engine that cannot stream raises ValueError."""
        ...

    def sync_weights(self, policy: torch.nn.Module) -> None:
        """Sample from now on with `policy`'s current weights; the trainer calls it before the first
        rollout and after every optimizer step."""
        ...
