"""One run per output_dir: the lock and its holder's name, the refusal to start over a run, trainer.overwrite,
and what a resume cuts back (metrics.jsonl with a torn last line, TensorBoard events, later checkpoints)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_run import TINY_RUN

from vlm_rl.config import load_config
from vlm_rl.training.metrics_log import RunLogger
from vlm_rl.training.run_folder import LOCK_FILE, RunFolderError, RunLock
from vlm_rl.training.sft import SFTTrainer

HOLD_LOCK = "import sys, time; from pathlib import Path; from vlm_rl.training.run_folder import RunLock; " \
    "lock = RunLock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)"


@pytest.fixture
def sft_config(tiny_model_dir, synthetic_data, tmp_path, repo_root):
    def make(overrides: list[str]):
        return load_config(
            repo_root / "configs" / "quickstart_sft.yaml",
            [
                f"model.path={tiny_model_dir}", f"data.train_files=[{synthetic_data.train_path}]", "data.eval_files=[]",
                f"output_dir={tmp_path / 'run'}", "trainer.prompts_per_step=2", "trainer.micro_batch_prompts=2",
                "trainer.log_every=1", "trainer.lr=1e-3", *overrides,
            ],
        )

    return make


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _scalar_steps(run_dir: Path, tag: str) -> list[int]:
    """Every step TensorBoard would show for `tag`, over all the run's event files."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return sorted(steps)


def test_a_held_folder_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(tmp_path, caplog):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=rf"in use by another run: pid {holder.pid} on host {socket.gethostname()}"):
            RunLock(run_dir)
    finally:
        holder.kill()
        holder.wait()
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == holder.pid, "a killed holder leaves its name"
    with caplog.at_level(logging.WARNING):
        lock = RunLock(run_dir)
    assert f"taking over the lock of pid {holder.pid}" in caplog.text
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] != holder.pid
    lock.release()
    assert not (run_dir / LOCK_FILE).exists()


def test_a_released_lock_leaves_the_folder_as_it_found_it(tmp_path):
    new = tmp_path / "new" / "run"
    RunLock(new).release()
    assert not new.exists(), "a folder the lock created and nothing else used is removed"
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    lock = RunLock(kept)
    assert (kept / LOCK_FILE).is_file()
    lock.release()
    assert _files(kept) == {"notes.txt": b"mine"}
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunFolderError, match="a-file is a file, not a folder"):
        RunLock(tmp_path / "a-file")
    with pytest.raises(RunFolderError, match="run is inside .*a-file, which is a file, not a folder"):
        RunLock(tmp_path / "a-file" / "run")


@pytest.mark.slow
def test_a_trainer_holds_the_folder_for_its_run_and_refuses_a_held_one(sft_config, tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=f"pid {holder.pid}"):
            SFTTrainer(sft_config(["trainer.steps=1"]))
        assert sorted(_files(run_dir)) == [LOCK_FILE], "nothing is written into a held folder"
    finally:
        holder.kill()
        holder.wait()
    trainer = SFTTrainer(sft_config(["trainer.steps=1"]))
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] != holder.pid
    trainer.train()
    assert not (run_dir / LOCK_FILE).exists(), "the lock goes when the run ends"


