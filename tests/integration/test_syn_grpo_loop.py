"""Syn-GRPO end to end: the tiny model trains on the REC task beside a real `vlm-rl synth-server` subprocess.

Synthesised samples reach the loss, description rows train once their reward is known (with the log-probs they
were written with as the old policy), every trainable parameter moves, a down server leaves training on the static
data, and a trainer killed with SIGKILL resumes to exactly the run it would have been.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synth_server_process import REPO, Server

from data_pipelines.synthesis import foreground_mask
from data_pipelines.synthesis.scene_prompt import scene_objects
from vlm_rl.config import load_config
from vlm_rl.training.grpo import GRPOTrainer

pytestmark = pytest.mark.slow

SETTINGS = [
    "trainer.steps=4",
    "trainer.prompts_per_step=2",
    "trainer.micro_batch_prompts=1",
    "trainer.lr=1e-3",
    "trainer.log_every=1",
    "trainer.sample_every=0",
    "rollout.num_generations=4",
    "rollout.max_new_tokens=8",
    "data.prompt_template=short",
    "data.eval_files=[]",
    "reward.custom={length: 'tests/integration/rewards_for_tests.py:text_length'}",
    "reward.weights={accuracy: 0.0, length: 1.0}",
    "algo.syn.enabled=true",
    "algo.syn.diversity_reward=length",
    "algo.syn.description_max_tokens=8",
    "algo.syn.wait_s=60",
    "algo.syn.poll_s=0.05",
]
"""Two prompts a step, one of them synthesised once samples exist; a length reward so that groups (and so
descriptions) get non-zero advantages from the untrained model; a generous wait so each round takes the same
samples whatever the timing."""
TIMING_KEYS = ("sec_per_step", "syn/lag_steps", "syn/ignored_samples", "syn/queue_depth", "syn/server_up")
"""Metrics that depend on when things happen, not on what is trained."""


@pytest.fixture(scope="module")
def rec_data(tmp_path_factory):
    from data_pipelines.synthetic.generator import make_dataset

    return make_dataset(tmp_path_factory.mktemp("rec") / "data", n_train=8, n_test=2, seed=0, tasks=("rec",))


@pytest.fixture
def server(tmp_path):
    started = Server(tmp_path / "server-work")
    yield started
    started.stop()


def _overrides(model: Path, data, run_dir: Path, url: str | None, *extra: str) -> list[str]:
    server = [] if url is None else [f"algo.syn.server={url}"]
    return [f"model.path={model}", f"data.train_files=[{data.train_path}]", f"output_dir={run_dir}", *server, *SETTINGS, *extra]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/") and k not in TIMING_KEYS} for r in rows]


def test_synthesised_samples_and_description_rows_train(tiny_model_dir, rec_data, server, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(REPO / "configs" / "quickstart_grpo.yaml", _overrides(tiny_model_dir, rec_data, tmp_path / "run", server.url))
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters() if p.requires_grad}
    seen: list[tuple[int, list]] = []
    update = trainer._update

    def spying_update(step, parts, *rest):
        seen.append((step, parts))
        return update(step, parts, *rest)

    monkeypatch.setattr(trainer, "_update", spying_update)
    written: dict[str, list[float]] = {}
    method = trainer.methods[0]
    describe = method._describe

    def recording_describe(step):
        sent = describe(step)
        written.update({d.key: list(d.old_logps) for d in method.book.items.values() if d.step == step})
        return sent

    monkeypatch.setattr(method, "_describe", recording_describe)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r for r in rows}
    assert by_step[1]["syn/synthetic_fraction"] == 0 and by_step[1]["syn/described"] == 4
    for step in (2, 3, 4):
        assert by_step[step]["syn/synthetic_fraction"] == 0.5, by_step[step]
        assert by_step[step]["syn/description_rows"] == 1 and by_step[step]["syn/server_up"] == 1
    # each step's loss holds one synthesised group (its prompt shows the run's new image) and one description row,
    # whose old log-probs are those it was written with
    for step, parts in seen[1:]:
        groups = [p for p in parts if p.rows is not None]
        descriptions = [p for p in parts if p.rows is None]
        assert len(groups) == 2 and len(descriptions) == 1
        [row] = descriptions
        assert row.advantages.shape == (1,) and row.old_logps is not None
        keys = [k for k, logps in written.items() if torch.allclose(row.old_logps[0, : len(logps)], torch.tensor(logps))]
        assert len(keys) == 1 and int(keys[0].split("-")[1]) < step
    assert any(float(p.advantages.abs().max()) > 0 for _, parts in seen for p in parts if p.rows is None)
    unchanged = [n for n, p in trainer.policy.named_parameters() if p.requires_grad and torch.equal(p.detach(), before[n])]
    assert not unchanged, f"{len(unchanged)} trainable parameters never changed, e.g. {unchanged[:3]}"
    left = sorted(p.name for p in (tmp_path / "run" / "synthetic").glob("*.png"))
    pending = sorted(d.image for d in method.book.items.values() if d.image is not None)
    assert left == pending, "trained images are removed, pending ones kept"
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints" / "step_00000004" / "synthetic").glob("*.png")) == pending


def test_a_synthesised_image_keeps_the_source_objects(tiny_model_dir, rec_data, server, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(
        REPO / "configs" / "quickstart_grpo.yaml", _overrides(tiny_model_dir, rec_data, tmp_path / "run", server.url, "trainer.steps=1")
    )
    trainer = GRPOTrainer(config)
    method = trainer.methods[0]
    trainer.train()
    method.draw([trainer.train_samples[0]] * 2, 2)
    [(origin, description)] = method.drawn.items()
    source = method.sources[description.source]
    made = np.asarray(Image.open(method.images_dir / description.image).convert("RGB"))
    original = np.asarray(Image.open(source.media_path).convert("RGB"))
    mask = foreground_mask((original.shape[1], original.shape[0]), scene_objects(source)[0])
    assert made.shape == original.shape and origin == "synthetic:" + description.key
    np.testing.assert_array_equal(made[mask], original[mask])
    assert (made != original).any(axis=2)[~mask].mean() > 0.5, "the background is redrawn"
    method.close()


def test_training_goes_on_with_static_data_while_the_server_is_down(tiny_model_dir, rec_data, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    port = _free_port()
    config = load_config(
        REPO / "configs" / "quickstart_grpo.yaml",
        _overrides(tiny_model_dir, rec_data, tmp_path / "run", f"http://127.0.0.1:{port}", "trainer.steps=3", "algo.syn.wait_s=0"),
    )
    started = time.monotonic()
    GRPOTrainer(config).train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["syn/synthetic_fraction"] for r in rows] == [0, 0, 0]
    assert [r["syn/server_up"] for r in rows] == [0, 0, 0]
    assert "loss" in rows[-1] and time.monotonic() - started < 120


def _train_command(model: Path, data, run_dir: Path, url: str) -> list[str]:
    overrides = _overrides(model, data, run_dir, url, "trainer.save_every=1", "trainer.resume=auto")
    return [sys.executable, "-m", "vlm_rl.cli", "train", "configs/quickstart_grpo.yaml", *overrides]


def _run(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_resume_after_kill_9_equals_the_uninterrupted_run(tiny_model_dir, rec_data, tmp_path):
    from safetensors.torch import load_file

    first, second = Server(tmp_path / "work-a"), Server(tmp_path / "work-b")
    try:
        reference = tmp_path / "reference"
        proc = _run(_train_command(tiny_model_dir, rec_data, reference, first.url))
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]

        resumed = tmp_path / "resumed"
        proc = _run(_train_command(tiny_model_dir, rec_data, resumed, second.url))
        deadline = time.monotonic() + 600
        while not (resumed / "checkpoints" / "step_00000002").is_dir():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = _run(_train_command(tiny_model_dir, rec_data, resumed, second.url))
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    finally:
        first.stop()
        second.stop()
    assert _rows(resumed) == _rows(reference)
    assert [r["syn/description_rows"] for r in _rows(reference)] == [0, 1, 1, 1]
    ours, theirs = load_file(resumed / "final" / "model.safetensors"), load_file(reference / "final" / "model.safetensors")
    assert [n for n in ours if not torch.equal(ours[n], theirs[n])] == []


def test_train_syn_grpo_sh_starts_the_server_trains_beside_it_and_stops_it(tiny_model_dir, rec_data, tmp_path):
    port = _free_port()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "SYNTH_PORT": str(port), "SYNTH_WORKDIR": str(tmp_path / "work")}
    overrides = _overrides(tiny_model_dir, rec_data, tmp_path / "run", None, "trainer.steps=2")
    done = subprocess.run(
        ["bash", "scripts/train_syn_grpo.sh", "configs/quickstart_grpo.yaml", *overrides],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["syn/synthetic_fraction"] for r in rows] == [0, 0.5]
    assert any((tmp_path / "work" / "samples").iterdir()), "the script's server made the samples"
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
