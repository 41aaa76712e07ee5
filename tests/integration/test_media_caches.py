"""A prompt's frames are decoded and processed once and reused; data.*_cache_mb=0 turns each cache off."""

from __future__ import annotations

import dataclasses

import torch

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.models.loading import load_adapter
from vlm_rl.models.prompt_encoder import PromptEncoder


def _encoder(run_config, **data):
    return PromptEncoder(load_adapter(run_config.model.path), dataclasses.replace(run_config.data, **data))


def test_prompts_and_frames_are_reused_until_the_caches_are_turned_off(run_config, synthetic_data):
    sample = load_samples(synthetic_data.train_path)[0]
    cached = _encoder(run_config)
    first = cached.encode(sample)
    assert cached.encode(sample) is first, "the processed prompt is reused"
    cached.encode_variant(sample, lambda frames: frames.flip(0))
    assert (cached.frames.hits, cached.frames.misses) == (1, 1), "a variant reuses the decoded frames"

    off = _encoder(run_config, prompt_cache_mb=0, frame_cache_mb=0)
    again = off.encode(sample)
    assert off.encode(sample) is not again and (off.frames.hits, off.frames.misses, len(off.frames)) == (0, 2, 0)
    assert torch.equal(again.pixel_values_videos, first.pixel_values_videos) and torch.equal(again.input_ids, first.input_ids)
