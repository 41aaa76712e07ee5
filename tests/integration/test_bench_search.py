"""`vlm-rl bench --workload search`: GRPO steps with frame-search rollouts, the tool's time, calls and frame cache."""

from __future__ import annotations

import json

import pytest

from vlm_rl import bench
from vlm_rl.cli import main

pytestmark = pytest.mark.slow

SMALL_SEARCH = bench.Workload(frames=4, size=56, image=False, num_generations=2, max_new_tokens=8, search=True)
"""The search workload at a size a CPU runs in seconds (the real one is sized for a GPU)."""


def test_search_workload_runs_the_tool_and_reports_its_share(monkeypatch, capsys):
    monkeypatch.setitem(bench.WORKLOADS, "search", SMALL_SEARCH)
    main(["bench", "--workload", "search", "--steps", "1", "--warmup", "0", "--worker", "prefill"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert result["tool_runs"] >= 1.0, "every rollout gets at least the placeholder result"
    assert result["frames"] >= 1.0
    assert 0 < result["tool"] < result["generation"]
    assert result["tool_share"] == pytest.approx(result["tool"] / result["generation"])
    # both rollouts of the step search the same clip: decoded once, then served from the cache
    assert result["cache_hit_rate"] == pytest.approx(0.5)

    table = bench.results_table({"prefill": result})
    (row,) = [line for line in table.splitlines() if line.startswith("| shared prefix") and "%" in line]
    cells = [c.strip() for c in row.split("|")[2:-1]]
    assert float(cells[0]) == pytest.approx(result["tool"], abs=1e-3)
    assert cells[2] == f"{result['tool_runs']:.2f}" and cells[5] == "50.0%"
