"""The built-in tiny Qwen2.5-VL: build, save, reload, tokenize, process video/image, forward, backward, generate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor, BatchFeature, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

from data_pipelines.synthetic.vocabulary import corpus_lines
from vlm_rl.models.tiny import (
    DEFAULT_SYSTEM_PROMPT,
    REASONING_TOKENS,
    SPECIAL_TOKENS,
    TINY_SIZES,
    build_tiny_model,
    build_tokenizer,
    default_corpus,
)

VIDEO_MESSAGE = [
    {
        "role": "user",
        "content": [{"type": "video", "video": "x.mp4"}, {"type": "text", "text": "What color is the moving square?"}],
    }
]
IMAGE_MESSAGE = [
    {"role": "user", "content": [{"type": "image", "image": "x.png"}, {"type": "text", "text": "How many circles?"}]}
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="module")
def processor(tiny_dir: Path) -> Qwen2_5_VLProcessor:
    return AutoProcessor.from_pretrained(tiny_dir, local_files_only=True)


@pytest.fixture(scope="module")
def model(tiny_dir: Path) -> Qwen2_5_VLForConditionalGeneration:
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_dir, local_files_only=True)


def test_sizes_are_consistent() -> None:
    for dims in TINY_SIZES.values():
        head_dim = dims.hidden_size // dims.num_heads
        assert sum(dims.mrope_section) == head_dim // 2
        assert dims.num_heads % dims.num_kv_heads == 0


@pytest.mark.parametrize(("size", "low", "high"), [("tiny", 0.55e6, 0.80e6), ("small", 3.2e6, 3.8e6)])
def test_parameter_count(tmp_path: Path, size: str, low: float, high: float) -> None:
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        build_tiny_model(tmp_path, size=size), local_files_only=True
    )
    count = sum(p.numel() for p in loaded.parameters())
    assert low < count < high
    assert loaded.config.text_config.hidden_size == TINY_SIZES[size].hidden_size
    assert loaded.config.vision_config.out_hidden_size == TINY_SIZES[size].hidden_size


def test_unknown_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model size .huge.; choose one of"):
        build_tiny_model(tmp_path, size="huge")


def test_same_seed_same_files_other_seed_other_weights(tiny_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    first, second, third = (load_file(d / "model.safetensors") for d in (tiny_dir, again, other))
    assert first.keys() == second.keys() == third.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "config.json"):
        assert (tiny_dir / name).read_bytes() == (again / name).read_bytes()


def test_special_tokens_are_single_ids_matching_the_config(
    processor: Qwen2_5_VLProcessor, model: Qwen2_5_VLForConditionalGeneration
) -> None:
    tokenizer = processor.tokenizer
    ids = {}
    for token in (*SPECIAL_TOKENS, *REASONING_TOKENS):
        encoded = tokenizer(token, add_special_tokens=False).input_ids
        assert len(encoded) == 1, token
        ids[token] = encoded[0]
    assert len(set(ids.values())) == len(ids)
    config = model.config
    assert config.image_token_id == ids["<|image_pad|>"] == processor.image_token_id
    assert config.video_token_id == ids["<|video_pad|>"] == processor.video_token_id
    assert config.vision_start_token_id == ids["<|vision_start|>"]
    assert config.vision_end_token_id == ids["<|vision_end|>"]
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert config.text_config.eos_token_id == model.generation_config.eos_token_id == ids["<|im_end|>"]
    assert config.text_config.pad_token_id == model.generation_config.pad_token_id == ids["<|endoftext|>"]
    assert config.text_config.vocab_size == len(tokenizer)
    assert tokenizer.decode([ids["<think>"], ids["<|im_end|>"]], skip_special_tokens=True) == "<think>"


def test_corpus_tokenizes_compactly_and_round_trips(processor: Qwen2_5_VLProcessor) -> None:
    tokenizer = processor.tokenizer
    words = [word for line in corpus_lines() for word in line.split()]
    total = sum(len(tokenizer(" " + word, add_special_tokens=False).input_ids) for word in words)
    assert total / len(words) < 2
    for line in default_corpus():
        assert tokenizer.decode(tokenizer(line, add_special_tokens=False).input_ids) == line


def test_tokenizer_is_deterministic_and_bounded() -> None:
    first, second = build_tokenizer(default_corpus()), build_tokenizer(default_corpus())
    assert first.get_vocab() == second.get_vocab()
    assert len(build_tokenizer(default_corpus(), vocab_size=400)) == 400


def test_chat_template(processor: Qwen2_5_VLProcessor) -> None:
    text = processor.apply_chat_template(VIDEO_MESSAGE, tokenize=False, add_generation_prompt=True)
    assert text == (
        f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What color is the moving square?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    image_text = processor.apply_chat_template(IMAGE_MESSAGE, tokenize=False)
    assert image_text.count("<|image_pad|>") == 1 and "<|video_pad|>" not in image_text
    assert not image_text.endswith("<|im_start|>assistant\n")
    # A datasets column fills absent keys with None: the text part must not add a placeholder.
    parts = [{"type": "video", "video": "x.mp4", "text": None}, {"type": "text", "text": "hi", "video": None}]
    padded = [{"role": "user", "content": parts}]
    assert processor.apply_chat_template(padded, tokenize=False).count("<|video_pad|>") == 1
    with_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    rendered = processor.apply_chat_template(with_system, tokenize=False)
    assert rendered == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    assert processor.tokenizer.apply_chat_template(with_system, tokenize=False) == rendered


def _check_forward_backward_generate(model: Qwen2_5_VLForConditionalGeneration, inputs: BatchFeature) -> None:
    length = inputs["input_ids"].shape[1]
    model.zero_grad()
    logits = model(**inputs).logits
    assert logits.shape == (1, length, model.config.text_config.vocab_size)
    logits.logsumexp(-1).mean().backward()
    visual = model.model.visual
    assert all(p.grad is not None for p in visual.parameters())
    assert visual.patch_embed.proj.weight.grad.abs().sum() > 0
    model.zero_grad()
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert length < generated.shape[1] <= length + 5
    assert torch.equal(generated[:, :length], inputs["input_ids"])


def test_video_processing_forward_backward_generate(
    processor: Qwen2_5_VLProcessor, model: Qwen2_5_VLForConditionalGeneration
) -> None:
    text = processor.apply_chat_template(VIDEO_MESSAGE, tokenize=False, add_generation_prompt=True)
    video = torch.randint(0, 256, (4, 3, 56, 56), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    inputs = processor(
        text=[text], videos=[video], video_metadata=[{"fps": 2.0, "total_num_frames": 4}], return_tensors="pt"
    )
    assert {"pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "mm_token_type_ids"} <= inputs.keys()
    is_video = inputs["input_ids"] == model.config.video_token_id
    assert int(is_video.sum()) == 4 // 2 * (56 // 28) ** 2 == 8
    assert inputs["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert inputs["pixel_values_videos"].shape == (2 * 4 * 4, 3 * 2 * 14 * 14)
    assert inputs["second_per_grid_ts"].tolist() == [1.0]  # temporal_patch_size / fps
    assert torch.equal(inputs["mm_token_type_ids"], is_video.long() * 2)
    _check_forward_backward_generate(model, inputs)


@pytest.mark.parametrize(("frames", "height", "width", "tokens"), [(8, 112, 112, 64), (4, 224, 224, 32)])
def test_video_sizes_are_kept_or_shrunk(
    processor: Qwen2_5_VLProcessor, frames: int, height: int, width: int, tokens: int
) -> None:
    video = torch.zeros((frames, 3, height, width), dtype=torch.uint8)
    inputs = processor(
        text=["<|vision_start|><|video_pad|><|vision_end|>"],
        videos=[video],
        video_metadata=[{"fps": 2.0, "total_num_frames": frames}],
        return_tensors="pt",
    )
    assert int((inputs["input_ids"] == processor.video_token_id).sum()) == tokens


def test_image_processing_forward_backward_generate(
    processor: Qwen2_5_VLProcessor, model: Qwen2_5_VLForConditionalGeneration
) -> None:
    text = processor.apply_chat_template(IMAGE_MESSAGE, tokenize=False, add_generation_prompt=True)
    image = torch.randint(0, 256, (3, 56, 56), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    is_image = inputs["input_ids"] == model.config.image_token_id
    assert int(is_image.sum()) == (56 // 28) ** 2
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert torch.equal(inputs["mm_token_type_ids"], is_image.long())
    _check_forward_backward_generate(model, inputs)


def test_new_problem_types_do_not_change_the_tiny_tokenizer(monkeypatch):
    """The embedded default's tokenizer (and so the tiny model's weights and the quickstart's numbers) stays
    fixed when a problem type and its prompt wording are added."""
    from data_pipelines import prompts
    from vlm_rl.models import tiny

    before = tiny.default_corpus()
    monkeypatch.setitem(prompts.TYPE_TEMPLATES, "new type", " Please answer in a brand new way.")
    monkeypatch.setitem(prompts.SHORT_TYPE_TEMPLATES, "new type", " Answer anew.")
    assert tiny.default_corpus() == before
    assert len(tiny.build_tokenizer(before)) == 707
