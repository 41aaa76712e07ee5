"""vLLM requests and results as plain data: what the trainer's prompts become, and back.

Nothing here imports vLLM, so request building and result parsing are tested on any machine.
A request gives vLLM the prompt's token ids with one placeholder token per image or video, and the
very frames and images the trainer's processor saw (already sampled and resized), with processor
settings that keep them as they are; vLLM's own processor builds the same vision inputs as
`QwenVLAdapter.encode` and repeats each placeholder once per vision feature, so the model reads
exactly the ids the trainer scores. Token ids rather than text matter for multi-turn prompts
(`QwenVLAdapter.extend`): sampled turns need not be what their decoded text tokenises to.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from vlm_rl.models.adapter import PromptInputs, PromptSource, QwenVLAdapter
from vlm_rl.rollout.base import Rollouts, SamplingParams

BLOCKED_LOGIT_BIAS = -100.0
"""Logit bias of the vision placeholder tokens: vLLM clamps biases to [-100, 100]; -100 is never sampled."""

Completion = tuple[list[int], str]
"""One sampled completion as vLLM returns it: its token ids and its finish reason ("stop" or "length")."""

IMAGE_TOKEN_TYPE, VIDEO_TOKEN_TYPE = 1, 2
"""The processor's ``mm_token_type_ids`` of image and video placeholder tokens (0 on other tokens)."""


def build_request(inputs: PromptInputs) -> dict[str, Any]:
    """The vLLM prompt dict of one processed prompt: token ids, text, multi-modal data, processor settings.

    ``prompt_token_ids``, what vLLM runs, are the prompt's ids with one placeholder token per image
    or video (`LocalVLLM` hands vLLM the request without ``prompt``); ``prompt`` is the rendered
    text with unexpanded placeholders, for logs and for stand-ins that read text.
    The video goes as vLLM's ``(frames, metadata)`` pair: uint8 ``[T, H, W, 3]`` frames and the
    clip's source fps, frame count and sampled indices, from which the processor derives the
    sampling fps (Qwen2.5-VL's ``second_per_grid_ts``). Images go as PIL images in prompt order.
    ``do_resize=False`` and ``do_sample_frames=False`` stop the processor from resizing or
    re-sampling them.
    """
    source = inputs.source
    if source is None:
        raise ValueError("this prompt was not built by QwenVLAdapter.encode (no PromptSource); encode it with the adapter")
    media: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if source.video is not None:
        clip = source.video
        metadata = {
            "fps": clip.source_fps,
            "total_num_frames": clip.total_frames,
            "frames_indices": list(clip.indices),
            "duration": clip.total_frames / clip.source_fps,
            "do_sample_frames": False,
        }
        media["video"] = (clip.frames.permute(0, 2, 3, 1).contiguous().numpy(), metadata)
        kwargs["do_sample_frames"] = False
    if source.images:
        media["image"] = list(source.images)
    if media:
        kwargs["do_resize"] = False
    request: dict[str, Any] = {"prompt": source.text, "prompt_token_ids": _placeholder_ids(inputs, source)}
    if media:
        request["multi_modal_data"] = media
        request["mm_processor_kwargs"] = kwargs
    return request


def _placeholder_ids(inputs: PromptInputs, source: PromptSource) -> list[int]:
    """The prompt's token ids with each run of vision placeholder tokens cut to its first token.

    That is the form vLLM takes token prompts in (it repeats every placeholder once per feature of
    its item). ValueError when the placeholders and the source's media differ in number (a prompt
    whose images or video were lost on the way).
    """
    ids = inputs.input_ids.tolist()
    types = inputs.mm_token_type_ids.tolist()
    starts = [i for i, kind in enumerate(types) if kind != 0 and (i == 0 or types[i - 1] != kind)]
    runs = sorted(types[i] for i in starts)
    media = sorted([IMAGE_TOKEN_TYPE] * len(source.images) + [VIDEO_TOKEN_TYPE] * (source.video is not None))
    if runs != media:
        raise ValueError(
            f"the prompt's token ids hold {runs.count(IMAGE_TOKEN_TYPE)} image and {runs.count(VIDEO_TOKEN_TYPE)} video "
            f"placeholder(s) but its source {len(source.images)} image(s) and {int(source.video is not None)} video; "
            "build multi-turn prompts with QwenVLAdapter.extend, which adds the tool images to both"
        )
    first = set(starts)
    return [token for i, (token, kind) in enumerate(zip(ids, types)) if kind == 0 or i in first]


def sampling_kwargs(params: SamplingParams, adapter: QwenVLAdapter) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` equal to `params` for the HF engine.

    Generation stops at the model's end tokens (kept in the output, as the HF engine keeps them);
    vision placeholder tokens get `BLOCKED_LOGIT_BIAS`; ``top_k=0`` (off) is vLLM's ``-1``. No
    per-request seed: the engine's seed (one per process) keeps successive steps' draws different.
    """
    return {
        "n": params.n,
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "top_k": params.top_k if params.top_k > 0 else -1,
        "stop_token_ids": list(adapter.eos_token_ids),
        "logit_bias": {int(t): BLOCKED_LOGIT_BIAS for t in adapter.blocked_token_ids},
        "skip_special_tokens": False,
    }


def to_rollouts(outputs: Sequence[Sequence[Completion]], adapter: QwenVLAdapter, n: int) -> Rollouts:
    """Rollouts from per-prompt lists of n completions, each cut after its first end token (kept)."""
    eos = set(adapter.eos_token_ids)
    completion_ids: list[list[int]] = []
    truncated: list[bool] = []
    for i, completions in enumerate(outputs):
        if len(completions) != n:
            raise ValueError(f"prompt {i}: the engine returned {len(completions)} completions, expected n={n}")
        for token_ids, _finish in completions:
            ids = [int(t) for t in token_ids]
            end = next((j for j, t in enumerate(ids) if t in eos), None)
            completion_ids.append(ids if end is None else ids[: end + 1])
            truncated.append(end is None)
    texts = adapter.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
    group_ids = torch.arange(len(outputs)).repeat_interleave(n)
    return Rollouts(completion_ids=completion_ids, texts=texts, truncated=truncated, group_ids=group_ids)


def encode_request(request: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of a request (arrays and images as base64 raw bytes with shape and dtype)."""
    out = {k: v for k, v in request.items() if k != "multi_modal_data"}
    media = request.get("multi_modal_data")
    if media is not None:
        out["multi_modal_data"] = {
            **({"video": [_encode_array(media["video"][0]), media["video"][1]]} if "video" in media else {}),
            **({"image": [_encode_array(np.asarray(im.convert("RGB"))) for im in media["image"]]} if "image" in media else {}),
        }
    return out


def decode_request(payload: dict[str, Any]) -> dict[str, Any]:
    """The request `encode_request` was given (images come back as RGB PIL images)."""
    out = {k: v for k, v in payload.items() if k != "multi_modal_data"}
    media = payload.get("multi_modal_data")
    if media is not None:
        out["multi_modal_data"] = {
            **({"video": (_decode_array(media["video"][0]), media["video"][1])} if "video" in media else {}),
            **({"image": [Image.fromarray(_decode_array(im)) for im in media["image"]]} if "image" in media else {}),
        }
    return out


def _encode_array(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode("ascii")}


def _decode_array(payload: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(payload["data"])
    return np.frombuffer(raw, dtype=np.dtype(payload["dtype"])).reshape(payload["shape"]).copy()
