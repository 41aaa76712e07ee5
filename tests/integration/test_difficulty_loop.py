"""Difficulty-aware augmentation in the loop: vanished hard groups are re-rolled on a hinted
question (hint from a trace that saw the answer, answer stripped), vanished easy video groups on
noised frames; the difficulty window survives a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.config import DifficultyConfig
from vlm_rl.models.loading import load_adapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardPipeline, RewardResult
from vlm_rl.rollout import Rollouts, SamplingParams
from vlm_rl.training.difficulty import DIFFICULTY_FILE, DifficultyAugmentation
from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


class ScriptedEngine:
    """Answers every prompt with fixed texts in turn (one text per generate call); records the prompts."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.calls: list[list] = []

    def generate(self, prompts, params: SamplingParams) -> Rollouts:
        text = self.texts[len(self.calls)]
        self.calls.append(list(prompts))
        n = len(prompts) * params.n
        return Rollouts([[7, 8]] * n, [text] * n, [False] * n, torch.arange(len(prompts)).repeat_interleave(params.n))


@pytest.fixture
def setup(tiny_model_dir, run_config, synthetic_data):
    adapter = load_adapter(str(tiny_model_dir))
    encoder = PromptEncoder(adapter, run_config.data)
    sample = next(s for s in load_samples(synthetic_data.train_path) if s.problem_type == "numerical")
    return encoder, sample


def _group(value: float, n: int = 4):
    rewards = torch.full((n,), value)
    rollouts = Rollouts([[1]] * n, ["x"] * n, [False] * n, torch.zeros(n, dtype=torch.long))
    return rollouts, RewardResult({"accuracy": rewards.clone()}, rewards, ("accuracy",))


def test_hard_vanished_group_is_rerolled_on_a_hinted_question(setup):
    encoder, sample = setup
    answer = sample.answer
    trace = f"<think>The red square moves. It stops near the edge. So there are {answer} of them.</think><answer>{answer}</answer>"
    engine = ScriptedEngine([trace, "<answer>rerolled</answer>"])
    augment = DifficultyAugmentation(DifficultyConfig(enabled=True), encoder, engine, RewardPipeline({"accuracy": 1.0}),
                                     SamplingParams(n=4, max_new_tokens=8), seed=0)
    augment.tracker.push(1.0)
    rollouts, rewards = _group(0.0)  # delta = 1.0 -> hard, guidance level round(1) + 1 = 2
    samples, prompts, new_rollouts, new_rewards, stats = augment.apply([sample], [encoder.encode(sample)], rollouts, rewards)

    guided_prompt = encoder.adapter.tokenizer.decode(engine.calls[0][0].input_ids)
    assert f"The correct answer is: {answer}" in guided_prompt
    assert samples[0].problem == sample.problem + "\nHint: The red square moves. It stops near the edge."
    assert "Hint: The red square moves." in encoder.adapter.tokenizer.decode(prompts[0].input_ids)
    assert engine.calls[1] == [prompts[0]], "the group is re-rolled on the hinted prompt"
    assert new_rollouts.texts == ["<answer>rerolled</answer>"] * 4
    assert stats["difficulty/hinted_rate"] == 1.0 and stats["difficulty/noised_rate"] == 0.0
    assert stats["difficulty/delta_mean"] == 1.0 and stats["difficulty/delta_bin3"] == 1.0
    assert augment.tracker.state_dict()["group_means"] == [1.0, 0.0], "the window keeps the original group's mean"


def test_easy_vanished_video_group_is_rerolled_on_noised_frames(setup):
    encoder, sample = setup
    engine = ScriptedEngine(["<answer>rerolled</answer>"])
    augment = DifficultyAugmentation(DifficultyConfig(enabled=True, noise_sigma0=0.1), encoder, engine,
                                     RewardPipeline({"accuracy": 1.0}), SamplingParams(n=4, max_new_tokens=8), seed=0)
    augment.tracker.push(0.0)
    rollouts, rewards = _group(1.0)  # delta = -1.0 -> easy, noise std 2 * 0.1
    original = encoder.encode(sample)
    samples, prompts, new_rollouts, _, stats = augment.apply([sample], [original], rollouts, rewards)
    assert samples[0] is sample and prompts[0].pixel_values_videos.shape == original.pixel_values_videos.shape
    change = (prompts[0].pixel_values_videos - original.pixel_values_videos).abs().mean()
    assert change > 0.05, "frames carry visible noise"
    assert torch.equal(prompts[0].input_ids, original.input_ids)
    assert engine.calls == [[prompts[0]]] and new_rollouts.texts == ["<answer>rerolled</answer>"] * 4
    assert stats["difficulty/noised_rate"] == 1.0 and stats["difficulty/delta_bin0"] == 1.0


def test_groups_with_reward_spread_or_no_history_are_left_alone(setup):
    encoder, sample = setup
    engine = ScriptedEngine([])
    augment = DifficultyAugmentation(DifficultyConfig(enabled=True), encoder, engine, RewardPipeline({"accuracy": 1.0}),
                                     SamplingParams(n=4, max_new_tokens=8), seed=0)
    rollouts, rewards = _group(0.0)
    prompt = encoder.encode(sample)
    assert augment.apply([sample], [prompt], rollouts, rewards)[2] is rollouts, "empty window: no augmentation"
    varied = RewardResult({"accuracy": torch.tensor([0.0, 1.0, 0.0, 1.0])}, torch.tensor([0.0, 1.0, 0.0, 1.0]), ("accuracy",))
    assert augment.apply([sample], [prompt], rollouts, varied)[2] is rollouts, "the group has an advantage"
    assert engine.calls == []


@pytest.mark.parametrize(("reward", "kind"), [("constant_for_even_ids", "hinted"), ("one_for_even_ids", "noised")])
def test_training_run_augments_logs_and_resumes(run_config, tmp_path, monkeypatch, reward, kind):
    monkeypatch.syspath_prepend(str(HERE))
    config = _with(run_config, [
        f"reward.custom={{probe: 'rewards_for_tests:{reward}'}}", "reward.weights={accuracy: 0.0, probe: 1.0}",
        "algo.difficulty.enabled=true", "trainer.prompts_per_step=4", "trainer.steps=3", "trainer.save_every=1",
        f"output_dir={tmp_path / 'run'}",
    ])
    trainer = GRPOTrainer(config)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        assert {"difficulty/noised_rate", "difficulty/hinted_rate", "difficulty/window"} <= set(row)
    assert sum(r[f"difficulty/{kind}_rate"] for r in rows) > 0, f"even records vanish and are {kind}"
    assert rows[-1]["difficulty/window"] == 12
    assert (tmp_path / "run" / "checkpoints" / "step_00000003" / DIFFICULTY_FILE).is_file()
    resumed = GRPOTrainer(_with(config, ["trainer.resume=auto"]))
    assert resumed.method(DifficultyAugmentation).tracker.state_dict() == trainer.method(DifficultyAugmentation).tracker.state_dict()
