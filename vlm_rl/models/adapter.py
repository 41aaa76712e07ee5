"""The model-family adapter: chat messages, processor inputs, batching of prompts and completions,
and the inputs of a generation that continues from one prompt prefill.

Everything that is specific to Qwen2-VL / Qwen2.5-VL (vision placeholder tokens, mRoPE inputs,
``second_per_grid_ts``, ``mm_token_type_ids``) lives here and, on the model side (prefill with
mRoPE positions, KV-cache repetition), in `vlm_rl.models.prefill`, which only this adapter and the
loss forward use; the family is chosen from the model config's ``model_type``, never from a path
substring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from PIL import Image

from data_pipelines.schema import Sample
from vlm_rl.media import VideoClip
from vlm_rl.models.prefill import prefill_batch

VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>")
SUPPORTED_MODEL_TYPES = ("qwen2_5_vl", "qwen2_vl")


@dataclass(frozen=True, eq=False)
class PromptSource:
    """What the processor was given for one prompt: the rendered text and the sampled media.

    Engines that run their own processor (vLLM) rebuild the same inputs from it; `video.frames`
    is shared with the frame cache, so keeping it costs no copy.
    """

    text: str
    video: VideoClip | None = None
    images: tuple[Image.Image, ...] = ()


@dataclass(frozen=True)
class PromptInputs:
    """One processed prompt (batch dimension removed): token ids and its vision features.

    Shapes: input_ids, mm_token_type_ids [P]; pixel_values_videos [N_patches, D] with
    video_grid_thw [1, 3] and second_per_grid_ts [1]; likewise pixel_values / image_grid_thw.
    """

    input_ids: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values_videos: torch.Tensor | None = None
    video_grid_thw: torch.Tensor | None = None
    second_per_grid_ts: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    image_grid_thw: torch.Tensor | None = None
    source: PromptSource | None = None

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of the processed tensors (the source's frames belong to the frame cache)."""
        tensors = (getattr(self, f.name) for f in fields(self))
        return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


@dataclass(frozen=True, eq=False)
class CompletionMedia:
    """What a completion that interleaves tool turns carries beside its token ids (one row, C tokens).

    ``token_types`` [C] are the processor's ``mm_token_type_ids`` of the completion (1 on image tokens);
    ``loss_mask`` [C] is 1 on trained tokens and 0 on tool turns; ``pixel_values`` [N, D] and
    ``image_grid_thw`` [M, 3] are the tool turns' images in order (None when there are none).
    """

    token_types: torch.Tensor
    loss_mask: torch.Tensor
    pixel_values: torch.Tensor | None = None
    image_grid_thw: torch.Tensor | None = None


@dataclass(frozen=True)
class Batch:
    """Model inputs for rows of ``[left-padded prompt | right-padded completion]``.

    `model_inputs` go straight to the model's forward or generate; `completion_ids` and
    `completion_mask` are [B, C] (C = 0 for generation batches); `prompt_width` is the padded
    prompt length, so completion token t sits at column ``prompt_width + t``. `prompts` and
    `repeats` say which prompt the rows share (rows of prompt i are consecutive), for the
    shared-prefix forward. `completion_media` holds each row's tool-turn media (None for plain rows);
    the model inputs already hold those images after each row's prompt images.
    """

    model_inputs: dict[str, torch.Tensor]
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    prompt_width: int
    prompts: tuple[PromptInputs, ...] = ()
    repeats: tuple[int, ...] = ()
    completion_media: tuple[CompletionMedia | None, ...] = ()


