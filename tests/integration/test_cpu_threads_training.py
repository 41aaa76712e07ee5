"""A GRPO run gives up intra-op threads while other processes take every core, and logs the count it used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides  # tests/integration is on sys.path under pytest

pytestmark = pytest.mark.slow


def test_training_steps_use_one_thread_beside_a_busy_process_per_core(run_config, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    busy = []
    try:
        trainer = GRPOTrainer(with_overrides(run_config, ["trainer.steps=4", "trainer.save_every=0"]))
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(len(os.sched_getaffinity(0)))]
        trainer.train()
    finally:
        for process in busy:
            process.kill()
            process.wait()
        torch.set_num_threads(before)
    rows = [json.loads(line) for line in (Path(run_config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    threads = [row["time/cpu_threads"] for row in rows]
    assert threads[0] == 2, threads  # the first step runs with what the process started with
    assert threads[-1] == 1, threads
