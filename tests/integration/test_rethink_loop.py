"""Forced rethinking in the loop: eligible first passes get a trigger and a continuation; correct
continuations replace them (at most max_kept_per_query per group) and are rescored on the new answer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.config import RethinkConfig
from vlm_rl.models.loading import load_adapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardPipeline
from vlm_rl.rollout import Rollouts, SamplingParams, factory
from vlm_rl.rollout.rethinking import TRIGGERS
from vlm_rl.training.grpo import GRPOTrainer
from vlm_rl.training.rethink import ForcedRethinking
from vlm_rl.training.scoring import score

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest

pytestmark = pytest.mark.slow


class ScriptedEngine:
    """Continues every prompt with a fixed text; records the prompts it was given."""

    def __init__(self, tokenizer, text: str) -> None:
        self.ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        self.text = text
        self.prompts = []

    def generate(self, prompts, params: SamplingParams) -> Rollouts:
        self.prompts.extend(prompts)
        n = len(prompts) * params.n
        return Rollouts([list(self.ids)] * n, [self.text] * n, [False] * n, torch.arange(len(prompts)).repeat_interleave(params.n))


def _setup(tiny_model_dir, run_config, synthetic_data, continuation):
    adapter = load_adapter(str(tiny_model_dir))
    encoder = PromptEncoder(adapter, run_config.data)
    sample = next(s for s in load_samples(synthetic_data.train_path) if s.problem_type == "numerical")
    wrong = str(int(sample.answer) + 1)
    first = [f"<think>I count them</think><answer>{wrong}</answer>"] * 3 + [f"<think>ok</think><answer>{sample.answer}</answer>"]
    eos = adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = [adapter.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in first]
    rollouts = Rollouts(ids, first, [False] * 4, torch.zeros(4, dtype=torch.long))
    pipeline = RewardPipeline({"accuracy": 1.0, "format": 1.0})
    engine = ScriptedEngine(adapter.tokenizer, continuation.format(answer=sample.answer))
    config = RethinkConfig(enabled=True, skip_probability=0.0, min_new_tokens=2, max_kept_per_query=2)
    rethink = ForcedRethinking(config, adapter, engine, pipeline, SamplingParams(n=4, max_new_tokens=64))
    return adapter, encoder, sample, rollouts, pipeline, engine, rethink


def test_correct_continuations_replace_first_passes(tiny_model_dir, run_config, synthetic_data):
    adapter, encoder, sample, rollouts, pipeline, engine, rethink = _setup(
        tiny_model_dir, run_config, synthetic_data, " let me recount.</think><answer>{answer}</answer>"
    )
    prompt = encoder.encode(sample)
    rewards = score(pipeline, [sample], rollouts)
    assert rewards.scores["accuracy"].tolist() == [0.0, 0.0, 0.0, 1.0]
    new_rollouts, new_rewards, stats = rethink.apply([sample], [prompt], rollouts, rewards, random.Random(0))

    assert len(engine.prompts) == 4, "every first pass ended with EOS and group accuracy 0.25 <= 0.7"
    for extended in engine.prompts:
        assert torch.equal(extended.input_ids[: prompt.length], prompt.input_ids)
        added = adapter.tokenizer.decode(extended.input_ids[prompt.length :])
        assert any(added.endswith(t) for t in TRIGGERS), added
        assert torch.equal(extended.pixel_values_videos, prompt.pixel_values_videos)
    kept = [r for r in range(4) if new_rollouts.completion_ids[r] != rollouts.completion_ids[r]]
    assert len(kept) == 2 and stats["rethink/kept_rate"] == 0.5 and stats["rethink/attempt_rate"] == 1.0
    assert stats["rethink/first_pass_accuracy"] == 0.25 and stats["rethink/accuracy"] == 1.0
    for row in kept:
        assert new_rollouts.completion_ids[row][-len(engine.ids) :] == engine.ids
        assert new_rollouts.texts[row].endswith(f"let me recount.</think><answer>{sample.answer}</answer>")
        assert new_rewards.scores["accuracy"][row] == 1.0, "graded on the answer after the trigger"
    for row in set(range(4)) - set(kept):
        assert new_rollouts.completion_ids[row] == rollouts.completion_ids[row]
        assert new_rewards.total[row] == rewards.total[row]


def test_wrong_continuations_are_not_kept(tiny_model_dir, run_config, synthetic_data):
    _, encoder, sample, rollouts, pipeline, engine, rethink = _setup(
        tiny_model_dir, run_config, synthetic_data, " hmm.</think><answer>999</answer>"
    )
    rewards = score(pipeline, [sample], rollouts)
    new_rollouts, new_rewards, stats = rethink.apply([sample], [encoder.encode(sample)], rollouts, rewards, random.Random(0))
    assert new_rollouts.completion_ids == rollouts.completion_ids and torch.equal(new_rewards.total, rewards.total)
    assert stats["rethink/kept_rate"] == 0.0 and stats["rethink/attempt_rate"] == 1.0
    assert stats["rethink/first_pass_accuracy"] == 0.25 and stats["rethink/accuracy"] == 0.0


class AnswerKeyEngine:
    """Stands in for the hf engine of a training run: every first pass is a finished wrong answer,
    every continuation (a prompt longer than its sample's own) writes the sample's answer."""

    def __init__(self, adapter, answers: dict[bytes, tuple[int, str]]) -> None:
        self.tokenizer = adapter.tokenizer
        self.eos = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.answers = answers  # video bytes -> (prompt length, answer)
        self.continued = 0

    def sync_weights(self, policy) -> None:
        pass

    def generate(self, prompts, params: SamplingParams, *, streamer=None) -> Rollouts:
        texts = []
        for prompt in prompts:
            length, answer = self.answers[prompt.pixel_values_videos.numpy().tobytes()]
            continuation = prompt.length > length
            self.continued += continuation
            text = CONTINUATION.format(answer=answer) if continuation else WRONG_FIRST_PASS
            texts.extend([text] * params.n)
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [self.eos] for t in texts]
        return Rollouts(ids, texts, [False] * len(ids), torch.arange(len(prompts)).repeat_interleave(params.n))


WRONG_FIRST_PASS = "<think>I guess</think><answer>zzz</answer>"
CONTINUATION = " let me look again.</think><answer>{answer}</answer>"


def test_training_run_rethinks_and_trains_on_the_kept_continuations(tiny_model_dir, run_config, synthetic_data, monkeypatch):
    config = _with(run_config, [
        "algo.rethink.enabled=true", "algo.rethink.skip_probability=0.0", "algo.rethink.min_new_tokens=2",
        "algo.rethink.max_kept_per_query=2", "reward.weights={accuracy: 1.0, format: 0.0}",
    ])
    adapter = load_adapter(str(tiny_model_dir))
    encoder = PromptEncoder(adapter, config.data)
    answers = {}
    for sample in load_samples(synthetic_data.train_path):
        prompt = encoder.encode(sample)
        answers[prompt.pixel_values_videos.numpy().tobytes()] = (prompt.length, sample.answer)
    engine = AnswerKeyEngine(adapter, answers)
    monkeypatch.setattr(factory, "HFRolloutEngine", lambda *args, **kwargs: engine)

    GRPOTrainer(config).train()

    run = Path(config.output_dir)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward" in r]
    g, prompts_per_step = config.rollout.num_generations, config.trainer.prompts_per_step
    assert len(steps) == config.trainer.steps
    assert engine.continued == config.trainer.steps * prompts_per_step * g, "every wrong, finished first pass is continued"
    for r in steps:
        assert r["rethink/attempt_rate"] == 1.0
        assert r["rethink/kept_rate"] == 2 / g, "max_kept_per_query correct continuations per group replace first passes"
        assert r["accuracy"] == r["reward"] == 2 / g, "first passes alone score 0"
    logged = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(logged) == config.trainer.steps * g
    rethought = [s for s in logged if s["completion"] != WRONG_FIRST_PASS]
    assert len(rethought) == config.trainer.steps * 2
    for s in rethought:
        assert any(trigger in s["completion"] for trigger in TRIGGERS), s
        assert CONTINUATION.split("{")[0] in s["completion"] and s["reward"] == 1.0, s
