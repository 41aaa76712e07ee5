"""Rollout engines: sample G completions per prompt."""

from vlm_rl.rollout.base import RolloutEngine, Rollouts, SamplingParams
from vlm_rl.rollout.hf_engine import HFRolloutEngine

__all__ = ["HFRolloutEngine", "RolloutEngine", "Rollouts", "SamplingParams"]
