"""The built-in tiny Qwen2.5-VL: a real `Qwen2_5_VLForConditionalGeneration` with random weights.

Everything is made locally, with no download: a byte-level BPE tokenizer trained on the synthetic
vocabulary and the prompt templates, a Qwen2-VL-style chat template, a `Qwen2_5_VLProcessor` sized
for small clips, and the model itself. `build_tiny_model` saves all of it with `save_pretrained`,
so it loads back with `AutoProcessor` / `Qwen2_5_VLForConditionalGeneration.from_pretrained` like a
hub checkpoint.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import (
    AddedToken,
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLProcessor,
    Qwen2Tokenizer,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from data_pipelines.prompts import QUESTION_TEMPLATES, SHORT_TYPE_TEMPLATES, TYPE_TEMPLATES
from data_pipelines.synthetic.vocabulary import QUESTIONS, SHAPES, corpus_lines

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
"""The Qwen2.5-VL special tokens, in Qwen's id order (they follow the BPE vocabulary)."""

REASONING_TOKENS: tuple[str, ...] = ("<think>", "</think>", "<answer>", "</answer>")
"""Added as ordinary (non-special) tokens: one id each, kept by ``decode(skip_special_tokens=True)``."""

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Qwen's pre-tokenisation regex: digits split one by one, letters grouped with one leading non-letter.
_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

CHAT_TEMPLATE = r"""{%- for message in messages %}
    {%- if loop.first and message['role'] != 'system' %}
        {{- '<|im_start|>system\n""" + DEFAULT_SYSTEM_PROMPT + r"""<|im_end|>\n' }}
    {%- endif %}
    {{- '<|im_start|>' + message['role'] + '\n' }}
    {%- if message['content'] is string %}
        {{- message['content'] }}
    {%- else %}
        {%- for part in message['content'] %}
            {%- if part['type'] == 'image' or part['type'] == 'image_url' %}
                {{- '<|vision_start|><|image_pad|><|vision_end|>' }}
            {%- elif part['type'] == 'video' %}
                {{- '<|vision_start|><|video_pad|><|vision_end|>' }}
            {%- elif part['type'] == 'text' %}
                {{- part['text'] }}
            {%- else %}
                {{- raise_exception('unknown content type: ' + part['type'] | string) }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
    {{- '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""
"""Qwen2-VL chat format keyed on ``content['type']`` (a None-filled ``video`` key in a text part
does not add a placeholder); the default system turn is rendered when the first message is not one."""


@dataclass(frozen=True)
class TinySize:
    """Widths and depths of one tiny model size (text decoder and vision tower)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vision_hidden_size: int
    vision_depth: int
    vision_heads: int
    vision_intermediate_size: int
    vocab_size: int | None = None
    """Embedding rows; None = the tokenizer's length. A real model's size pads past the tiny tokenizer (ids it
    lacks decode to nothing), so the embedding and the vocabulary projection cost what they cost at that size."""
    tie_word_embeddings: bool = True
    fullatt_every: int | None = None
    """Every k-th vision block attends over the whole frame (Qwen2.5-VL: 8); None = the last block only."""

    @property
    def fullatt_block_indexes(self) -> list[int]:
        """Vision blocks with full (not windowed) attention."""
        if self.fullatt_every is None or self.fullatt_every > self.vision_depth:
            return [self.vision_depth - 1]
        return list(range(self.fullatt_every - 1, self.vision_depth, self.fullatt_every))

    @property
    def mrope_section(self) -> list[int]:
        """Temporal/height/width split of the rotary half-dimension (Qwen's 16:24:24 ratio), summing to head_dim/2."""
        half = self.hidden_size // self.num_heads // 2
        temporal = half // 4
        height = (half - temporal) // 2
        return [temporal, height, half - temporal - height]


TINY_SIZES: dict[str, TinySize] = {
    "tiny": TinySize(128, 2, 4, 2, 256, 64, 2, 2, 128),
    "small": TinySize(256, 4, 4, 2, 512, 128, 2, 2, 256),
}
"""Parameters besides the (tied) embedding: ``tiny`` 553,408 (vision 257,344), ``small`` 3,238,784 (vision
875,136); the embedding adds hidden_size per vocabulary entry (707 with the default corpus)."""

