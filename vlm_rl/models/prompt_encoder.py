"""Turn a Sample into processed model inputs: prompt text, decoded frames, processor output."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable

import torch

from data_pipelines.formats.chat_messages import SYSTEM_KEY
from data_pipelines.prompts import build_prompt_text
from data_pipelines.search_prompt import SEARCH_SYSTEM_PROMPT, SHORT_SEARCH_SYSTEM_PROMPT, search_question, short_search_question
from data_pipelines.schema import Sample
from vlm_rl.config import DataConfig
from vlm_rl.media import FrameCache, ImageSampling, VideoSampling, probe_video
from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter


class PromptEncoder:
    """Encodes samples once and keeps recent results within `data.prompt_cache_mb`; decoded frames are kept
    separately within `data.frame_cache_mb` (for variants: shuffled, noised or hinted prompts). 0 turns either off."""

    def __init__(self, adapter: QwenVLAdapter, data: DataConfig, *, search_turns: int = 8) -> None:
        self.adapter = adapter
        self.data = data
        self.search_turns = search_turns
        v = data.video
        self.video_sampling = VideoSampling(
            fps=v.fps,
            nframes=v.nframes,
            min_frames=v.min_frames,
            max_frames=v.max_frames,
            min_pixels=v.min_pixels,
            max_pixels=v.max_pixels,
            total_pixels=v.total_pixels,
        )
        self.image_sampling = ImageSampling(min_pixels=data.image.min_pixels, max_pixels=data.image.max_pixels)
        self.frames = FrameCache(max_items=None, max_bytes=data.frame_cache_mb * 2**20)
        self._prompts: OrderedDict[str, PromptInputs] = OrderedDict()
        self._budget = data.prompt_cache_mb * 2**20
        self._bytes = 0

    def text(self, sample: Sample, instruction: str | None = None) -> str:
        """The rendered chat prompt (generation prompt appended); with `instruction`, that text is the whole user
        turn after the media (no question template).

        The ``timesearch`` template is the frame-search prompt: the tool's description as the system turn (unless
        `data.system_prompt` is set) and the search instructions with the video's duration after the preview;
        ``timesearch_short`` says the same in two lines (for tiny models).
        """
        system = self.system_prompt(sample)
        if instruction is not None:
            question = instruction
        elif self.data.prompt_template == "timesearch":
            question = search_question(sample, self.duration(sample), self.search_turns)
            system = SEARCH_SYSTEM_PROMPT if system is None else system
        elif self.data.prompt_template == "timesearch_short":
            question = short_search_question(sample, self.duration(sample))
            system = SHORT_SEARCH_SYSTEM_PROMPT if system is None else system
        else:
            question = build_prompt_text(sample, self.data.prompt_template)
        messages = self.adapter.messages(sample, question, system)
        return self.adapter.render(messages, add_generation_prompt=True)

    def system_prompt(self, sample: Sample) -> str | None:
        """The record's own system turn (chat-message records), else ``data.system_prompt``."""
        return sample.extra.get(SYSTEM_KEY) or self.data.system_prompt

    def duration(self, sample: Sample) -> float:
        """Seconds of a video sample: the record's ``duration``, else the file's frame count over its frame rate."""
        if "duration" in sample.extra:
            return float(sample.extra["duration"])
        if sample.data_type != "video":
            raise ValueError(f"{sample.origin}: the timesearch prompt needs a video sample, got data_type {sample.data_type!r}")
        info = probe_video(sample.media_path, self.data.video.reader)
        return info.total_frames / info.fps

    def encode(self, sample: Sample) -> PromptInputs:
        return self._cached(sample.origin, lambda: self._encode(sample))

    def encode_instruction(self, sample: Sample, instruction: str) -> PromptInputs:
        """The sample's media with `instruction` as the whole user turn, no question or answer template (the scene
        description prompt of Syn-GRPO); cached like `encode`."""
        return self._cached(f"{sample.origin}\n{instruction}", lambda: self._encode(sample, instruction=instruction))

    def _cached(self, key: str, build: Callable[[], PromptInputs]) -> PromptInputs:
        if key in self._prompts:
            self._prompts.move_to_end(key)
            return self._prompts[key]
        inputs = build()
        self._prompts[key] = inputs
        self._bytes += inputs.nbytes
        while self._bytes > self._budget and self._prompts:
            self._bytes -= self._prompts.popitem(last=False)[1].nbytes
        return inputs

    def encode_variant(self, sample: Sample, frames_transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> PromptInputs:
        """The prompt of a changed sample (e.g. a hinted question) or of transformed frames; not cached.

        ``frames_transform`` maps the sampled uint8 frames ``[T, 3, H, W]`` of a video sample to new
        frames of the same shape (shuffled for T-GRPO, noised for difficulty augmentation); the clip's
        timestamps stay those of the sampled frames.
        """
        if frames_transform is not None and sample.data_type != "video":
            raise ValueError(f"sample {sample.origin} has no video frames to transform (data_type {sample.data_type!r})")
        return self._encode(sample, frames_transform)

    def _encode(
        self, sample: Sample, frames_transform: Callable[[torch.Tensor], torch.Tensor] | None = None, instruction: str | None = None
    ) -> PromptInputs:
        video = None
        image_paths = list(sample.extra_images)
        if sample.data_type == "video":
            sampling = self.video_sampling.with_overrides(sample.media_overrides)
            video = self.frames.get_video(sample.media_path, sampling, self.data.video.reader)
            if frames_transform is not None:
                video = dataclasses.replace(video, frames=frames_transform(video.frames))
        elif sample.data_type == "image":
            image_paths.insert(0, sample.media_path)
        images = [self.frames.get_image(path, self.image_sampling) for path in image_paths]
        return self.adapter.encode(self.text(sample, instruction), video=video, images=images)
