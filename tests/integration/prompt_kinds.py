"""Processed prompts of every kind for engine tests: a video, an image (odd size), text only, another video."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from data_pipelines.formats.video_r1 import load_samples
from vlm_rl.models.adapter import PromptInputs
from vlm_rl.models.prompt_encoder import PromptEncoder


def prompt_kinds(encoder: PromptEncoder, train_path: Path, tmp_path: Path) -> list[PromptInputs]:
    samples = load_samples(train_path)
    image = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 44, 3), dtype=np.uint8)).save(image)
    video, other = samples[0], next(s for s in samples if s.problem != samples[0].problem)
    prompts = [
        encoder.encode(video),
        encoder.encode_variant(dataclasses.replace(other, data_type="image", media_path=image)),
        encoder.encode_variant(dataclasses.replace(other, data_type="text", media_path=None)),
        encoder.encode(other),
    ]
    assert prompts[0].pixel_values_videos is not None and prompts[1].pixel_values is not None
    assert prompts[2].pixel_values is None and prompts[2].pixel_values_videos is None
    return prompts
