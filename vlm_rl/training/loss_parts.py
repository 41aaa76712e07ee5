"""One micro-batch of the GRPO loss and what the loss needs beside the model inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vlm_rl.models.adapter import Batch, PromptInputs, QwenVLAdapter
from vlm_rl.rollout import Rollouts


@dataclass(frozen=True)
class LossPart:
    """A loss micro-batch of B rows.

    ``rows`` index this step's rollouts (whole groups) or are None for replayed samples;
    ``old_logps`` [B, C] are stored rollout-time log-probs (replayed samples) or None, in which
    case the update is on-policy or uses the step's own snapshot. ``advantages``, ``group_ids``
    and ``rewards`` are [B].
    """

    batch: Batch
    advantages: torch.Tensor
    group_ids: torch.Tensor
    rewards: torch.Tensor
    rows: torch.Tensor | None = None
    old_logps: torch.Tensor | None = None


def group_micro_batches(
    adapter: QwenVLAdapter,
    prompts: Sequence[PromptInputs],
    rollouts: Rollouts,
    *,
    group_size: int,
    groups_per_batch: int,
    mask_truncated: bool,
    groups: Sequence[int] | None = None,
) -> list[tuple[Batch, torch.Tensor]]:
    """(Batch, row indices) per micro-batch of ``groups_per_batch`` whole groups (all, or ``groups``), so no
    group is split; with ``mask_truncated`` (DAPO's overlong masking) truncated completions get no loss."""
    groups = list(range(len(prompts))) if groups is None else list(groups)
    chunks = []
    for start in range(0, len(groups), groups_per_batch):
        chosen = groups[start : start + groups_per_batch]
        rows = torch.cat([torch.nonzero(rollouts.group_ids == g).flatten() for g in chosen])
        indices = rows.tolist()
        media = None if rollouts.media is None else [rollouts.media[r] for r in indices]
        batch = adapter.collate([prompts[g] for g in chosen], group_size, [rollouts.completion_ids[r] for r in indices], media)
        if mask_truncated:
            batch.completion_mask[torch.tensor([rollouts.truncated[r] for r in indices])] = 0.0
        chunks.append((batch, rows))
    return chunks


def stored_rows_part(
    adapter: QwenVLAdapter,
    prompts: Sequence[PromptInputs],
    completions: Sequence[Sequence[int]],
    old_logps: Sequence[Sequence[float]],
    advantages: torch.Tensor,
    rewards: torch.Tensor,
    first_row: int,
) -> LossPart:
    """A loss micro-batch of stored rows (replayed rollouts, delayed Syn-GRPO descriptions), trained against the
    log-probs stored with them: row i is prompt i with completion i, alone in group ``-1 - (first_row + i)``."""
    batch = adapter.collate(prompts, 1, [list(ids) for ids in completions])
    old = torch.zeros(batch.completion_mask.shape)
    for row, logps in enumerate(old_logps):
        old[row, : len(logps)] = torch.tensor(logps)
    group_ids = -1 - torch.arange(first_row, first_row + len(prompts))
    return LossPart(batch, advantages, group_ids, rewards, None, old)
