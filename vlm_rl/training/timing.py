"""Wall time per phase of a training step (generation, rewards, log-prob passes, forward, backward, optimizer)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class PhaseTimer:
    """Accumulates seconds per named phase; `pop()` returns ``time/<phase>`` metrics and starts over.

    On a GPU the device is synchronised at both ends of a phase, so queued kernels are counted
    in the phase that launched them.
    """

    def __init__(self) -> None:
        self._totals: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        _synchronize()
        started = time.perf_counter()
        try:
            yield
        finally:
            _synchronize()
            self._totals[phase] += time.perf_counter() - started

    def pop(self) -> dict[str, float]:
        out = {f"time/{phase}": seconds for phase, seconds in self._totals.items()}
        self._totals.clear()
        return out


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
