"""The demo as a Gradio app file, for the ways Gradio apps are usually started:

    python demo/app.py --model DIR [--compare DIR ...] [--runs DIR ...]   # serve it
    gradio demo/app.py -- --model DIR                                    # serve it, restarting on source edits
    VLM_RL_DEMO_ARGS="--model DIR --host 0.0.0.0" python demo/app.py      # options from the environment (a Space)

Off loopback, give it logins: ``VLM_RL_DEMO_AUTH`` (``user:password`` lines, e.g. a Space secret) or --auth-file.

The options are those of `vlm-rl demo` (``python demo/app.py --help``); with none on the command line
they are read from ``VLM_RL_DEMO_ARGS``. Started so, the module holds the app as ``demo``, the name
``gradio`` looks for. The app is `vlm_rl.demo.app.DemoApp`, the one `vlm-rl demo` serves; `build_demo`
builds it without serving it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

import gradio as gr

from vlm_rl.cli import USER_ERRORS, add_demo_arguments, demo_config
from vlm_rl.demo import app as demo_app
from vlm_rl.demo.app import DemoApp, load_models
from vlm_rl.demo.examples import ensure_examples
from vlm_rl.demo.model_runner import DemoModel
from vlm_rl.demo.runs import find_runs
from vlm_rl.demo.settings import DemoConfig

ARGS_VARIABLE = "VLM_RL_DEMO_ARGS"


def settings(argv: Sequence[str] | None = None) -> DemoConfig:
    """The demo's settings from `argv` (default: the command line), or from ``VLM_RL_DEMO_ARGS`` when it is empty."""
    argv = list(sys.argv[1:] if argv is None else argv) or shlex.split(os.environ.get(ARGS_VARIABLE, ""))
    parser = argparse.ArgumentParser(
        prog="demo/app.py", description=f"Serve the vlm-rl demo; without options, they are read from {ARGS_VARIABLE}."
    )
    add_demo_arguments(parser)
    return demo_config(parser.parse_args(argv))


def build_demo(config: DemoConfig, models: Sequence[DemoModel] | None = None) -> gr.Blocks:
    """Write the bundled examples and build the app's page around `models` (default: load ``config.models``);
    nothing is served."""
    examples_dir, examples = ensure_examples(config.cache_dir)
    return DemoApp(config, models or load_models(config.models), examples_dir, examples).build()


def launch_options(config: DemoConfig) -> dict:
    """`gr.Blocks.launch` keyword arguments for `config`, as `vlm-rl demo` serves the app."""
    examples_dir, _ = ensure_examples(config.cache_dir)
    return demo_app.launch_options(config, examples_dir, find_runs(config.runs))


if __name__ == "__main__":
    try:
        if gr.NO_RELOAD:  # `gradio demo/app.py` runs this file again after each edit; settings and models stay
            CONFIG = settings()
            MODELS = load_models(CONFIG.models)
        demo = build_demo(CONFIG, MODELS)
    except USER_ERRORS as err:
        sys.exit(f"demo/app.py: error: {err}")
    demo.queue(default_concurrency_limit=1)
    demo.launch(**launch_options(CONFIG))
