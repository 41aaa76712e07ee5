"""The one place methods are registered: the order is the order their hooks run in each step."""

from __future__ import annotations

from vlm_rl.training.care import ConsistencyReference
from vlm_rl.training.difficulty import DifficultyAugmentation
from vlm_rl.training.dynamic_sampling import DynamicSampling
from vlm_rl.training.frame_search import FrameSearch
from vlm_rl.training.methods import Method, MethodContext
from vlm_rl.training.replay import SelectiveReplay
from vlm_rl.training.rethink import ForcedRethinking
from vlm_rl.training.scene_synthesis import SceneSynthesis
from vlm_rl.training.temporal import TemporalContrast

METHODS = (
    FrameSearch,
    SceneSynthesis,
    DifficultyAugmentation,
    ForcedRethinking,
    ConsistencyReference,
    TemporalContrast,
    DynamicSampling,
    SelectiveReplay,
)
"""Frame search samples the rounds and adds its completeness term first; Syn-GRPO swaps synthesised samples into
the rounds and reads each group's diversity before any shaping; shaping then runs difficulty
augmentation, then forced rethinking, then the CARE and T-GRPO bonuses, all before dynamic sampling's
zero-variance test, so a bonus can rescue a group whose rewards agreed."""


def build_methods(ctx: MethodContext) -> list[Method]:
    """The enabled methods, in hook order; each class's ``from_config`` returns None when it is off."""
    return [method for cls in METHODS if (method := cls.from_config(ctx)) is not None]
