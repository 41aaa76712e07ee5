"""T-GRPO in the loop: shuffled-frame prompts and the per-group contrast against their completions."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.models.loading import load_adapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardPipeline, RewardResult
from vlm_rl.rollout import Rollouts, SamplingParams
from vlm_rl.config import TemporalConfig
from vlm_rl.training.temporal import TemporalContrast, shuffle_frames

pytestmark = pytest.mark.slow


@pytest.fixture
def encoder(tiny_model_dir, run_config):
    return PromptEncoder(load_adapter(str(tiny_model_dir)), run_config.data)


def test_shuffled_prompt_is_the_same_clip_with_permuted_frames(encoder, synthetic_data):
    sample = load_samples(synthetic_data.train_path)[0]
    ordered = encoder.encode(sample)
    seed = 3
    shuffled = encoder.encode_variant(sample, lambda frames: shuffle_frames(frames, torch.Generator().manual_seed(seed)))

    clip = encoder.frames.get_video(sample.media_path, encoder.video_sampling, encoder.data.video.reader)
    order = torch.randperm(clip.frames.shape[0], generator=torch.Generator().manual_seed(seed))
    assert not torch.equal(order, torch.arange(len(order))), "pick a seed whose permutation moves frames"
    expected = encoder.adapter.encode(encoder.text(sample), video=dataclasses.replace(clip, frames=clip.frames[order]))
    assert torch.equal(shuffled.pixel_values_videos, expected.pixel_values_videos)
    assert not torch.equal(shuffled.pixel_values_videos, ordered.pixel_values_videos)
    assert torch.equal(shuffled.input_ids, ordered.input_ids)
    assert torch.equal(shuffled.video_grid_thw, ordered.video_grid_thw)
    assert torch.equal(shuffled.second_per_grid_ts, ordered.second_per_grid_ts), "timestamps stay those of the clip"
    assert encoder.encode(sample) is ordered, "the cached ordered prompt is untouched"

    with pytest.raises(ValueError, match="no video frames to transform"):
        encoder.encode_variant(dataclasses.replace(sample, data_type="text", media_path=None), shuffle_frames)


class ScriptedEngine:
    """A RolloutEngine that answers every prompt with a fixed text and records what it was asked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[tuple[int, SamplingParams]] = []

    def generate(self, prompts, params: SamplingParams) -> Rollouts:
        self.calls.append((len(prompts), params))
        n = len(prompts) * params.n
        return Rollouts([[1]] * n, [self.text] * n, [False] * n, torch.arange(len(prompts)).repeat_interleave(params.n))


def test_bonus_per_group_against_shuffled_completions_of_that_group(encoder, synthetic_data):
    samples = load_samples(synthetic_data.train_path)[:3]
    samples[1] = dataclasses.replace(samples[1], data_type="text", media_path=None)
    answers = [s.answer for s in samples]
    engine = ScriptedEngine(f"<answer>{answers[2]}</answer>")  # shuffled frames: right only for sample 2
    sampling = SamplingParams(n=4, max_new_tokens=8)
    temporal = TemporalContrast(TemporalConfig(enabled=True), encoder, engine, RewardPipeline({"accuracy": 1.0}), sampling)

    # ordered completions: group 0 all right, group 1 (text) all right, group 2 half right
    accuracy = torch.tensor([1.0] * 4 + [1.0] * 4 + [1.0, 1.0, 0.0, 0.0])
    rollouts = Rollouts([[1]] * 12, [""] * 12, [False] * 12, torch.arange(3).repeat_interleave(4))
    base = RewardResult({"accuracy": accuracy}, accuracy.clone(), ("accuracy",))
    shaped, stats = temporal.add_bonus(samples, rollouts, base)

    assert engine.calls == [(2, dataclasses.replace(sampling, n=2))], "G // 2 shuffled completions per video prompt"
    assert answers[0] != answers[2], "the scripted shuffled answer must be wrong for sample 0"
    # group 0: 1.0 >= 0.8 * 0.0 -> bonus; group 1 has no video -> none; group 2: 0.5 < 0.8 * 1.0 -> none
    expected = torch.tensor([0.3] * 4 + [0.0] * 8)
    torch.testing.assert_close(shaped.scores["temporal_bonus"], expected)
    torch.testing.assert_close(shaped.total, accuracy + expected)
    assert stats["temporal/video_groups"] == 2.0
    assert stats["temporal/shuffled_accuracy"] == 0.5
    assert stats["temporal/ordered_accuracy"] == 0.75
    assert stats["temporal/bonus_rate"] == pytest.approx(4 / 12)
