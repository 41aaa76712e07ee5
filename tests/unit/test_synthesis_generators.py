"""Syn-GRPO generators: every output keeps each box's pixels exactly and draws a new background around them."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from data_pipelines.synthesis import GeneratorError, ProceduralGenerator, foreground_mask, make_generator
from data_pipelines.synthesis.procedural import BASE_SHADE, plan_background
from data_pipelines.synthetic.vocabulary import COLORS

SOURCE_BACKGROUND = (20, 20, 20)


def scene(width: int, height: int, boxes: list[list[float]], colors: list[str], mode: str = "RGB") -> Image.Image:
    """A dark image with each box filled in its colour plus a gradient, so every foreground pixel is distinct."""
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = SOURCE_BACKGROUND
    for box, color in zip(boxes, colors):
        rows, cols = slice(int(box[1]), int(np.ceil(box[3]))), slice(int(box[0]), int(np.ceil(box[2])))
        patch = np.array(COLORS[color], dtype=np.int16) + np.arange(rows.stop - rows.start)[:, None, None] % 7
        pixels[rows, cols] = np.clip(patch, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB").convert(mode)


def assert_labels_kept(source: Image.Image, out: Image.Image, boxes: list[list[float]]) -> np.ndarray:
    """Same size, RGB, every box pixel unchanged; returns the mask of the boxes."""
    assert out.size == source.size and out.mode == "RGB"
    mask = foreground_mask(source.size, boxes)
    assert mask.any()
    np.testing.assert_array_equal(np.asarray(out)[mask], np.asarray(source.convert("RGB"))[mask])
    return mask


CASES = [
    (64, 48, [[4, 4, 20, 18], [30, 20, 50, 44]], ["red square", "blue circle"], "green stripes"),
    (57, 33, [[0, 0, 12.5, 9.2], [44.1, 20.7, 57, 33]], ["yellow triangle", "red square"], "purple dots on a grid"),
    (96, 96, [[10, 10, 40, 40], [30, 30, 60, 60]], ["orange square", "orange circle"], "noise"),
    (40, 40, [[5, 5, 35, 35]], ["a cup"], ""),
]


@pytest.mark.parametrize("width,height,boxes,labels,description", CASES)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_procedural_keeps_every_box_and_redraws_the_background(width, height, boxes, labels, description, seed):
    colors = [next((w for w in label.split() if w in COLORS), "green") for label in labels]
    source = scene(width, height, boxes, colors)
    out = ProceduralGenerator().generate(source, boxes, labels, description, seed)
    mask = assert_labels_kept(source, out, boxes)
    changed = (np.asarray(out) != np.asarray(source)).any(axis=2)[~mask]
    assert changed.mean() > 0.9


def test_procedural_keeps_the_boxes_of_an_rgba_source():
    boxes = [[3, 3, 15, 15]]
    source = scene(32, 24, boxes, ["blue"], mode="RGBA")
    assert_labels_kept(source, ProceduralGenerator().generate(source, boxes, ["blue square"], "red grid", 5), boxes)


def test_procedural_is_a_function_of_the_seed():
    boxes = [[8, 8, 24, 24]]
    source = scene(48, 48, boxes, ["red"])
    generator = ProceduralGenerator()
    first, again, other = (np.asarray(generator.generate(source, boxes, ["red square"], "dots", s)) for s in (7, 7, 8))
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


def test_the_description_names_the_background_colours_and_texture():
    rng = np.random.default_rng(0)
    plan = plan_background("A yellow and purple GRID, please", ["red square"], rng)
    assert (plan.base, plan.accent, plan.texture) == ("yellow", "purple", "grid")
    assert set(plan.clutter_colors) == set(COLORS) - {"red", "yellow", "purple"}
    boxes = [[10, 10, 20, 20]]
    out = np.asarray(ProceduralGenerator().generate(scene(64, 64, boxes, ["red"]), boxes, ["red square"], "plain blue", 3))
    outside = out[~foreground_mask((64, 64), boxes)]
    colours, counts = np.unique(outside, axis=0, return_counts=True)
    expected = np.round(np.array(COLORS["blue"]) * BASE_SHADE).astype(np.uint8)
    np.testing.assert_array_equal(colours[counts.argmax()], expected)


def test_clutter_never_takes_a_label_colour_nor_touches_a_box():
    boxes, labels = [[6, 6, 26, 22], [40, 30, 70, 60]], ["red square", "green circle"]
    source = scene(80, 64, boxes, ["red", "green"])
    exact = {tuple(c) for c in COLORS.values()}
    clutter_seen = 0
    for seed in range(20):
        out = np.asarray(ProceduralGenerator().generate(source, boxes, labels, "", seed))
        outside = {tuple(p) for p in out[~foreground_mask(source.size, boxes)]}
        assert COLORS["red"] not in outside and COLORS["green"] not in outside
        clutter_seen += bool(outside & exact)
        grown = foreground_mask(source.size, [[x1 - 1, y1 - 1, x2 + 1, y2 + 1] for x1, y1, x2, y2 in boxes])
        ring = grown & ~foreground_mask(source.size, boxes)
        assert not {tuple(p) for p in out[ring]} & exact, f"seed {seed}: clutter touches a box"
    assert clutter_seen >= 15


def test_clutter_never_draws_a_kind_of_shape_a_label_names():
    rng = np.random.default_rng(0)
    assert plan_background("", ["Where is every circle?"], rng).clutter_shapes == ("square", "triangle")
    assert plan_background("", ["large blue circles", "small red square"], rng).clutter_shapes == ("triangle",)
    boxes = [[4, 4, 16, 16], [30, 30, 42, 42], [50, 4, 62, 16]]
    labels = ["red square", "blue circle", "green triangle"]
    source = scene(64, 64, boxes, ["red", "blue", "green"])
    exact = {tuple(c) for c in COLORS.values()}
    for seed in range(20):
        out = np.asarray(ProceduralGenerator().generate(source, boxes, labels, "", seed))
        outside = {tuple(p) for p in out[~foreground_mask(source.size, boxes)]}
        assert not outside & exact, f"seed {seed}: a clutter shape was drawn although every kind is labelled"


@pytest.mark.parametrize(
    "boxes,labels,message",
    [
        ([[0, 0, 33, 10]], ["x"], "not inside the 32x24 image"),
        ([[10, 5, 4, 8]], ["x"], "not inside"),
        ([[-1, 0, 4, 8]], ["x"], "not inside"),
        ([[0, 0, 4, 8]], ["x", "y"], "1 boxes but 2 labels"),
        ([[0, 0, 4]], ["x"], "not four finite numbers"),
        ([[0, 0, 4, float("nan")]], ["x"], "not four finite numbers"),
    ],
)
def test_boxes_not_inside_the_image_are_refused(boxes, labels, message):
    with pytest.raises(GeneratorError, match=message):
        ProceduralGenerator().generate(Image.new("RGB", (32, 24)), boxes, labels, "", 0)


def test_make_generator_names_what_is_wrong(monkeypatch, tmp_path):
    assert make_generator("procedural").name == "procedural"
    with pytest.raises(GeneratorError, match="unknown generator 'magic'; choose one of procedural, diffusers"):
        make_generator("magic")
    with pytest.raises(GeneratorError, match="needs the directory of a local inpainting pipeline"):
        make_generator("diffusers")
    with pytest.raises(GeneratorError, match="not a diffusers pipeline directory"):
        make_generator("diffusers", model_path=tmp_path)
    (tmp_path / "model_index.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(GeneratorError, match=r"needs the diffusers package .*pip install 'vlm-rl\[synthesis\]'"):
        make_generator("diffusers", model_path=tmp_path)


@pytest.fixture(scope="module")
def tiny_inpainting_pipeline(tmp_path_factory):
    """A randomly initialised Stable Diffusion inpainting pipeline of a few thousand weights, saved locally."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("inpaint")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=9, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, norm_num_groups=4, attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
    )
    text = CLIPTextModel(CLIPTextConfig(
        hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1, vocab_size=64,
        max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab_file=str(root / "vocab.json"), merges_file=str(root / "merges.txt"), model_max_length=16)
    pipeline = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=DDIMScheduler(steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(root / "pipeline")
    return root / "pipeline"


def test_diffusers_generator_inpaints_around_the_boxes_and_keeps_them(tiny_inpainting_pipeline):
    from data_pipelines.synthesis.inpainting import DiffusersGenerator

    generator = DiffusersGenerator(tiny_inpainting_pipeline, device="cpu", steps=1)
    boxes, labels = [[2, 3, 12.5, 11], [20, 9, 31, 23]], ["red square", "blue circle"]
    source = scene(31, 23, boxes, ["red", "blue"])  # odd sizes: resized for the pipeline and back
    first = generator.generate(source, boxes, labels, "green stripes", 4)
    mask = assert_labels_kept(source, first, boxes)
    assert (np.asarray(first) != np.asarray(source)).any(axis=2)[~mask].mean() > 0.9
    np.testing.assert_array_equal(np.asarray(first), np.asarray(generator.generate(source, boxes, labels, "green stripes", 4)))
    other = generator.generate(source, boxes, labels, "green stripes", 5)
    assert_labels_kept(source, other, boxes)
    assert (np.asarray(other) != np.asarray(first)).any()
