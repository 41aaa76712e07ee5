"""`vlm-rl bench --mode trl`: TRL's GRPOTrainer on the image workload, timed like the project's own modes."""

from __future__ import annotations

import pytest

from vlm_rl.cli import main

pytestmark = pytest.mark.slow


def test_trl_mode_prints_a_row_with_unmeasured_phases_marked(capsys):
    main(["bench", "--workload", "image", "--steps", "1", "--warmup", "0", "--mode", "trl"])
    out = capsys.readouterr().out
    header, rule, row = [line for line in out.splitlines() if line.startswith("|")]
    assert header.count("|") == rule.count("|") == row.count("|") == 11
    label, *cells = [c.strip() for c in row.split("|")[1:-1]]
    assert label == "TRL GRPOTrainer"
    step, generation, rewards, logprob_passes, forward, backward, optimizer, samples_per_s, peak = cells
    assert logprob_passes == "—"  # TRL runs no separate log-prob pass at beta 0 with one update per batch
    measured = [float(c) for c in (generation, rewards, forward, backward, optimizer)]
    assert float(step) > 0 and float(samples_per_s) > 0 and float(peak) > 0
    assert float(generation) > 0 and float(forward) > 0 and float(backward) > 0
    assert sum(measured) <= float(step) * 1.05
    assert "- TRL GRPOTrainer:" in out and "MiB before the first step" in out


def test_trl_mode_refuses_video_workloads_with_one_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--workload", "video", "--mode", "trl"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "only on the image workload" in captured.err and "wrong input" in captured.err


def test_trl_mode_without_trl_names_the_extra(capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else find_spec(name, *a))
    with pytest.raises(SystemExit):
        main(["bench", "--workload", "image", "--mode", "vs-trl"])
    assert 'pip install -e ".[bench]"' in capsys.readouterr().err
