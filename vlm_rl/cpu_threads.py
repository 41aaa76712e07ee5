"""Intra-op threads that give way when other processes want this machine's cores.

torch starts one intra-op (OpenMP) thread per core, and every parallel operation waits for all of them.
When another process takes one of those cores, the thread that lands there is scheduled in turns with
it and the others spin-wait at the operation's end: on a 2-core machine with one busy neighbour a GRPO
step of the image workload ran 4x slower with two threads than with one. `CPUThreads` looks at how busy
this process's cores were, over the interval since it last looked, with this process's own CPU time
taken out, and sets torch's intra-op thread count to the cores left, between 1 and the count torch
started with. Call `adapt` at step boundaries: on the thread that runs the model, since OpenMP's thread
count belongs to the thread that sets it.

Setting ``OMP_NUM_THREADS`` (or `enabled=False`) fixes the count instead; off Linux (no ``/proc/stat``)
nothing changes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

PROC_STAT = Path("/proc/stat")
MIN_INTERVAL_S = 0.2
"""Shorter intervals are pooled with the next one: /proc/stat counts in 10 ms ticks."""


def _busy_seconds(cpus: set[int], ticks_per_s: int) -> float | None:
    """Busy CPU time of `cpus` since boot, all processes together; None where /proc/stat is missing."""
    try:
        lines = PROC_STAT.read_text().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        busy += user + nice + system + irq + softirq + steal
    return busy / ticks_per_s


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


class CPUThreads:
    """Adapts torch's intra-op thread count to the cores other processes leave this one."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        self.enabled = "OMP_NUM_THREADS" not in os.environ if enabled is None else enabled
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
        self.max_threads = torch.get_num_threads()
        self.ticks_per_s = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.others = 0.0
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        busy = _busy_seconds(self.cpus, self.ticks_per_s)
        return None if busy is None else (time.monotonic(), busy, _own_seconds())

    def adapt(self) -> int:
        """Set and return the intra-op thread count for what comes next: the cores of this process's set minus
        the cores other processes used since the last call, rounded, between 1 and torch's starting count."""
        if not self.enabled or self._last is None:
            return torch.get_num_threads()
        now = self._sample()
        if now is None or now[0] - self._last[0] < MIN_INTERVAL_S:
            return torch.get_num_threads()
        wall, busy, own = (b - a for a, b in zip(self._last, now))
        self._last = now
        self.others = max(0.0, (busy - own) / wall)
        threads = max(1, min(self.max_threads, round(len(self.cpus) - self.others)))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return threads
