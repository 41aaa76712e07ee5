"""The intra-op thread governor: the cores other processes used since the last look decide torch's thread count."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from vlm_rl import cpu_threads
from vlm_rl.cpu_threads import CPUThreads


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class FakeMachine:
    """A /proc/stat of four cores whose busy ticks the test sets, with a clock and this process's CPU time."""

    def __init__(self, tmp_path, monkeypatch):
        self.stat = tmp_path / "stat"
        self.clock = 100.0
        self.own = 5.0
        self.busy = [0, 0, 0, 0]
        monkeypatch.setattr(cpu_threads, "PROC_STAT", self.stat)
        monkeypatch.setattr(cpu_threads.time, "monotonic", lambda: self.clock)
        monkeypatch.setattr(cpu_threads, "_own_seconds", lambda: self.own)
        monkeypatch.setattr(cpu_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
        monkeypatch.setattr(cpu_threads.os, "sysconf", lambda name: 100)
        self.write()

    def write(self):
        # user nice system idle iowait irq softirq steal guest guest_nice; the idle and iowait columns must not count
        total = sum(self.busy)
        lines = [f"cpu  {total} 0 0 999999 5000 0 0 0 0 0"]
        lines += [f"cpu{i} {ticks} 0 0 99999 500 0 0 0 0 0" for i, ticks in enumerate(self.busy)]
        self.stat.write_text("\n".join([*lines, "intr 123 4 5", "ctxt 99"]) + "\n")

    def advance(self, seconds: float, others_cores: float, own_cores: float):
        """`seconds` pass; other processes keep `others_cores` busy and this one `own_cores`."""
        self.clock += seconds
        self.own += own_cores * seconds
        per_core = (others_cores + own_cores) * seconds * 100 / len(self.busy)
        self.busy = [b + round(per_core) for b in self.busy]
        self.write()


def test_threads_follow_the_cores_other_processes_leave(tmp_path, monkeypatch, threads_restored):
    machine = FakeMachine(tmp_path, monkeypatch)
    torch.set_num_threads(4)
    governor = CPUThreads(enabled=True)
    machine.advance(1.0, others_cores=0.0, own_cores=4.0)
    assert governor.adapt() == 4 and torch.get_num_threads() == 4
    machine.advance(1.0, others_cores=1.0, own_cores=3.0)  # one busy neighbour
    assert governor.adapt() == 3 and torch.get_num_threads() == 3
    assert governor.others == pytest.approx(1.0)
    machine.advance(1.0, others_cores=3.6, own_cores=0.4)  # the machine is nearly all taken: one thread, not zero
    assert governor.adapt() == 1 and torch.get_num_threads() == 1
    machine.advance(1.0, others_cores=0.2, own_cores=1.0)  # the neighbours left: back up, never above the start
    assert governor.adapt() == 4 and torch.get_num_threads() == 4


def test_short_intervals_are_pooled_with_the_next(tmp_path, monkeypatch, threads_restored):
    machine = FakeMachine(tmp_path, monkeypatch)
    torch.set_num_threads(4)
    governor = CPUThreads(enabled=True)
    machine.advance(0.1, others_cores=2.0, own_cores=2.0)
    assert governor.adapt() == 4  # 10 ticks a core: too few to judge
    machine.advance(0.9, others_cores=2.0, own_cores=2.0)
    assert governor.adapt() == 2 and governor.others == pytest.approx(2.0)


def test_omp_num_threads_fixes_the_count(tmp_path, monkeypatch, threads_restored):
    machine = FakeMachine(tmp_path, monkeypatch)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    torch.set_num_threads(4)
    governor = CPUThreads()
    assert not governor.enabled
    machine.advance(1.0, others_cores=3.0, own_cores=1.0)
    assert governor.adapt() == 4 and torch.get_num_threads() == 4


def test_without_proc_stat_nothing_changes(tmp_path, monkeypatch, threads_restored):
    monkeypatch.setattr(cpu_threads, "PROC_STAT", tmp_path / "missing")
    torch.set_num_threads(2)
    governor = CPUThreads(enabled=True)
    time.sleep(0.3)
    assert governor.adapt() == 2 and torch.get_num_threads() == 2


def test_real_busy_processes_on_every_core_leave_one_thread(threads_restored):
    """Real /proc/stat: one busy-loop process per core of this process's set, then one intra-op thread."""
    governor = CPUThreads(enabled=True)
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(len(governor.cpus))
    ]
    try:
        time.sleep(0.1)
        governor.adapt()  # start the interval with the loops running
        time.sleep(1.0)
        assert governor.adapt() == 1
        assert governor.others > len(governor.cpus) - 0.5
    finally:
        for process in busy:
            process.kill()
            process.wait()
