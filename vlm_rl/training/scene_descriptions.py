"""The scene descriptions a Syn-GRPO run has written and not yet trained: each waits for its synthesised sample,
then for that sample's first rollout, whose diversity is its reward."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Description:
    """One description row. `key` is the job's id at the server (unique in the run); `source` the origin of the
    sample whose scene it describes; `old_logps[t]` the log-prob of `completion_ids[t]` under the policy that wrote
    it at `step`. `image` is the file name of its synthesised image once it arrived; `drawn` is set when the image
    joined a sampling round, and `diversity`/`reward` when that round was scored."""

    key: str
    source: str
    step: int
    seed: int
    text: str
    completion_ids: list[int]
    old_logps: list[float]
    image: str | None = None
    arrived_step: int | None = None
    drawn: bool = False
    diversity: float | None = None
    reward: float | None = None

    def __post_init__(self) -> None:
        if len(self.completion_ids) != len(self.old_logps):
            raise ValueError(
                f"description {self.key}: {len(self.completion_ids)} tokens but {len(self.old_logps)} log-probs"
            )


class DescriptionBook:
    """Pending descriptions in the order they were written (which is the order their samples are drawn in)."""

    def __init__(self) -> None:
        self.items: dict[str, Description] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, description: Description) -> None:
        if description.key in self.items:
            raise ValueError(f"description {description.key} is already pending")
        self.items[description.key] = description

    def arrive(self, key: str, image: str, step: int) -> Description | None:
        """Record the image of `key`; None (nothing changes) for a key not pending or one whose image already came."""
        description = self.items.get(key)
        if description is None or description.image is not None:
            return None
        description.image, description.arrived_step = image, step
        return description

    def undrawn(self) -> list[Description]:
        """Descriptions whose sample has not joined a round yet, oldest first."""
        return [d for d in self.items.values() if not d.drawn]

    def ready(self, k: int) -> list[Description]:
        """Up to `k` descriptions whose sample arrived and has not been drawn, oldest first."""
        return [d for d in self.undrawn() if d.image is not None][:k]

    def head_arrived(self, k: int) -> bool:
        """Whether the oldest `k` undrawn descriptions (all of them, when fewer) have their samples."""
        return all(d.image is not None for d in self.undrawn()[:k])

    def pop_rewarded(self) -> list[Description]:
        """Remove and return the descriptions whose reward is known, oldest first."""
        done = [d for d in self.items.values() if d.reward is not None]
        for d in done:
            del self.items[d.key]
        return done

    def expire(self, step: int, expiry_steps: int) -> list[Description]:
        """Remove and return the descriptions written more than `expiry_steps` steps before `step` and not drawn."""
        old = [d for d in self.items.values() if step - d.step > expiry_steps and not d.drawn]
        for d in old:
            del self.items[d.key]
        return old

    def state_dict(self) -> list[dict[str, Any]]:
        return [asdict(d) for d in self.items.values()]

    def load_state_dict(self, state: list[dict[str, Any]]) -> None:
        self.items = {}
        for item in state:
            self.add(Description(**item))
