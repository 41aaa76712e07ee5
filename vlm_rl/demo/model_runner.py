"""One model directory loaded for the demo: prompts, a streamed answer, a sampled group, and its rewards."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from data_pipelines.schema import Sample
from vlm_rl.algorithms import get_advantage_fn
from vlm_rl.config import RunConfig, load_config
from vlm_rl.demo.frame_strip import image_strip, video_strip
from vlm_rl.demo.prompting import PromptSettings
from vlm_rl.demo.settings import DemoError
from vlm_rl.models.adapter import PromptInputs
from vlm_rl.models.loading import load_adapter, load_model
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardContext, RewardPipeline, RewardResult
from vlm_rl.rollout.base import RolloutEngine, Rollouts, SamplingParams
from vlm_rl.rollout.hf_engine import HFRolloutEngine
from vlm_rl.rollout.turn_loop import TurnLoop
from vlm_rl.training.frame_search import SearchTools


@dataclass(frozen=True)
class PreparedPrompt:
    """A sample encoded for one model: its processor inputs, the frames it saw, and the text its answer starts with."""

    sample: Sample
    inputs: PromptInputs
    strip: list[tuple[Image.Image, str]]
    strip_summary: str
    prefill: str

    @property
    def vision_tokens(self) -> int:
        return int((self.inputs.mm_token_type_ids != 0).sum())


@dataclass(frozen=True)
class Completions:
    """Sampled completions of one prompt: full texts (the prefill included), token counts and truncation."""

    texts: list[str]
    lengths: list[int]
    truncated: list[bool]

    @classmethod
    def from_rollouts(cls, rollouts: Rollouts, prefill: str) -> Completions:
        return cls([prefill + t for t in rollouts.texts], rollouts.lengths, list(rollouts.truncated))


def _config_for(path: Path) -> RunConfig:
    """The config the model was saved with (``vlm_rl.yaml`` beside it), else the defaults; model.path is `path`."""
    saved = path / "vlm_rl.yaml"
    return load_config(saved if saved.is_file() else None, [f"model.path={path}"])


class DemoModel:
    """A model directory with its adapter, its saved config, and the rewards and advantages it was trained with.

    `engine` generates in place of the directory's model on HF generate (which is then not loaded), e.g. a
    scripted engine in tests; it must accept the adapter's prompts.
    """

    def __init__(self, path: str | Path, label: str, engine: RolloutEngine | None = None) -> None:
        self.path = Path(path)
        self.label = label
        self.config = _config_for(self.path)
        self.adapter = load_adapter(self.config.model.path)
        if engine is None:
            model = load_model(self.config.model, trainable=False)
            if torch.cuda.is_available():
                model = model.to("cuda")
            engine = HFRolloutEngine(model, self.adapter)
        self.engine = engine
        self._search_tools: SearchTools | None = None
        self.rewards = RewardPipeline(self.config.reward.weights, custom=self.config.reward.custom)
        self._advantage_fn = get_advantage_fn(self.config.algo.advantage)
        self._lock = threading.Lock()

    def default_settings(self) -> PromptSettings:
        return PromptSettings.from_data_config(self.config.data)

    def prepare(self, sample: Sample, settings: PromptSettings) -> PreparedPrompt:
        """Decode and resize the sample's media as training would, and render and encode its prompt.

        Raises MediaError for media that does not decode or cannot be sampled with `settings`.
        """
        return self._encode(sample, PromptEncoder(self.adapter, settings.data_config(self.config.data)), settings.prefill)

    def prepare_search(self, sample: Sample, settings: PromptSettings, max_turns: int) -> PreparedPrompt:
        """The frame-search prompt of a video sample: the tool's description, the preview video and the search
        instructions allowing `max_turns` rounds. DemoError for an image; MediaError as `prepare`."""
        if sample.data_type != "video":
            raise DemoError("frame search needs a video: upload one or pick a video example")
        data = settings.search_data_config(self.config.data)
        return self._encode(sample, PromptEncoder(self.adapter, data, search_turns=max_turns), "")

    def _encode(self, sample: Sample, encoder: PromptEncoder, prefill: str) -> PreparedPrompt:
        text = encoder.text(sample) + prefill
        if sample.data_type == "video":
            clip = encoder.frames.get_video(sample.media_path, encoder.video_sampling, encoder.data.video.reader)
            inputs, (strip, summary) = self.adapter.encode(text, video=clip), video_strip(clip)
        else:
            image = encoder.frames.get_image(sample.media_path, encoder.image_sampling)
            inputs, (strip, summary) = self.adapter.encode(text, images=[image]), image_strip(image)
        return PreparedPrompt(sample, inputs, strip, summary, prefill)

    def _params(self, n: int, max_new_tokens: int, temperature: float) -> SamplingParams:
        rollout = self.config.rollout
        return SamplingParams(
            n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=rollout.top_p, top_k=rollout.top_k
        )

    def stream(
        self, prompt: PreparedPrompt, max_new_tokens: int, temperature: float
    ) -> Iterator[tuple[str, Completions | None]]:
        """Yield ``(text so far, None)`` while one answer is generated, then ``(full text, its Completions)``."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.adapter.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, object] = {}

        def run() -> None:
            try:
                result["rollouts"] = self.engine.generate(
                    [prompt.inputs], self._params(1, max_new_tokens, temperature), streamer=streamer
                )
            except BaseException as error:  # re-raised in the caller's thread below
                result["error"] = error
                streamer.end()

        with self._lock:
            worker = threading.Thread(target=run, name=f"demo-generate-{self.label}", daemon=True)
            worker.start()
            try:
                text = prompt.prefill
                for piece in streamer:
                    text += piece
                    yield text, None
            finally:  # also when the page goes away mid-answer: the model is free again only once it stops
                worker.join()
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        done = Completions.from_rollouts(result["rollouts"], prompt.prefill)  # type: ignore[arg-type]
        yield done.texts[0], done

    def sample(self, prompt: PreparedPrompt, n: int, max_new_tokens: int, temperature: float) -> Completions:
        """Draw `n` completions of the prompt at once (as a GRPO rollout does)."""
        with self._lock:
            rollouts = self.engine.generate([prompt.inputs], self._params(n, max_new_tokens, temperature))
        return Completions.from_rollouts(rollouts, prompt.prefill)

    def search(self, prompt: PreparedPrompt, max_turns: int, max_turn_tokens: int, temperature: float) -> Rollouts:
        """One frame-search rollout of a `prepare_search` prompt: model turns and `seek_video_frames` tool turns
        (the model's ``search`` settings: frame cache, scorer) until it answers, stops acting or has taken
        `max_turns` turns of at most `max_turn_tokens` tokens each."""
        loop = TurnLoop(self.engine, self.adapter, max_turns=max_turns, max_turn_tokens=max_turn_tokens)
        with self._lock:
            if self._search_tools is None:
                self._search_tools = SearchTools(self.config.search, self.config.data.video.reader)
            environments = self._search_tools.environments([prompt.sample])
            return loop.generate([prompt.inputs], environments, self._params(1, max_turn_tokens, temperature))

    def score(self, sample: Sample, texts: Sequence[str]) -> tuple[RewardResult, torch.Tensor]:
        """The training rewards of `texts` against the sample's answer, and their group advantages."""
        contexts = [
            RewardContext(
                completion=t,
                solution=sample.solution,
                problem_type=sample.problem_type,
                options=sample.options,
                sample_id=sample.origin,
            )
            for t in texts
        ]
        rewards = self.rewards(contexts)
        algo = self.config.algo
        group = torch.zeros(len(texts), dtype=torch.long)
        advantages = self._advantage_fn(rewards.total, group, std_mode=algo.std_mode)
        return rewards, advantages
