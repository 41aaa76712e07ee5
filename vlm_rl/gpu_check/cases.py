"""The cases of `scripts/gpu_check.sh`, their scales, their clips, models and run configs."""

from __future__ import annotations

import dataclasses
import gc
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

REPO = Path(__file__).resolve().parents[2]
FRAME_SIDE = 308
"""Clip side in pixels: 11x11 merged tokens a temporal slice, about Video-R1's 128*28*28 pixels a frame."""


@dataclass(frozen=True)
class Case:
    """One measurement: what runs, on which model, in which form."""

    name: str
    kind: Literal["train", "equivalence", "resume"]
    size: str
    """A `QWEN25_VL_SIZES` name; `--smoke` runs the ``small`` tiny model instead."""
    mode: str = "prefill"
    frames: tuple[int, ...] = (16,)
    layers: int | None = None
    lora: bool = False
    checkpointing: bool = False
    zero3: bool = False


CASES = (
    Case("3b-repeated", "train", "3b", mode="repeated", checkpointing=True),
    Case("3b-shared", "train", "3b", mode="shared", checkpointing=True),
    Case("3b-default", "train", "3b", checkpointing=True),
    Case("7b-lora", "train", "7b", frames=(128, 64, 32, 16), lora=True, checkpointing=True),
    Case("3b-zero3", "train", "3b", checkpointing=True, zero3=True),
    Case("3b-equivalence", "equivalence", "3b", checkpointing=True),
    Case("3b-resume", "resume", "3b", layers=2),
)
"""Activation checkpointing wherever the whole model trains: without it the repeated form's 16 rows of about 1,100
tokens would keep about 70 GB of text-layer activations at 3B (about 110 KB a token a layer in bf16), and their
frames as much again in the vision tower."""
CASE_NAMES = tuple(case.name for case in CASES)


@dataclass(frozen=True)
class Scale:
    """Batch, lengths and steps of a run (`FULL` on the GPU, `SMOKE` for the CPU test)."""

    prompts: int = 2
    generations: int = 8
    max_new_tokens: int = 128
    warmup: int = 1
    steps: int = 2
    dtype: str = "bfloat16"
    case_timeout: int = 240


FULL = Scale()
SMOKE = Scale(prompts=1, generations=2, max_new_tokens=4, warmup=0, steps=1, dtype="float32", case_timeout=600)


def random_reward(ctx) -> float:
    """A reward drawn from Python's seeded generator (checkpointed, so a resumed run draws the same)."""
    return random.random()


def frame_counts(cases: list[Case], smoke: bool) -> list[int]:
    """Every frame count the cases may use (clips are made for each)."""
    return sorted({f for case in cases for f in case_frames(case, smoke)})


def case_frames(case: Case, smoke: bool) -> tuple[int, ...]:
    """The case's frame counts in the order they are tried; `--smoke` caps them at 8."""
    return tuple(sorted({min(f, 8) for f in case.frames}, reverse=True)) if smoke else case.frames


def prepare(work: Path, cases: list[Case], scale: Scale, smoke: bool) -> None:
    """Clips for every frame count the cases use, under ``work/data/f<frames>``."""
    side = 56 if smoke else FRAME_SIDE
    clips = scale.prompts * (scale.warmup + scale.steps + 2)
    for frames in frame_counts(cases, smoke):
        out = work / "data" / f"f{frames}"
        if not (out / "train.json").exists():
            from data_pipelines.synthetic.generator import make_dataset  # PyAV writes the clips
            from data_pipelines.synthetic.scenes import Difficulty

            make_dataset(out, n_train=clips, n_test=1, seed=0, tasks=["count"],
                         difficulty=Difficulty(frames=frames, size=side, fps=4.0))
        print(f"gpu_check: clips of {frames} frames ({side}x{side}) in {out}")


def model_dims(size: str, layers: int | None, smoke: bool):
    """The model size of a case; `layers` cuts the text and vision depth (the full-attention vision blocks follow)."""
    from vlm_rl.models.tiny import model_size

    dims = model_size("small" if smoke else size)
    if layers is not None:
        dims = dataclasses.replace(dims, num_layers=layers, vision_depth=min(layers, dims.vision_depth))
    return dims


def model_path(work: Path, case: Case, smoke: bool) -> Path:
    """Where the case's model is built: one folder per size and depth, shared by the cases that use it."""
    depth = "" if case.layers is None else f"-{case.layers}l"
    return work / "models" / f"{'small' if smoke else case.size}{depth}"


def build_model(work: Path, case: Case, smoke: bool) -> Path:
    """The case's random-weight model, built on the GPU when there is one and saved in the run dtype."""
    from vlm_rl.models.tiny import build_tiny_model

    out = model_path(work, case, smoke)
    if not (out / "config.json").exists():
        started = time.perf_counter()
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float32 if smoke else torch.bfloat16
        build_tiny_model(out, size=model_dims(case.size, case.layers, smoke), seed=0, device=device, dtype=dtype)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        print(f"gpu_check: built {out.name} in {time.perf_counter() - started:.1f} s")
    return out


# ---------------------------------------------------------------- one case (its own process)


def run_config(case: Case, scale: Scale, model: Path, data: Path, out: Path, *, frames: int, steps: int, extra=()):
    from vlm_rl.bench import MODES
    from vlm_rl.config import load_config

    shared_prefix, shared_prefill = MODES[case.mode]
    side = int(json.loads((data / "dataset_info.json").read_text())["difficulty"]["size"])
    pixels = side * side
    return load_config(None, [
        "seed=0", f"output_dir={out}", f"model.path={model}", f"model.dtype={scale.dtype}", "model.attn_implementation=sdpa",
        f"model.shared_prefix={str(shared_prefix).lower()}", f"rollout.shared_prefill={str(shared_prefill).lower()}",
        f"model.gradient_checkpointing={str(case.checkpointing).lower()}", f"model.lora.enabled={str(case.lora).lower()}",
        "model.lora.r=64", "model.lora.alpha=128",
        f"data.train_files=[{data / 'train.json'}]", "data.prompt_template=short", "data.video.fps=null",
        f"data.video.nframes={frames}", f"data.video.min_pixels={pixels}", f"data.video.max_pixels={pixels}",
        f"rollout.num_generations={scale.generations}", f"rollout.max_new_tokens={scale.max_new_tokens}",
        "reward.custom={random: 'vlm_rl.gpu_check.cases:random_reward'}", "reward.weights={random: 1.0}",
        f"trainer.steps={steps}", f"trainer.prompts_per_step={scale.prompts}", f"trainer.micro_batch_prompts={scale.prompts}",
        "trainer.sample_every=0", "trainer.save_every=0", "trainer.lr=1e-6", "trainer.report_to=[none]", *extra,
    ])
