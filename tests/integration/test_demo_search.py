"""The demo's frame search on the tiny model: the search prompt, the turn loop behind the Frame search handler (a
scripted engine plays the model so the tool is called), the turn limit, the token limit and refused inputs."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from data_pipelines.search_prompt import TOOL_NAME
from vlm_rl.demo.app import DemoApp
from vlm_rl.demo.examples import ensure_examples
from vlm_rl.demo.model_runner import DemoModel
from vlm_rl.demo.prompting import PromptSettings, build_sample
from vlm_rl.demo.settings import DemoConfig, DemoError
from vlm_rl.models.loading import load_adapter
from vlm_rl.rollout.turns import Outcome, Status

from scripted_engine import ScriptedEngine  # tests/integration is on sys.path under pytest

pytestmark = pytest.mark.slow

CALL = '<think>The circles may move; look at the first second.</think><tool_call>{"name": "seek_video_frames", "arguments": {"query": "red circle", "start_time": 0, "end_time": 1, "num_frames": 2}}</tool_call>'
SCRIPT = [CALL, '<think>Zoom in.</think><tool_call>{"name": "zoom", "arguments": {}}</tool_call>', "<think>Two.</think><answer>2</answer>"]
SETTINGS = PromptSettings(fps=0, max_frames=4, max_pixels=3136, mode="think-or-not (TON)", wording="short")


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return ensure_examples(tmp_path_factory.mktemp("demo_search"))


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> DemoModel:
    return DemoModel(tiny_model_dir, "tiny")


def _form(path: str, question: str = "How many circles are there?") -> list:
    return [path, question, "", "2", "numerical", 0, 4, 3136, "think-or-not (TON)", "short", 1.0, 8]


def _app(model: DemoModel, examples, tmp_path: Path) -> DemoApp:
    folder, found = examples
    return DemoApp(DemoConfig(models=(model.path,), cache_dir=tmp_path), [model], folder, found)


def test_the_search_prompt_offers_the_tool_and_the_chosen_number_of_rounds(model, examples):
    video = Path(examples[0]) / "count.mp4"
    prompt = model.prepare_search(build_sample(video, "video", "How many circles?"), SETTINGS, max_turns=3)
    text = model.adapter.tokenizer.decode(prompt.inputs.input_ids)
    assert TOOL_NAME in text and "a maximum of 3 rounds" in text and "The video duration: 1 seconds." in text
    assert "Decide first whether the question needs reasoning" not in text, "the TON system turn does not apply"
    assert text.endswith("<|im_start|>assistant\n") and len(prompt.strip) == 4
    with pytest.raises(DemoError, match="frame search needs a video"):
        model.prepare_search(build_sample(Path(examples[0]) / "count.png", "image", "How many?"), SETTINGS, 3)


def test_the_handler_runs_the_search_turn_by_turn(tiny_model_dir, examples, tmp_path):
    engine = ScriptedEngine(load_adapter(str(tiny_model_dir)), [[SCRIPT]])
    app = _app(DemoModel(tiny_model_dir, "scripted", engine=engine), examples, tmp_path)
    video = str(Path(examples[0]) / "count.mp4")

    status, frames, view = app.search("scripted", 8, 64, *_form(video))
    assert status.startswith("scripted searched the video") and len(frames["value"]) == 4
    assert [turn.outcome for turn in view.turns] == [Outcome.TOOL, Outcome.PARSE_ERROR, Outcome.ANSWER]
    assert engine.calls == [1, 1, 1], "one generation per turn"
    # the 1-second clip at the default 2 frames per second: the window 0-1 s holds exactly two cache frames
    assert [caption for _, caption in view.turns[0].frames] == ["0.0s", "0.5s"]
    assert html.escape('"query": "red circle"') in view.turns[0].html
    assert view.answer == "2" and "3 turns" in view.totals and "1 tool call" in view.totals
    assert "2 frames returned" in view.totals

    _, _, view = app.search("scripted", 2, 64, *_form(video))
    assert len(view.turns) == 2 and view.answer is None and "turn limit" in view.totals

    status, frames, view = app.search("scripted", 8, 64, *_form(str(Path(examples[0]) / "count.png")))
    assert "frame search needs a video" in status and frames["value"] == [] and view is None


def test_the_token_limit_per_turn_reaches_the_model(model, examples):
    prompt = model.prepare_search(build_sample(Path(examples[0]) / "count.mp4", "video", "How many?"), SETTINGS, 2)
    rollouts = model.search(prompt, max_turns=2, max_turn_tokens=3, temperature=0.0)
    trajectory = rollouts.trajectories[0]
    assert trajectory.status is Status.NO_ACTION and trajectory.turns == 1, "3 greedy tokens of a random model hold no action"
    assert rollouts.truncated[0]
    closing = model.adapter.tokenizer("<|im_end|>\n", add_special_tokens=False)["input_ids"]
    assert rollouts.completion_ids[0][-len(closing):] == closing
    assert len(rollouts.completion_ids[0]) == 3 + len(closing), "the turn's 3 sampled tokens, then the turn's end"
