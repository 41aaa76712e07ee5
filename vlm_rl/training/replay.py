"""Replay buffer for VL-Rethinker's Selective Sample Replay (SSR; arXiv 2504.08837).

SSR keeps rollouts whose advantage is non-zero and re-draws them with probability that grows
with |advantage| (the paper draws with P(j) proportional to |A_j|^alpha among rollouts with
A_j != 0; docs/algorithms.md, "VL-Rethinker's official code"). `ReplayBuffer` is the
buffer; `SelectiveReplay` connects it to the GRPO loop (which rows are replayed, checkpointing).

Choices, following the official code:

* "Non-zero" is an exact test (``advantage != 0``), so all-correct groups whose shaped rewards
  differ still count as effective and are stored.
* The priority is ``|A|**alpha + eps`` with ``alpha = 1`` and ``eps = 1e-4`` by default: the paper's
  formula with the additive ``eps`` that the code uses when it draws from its buffer.
* Each item keeps the per-token log-probs of the policy that sampled it, so a replayed sample is
  trained with the usual clipped importance ratio against that old policy. No further
  off-policy correction is applied, as in the code.
* The buffer is FIFO and never cleared; where it lives (per rank or global) is the caller's choice.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from data_pipelines.schema import Sample
from vlm_rl.models.adapter import QwenVLAdapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rollout import Rollouts
from vlm_rl.training.checkpoint import generator_state, load_json_state, save_json_state, set_generator_state
from vlm_rl.training.groups import StepBatch
from vlm_rl.training.loss_parts import LossPart, stored_rows_part
from vlm_rl.training.methods import Method, MethodContext


@dataclass(frozen=True)
class ReplayItem:
    """One stored rollout.

    `origin` is the prompt's ``Sample.origin`` (``"<file>#<index>"``) so the trainer can rebuild the
    prompt; `old_logps[t]` is the log-prob of `completion_ids[t]` under the sampling policy;
    `step` is the training step the rollout came from. Values are normalised to plain Python
    ints and floats, so the item is hashable and JSON-serialisable.
    """

    origin: str
    completion_ids: tuple[int, ...]
    advantage: float
    old_logps: tuple[float, ...]
    step: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "completion_ids", tuple(int(t) for t in self.completion_ids))
        object.__setattr__(self, "old_logps", tuple(float(x) for x in self.old_logps))
        object.__setattr__(self, "advantage", float(self.advantage))
        object.__setattr__(self, "step", int(self.step))
        if len(self.completion_ids) != len(self.old_logps):
            raise ValueError(
                f"replay item from {self.origin}: {len(self.completion_ids)} completion tokens "
                f"but {len(self.old_logps)} old log-probs"
            )
        if not math.isfinite(self.advantage):
            raise ValueError(f"replay item from {self.origin}: advantage {self.advantage} is not finite")


class ReplayBuffer:
    """FIFO store of at most `capacity` non-zero-advantage rollouts, sampled by |advantage| priority.

    ``P(j) = (|A_j|**alpha + eps) / sum_k (|A_k|**alpha + eps)``; ``alpha = 0`` gives uniform draws.
    """

    def __init__(self, capacity: int, *, alpha: float = 1.0, eps: float = 1e-4):
        if capacity < 1:
            raise ValueError(f"replay capacity must be at least 1, got {capacity}")
        if alpha < 0 or eps < 0:
            raise ValueError(f"replay alpha and eps must be non-negative, got alpha={alpha}, eps={eps}")
        self.capacity = capacity
        self.alpha = alpha
        self.eps = eps
        self._items: deque[ReplayItem] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, items: Iterable[ReplayItem]) -> int:
        """Append the items with non-zero advantage, evicting the oldest; return how many were added."""
        added = 0
        for item in items:
            if item.advantage != 0:
                self._items.append(item)
                added += 1
        return added

    def sample(self, k: int, generator: torch.Generator) -> list[ReplayItem]:
        """Draw `k` items with replacement by priority, reproducibly for a given `generator` state.

        As in the official code, while more than ``len(self)`` draws remain, the whole buffer is
        taken once (oldest first) and ``len(self)`` is subtracted; the last 1..len(self) draws are then
        made by priority and appended. So k = 10 from 4 items gives 2 full copies and 2 draws, and
        k = 8 gives 1 full copy and 4 draws (k equal to the size is drawn, not copied).
        """
        if k < 0:
            raise ValueError(f"cannot draw a negative number of replay items ({k})")
        if k == 0:
            return []
        if not self._items:
            raise ValueError(f"cannot draw {k} items from an empty replay buffer")
        items = list(self._items)
        copies = (k - 1) // len(items)
        remainder = k - copies * len(items)
        magnitudes = torch.tensor([abs(item.advantage) for item in items], dtype=torch.float64)
        weights = magnitudes.pow(self.alpha) + self.eps
        drawn = torch.multinomial(weights, remainder, replacement=True, generator=generator)
        return items * copies + [items[i] for i in drawn.tolist()]

    def state_dict(self) -> dict[str, Any]:
        """Capacity and items (oldest first) as plain JSON types."""
        items = [
            {**asdict(item), "completion_ids": list(item.completion_ids), "old_logps": list(item.old_logps)}
            for item in self._items
        ]
        return {"capacity": self.capacity, "items": items}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the contents with those of `state`; its capacity must equal this buffer's."""
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"replay buffer state has capacity {state['capacity']} but this buffer has capacity "
                f"{self.capacity}; resume with the same replay capacity"
            )
        self._items = deque((ReplayItem(**item) for item in state["items"]), maxlen=self.capacity)


