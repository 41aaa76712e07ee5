"""The engine interface every rollout backend (transformers, vLLM) implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from vlm_rl.models.adapter import PromptInputs


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
    GRPO papers); `truncated[i]` is True when no EOS came within max_new_tokens.
    """

    completion_ids: list[list[int]]
    texts: list[str]
    truncated: list[bool]
    group_ids: torch.Tensor

    @property
    def lengths(self) -> list[int]:
        return [len(c) for c in self.completion_ids]

    def __len__(self) -> int:
        return len(self.completion_ids)


class RolloutEngine(Protocol):
    def generate(self, prompts: Sequence[PromptInputs], params: SamplingParams) -> Rollouts:
        """Sample `params.n` completions for each prompt."""
        ...
