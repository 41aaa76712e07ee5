"""GRPO-CSV's reward on real rollouts and the search cold start (SFT on replayed traces) on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from data_pipelines.formats.video_r1 import load_samples
from data_pipelines.synthetic.generator import make_dataset
from data_pipelines.synthetic.needle import NeedleSettings
from vlm_rl.algorithms import get_advantage_fn
from vlm_rl.config import load_config, read_overrides_file
from vlm_rl.models.loading import load_adapter, vision_tower
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardPipeline
from vlm_rl.rollout import Rollouts, SamplingParams
from vlm_rl.rollout.turn_loop import TurnLoop
from vlm_rl.training.frame_search import FrameSearch, SearchTools
from vlm_rl.training.groups import Groups
from vlm_rl.training.scoring import score
from vlm_rl.training.sft import SFTTrainer

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest
from scripted_engine import ScriptedEngine
from search_settings import CALL

REPO = Path(__file__).resolve().parents[2]
NEEDLE_CPU = read_overrides_file(REPO / "configs" / "timesearch_needle.overrides")
pytestmark = pytest.mark.slow


class AnswersWith:
    """A verifier stand-in: answers every verification prompt with one text, and counts them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.prompts = 0

    def generate(self, prompts, params: SamplingParams, *, streamer=None) -> Rollouts:
        self.prompts += len(prompts)
        return Rollouts([[0]] * len(prompts), [self.text] * len(prompts), [False] * len(prompts), torch.arange(len(prompts)))

    def sync_weights(self, policy) -> None:
        pass


def test_csv_reward_and_advantages_of_four_real_rollouts(run_config, tiny_model_dir, synthetic_data):
    """The worked example end to end: right+verified 2.0, right+unverifiable 1.5, wrong 1.0, no think but right 1.0."""
    config = _with(run_config, ["data.prompt_template=timesearch", "search.enabled=true", "search.cache_fps=4",
                                "search.frame_min_pixels=3136", "search.frame_max_pixels=3136",
                                "reward.weights={search_format: 1.0, search_accuracy: 0.5}", "algo.advantage=dr_grpo"])
    adapter = load_adapter(str(tiny_model_dir))
    sample = next(s for s in load_samples(synthetic_data.train_path) if s.problem_type == "multiple choice")
    right, wrong = sample.answer, next(letter for letter in "ABCD" if letter != sample.answer)
    script = [
        [CALL.format(name="a"), f"<think>a2</think><answer>{right}</answer>"],
        [f"<think>b</think><answer>{right}</answer>"],
        [CALL.format(name="c"), f"<think>c2</think><answer>{wrong}</answer>"],
        [CALL.format(name="d"), f"<answer>{right}</answer>"],
    ]
    prompt = PromptEncoder(adapter, config.data).encode(sample)
    tools = SearchTools(config.search, "auto")
    rollouts = TurnLoop(ScriptedEngine(adapter, [script]), adapter, max_turns=3, max_turn_tokens=64).generate(
        [prompt], tools.environments([sample]), SamplingParams(n=4)
    )
    groups = Groups([sample], [prompt], rollouts, score(RewardPipeline(config.reward.weights), [sample], rollouts))
    verifier = AnswersWith(f"{right}. the verifier saw it")
    method = FrameSearch(config.search, verifier, adapter, SamplingParams(), "auto")
    shaped, stats = method.shape(groups, "1:0")

    assert verifier.prompts == 3, "the rollout without a frame is answered 'I don't know' without generation"
    assert shaped.rewards.scores["search_format"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert shaped.rewards.scores["search_accuracy"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert shaped.rewards.total.tolist() == [2.0, 1.5, 1.0, 1.0]
    advantages = get_advantage_fn("dr_grpo")(shaped.rewards.total, rollouts.group_ids, std_mode="group")
    assert advantages.tolist() == pytest.approx([0.625, 0.125, -0.375, -0.375])
    assert stats["search/csv_rate"] == 0.5 and stats["search/tool_calls"] == 0.75

    wrong_verifier = FrameSearch(config.search, AnswersWith(wrong), adapter, SamplingParams(), "auto")
    assert wrong_verifier.shape(groups, "1:0")[0].rewards.total.tolist() == [1.5, 1.5, 1.0, 0.5]


@pytest.fixture(scope="module")
def needle_data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("needle"), n_train=4, n_test=1, tasks=["needle"], needle=NeedleSettings(frames=64))


def test_search_sft_learns_the_trace_with_tool_turns_masked(tiny_model_dir, needle_data, tmp_path):
    config = load_config(
        REPO / "configs" / "timesearch_sft.yaml",
        [*NEEDLE_CPU, f"model.path={tiny_model_dir}", f"data.train_files=[{needle_data.train_path}]", f"output_dir={tmp_path / 'sft'}",
         "trainer.steps=2", "trainer.prompts_per_step=2", "trainer.micro_batch_prompts=1", "trainer.lr=1e-3"],
    )
    trainer = SFTTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    grids: list[torch.Tensor] = []
    hook = vision_tower(trainer.model).register_forward_hook(
        lambda module, args, kwargs, out: grids.append(kwargs.get("grid_thw", args[1] if len(args) > 1 else None)), with_kwargs=True
    )
    trainer.train()
    hook.remove()
    unchanged = [n for n, p in trainer.model.named_parameters() if p.requires_grad and torch.equal(p.detach(), before[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    assert any(row.tolist() == [1, 4, 4] for grid in grids for row in grid), "the tool frames reach the forward"

    ids, media = trainer.target(trainer.train_samples[0])
    trained = media.loss_mask.bool()
    text = trainer.adapter.tokenizer.decode([t for t, keep in zip(ids, trained) if keep])
    masked = trainer.adapter.tokenizer.decode([t for t, keep in zip(ids, trained) if not keep])
    assert "seek_video_frames" in text and "<answer>" in text, "both model turns are trained"
    assert "Here are selected frames." in masked and "<|image_pad|>" in masked, "the tool turn is not"
    rows = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["tokens"] < sum(len(trainer.target(s)[0]) for s in trainer.train_samples[:2]) for r in rows)


def test_search_sft_names_a_record_without_a_trace(tiny_model_dir, synthetic_data, tmp_path):
    config = load_config(
        REPO / "configs" / "timesearch_sft.yaml",
        [*NEEDLE_CPU, "data.video.nframes=4", f"model.path={tiny_model_dir}", f"data.train_files=[{synthetic_data.train_path}]",
         f"output_dir={tmp_path / 'sft'}", "trainer.steps=1"],
    )
    with pytest.raises(ValueError, match=r"train\.json#\d+: search SFT needs 'search_trace'"):
        SFTTrainer(config)
    assert not (tmp_path / "sft" / "final").exists() and not (tmp_path / "sft" / "checkpoints").exists()