class QwenVLAdapter:
    """Adapter for Qwen2-VL and Qwen2.5-VL processors and models."""

    def __init__(self, processor, model_type: str) -> None:
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(f"model_type {model_type!r} is not supported; supported: {SUPPORTED_MODEL_TYPES}")
        self.processor = processor
        self.model_type = model_type
        tokenizer = processor.tokenizer
        self.tokenizer = tokenizer
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_token_ids = sorted({tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")})
        self.blocked_token_ids = [tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS]
        self.video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
        self.image_token_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
        self.merge_size = processor.video_processor.merge_size

    def messages(self, sample: Sample, text: str, system_prompt: str | None = None) -> list[dict]:
        """Chat messages: the primary media item, then any extra images, then the question text."""
        content: list[dict] = []
        if sample.data_type in ("video", "image"):
            content.append({"type": sample.data_type, sample.data_type: str(sample.media_path)})
        content.extend({"type": "image", "image": str(path)} for path in sample.extra_images)
        content.append({"type": "text", "text": text})
        messages = [{"role": "user", "content": content}]
        if system_prompt is not None:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system_prompt}]})
        return messages

    def render(self, messages: list[dict], *, add_generation_prompt: bool) -> str:
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def encode(self, text: str, *, video: VideoClip | None = None, images: Sequence[Image.Image] = ()) -> PromptInputs:
        """Run the processor on one rendered prompt and its already-sampled media (images in prompt order)."""
        kwargs: dict = {"text": [text], "return_tensors": "pt"}
        if video is not None:
            kwargs["videos"] = [video.frames]
            kwargs["video_metadata"] = [
                {"total_num_frames": video.total_frames, "fps": video.source_fps, "frames_indices": list(video.indices)}
            ]
            kwargs["do_sample_frames"] = False
        if images:
            kwargs["images"] = list(images)
        if video is not None or images:
            kwargs["do_resize"] = False
        return self.from_processor_output(self.processor(**kwargs), PromptSource(text, video, tuple(images)))

    def message_text(self, message: dict) -> str:
        """The rendered text of one chat message as it follows earlier ones (``<|im_start|>role\n…<|im_end|>\n``)."""
        head = [{"role": "system", "content": [{"type": "text", "text": "."}]}]
        before = self.render(head, add_generation_prompt=False)
        after = self.render([*head, message], add_generation_prompt=False)
        if not after.startswith(before):
            raise ValueError("the chat template does not render messages one after another; multi-turn rollouts need one that does")
        return after[len(before) :]

    @property
    def generation_header(self) -> str:
        """The text that opens an assistant turn (``<|im_start|>assistant\n`` for Qwen)."""
        head = [{"role": "system", "content": [{"type": "text", "text": "."}]}]
        return self.render(head, add_generation_prompt=True)[len(self.render(head, add_generation_prompt=False)) :]

    def encode_continuation(self, text: str, images: Sequence[Image.Image] = ()) -> tuple[torch.Tensor, CompletionMedia]:
        """Token ids of a rendered piece of conversation and its images, as a completion segment.

        Returns the processor's ids [L] and a segment with their token types, a loss mask of ones (the caller masks what it does not
        train) and the images' pixel values and grids. Images must already have sides that are multiples of the
        patch size times the merge size (no resize here)."""
        kwargs: dict = {"text": [text], "return_tensors": "pt"}
        if images:
            kwargs["images"] = list(images)
            kwargs["do_resize"] = False
        out = self.processor(**kwargs)
        ids = out["input_ids"][0]
        segment = CompletionMedia(
            token_types=out["mm_token_type_ids"][0],
            loss_mask=torch.ones(len(ids)),
            pixel_values=out.get("pixel_values"),
            image_grid_thw=out.get("image_grid_thw"),
        )
        n_tokens = int((ids == self.image_token_id).sum())
        grid = segment.image_grid_thw
        n_features = 0 if grid is None else int(grid.prod(-1).sum()) // self.merge_size**2
        if n_tokens != n_features:
            raise ValueError(f"continuation has {n_tokens} image tokens but {n_features} image features")
        return ids, segment

    def extend(self, prompt: PromptInputs, ids: Sequence[int], media: CompletionMedia | None, text: str, images: Sequence[Image.Image]) -> PromptInputs:
        """`prompt` followed by `ids` (a conversation so far, with `media` holding its tool images), as one prompt
        to generate the next turn from; `text` and `images` extend the prompt's source for engines that render."""
        extra_ids = torch.as_tensor(list(ids), dtype=torch.long)
        types = media.token_types if media is not None else torch.zeros(len(extra_ids), dtype=torch.long)
        pixels, grids = [prompt.pixel_values, None], [prompt.image_grid_thw, None]
        if media is not None:
            pixels[1], grids[1] = media.pixel_values, media.image_grid_thw
        pixels = [p for p in pixels if p is not None]
        grids = [g for g in grids if g is not None]
        source = prompt.source
        if source is not None:
            source = PromptSource(source.text + text, source.video, (*source.images, *images))
        return dataclasses.replace(
            prompt,
            input_ids=torch.cat([prompt.input_ids, extra_ids]),
            mm_token_type_ids=torch.cat([prompt.mm_token_type_ids, types.to(prompt.mm_token_type_ids.dtype)]),
            pixel_values=torch.cat(pixels) if pixels else None,
            image_grid_thw=torch.cat(grids) if grids else None,
            source=source,
        )

    def from_processor_output(self, out, source: PromptSource | None = None) -> PromptInputs:
        """The PromptInputs of one prompt's processor output (batch of one), checked: as many vision
        placeholder tokens as vision features."""
        inputs = PromptInputs(
            input_ids=out["input_ids"][0],
            mm_token_type_ids=out["mm_token_type_ids"][0],
            pixel_values_videos=out.get("pixel_values_videos"),
            video_grid_thw=out.get("video_grid_thw"),
            second_per_grid_ts=_as_tensor(out.get("second_per_grid_ts")),
            pixel_values=out.get("pixel_values"),
            image_grid_thw=out.get("image_grid_thw"),
            source=source,
        )
        self._check_vision_tokens(inputs)
        return inputs

    def _check_vision_tokens(self, inputs: PromptInputs) -> None:
        for token_id, grid, name in (
            (self.video_token_id, inputs.video_grid_thw, "video"),
            (self.image_token_id, inputs.image_grid_thw, "image"),
        ):
            n_tokens = int((inputs.input_ids == token_id).sum())
            n_features = 0 if grid is None else int(grid.prod(-1).sum()) // self.merge_size**2
            if n_tokens != n_features:
                raise ValueError(
                    f"prompt has {n_tokens} {name} placeholder tokens but {n_features} {name} features; "
                    "the chat template and the media do not agree"
                )

    def collate(
        self,
        prompts: Sequence[PromptInputs],
        repeats: Sequence[int] | int = 1,
        completions: Sequence[Sequence[int]] | None = None,
        completion_media: Sequence[CompletionMedia | None] | None = None,
    ) -> Batch:
        """Batch prompts (each repeated `repeats` times) followed by their completions.

        Rows are ordered prompt by prompt: prompt i occupies `repeats[i]` consecutive rows, and
        `completions` (if given) lists one token sequence per row in that order. `completion_media`
        (one per row, or None) gives rows with tool turns their token types, loss mask and images.
        """
        if isinstance(repeats, int):
            repeats = [repeats] * len(prompts)
        rows = [p for p, r in zip(prompts, repeats) for _ in range(r)]
        completions = completions if completions is not None else [[] for _ in rows]
        if len(completions) != len(rows):
            raise ValueError(f"{len(completions)} completions for {len(rows)} prompt rows")
        media = list(completion_media) if completion_media is not None else [None] * len(rows)
        if len(media) != len(rows):
            raise ValueError(f"{len(media)} completion media for {len(rows)} prompt rows")
        width = max(p.length for p in rows)
        c_len = max((len(c) for c in completions), default=0)
        n = len(rows)
        input_ids = torch.full((n, width + c_len), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((n, width + c_len), dtype=torch.long)
        token_types = torch.zeros((n, width + c_len), dtype=torch.long)
        completion_ids = torch.full((n, c_len), self.pad_token_id, dtype=torch.long)
        completion_mask = torch.zeros((n, c_len), dtype=torch.float32)
        for i, (prompt, completion, extra) in enumerate(zip(rows, completions, media)):
            start = width - prompt.length
            input_ids[i, start:width] = prompt.input_ids
            token_types[i, start:width] = prompt.mm_token_type_ids
            attention[i, start:width] = 1
            c = len(completion)
            if c:
                ids = torch.as_tensor(list(completion), dtype=torch.long)
                input_ids[i, width : width + c] = ids
                attention[i, width : width + c] = 1
                completion_ids[i, :c] = ids
                completion_mask[i, :c] = 1.0
            if extra is not None:
                if extra.loss_mask.shape != (c,) or extra.token_types.shape != (c,):
                    raise ValueError(f"row {i}: completion media for {tuple(extra.loss_mask.shape)} tokens, completion has {c}")
                token_types[i, width : width + c] = extra.token_types
                completion_mask[i, :c] = extra.loss_mask
        model_inputs: dict[str, torch.Tensor] = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "mm_token_type_ids": token_types,
        }
        videos = [p for p in rows if p.pixel_values_videos is not None]
        if videos:
            model_inputs["pixel_values_videos"] = torch.cat([p.pixel_values_videos for p in videos])
            model_inputs["video_grid_thw"] = torch.cat([p.video_grid_thw for p in videos])
        # images row by row: the row's prompt images, then its tool turns' images (the order of their tokens)
        images = [
            (source.pixel_values, source.image_grid_thw)
            for prompt, extra in zip(rows, media)
            for source in (prompt, extra)
            if source is not None and source.pixel_values is not None
        ]
        if images:
            model_inputs["pixel_values"] = torch.cat([pixels for pixels, _ in images])
            model_inputs["image_grid_thw"] = torch.cat([grid for _, grid in images])
        with_video = [p for p in rows if p.second_per_grid_ts is not None]
        if with_video:
            model_inputs["second_per_grid_ts"] = torch.cat([p.second_per_grid_ts for p in with_video])
        return Batch(model_inputs, completion_ids, completion_mask, width, tuple(prompts), tuple(repeats), tuple(media))

    def shared_generation_inputs(self, model, prompts: Sequence[PromptInputs], n: int) -> dict[str, Any]:
        """Keyword arguments of `model.generate` for `n` continuations of each of `prompts` from one prefill: the
        prompts left-padded into one batch, all but its last column run once (vision included), each row's cache
        repeated n times, and the full ids, so `generate` continues with the last prompt token of every row. Rows
        are ordered prompt by prompt; the completions start at column ``input_ids.shape[1]`` of its output."""
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in self.collate(prompts).model_inputs.items()}
        cache = prefill_batch(model, inputs, n)
        text = ("input_ids", "attention_mask", "mm_token_type_ids")
        return {**{k: inputs[k].repeat_interleave(n, dim=0) for k in text}, "past_key_values": cache}


def _as_tensor(value) -> torch.Tensor | None:
    if value is None:
        return None
    return torch.as_tensor(value, dtype=torch.float32).reshape(-1)
