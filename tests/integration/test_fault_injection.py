"""Fault injection on `vlm-rl train` (a real subprocess, the tiny model): SIGKILL at random moments and in
the middle of a checkpoint write, checkpoints damaged in each way a crash or a bad disk leaves them, and two
trainings on one folder.

After any number of kills, re-running the same command (trainer.resume=auto) must end with exactly the
metrics rows and final weights of an uninterrupted run; a damaged newest checkpoint must be skipped, with
one line saying why, for the previous good one; when nothing is usable the run must stop with one clear
line. The default run does one trial of each; the long campaign (`pytest -m fault_campaign`) kills many
times and damages every kind. VLM_RL_FAULT_SEED picks the random kill moments (printed on failure).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_run import TINY_RUN

from vlm_rl.training.run_folder import LOCK_FILE

REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("VLM_RL_FAULT_SEED", "0"))
pytestmark = pytest.mark.slow


def _command(model: Path, data, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "vlm_rl.cli", "train", "configs/quickstart_grpo.yaml",
        f"model.path={model}", f"data.train_files=[{data.train_path}]", f"data.eval_files=[{data.test_path}]",
        f"output_dir={run_dir}", *TINY_RUN, "trainer.steps=3", "trainer.save_every=1", "trainer.keep_checkpoints=2",
        "trainer.eval_limit=2", "eval.max_new_tokens=4", "trainer.resume=auto",
        "reward.custom={length: 'tests/integration/rewards_for_tests.py:text_length'}",
        "reward.weights={accuracy: 0.0, length: 1.0}", *extra,
    ]


def _launch(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    _, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stderr


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "sec_per_step" and not k.startswith("time/")} for row in rows]


def _weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "final" / "model.safetensors")


def _assert_same_run(run_dir: Path, reference: Path, story: str) -> None:
    import torch

    assert _rows(run_dir) == _rows(reference), f"metrics differ from the uninterrupted run after: {story}"
    ours, theirs = _weights(run_dir), _weights(reference)
    assert ours.keys() == theirs.keys()
    different = [name for name in ours if not torch.equal(ours[name], theirs[name])]
    assert not different, f"final weights differ ({different[:3]}) after: {story}"
    assert not list((run_dir / "checkpoints").glob(".tmp-*")), "staging leftovers are cleaned up"


@pytest.fixture(scope="module")
def reference(tiny_model_dir, synthetic_data, tmp_path_factory) -> tuple[Path, float]:
    """An uninterrupted run, and how long its launch took (the window random kills are drawn from)."""
    run_dir = tmp_path_factory.mktemp("faults") / "reference"
    started = time.monotonic()
    code, stderr = _finish(_launch(_command(tiny_model_dir, synthetic_data, run_dir)))
    assert code == 0, stderr[-3000:]
    rows = _rows(run_dir)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3] and any("eval/accuracy" in r for r in rows)
    return run_dir, time.monotonic() - started


def _kill_when(proc: subprocess.Popen, run_dir: Path, moment: str | float) -> str:
    """SIGKILL `proc` after `moment` seconds, or as soon as a checkpoint is being assembled ('staging');
    returns what happened, for the failure message."""
    deadline = time.monotonic() + (moment if isinstance(moment, float) else 600)
    while proc.poll() is None and time.monotonic() < deadline:
        if moment == "staging" and any((run_dir / "checkpoints").glob(".tmp-step_*")):
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        return f"launch ended (code {proc.returncode}) before the kill at {moment}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return f"killed at {moment if moment == 'staging' else f'{moment:.2f}s'}"


def _kill_and_resume(model: Path, data, run_dir: Path, moments: list, *extra: str) -> str:
    """Kill one launch at each moment in turn, then run to the end; the story of what happened."""
    story = []
    for moment in moments:
        proc = _launch(_command(model, data, run_dir, *extra))
        story.append(_kill_when(proc, run_dir, moment))
        proc.communicate()
    code, stderr = _finish(_launch(_command(model, data, run_dir, *extra)))
    assert code == 0, f"the resume after {story} failed:\n{stderr[-3000:]}"
    return "; ".join(story)


def test_runs_killed_at_random_moments_and_mid_checkpoint_resume_exactly(tiny_model_dir, synthetic_data, reference, tmp_path):
    reference_dir, duration = reference
    moment = random.Random(SEED).uniform(0.2, 0.9) * duration
    story = _kill_and_resume(tiny_model_dir, synthetic_data, tmp_path / "run", ["staging", moment])
    _assert_same_run(tmp_path / "run", reference_dir, f"{story} (seed {SEED})")


# frame search: multi-turn rollouts with tool frames (every rollout gets at least the placeholder frame)
SEARCH = (
    "data.prompt_template=timesearch_short", "search.enabled=true", "search.max_turns=2", "search.max_turn_tokens=8",
    "search.cache_fps=4", "search.frame_min_pixels=3136", "search.frame_max_pixels=3136", "search.verify_max_tokens=4",
    "search.placeholder_result=true", "reward.weights={search_accuracy: 0.0, length: 1.0}",
)


def test_a_search_run_killed_at_a_random_moment_resumes_exactly(tiny_model_dir, synthetic_data, tmp_path):
    reference_dir = tmp_path / "reference"
    started = time.monotonic()
    code, stderr = _finish(_launch(_command(tiny_model_dir, synthetic_data, reference_dir, *SEARCH)))
    assert code == 0, stderr[-3000:]
    rows = _rows(reference_dir)
    assert all(r["search/frames"] >= 1 for r in rows if "loss" in r) and any("eval/search/frames" in r for r in rows)
    moment = random.Random(SEED).uniform(0.3, 0.9) * (time.monotonic() - started)
    story = _kill_and_resume(tiny_model_dir, synthetic_data, tmp_path / "run", [moment], *SEARCH)
    _assert_same_run(tmp_path / "run", reference_dir, f"{story} (seed {SEED}, frame search)")


@pytest.mark.fault_campaign
@pytest.mark.parametrize("trial", range(6))
def test_campaign_many_kills_per_run_still_resume_exactly(tiny_model_dir, synthetic_data, reference, tmp_path, trial):
    reference_dir, duration = reference
    draw = random.Random(SEED * 1000 + trial)
    moments = ["staging"] * draw.randint(0, 2) + [draw.uniform(0.05, 1.0) * duration for _ in range(draw.randint(1, 3))]
    draw.shuffle(moments)
    story = _kill_and_resume(tiny_model_dir, synthetic_data, tmp_path / "run", moments)
    _assert_same_run(tmp_path / "run", reference_dir, f"{story} (seed {SEED}, trial {trial})")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated model.safetensors": (lambda c: _truncate(c / "model" / "model.safetensors"), "model/model.safetensors is"),
    "garbage trainer_state.json": (lambda c: (c / "trainer_state.json").write_text("#" * 40), "trainer_state.json"),
    "partial trainer_state.json": (lambda c: _truncate(c / "trainer_state.json"), "trainer_state.json is"),
    "truncated rng.pt": (lambda c: _truncate(c / "rng.pt"), "rng.pt is"),
    "missing model/": (lambda c: shutil.rmtree(c / "model"), "missing model/"),
}


def _resume_past_damage(model, data, reference_dir: Path, tmp_path: Path, damage: str) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(reference_dir, run_dir)
    damage_fn, reason = DAMAGE[damage]
    damage_fn(run_dir / "checkpoints" / "step_00000003")
    code, stderr = _finish(_launch(_command(model, data, run_dir)))
    assert code == 0, stderr[-3000:]
    skipped = [line for line in stderr.splitlines() if "skipping damaged checkpoint" in line]
    assert len(skipped) == 1 and "step_00000003" in skipped[0] and reason in skipped[0], skipped
    _assert_same_run(run_dir, reference_dir, f"resume past a checkpoint with {damage}")


def test_a_damaged_newest_checkpoint_is_skipped_for_the_previous_one(tiny_model_dir, synthetic_data, reference, tmp_path):
    _resume_past_damage(tiny_model_dir, synthetic_data, reference[0], tmp_path, "truncated model.safetensors")


@pytest.mark.fault_campaign
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_campaign_every_kind_of_damage_is_skipped(tiny_model_dir, synthetic_data, reference, tmp_path, damage):
    _resume_past_damage(tiny_model_dir, synthetic_data, reference[0], tmp_path, damage)


def test_with_every_checkpoint_damaged_the_run_stops_with_one_line_and_changes_nothing(
    tiny_model_dir, synthetic_data, reference, tmp_path
):
    run_dir = tmp_path / "run"
    shutil.copytree(reference[0], run_dir)
    _truncate(run_dir / "checkpoints" / "step_00000002" / "rng.pt")
    shutil.rmtree(run_dir / "checkpoints" / "step_00000003" / "model")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    code, stderr = _finish(_launch(_command(tiny_model_dir, synthetic_data, run_dir)))
    assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert "all 2 checkpoints" in _last_line(stderr) and "damaged" in _last_line(stderr)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_a_second_training_on_a_folder_in_use_is_refused(tiny_model_dir, synthetic_data, tmp_path):
    run_dir = tmp_path / "run"
    first = _launch(_command(tiny_model_dir, synthetic_data, run_dir, "trainer.steps=200", "trainer.save_every=0"))
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / LOCK_FILE).is_file() or not (run_dir / LOCK_FILE).read_text():
            assert first.poll() is None and time.monotonic() < deadline, "the first training never took the folder"
            time.sleep(0.05)
        code, stderr = _finish(_launch(_command(tiny_model_dir, synthetic_data, run_dir)))
        assert first.poll() is None, "the first training must still be running"
    finally:
        first.kill()
        first.communicate()
    assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert f"in use by another run: pid {first.pid} on host {socket.gethostname()}" in _last_line(stderr)
