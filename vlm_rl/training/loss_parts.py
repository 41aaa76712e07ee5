"""One micro-batch of the GRPO loss and what the loss needs beside the model inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vlm_rl.models.adapter import Batch


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
