"""Seeded, resumable order over the training samples, sharded across processes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from data_pipelines.schema import Sample


class PromptSampler:
    """Yields samples epoch by epoch in a seeded order; its position is part of every checkpoint.

    Process `rank` of `world_size` sees every `world_size`-th sample of the epoch's permutation.
    """

    def __init__(self, samples: Sequence[Sample], *, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if len(samples) < world_size:
            raise ValueError(f"{len(samples)} training samples cannot be shared by {world_size} processes")
        self.samples = samples
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(len(self.samples), generator=g).tolist()
        else:
            order = list(range(len(self.samples)))
        return order[self.rank :: self.world_size]

    def take(self, n: int) -> list[Sample]:
        out = []
        while len(out) < n:
            if self.position >= len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self._epoch_order()
            out.append(self.samples[self._order[self.position]])
            self.position += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = state["epoch"]
        self.position = state["position"]
        self._order = self._epoch_order()
