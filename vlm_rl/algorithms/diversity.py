"""Syn-GRPO's diversity reward (arXiv 2511.19343), as this project reconstructs it.

The paper defines a sample's diversity as the spread of the accuracy rewards of its G rollouts, and rewards a
scene description by the diversity its synthesised sample turns out to have, smoothed against the model's
evolving diversity level. Its exact formulas are not public; the form here (docs/algorithms.md, "Syn-GRPO"):

* ``D = Var_g(a_g)``, the population variance of the group's accuracy rewards (``[1, 0, 1, 0]`` → 0.25, the
  largest a 0/1 reward can reach; ``[1, 1, 1, 0]`` → 0.1875; all equal → 0);
* the baseline ``b`` is an exponential moving average of the mean D of each round's groups (the first round sets
  it), and the description's reward is ``D - b`` before the round updates ``b``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from vlm_rl.algorithms.advantages import group_moments


def group_diversity(accuracy: Tensor, group_ids: Tensor) -> Tensor:
    """Population variance of ``accuracy[N]`` within each group, ``[K]`` for dense ``group_ids[N]`` in ``[0, K)``;
    exactly 0 for a group whose rewards agree. Float input keeps its dtype; integer input gives float64."""
    num_groups = int(group_ids.max()) + 1 if group_ids.numel() else 0
    variance = group_moments(accuracy.double(), group_ids, num_groups, ddof=0).var
    return variance.to(accuracy.dtype) if accuracy.is_floating_point() else variance


@dataclass
class DiversityBaseline:
    """The smoothed diversity level: ``b ← momentum · b + (1 − momentum) · mean D`` per round, None before the first."""

    momentum: float
    value: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.momentum < 1:
            raise ValueError(f"the diversity baseline momentum must lie in [0, 1), got {self.momentum}")

    def rewards(self, diversity: Tensor) -> Tensor:
        """``D - b`` for each diversity in ``diversity[M]``; against the round's own mean when there is no baseline yet."""
        reference = self.value if self.value is not None else float(diversity.mean()) if diversity.numel() else 0.0
        return diversity - reference

    def update(self, diversity: Tensor) -> None:
        """Fold one round's diversities ``[M]`` (M > 0) into the baseline."""
        if diversity.numel() == 0:
            return
        mean = float(diversity.double().mean())
        self.value = mean if self.value is None else self.momentum * self.value + (1 - self.momentum) * mean


def description_advantages(diversity: Tensor, baseline: DiversityBaseline, scale: float) -> Tensor:
    """Advantages ``[M]`` of the descriptions whose samples have ``diversity[M]``: ``scale · (D − b)``."""
    return scale * baseline.rewards(diversity)


__all__ = ["DiversityBaseline", "description_advantages", "group_diversity"]
