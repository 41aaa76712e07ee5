"""T-GRPO temporal contrast (Video-R1, arXiv 2503.21776): reward reasoning that needs frame order.

For each prompt the trainer samples its G completions on the ordered frames and some more on
randomly shuffled frames. With ``p`` the mean accuracy of the ordered group and ``p_s`` that of
the shuffled one, when ``p >= mu * p_s`` every ordered completion whose accuracy exceeds
``min_accuracy`` gets ``bonus`` added to its accuracy reward (Video-R1's code: mu 0.8, bonus 0.3,
threshold 0.1). Everything is computed per group.
"""

from __future__ import annotations

import torch
from torch import Tensor


def temporal_contrast_bonus(
    ordered_accuracy: Tensor,
    ordered_groups: Tensor,
    shuffled_accuracy: Tensor,
    shuffled_groups: Tensor,
    *,
    mu: float = 0.8,
    bonus: float = 0.3,
    min_accuracy: float = 0.1,
) -> Tensor:
    """Per-completion bonus ``[N]`` for the ordered completions.

    Args:
        ordered_accuracy: ``[N]`` accuracy rewards of the completions on ordered frames.
        ordered_groups: ``[N]`` their group (prompt) ids.
        shuffled_accuracy: ``[M]`` accuracy rewards of the completions on shuffled frames.
        shuffled_groups: ``[M]`` their group ids; a group with no shuffled completion gets no bonus.
        mu: how much of the shuffled accuracy the ordered accuracy must reach.
        bonus: added to each qualifying ordered completion.
        min_accuracy: only completions with accuracy above this get the bonus.
    """
    if ordered_accuracy.shape != ordered_groups.shape or shuffled_accuracy.shape != shuffled_groups.shape:
        raise ValueError("accuracies and group ids must have the same shape")
    out = torch.zeros_like(ordered_accuracy, dtype=torch.float32)
    for group in torch.unique(ordered_groups).tolist():
        rows = ordered_groups == group
        shuffled = shuffled_accuracy[shuffled_groups == group]
        if shuffled.numel() == 0:
            continue
        p = ordered_accuracy[rows].float().mean()
        p_shuffled = shuffled.float().mean()
        if p >= mu * p_shuffled:
            out[rows] = torch.where(ordered_accuracy[rows] > min_accuracy, bonus, 0.0)
    return out