def effective_ratio(advantages: torch.Tensor) -> float:
    """Share of samples (one advantage each) whose advantage is exactly non-zero; 0.0 if there are none."""
    if advantages.numel() == 0:
        return 0.0
    return (advantages != 0).float().mean().item()


REPLAY_FILE = "replay.json"


class SelectiveReplay(Method):
    """SSR in the GRPO loop: remembers non-zero-advantage rollouts and replays them for vanished groups.

    The trainer asks for as many replayed rows as its step has rows in groups whose advantages all
    vanished, and trains on them with their stored advantages and rollout-time log-probs (so the
    clipped ratio is taken against the policy that sampled them). After the update, the step's
    rollouts with non-zero advantage join the buffer; a step's own rollouts are therefore never
    replayed in that same step (the code appends them first; they are trained on anyway).
    """

    def __init__(self, buffer: ReplayBuffer, samples: Sequence[Sample], adapter: QwenVLAdapter, seed: int) -> None:
        self.buffer = buffer
        self.samples = {sample.origin: sample for sample in samples}
        self.adapter = adapter
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def from_config(cls, ctx: MethodContext) -> SelectiveReplay | None:
        config = ctx.config.algo.replay
        if not config.enabled:
            return None
        capacity = config.capacity or max(1, ctx.config.trainer.prompts_per_step * ctx.sampling.n // 2)
        method = cls(ReplayBuffer(capacity, alpha=config.alpha), ctx.train_samples, ctx.adapter, ctx.seed)
        method.encoder, method.rows_per_part, method.group_size = ctx.encoder, ctx.rows_per_part, ctx.sampling.n
        return method

    def plan(self, batch: StepBatch, groups: list[int]) -> tuple[list[int], list[LossPart], dict[str, float]]:
        """Rows of groups whose advantages all vanished are replaced by as many replayed rows, when the
        buffer holds any; otherwise every group trains."""
        advantages, ids = batch.advantages, batch.groups.rollouts.group_ids
        vanished = [g for g in groups if bool((advantages[ids == g] == 0).all())]
        replayed = self.parts(sum(int((ids == g).sum()) for g in vanished), self.encoder, self.rows_per_part)
        if replayed:
            groups = [g for g in groups if g not in vanished]
        rows = sum(len(p.advantages) for p in replayed)
        stats = {
            "replay/effective_ratio": effective_ratio(advantages),
            "replay/replayed_fraction": rows / max(1, rows + len(groups) * self.group_size),
        }
        return groups, replayed, stats

    def after_update(self, step: int, batch: StepBatch, trained: list[tuple[LossPart, torch.Tensor]]) -> dict[str, float]:
        added = self.remember(step, batch.groups.samples, batch.groups.rollouts, batch.advantages, trained)
        return {"replay/added": float(added), "replay/buffer_size": float(len(self.buffer))}

    def parts(self, k: int, encoder: PromptEncoder, rows_per_part: int) -> list[LossPart]:
        """Loss micro-batches of `k` replayed rows (none while the buffer is empty)."""
        if k == 0 or not len(self.buffer):
            return []
        items = self.buffer.sample(k, self.generator)
        parts = []
        for start in range(0, len(items), rows_per_part):
            chunk = items[start : start + rows_per_part]
            prompts = [encoder.encode(self.samples[item.origin]) for item in chunk]
            advantages = torch.tensor([item.advantage for item in chunk])
            parts.append(stored_rows_part(
                self.adapter, prompts, [item.completion_ids for item in chunk], [item.old_logps for item in chunk],
                advantages, torch.zeros(len(chunk)), start,
            ))
        return parts

    def remember(self, step: int, samples: Sequence[Sample], rollouts: Rollouts, advantages: torch.Tensor,
                 trained: Sequence[tuple[LossPart, torch.Tensor]]) -> int:
        """Add the non-zero-advantage rows of this step's loss parts, each paired with its log-probs [B, C];
        returns how many were added."""
        items = []
        for part, logp in trained:
            for local, row in enumerate(part.rows.tolist()):
                ids = rollouts.completion_ids[row]
                origin = samples[int(rollouts.group_ids[row])].origin
                items.append(ReplayItem(origin, ids, float(advantages[row]), logp[local, : len(ids)].tolist(), step))
        return self.buffer.add(items)

    def save(self, directory: Path) -> None:
        save_json_state(directory, REPLAY_FILE, {"buffer": self.buffer.state_dict(), "generator": generator_state(self.generator)})

    def load(self, directory: Path) -> None:
        state = load_json_state(directory, REPLAY_FILE, "algo.replay.enabled")
        self.buffer.load_state_dict(state["buffer"])
        set_generator_state(self.generator, state["generator"])
