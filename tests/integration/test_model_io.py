"""Adapter, rollout engine and log-probs on the tiny model with real mp4 clips."""

from __future__ import annotations

import pytest
import torch

from data_pipelines.formats import load_samples
from vlm_rl.config import load_config
from vlm_rl.models.loading import ModelLoadError, load_adapter, load_model
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rollout import HFRolloutEngine, SamplingParams


@pytest.fixture(scope="module")
def parts(tiny_model_dir, synthetic_data):
    config = load_config(None, [f"model.path={tiny_model_dir}", "data.prompt_template=short",
                                "data.video.fps=null", "data.video.nframes=4",
                                "data.video.min_pixels=3136", "data.video.max_pixels=3136"])
    adapter = load_adapter(config.model.path)
    model = load_model(config.model, trainable=False)
    encoder = PromptEncoder(adapter, config.data)
    samples = load_samples(synthetic_data.train_path)
    return adapter, model, encoder, samples


def test_prompt_carries_frames_and_matching_placeholders(parts):
    adapter, _, encoder, samples = parts
    inputs = encoder.encode(samples[0])
    assert inputs.video_grid_thw.tolist() == [[2, 4, 4]]
    assert int((inputs.input_ids == adapter.video_token_id).sum()) == 8
    assert inputs.pixel_values_videos.shape[0] == 32
    # 4 frames sampled from a 4-frame clip at 4 fps: 2 frames per temporal patch -> 0.5 s per grid step.
    assert inputs.second_per_grid_ts.tolist() == [0.5]
    assert encoder.encode(samples[0]) is inputs, "a prompt is processed once and then reused"


def test_batched_logprobs_equal_single_row_logprobs(parts):
    adapter, model, encoder, samples = parts
    prompts = [encoder.encode(s) for s in samples[:3]]
    assert len({p.length for p in prompts}) > 1, "prompts of different lengths exercise left padding"
    completions = [[5, 6, 7, 8], [9, 10], [11, 12, 13]]
    batch = adapter.collate(prompts, 1, completions)
    with torch.no_grad():
        logp = completion_logprobs(model, batch)[0]
        for i, (prompt, completion) in enumerate(zip(prompts, completions)):
            single = completion_logprobs(model, adapter.collate([prompt], 1, [completion]))[0]
            assert torch.allclose(logp[i, : len(completion)], single[0], atol=1e-5)
    assert batch.completion_mask.sum(1).tolist() == [4.0, 2.0, 3.0]


def test_engine_never_generates_vision_tokens(parts, tiny_model_dir):
    adapter, _, encoder, samples = parts
    model = load_model(load_config(None, [f"model.path={tiny_model_dir}"]).model, trainable=False)
    with torch.no_grad():
        model.lm_head.weight[adapter.video_token_id] *= 50.0
        model.lm_head.weight[adapter.image_token_id] *= 50.0
    prompt = encoder.encode(samples[0])
    batch = adapter.collate([prompt], 1)
    raw = model.generate(**batch.model_inputs, max_new_tokens=6, do_sample=False)
    blocked = set(adapter.blocked_token_ids)
    assert blocked & set(raw[0, batch.prompt_width :].tolist()), "without suppression this model emits pad tokens"
    rollouts = HFRolloutEngine(model, adapter).generate([prompt], SamplingParams(n=4, max_new_tokens=6))
    assert not any(blocked & set(ids) for ids in rollouts.completion_ids)


def test_eos_ends_a_completion_and_truncation_is_flagged(parts, tiny_model_dir):
    adapter, _, encoder, samples = parts
    model = load_model(load_config(None, [f"model.path={tiny_model_dir}"]).model, trainable=False)
    engine = HFRolloutEngine(model, adapter)
    prompt = encoder.encode(samples[0])
    cut = engine.generate([prompt], SamplingParams(n=3, max_new_tokens=3, temperature=1.0))
    eos = set(adapter.eos_token_ids)
    for ids, truncated in zip(cut.completion_ids, cut.truncated):
        assert truncated == (not eos & set(ids))
        assert len(ids) <= 3
    with torch.no_grad():
        model.lm_head.bias = torch.nn.Parameter(torch.zeros(model.lm_head.out_features))
        model.lm_head.bias[adapter.eos_token_ids[0]] = 1e4
    done = engine.generate([prompt, prompt], SamplingParams(n=2, max_new_tokens=5))
    assert done.completion_ids == [[adapter.eos_token_ids[0]]] * 4
    assert done.truncated == [False] * 4 and done.texts == [""] * 4
    assert done.group_ids.tolist() == [0, 0, 1, 1]


def test_model_directory_without_processor_is_refused(tiny_model_dir, tmp_path):
    import shutil

    broken = tmp_path / "no_processor"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "processor_config.json").unlink()
    with pytest.raises(ModelLoadError, match="has no processor"):
        load_adapter(str(broken))