QWEN25_VL_SIZES: dict[str, TinySize] = {
    "3b": TinySize(2048, 36, 16, 2, 11008, 1280, 32, 16, 3420, vocab_size=151936, fullatt_every=8),
    "7b": TinySize(3584, 28, 28, 4, 18944, 1280, 32, 16, 3420, vocab_size=151936, tie_word_embeddings=False, fullatt_every=8),
}
"""The published Qwen2.5-VL-3B and -7B configurations (3.75B and 8.29B parameters), for random-weight models
of real size; `dataclasses.replace(dims, num_layers=..., vision_depth=...)` reduces the depth."""

PATCH_SIZE = 14
SPATIAL_MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
MIN_PIXELS = 28 * 28 * 4
"""Smallest resized frame area: 56x56 stays 56x56 (4 merged tokens per temporal patch)."""
MAX_PIXELS = 112 * 112
"""Largest resized frame area: 112x112 stays 112x112 (16 merged tokens), larger frames shrink."""


CORPUS_PROBLEM_TYPES: tuple[str, ...] = ("multiple choice", "numerical", "OCR", "free-form", "regression", "multi-answer")
"""The problem types whose prompt wordings train the tokenizer. Fixed, so that adding a problem type (grounding,
box, ...) does not change the tiny tokenizer, the tiny model's initial weights or the embedded default's results."""


def default_corpus() -> list[str]:
    """Tokenizer training text: the synthetic vocabulary, the prompt templates of `CORPUS_PROBLEM_TYPES`,
    characters, chat scaffolding."""
    lines = list(corpus_lines())
    question = QUESTIONS["color"].format(shape=SHAPES[0])
    for name, template in QUESTION_TEMPLATES.items():
        suffixes = SHORT_TYPE_TEMPLATES if name == "short" else TYPE_TEMPLATES
        lines.extend(template.format(Question=question + "Options:\n") + suffixes[kind] for kind in CORPUS_PROBLEM_TYPES)
    lines.extend(" ".join(chars) for chars in (string.ascii_letters, string.digits, string.punctuation))
    lines.extend(["system", "user", "assistant", DEFAULT_SYSTEM_PROMPT])
    return lines


def _qwen_pipeline(tokenizer: Tokenizer) -> None:
    """Give `tokenizer` Qwen2's normaliser, pre-tokeniser and decoder (as `Qwen2Tokenizer` rebuilds them)."""
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `corpus` and wrap it as a `Qwen2Tokenizer` with every Qwen2.5-VL special token.

    `vocab_size` bounds the total (BPE entries + special + reasoning tokens); a small corpus runs
    out of merges earlier. Special tokens come last, then `REASONING_TOKENS` as ordinary added
    tokens. eos is ``<|im_end|>``, pad ``<|endoftext|>``, no bos and no unk (byte-level covers all
    text). The same corpus gives the same vocabulary and merges.
    """
    extra = len(SPECIAL_TOKENS) + len(REASONING_TOKENS)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + extra:
        raise ValueError(
            f"vocab_size={vocab_size} is below the byte alphabet plus special tokens ({len(alphabet) + extra})"
        )
    bpe = Tokenizer(BPE())
    _qwen_pipeline(bpe)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - extra, min_frequency=1, show_progress=False, initial_alphabet=alphabet
    )
    bpe.train_from_iterator(list(corpus), trainer=trainer)
    model_state = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(model_state["vocab"])
    for token in (*SPECIAL_TOKENS, *REASONING_TOKENS):
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[tuple(pair) for pair in model_state["merges"]],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS),
        model_max_length=32768,
    )
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in REASONING_TOKENS])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


FAMILIES = ("qwen2_5_vl", "qwen2_vl")
"""Model families the tiny builder makes: Qwen2.5-VL (default) and Qwen2-VL."""


def build_processor(tokenizer: PreTrainedTokenizerFast, family: str = "qwen2_5_vl") -> Qwen2_5_VLProcessor:
    """The family's processor over `tokenizer`, with image and video sizes that keep 56x56 to 112x112 frames as they are."""
    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    grid = {"patch_size": PATCH_SIZE, "temporal_patch_size": TEMPORAL_PATCH_SIZE, "merge_size": SPATIAL_MERGE_SIZE}
    processor_class = Qwen2VLProcessor if family == "qwen2_vl" else Qwen2_5_VLProcessor
    return processor_class(
        image_processor=Qwen2VLImageProcessor(size=size, **grid),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(size=size, do_sample_frames=False, cap_pixels_per_frame=True, **grid),
        chat_template=CHAT_TEMPLATE,
    )


