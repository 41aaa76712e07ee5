"""``demo/app.py``, the demo as a Gradio app file: its options, its settings from the environment, and the page
it builds around a model without serving it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest

from vlm_rl.demo.settings import DemoError

APP = Path(__file__).resolve().parents[2] / "demo" / "app.py"


@pytest.fixture(scope="module")
def launcher():
    spec = importlib.util.spec_from_file_location("demo_app_under_test", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_the_demo_options():
    result = subprocess.run([sys.executable, str(APP), "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: demo/app.py")
    for option in ("--model", "--compare", "--runs", "--host", "--port", "--auth", "VLM_RL_DEMO_ARGS"):
        assert option in result.stdout


def test_settings_come_from_the_command_line_or_the_environment(launcher, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VLM_RL_DEMO_ARGS", f"--model {tiny_model_dir} --port 7999 --host 0.0.0.0")
    from_env = launcher.settings([])
    assert (from_env.models, from_env.port, from_env.host) == ((tiny_model_dir,), 7999, "0.0.0.0")
    given = launcher.settings(["--model", str(tiny_model_dir), "--cache-dir", str(tmp_path)])
    assert (given.port, given.cache_dir) == (7860, tmp_path), "the command line wins over the environment"
    with pytest.raises(DemoError, match="model directory .*nowhere does not exist"):
        launcher.settings(["--model", str(tmp_path / "nowhere")])


def test_build_demo_makes_the_page_without_serving_it(launcher, tiny_model_dir, tmp_path):
    config = launcher.settings(["--model", str(tiny_model_dir), "--cache-dir", str(tmp_path), "--port", "0"])
    blocks = launcher.build_demo(config)
    assert isinstance(blocks, gr.Blocks) and not blocks.is_running
    labels = {getattr(block, "label", None) for block in blocks.blocks.values()}
    assert {"Video or image", "Question", "Model"} <= labels
    options = launcher.launch_options(config)
    assert options["server_port"] == 0 and options["server_name"] == "127.0.0.1"
    assert str(tmp_path) in options["allowed_paths"][0], "the bundled examples may be served"