@pytest.mark.slow
def test_a_fresh_run_refuses_to_start_over_a_run_and_overwrite_replaces_only_the_runs_files(sft_config, tmp_path):
    run_dir = tmp_path / "run"
    SFTTrainer(sft_config(["trainer.steps=2", "trainer.save_every=1"])).train()
    (run_dir / "notes.txt").write_text("mine")
    (run_dir / "data").mkdir()
    (run_dir / "data" / "train.json").write_text("[]")
    before = _files(run_dir)
    assert {"metrics.jsonl", "config.yaml", "final/model.safetensors"} <= set(before)

    with pytest.raises(RunFolderError) as refused:
        SFTTrainer(sft_config(["trainer.steps=1", "seed=7"]))
    message = str(refused.value)
    assert "already holds a run" in message and str(run_dir) in message
    for way_out in ("trainer.resume=auto", "new output_dir", "trainer.overwrite=true"):
        assert way_out in message, way_out
    assert _files(run_dir) == before, "the refused run changed nothing"

    SFTTrainer(sft_config(["trainer.steps=1", "seed=7", "trainer.overwrite=true"])).train()
    after = _files(run_dir)
    assert after["notes.txt"] == b"mine" and after["data/train.json"] == b"[]", "files that are not the run's stay"
    assert _steps(run_dir) == [1]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_00000001"]
    assert yaml.safe_load(after["config.yaml"])["seed"] == 7
    assert len(list((run_dir / "tensorboard").glob("events.*"))) == 1, "the old run's events are gone"


@pytest.mark.slow
def test_resuming_from_an_earlier_checkpoint_cuts_logs_events_and_later_checkpoints_back(sft_config, tmp_path):
    run_dir = tmp_path / "run"
    common = ["trainer.save_every=2", "trainer.keep_checkpoints=5"]
    SFTTrainer(sft_config([*common, "trainer.steps=4"])).train()
    first_rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 5, "lo')  # a launch killed while writing a row
    assert _scalar_steps(run_dir, "loss") == [1, 2, 3, 4]

    resumed = SFTTrainer(sft_config([*common, "trainer.steps=3", f"trainer.resume={run_dir / 'checkpoints' / 'step_00000002'}"]))
    assert resumed.start_step == 2
    resumed.train()
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["step"] for row in rows] == [1, 2, 3]
    assert rows[:2] == first_rows[:2], "the rows before the checkpoint are kept as they were"
    assert _scalar_steps(run_dir, "loss") == [1, 2, 3], "TensorBoard shows each step once"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_00000002", "step_00000003"], (
        "step 4 belonged to the abandoned run: a later resume=auto must not continue it"
    )


def test_a_torn_last_line_is_dropped_with_a_warning_and_a_bad_line_inside_is_an_error(tmp_path, caplog):
    logger = RunLogger(tmp_path)
    for step in (1, 2, 3):
        logger.log(step, {"loss": float(step)})
    logger.close()
    metrics = tmp_path / "metrics.jsonl"
    with open(metrics, "a") as handle:
        handle.write('{"step": 4, "lo')
    with caplog.at_level(logging.WARNING):
        RunLogger(tmp_path).truncate_after(2)
    assert "dropped its last line" in caplog.text and str(metrics) in caplog.text
    assert _steps(tmp_path) == [1, 2]
    metrics.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(RunFolderError, match=r"metrics.jsonl:2: not a logged row"):
        RunLogger(tmp_path).truncate_after(2)


@pytest.mark.slow
def test_with_two_processes_a_held_folder_is_refused_and_no_process_waits(tiny_model_dir, synthetic_data, tmp_path, repo_root):
    """Only process 0 takes the lock; its refusal reaches the other process, which would otherwise wait for it
    forever at the first collective (the launcher may stop that process before it prints the same line)."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        env = {**os.environ, "NUM_PROCESSES": "2", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run(
            ["bash", "scripts/train_grpo.sh", "configs/quickstart_grpo.yaml", f"output_dir={run_dir}",
             f"model.path={tiny_model_dir}", f"data.train_files=[{synthetic_data.train_path}]", "data.eval_files=[]",
             *TINY_RUN],
            cwd=repo_root, env=env, capture_output=True, text=True, timeout=300,
        )
        assert sorted(_files(run_dir)) == [LOCK_FILE], "nothing is written into a held folder"
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode != 0
    refusals = [line for line in proc.stderr.splitlines() if line.startswith("vlm-rl train: error:")]
    assert refusals and all(f"in use by another run: pid {holder.pid}" in line for line in refusals), proc.stderr[-3000:]
