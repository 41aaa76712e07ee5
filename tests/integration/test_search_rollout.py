"""Frame-search rollouts on the tiny model: the turn rules on sampled ids, training with tool frames, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.models.loading import load_adapter, vision_tower
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rollout import SamplingParams
from vlm_rl.rollout.turn_loop import TurnLoop
from vlm_rl.rollout.turns import Outcome, Status, tool_turn_loss_mask
from vlm_rl.training.frame_search import SearchTools
from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest
from run_metrics import assert_same_metrics
from scripted_engine import ScriptedEngine
from search_settings import CALL, SEARCH

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow

SCRIPT = [
    [CALL.format(name="a"), "<think>a2</think><answer>A</answer>"],  # searches, then answers
    ['<think>b</think><tool_call>{"name": "zoom", "arguments": {}}</tool_call>', "<think>b2</think><answer>B</answer>"],
    ["<think>c</think> no action"],  # ends without an answer
    ["<think>d</think><answer>C</answer> trailing words"],  # answers at once; the trailing words are cut
]


@pytest.fixture
def search_setup(run_config, tiny_model_dir, synthetic_data):
    config = _with(run_config, SEARCH)
    adapter = load_adapter(str(tiny_model_dir))
    encoder = PromptEncoder(adapter, config.data, search_turns=config.search.max_turns)
    samples = load_samples(synthetic_data.train_path)[:2]
    return config, adapter, encoder, samples


def test_turn_rules_on_sampled_ids(search_setup):
    config, adapter, encoder, samples = search_setup
    engine = ScriptedEngine(adapter, [SCRIPT, [[t.replace("<think>", "<think>x") for t in s] for s in SCRIPT]])
    tools = SearchTools(config.search, "auto")
    loop = TurnLoop(engine, adapter, max_turns=2, max_turn_tokens=64)
    out = loop.generate([encoder.encode(s) for s in samples], tools.environments(samples), SamplingParams(n=4))

    assert engine.calls == [2, 4], "turn 1 for both prompts, turn 2 for the rows that called a tool"
    statuses = [t.status for t in out.trajectories]
    assert statuses == [Status.ANSWERED, Status.ANSWERED, Status.NO_ACTION, Status.ANSWERED] * 2
    assert [r.outcome for r in out.trajectories[0].results] == [Outcome.TOOL, Outcome.ANSWER]
    assert [r.outcome for r in out.trajectories[1].results] == [Outcome.PARSE_ERROR, Outcome.ANSWER]
    assert out.texts[3] == "<think>d</think><answer>C</answer>"
    im_start = adapter.tokenizer.convert_tokens_to_ids("<|im_start|>")
    tool_role = adapter.tokenizer("tool", add_special_tokens=False)["input_ids"][0]
    for ids, media in zip(out.completion_ids, out.media):
        assert media.loss_mask.tolist() == tool_turn_loss_mask(ids, im_start, tool_role)
    # the searching row holds the four cache frames of its 1-second window, masked out of the loss
    media = out.media[0]
    image_tokens = torch.tensor(out.completion_ids[0]) == adapter.image_token_id
    assert media.image_grid_thw.shape[0] == 4 and image_tokens.sum() > 0
    assert not media.loss_mask[image_tokens].any()
    assert out.media[3].pixel_values is None and out.media[3].loss_mask.all()
    decoded = adapter.tokenizer.decode(out.completion_ids[3])
    assert "trailing" not in decoded, "the sampled tokens after </answer> are not trained"
    tool_text = adapter.tokenizer.decode(out.completion_ids[1])
    assert "The previous response is invalid." in tool_text


def test_a_rollout_stops_after_max_turns(search_setup):
    config, adapter, encoder, samples = search_setup
    script = [[CALL.format(name=f"r{i}"), CALL.format(name="again")] for i in range(2)]
    loop = TurnLoop(ScriptedEngine(adapter, [script]), adapter, max_turns=2, max_turn_tokens=64)
    out = loop.generate([encoder.encode(samples[0])], SearchTools(config.search, "auto").environments(samples[:1]), SamplingParams(n=2))
    assert [t.status for t in out.trajectories] == [Status.MAX_TURNS] * 2
    assert all(t.turns == 2 for t in out.trajectories)
    assert all(m.image_grid_thw.shape[0] == 8 for m in out.media), "two calls of four frames each"


@pytest.fixture
def varied_reward(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    return [
        "reward.custom={length: 'rewards_for_tests:text_length'}",
        "reward.weights={search_format: 0.0, search_accuracy: 0.0, length: 1.0}",
        "search.placeholder_result=true",
    ]


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_search_training_moves_every_parameter_and_the_loss_forward_sees_tool_frames(run_config, varied_reward, shared_prefix):
    config = _with(run_config, [*SEARCH, *varied_reward, "trainer.steps=1", f"model.shared_prefix={str(shared_prefix).lower()}"])
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    grids: list[torch.Tensor] = []
    hook = vision_tower(trainer.model).register_forward_hook(
        lambda module, args, kwargs, out: grids.append(kwargs.get("grid_thw", args[1] if len(args) > 1 else None))
        if torch.is_grad_enabled()
        else None,
        with_kwargs=True,
    )
    metrics = trainer.step(1)
    hook.remove()
    unchanged = [n for n, p in trainer.model.named_parameters() if p.requires_grad and torch.equal(p.detach(), before[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    assert metrics["search/frames"] >= 1.0, "every rollout carries at least the placeholder frame"
    # a tool frame is one 56x56 image: grid (1, 4, 4); the preview video has 2 temporal patches
    with_tool_frames = [g for g in grids if g is not None and any(row.tolist() == [1, 4, 4] for row in g)]
    assert with_tool_frames, f"no loss forward saw a tool frame; vision grids with grad: {grids}"



def test_search_run_resumes_like_an_uninterrupted_run(run_config, varied_reward, tmp_path):
    common = [*SEARCH, *varied_reward, "trainer.steps=4", "trainer.save_every=2", "trainer.keep_checkpoints=5"]
    GRPOTrainer(_with(run_config, [*common, f"output_dir={tmp_path / 'straight'}"])).train()
    GRPOTrainer(_with(run_config, [*common, "trainer.steps=2", f"output_dir={tmp_path / 'resumed'}"])).train()
    resumed = GRPOTrainer(_with(run_config, [*common, "trainer.resume=auto", f"output_dir={tmp_path / 'resumed'}"]))
    assert resumed.start_step == 2
    resumed.train()
    assert_same_metrics(tmp_path / "straight", tmp_path / "resumed", [1, 2, 3, 4], [3, 4])


def test_a_video_shorter_than_one_cache_frame_is_refused_before_training(run_config, tmp_path):
    config = _with(run_config, [*SEARCH, "search.cache_fps=0.5", f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(Exception, match=r"train\.json#\d+: video .* lasts 1 s, less than one frame of the search cache at search\.cache_fps=0\.5"):
        GRPOTrainer(config)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_record_without_duration_gets_the_file_duration_in_the_prompt(search_setup):
    config, adapter, encoder, samples = search_setup
    assert "duration" not in samples[0].extra
    assert encoder.text(samples[0]).rstrip().endswith("The video duration: 1 seconds.\n<|im_end|>\n<|im_start|>assistant".rstrip())