def model_size(size: str | TinySize) -> TinySize:
    """`size` itself, or the `TINY_SIZES` / `QWEN25_VL_SIZES` entry it names."""
    if isinstance(size, TinySize):
        return size
    sizes = {**TINY_SIZES, **QWEN25_VL_SIZES}
    if size not in sizes:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(sizes)}")
    return sizes[size]


def build_config(size: str | TinySize, tokenizer: PreTrainedTokenizerFast, family: str = "qwen2_5_vl") -> Qwen2_5_VLConfig:
    """The family's config for a model size (`model_size`), with token ids taken from `tokenizer`."""
    dims = model_size(size)
    if dims.vocab_size is not None and dims.vocab_size < len(tokenizer):
        raise ValueError(f"vocab_size {dims.vocab_size} is below the tokenizer's {len(tokenizer)} entries")
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    text_config = {
        "vocab_size": dims.vocab_size or len(tokenizer),
        "hidden_size": dims.hidden_size,
        "intermediate_size": dims.intermediate_size,
        "num_hidden_layers": dims.num_layers,
        "num_attention_heads": dims.num_heads,
        "num_key_value_heads": dims.num_kv_heads,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": dims.mrope_section},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    if family == "qwen2_vl":
        return Qwen2VLConfig(
            text_config=text_config,
            vision_config={
                "depth": dims.vision_depth,
                "embed_dim": dims.vision_hidden_size,
                "hidden_size": dims.hidden_size,
                "mlp_ratio": dims.vision_intermediate_size // dims.vision_hidden_size,
                "num_heads": dims.vision_heads,
                "patch_size": PATCH_SIZE,
                "spatial_merge_size": SPATIAL_MERGE_SIZE,
                "temporal_patch_size": TEMPORAL_PATCH_SIZE,
            },
            image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"],
            tie_word_embeddings=dims.tie_word_embeddings,
            attn_implementation="sdpa",
        )
    vision_config = {
        "depth": dims.vision_depth,
        "hidden_size": dims.vision_hidden_size,
        "intermediate_size": dims.vision_intermediate_size,
        "num_heads": dims.vision_heads,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": SPATIAL_MERGE_SIZE,
        "temporal_patch_size": TEMPORAL_PATCH_SIZE,
        "tokens_per_second": 2,
        "window_size": 4 * PATCH_SIZE * SPATIAL_MERGE_SIZE,
        "fullatt_block_indexes": dims.fullatt_block_indexes,
        "out_hidden_size": dims.hidden_size,
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=dims.tie_word_embeddings,
        attn_implementation="sdpa",
    )


def build_tiny_model(
    out_dir: str | Path,
    *,
    size: str | TinySize = "tiny",
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    family: str = "qwen2_5_vl",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Build and save (safetensors) a random-weight Qwen2.5-VL (or Qwen2-VL) with its tokenizer and processor.

    `size` is a `model_size` name or a `TinySize`. `corpus` replaces `default_corpus()` as tokenizer
    training text. The same `seed`, corpus and device give identical weights and identical tokenizer
    files. `device` is where the weights are initialised (a GPU makes a real-size model in seconds),
    `dtype` what they are saved in. Returns `out_dir`.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")
    out = Path(out_dir)
    tokenizer = build_tokenizer(default_corpus() if corpus is None else corpus)
    config = build_config(size, tokenizer, family)
    torch.manual_seed(seed)
    model_class = Qwen2VLForConditionalGeneration if family == "qwen2_vl" else Qwen2_5_VLForConditionalGeneration
    with torch.device(device):
        model = model_class(config).to(dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    build_processor(tokenizer, family).save_pretrained(out)
    return out
