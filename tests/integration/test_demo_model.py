"""The demo's model side on the tiny model: the prompt training would build, streaming, groups, and the handlers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from vlm_rl.algorithms import get_advantage_fn
from vlm_rl.demo.completion_view import DIRECT_PREFILL
from vlm_rl.demo.model_runner import DemoModel
from vlm_rl.demo.prompting import THINK_OR_NOT_SYSTEM, PromptSettings, build_sample
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardContext, RewardPipeline

SETTINGS = PromptSettings(fps=0, max_frames=4, max_pixels=3136, mode="think-answer", wording="short")


@pytest.fixture(scope="module")
def demo_model(tiny_model_dir) -> DemoModel:
    return DemoModel(tiny_model_dir, "tiny")


@pytest.fixture(scope="module")
def clip(synthetic_data) -> Path:
    return next(synthetic_data.video_dir.glob("*.mp4"))


def test_the_prompt_is_the_one_training_builds(demo_model, clip):
    sample = build_sample(clip, "video", "How many circles are in the video?", problem_type="numerical")
    prompt = demo_model.prepare(sample, SETTINGS)
    expected = PromptEncoder(demo_model.adapter, SETTINGS.data_config(demo_model.config.data)).encode(sample)
    assert torch.equal(prompt.inputs.input_ids, expected.input_ids)
    assert torch.equal(prompt.inputs.pixel_values_videos, expected.pixel_values_videos)
    assert len(prompt.strip) == 4 and prompt.vision_tokens > 0
    assert prompt.strip_summary.startswith("4 of 4 frames")


def test_prompt_modes(demo_model, clip):
    sample = build_sample(clip, "video", "Which color?", "red\nblue", "A")
    tokenizer = demo_model.adapter.tokenizer
    ton = demo_model.prepare(sample, PromptSettings(0, 4, 3136, "think-or-not (TON)", "short"))
    assert THINK_OR_NOT_SYSTEM in tokenizer.decode(ton.inputs.input_ids)
    direct = demo_model.prepare(sample, PromptSettings(0, 4, 3136, "direct", "short"))
    assert tokenizer.decode(direct.inputs.input_ids).endswith("<|im_start|>assistant\n" + DIRECT_PREFILL)
    completions = demo_model.sample(direct, 2, 6, 1.0)
    assert all(text.startswith(DIRECT_PREFILL) for text in completions.texts)


def test_streaming_gives_the_unstreamed_greedy_answer(demo_model, clip):
    prompt = demo_model.prepare(build_sample(clip, "video", "How many circles?"), SETTINGS)
    steps = list(demo_model.stream(prompt, 12, 0.0))
    texts = [text for text, _ in steps]
    assert all(done is None for _, done in steps[:-1]) and steps[-1][1] is not None
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    final = steps[-1][1]
    assert texts[-1] == final.texts[0] == demo_model.sample(prompt, 1, 12, 0.0).texts[0]
    assert 1 <= final.lengths[0] <= 12


def test_group_rewards_and_advantages_are_the_training_ones(demo_model, clip):
    sample = build_sample(clip, "video", "How many circles?", answer="2", problem_type="numerical")
    prompt = demo_model.prepare(sample, SETTINGS)
    completions = demo_model.sample(prompt, 4, 8, 1.0)
    texts = ["<think>two</think><answer>2</answer>", "<answer>3</answer>", *completions.texts[2:]]
    rewards, advantages = demo_model.score(sample, texts)
    weights = demo_model.config.reward.weights
    contexts = [RewardContext(t, "<answer>2</answer>", "numerical", (), "x") for t in texts]
    assert torch.equal(rewards.total, RewardPipeline(weights)(contexts).total)
    assert rewards.total[0] == sum(weights.values())  # right answer, right format
    expected = get_advantage_fn("grpo")(rewards.total, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(advantages, expected)


def test_handlers_sample_compare_and_refuse(tiny_model_dir, clip, tmp_path, monkeypatch):
    import gradio as gr

    from vlm_rl.demo.app import DemoApp, model_labels
    from vlm_rl.demo.examples import ensure_examples
    from vlm_rl.demo.settings import DemoConfig
    from vlm_rl.models.tiny import build_tiny_model

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # the upload folder the app trusts
    other = build_tiny_model(tmp_path / "other" / "tiny", size="tiny", seed=1)
    config = DemoConfig(models=(tiny_model_dir, other), cache_dir=tmp_path / "cache")
    labels = model_labels(config.models)
    assert len(set(labels)) == 2
    folder, examples = ensure_examples(config.cache_dir)
    app = DemoApp(config, [DemoModel(p, label) for p, label in zip(config.models, labels)], folder, examples)
    uploads = Path(gr.utils.get_upload_folder()) / "upload"
    uploads.mkdir(parents=True, exist_ok=True)
    upload = shutil.copy(clip, uploads / "clip.mp4")
    form = [upload, "How many circles?", "", "2", "numerical", 0, 4, 3136, "think-answer", "short", 1.0, 8]

    status, frames, cards = app.sample_group(labels[0], 3, *form)
    assert status.startswith("3 completions") and len(frames["value"]) == 4
    assert cards.count('class="vr-card"') == 3 and "advantage" in cards and "Reward = " in cards
    status, frames, cards = app.compare(labels[0], labels[1], *form)
    assert cards.count('class="vr-card"') == 2 and "advantage" not in cards and labels[1] in cards

    outside = tmp_path / "outside.mp4"
    shutil.copy(clip, outside)
    status, frames, cards = app.sample_group(labels[0], 2, str(outside), *form[1:])
    assert "reads only uploads" in status and frames["value"] == [] and cards == ""
    bad = uploads / "bad.mp4"
    bad.write_bytes(b"\0not a video")
    first = next(app.answer(labels[0], str(bad), *form[1:]))
    assert "Error: cannot decode video bad.mp4" in first[0] and str(uploads) not in first[0]
