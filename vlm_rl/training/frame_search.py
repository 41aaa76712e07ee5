"""TimeSearch-R in the loop: rollouts that search the video with a tool, and the GRPO-CSV completeness term.

The tool, the turn rules and the verification conversation live in `vlm_rl.rollout`; the reward math in
`vlm_rl.algorithms.csv_reward`. This method owns the per-video frame and embedding caches, runs the turn
loop in place of plain generation (`rollouts` hook) and adds the ``csv`` reward term (`shape` hook).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from data_pipelines.schema import Sample
from data_pipelines.search_prompt import TOOL_NAME
from vlm_rl.algorithms.csv_reward import completeness_score
from vlm_rl.config import ConfigError, SearchConfig
from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter
from vlm_rl.rewards import search_answer_score
from vlm_rl.rollout import RolloutEngine, Rollouts, SamplingParams
from vlm_rl.rollout.frame_search import ScoredFrames, SearchFrames, make_scorer, search_environment
from vlm_rl.rollout.search_stats import search_stats
from vlm_rl.rollout.turn_loop import TurnLoop
from vlm_rl.rollout.turns import ToolCallEnvironment
from vlm_rl.rollout.verification import verify
from vlm_rl.training.groups import Groups
from vlm_rl.training.methods import Method, MethodContext

PLACEHOLDER_CALL = (TOOL_NAME, {"query": "any", "start_time": 0, "end_time": 3600, "num_frames": 1})
"""The call whose result is appended to rollouts that never searched (``search.placeholder_result``)."""


class SearchTools:
    """The frame and embedding caches of a run, and a `seek_video_frames` environment per sample."""

    def __init__(self, config: SearchConfig, reader: str) -> None:
        self.frames = SearchFrames(
            config.cache_fps,
            min_pixels=config.frame_min_pixels,
            max_pixels=config.frame_max_pixels,
            max_cache_frames=config.max_cache_frames,
            max_bytes=config.cache_mb * 2**20,
            reader=reader,
        )
        self.scores = ScoredFrames(make_scorer(config.scorer, config.scorer_path))

    def environments(self, samples: Sequence[Sample]) -> list[ToolCallEnvironment]:
        """One tool environment per sample, over its video; ValueError naming a sample without a video."""
        for sample in samples:
            if sample.data_type != "video":
                raise ValueError(f"{sample.origin}: frame search needs a video sample, got data_type {sample.data_type!r}")
        return [search_environment(sample.media_path, self.frames, self.scores) for sample in samples]


class FrameSearch(Method):
    """Search rollouts (``search.enabled``) and, with ``search.csv``, the completeness reward term."""

    def __init__(self, config: SearchConfig, engine: RolloutEngine, adapter: QwenVLAdapter, sampling: SamplingParams, reader: str) -> None:
        self.config = config
        self.engine = engine
        self.adapter = adapter
        self.tools = SearchTools(config, reader)
        self.loop = TurnLoop(
            engine,
            adapter,
            max_turns=config.max_turns,
            max_turn_tokens=config.max_turn_tokens,
            placeholder_call=PLACEHOLDER_CALL if config.placeholder_result else None,
        )
        self.verify_params = SamplingParams(
            n=1, max_new_tokens=config.verify_max_tokens, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k
        )

    @classmethod
    def from_config(cls, ctx: MethodContext) -> FrameSearch | None:
        search = ctx.config.search
        if not search.enabled:
            return None
        if search.csv and "search_accuracy" not in ctx.config.reward.weights:
            raise ConfigError("search.csv needs the search_accuracy reward in reward.weights (its weight may be 0)")
        return cls(search, ctx.engine, ctx.adapter, ctx.sampling, ctx.config.data.video.reader)

    def rollouts(self, samples: Sequence[Sample], prompts: Sequence[PromptInputs], params: SamplingParams) -> Rollouts:
        return self.loop.generate(prompts, self.tools.environments(samples), params)

    def shape(self, groups: Groups, round_key: str) -> tuple[Groups, dict[str, float]]:
        trajectories = groups.rollouts.trajectories
        stats = {f"search/{key}": value for key, value in search_stats(trajectories).items()}
        if not self.config.csv:
            return groups, stats
        samples = [groups.samples[g] for g in groups.rollouts.group_ids.tolist()]
        answers = verify(self.engine, self.adapter, trajectories, samples, self.verify_params)
        verifier = torch.tensor(
            [search_answer_score(answer, s.answer, s.problem_type) for answer, s in zip(answers, samples)]
        )
        csv = completeness_score(groups.rewards.scores["search_accuracy"], verifier)
        stats["search/verifier_accuracy"] = float(verifier.mean())
        stats["search/csv_rate"] = float((csv > 0).float().mean())
        rewards = groups.rewards.with_bonus("csv", self.config.csv_weight * csv)
        return Groups(groups.samples, groups.prompts, groups.rollouts, rewards), stats
