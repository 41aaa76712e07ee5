"""Shared fixtures: a tiny Qwen2.5-VL and a small synthetic video dataset, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny_run import TINY_RUN  # tests/ is on sys.path beside this conftest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    """One CPU-thread governor for the session (see vlm_rl/cpu_threads.py)."""
    from vlm_rl.cpu_threads import CPUThreads

    return CPUThreads()


@pytest.fixture(autouse=True)
def _threads_that_give_way(_cpu_threads):
    """Before each test, fewer intra-op threads when other processes took cores during the last ones."""
    _cpu_threads.adapt()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from vlm_rl.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", size="tiny", seed=0)


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    from data_pipelines.synthetic.generator import make_dataset

    return make_dataset(tmp_path_factory.mktemp("data") / "synthetic", n_train=24, n_test=12, seed=0)


@pytest.fixture
def run_config(tiny_model_dir, synthetic_data, tmp_path):
    """A GRPO config small enough for a step in about a second on a CPU."""
    from vlm_rl.config import load_config

    return load_config(
        REPO / "configs" / "quickstart_grpo.yaml",
        [
            f"model.path={tiny_model_dir}",
            f"data.train_files=[{synthetic_data.train_path}]",
            "data.eval_files=[]",
            f"output_dir={tmp_path / 'run'}",
            *TINY_RUN,
        ],
    )


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
