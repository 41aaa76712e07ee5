"""`vlm-rl bench` runs a workload in a fresh process and prints one timed row per mode."""

from __future__ import annotations

import pytest

from vlm_rl.cli import main

pytestmark = pytest.mark.slow


def test_bench_prints_phase_times_for_each_mode(capsys):
    main(["bench", "--workload", "image", "--steps", "1", "--warmup", "0", "--mode", "both"])
    out = capsys.readouterr().out
    header, rule, *rows = [line for line in out.splitlines() if line.startswith("|")]
    assert header.count("|") == rule.count("|") == 11
    assert [row.split("|")[1].strip() for row in rows] == ["shared prefix (loss + generation), default", "repeated prompt"]
    for row in rows:
        cells = [float(c) for c in row.split("|")[2:-1]]
        step, generation, rewards, logprob_passes, forward, backward, optimizer, samples_per_s, peak = cells
        assert step > 0 and generation > 0 and forward > 0 and backward > 0 and samples_per_s > 0 and peak > 0
        assert generation + rewards + logprob_passes + forward + backward + optimizer <= step * 1.05
