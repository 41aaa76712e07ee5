"""The reward pipeline: named reward functions over :class:`RewardContext`, weighted into one total per completion.

Every sub-score is computed and reported, including those with weight 0: a zero weight is the way to log a score
(for example accuracy under a format-only recipe) without rewarding it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import numbers
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from vlm_rl.rewards.accuracy import accuracy_reward
from vlm_rl.rewards.boxes import detection_f1_reward, iou_reward
from vlm_rl.rewards.format import answer_format_reward, format_reward, tw_format_reward


@dataclass(frozen=True)
class RewardContext:
    """Everything a reward function may look at for one completion.

    ``solution`` is the ground truth (``"<answer>…</answer>"`` or bare text), ``options`` the option lines of a
    multiple-choice question, ``sample_id`` names the sample in errors, ``extra`` carries method-specific inputs.
    """

    completion: str
    solution: str
    problem_type: str
    options: tuple[str, ...]
    sample_id: str
    extra: Mapping[str, Any] = field(default_factory=dict)


RewardFn = Callable[[RewardContext], float]


@dataclass(frozen=True)
class RewardResult:
    """Rewards of N completions: each named sub-score (float32, shape [N]) and their weighted sum ``total``."""

    scores: dict[str, torch.Tensor]
    total: torch.Tensor
    names: tuple[str, ...]

    def with_bonus(self, name: str, bonus: torch.Tensor) -> RewardResult:
        """These rewards plus ``bonus`` [N] added to the total and reported as sub-score ``name``."""
        if name in self.scores:
            raise ValueError(f"reward sub-score {name!r} already exists")
        return RewardResult({**self.scores, name: bonus.float()}, self.total + bonus.float(), (*self.names, name))


_REGISTRY: dict[str, RewardFn] = {}


def register_reward(name: str, fn: RewardFn) -> None:
    """Add a built-in reward function under ``name``; ValueError if the name is taken."""
    if name in _REGISTRY:
        raise ValueError(f"reward {name!r} is already registered")
    _REGISTRY[name] = fn


def builtin_rewards() -> Mapping[str, RewardFn]:
    """Read-only view of the registered reward functions by name."""
    return MappingProxyType(_REGISTRY)


def _accuracy(ctx: RewardContext) -> float:
    return accuracy_reward(ctx.completion, ctx.solution, ctx.problem_type, mc_mode="strict")


def _accuracy_lenient(ctx: RewardContext) -> float:
    return accuracy_reward(ctx.completion, ctx.solution, ctx.problem_type, mc_mode="lenient")


def _accuracy_binary(ctx: RewardContext) -> float:
    return accuracy_reward(ctx.completion, ctx.solution, ctx.problem_type, mc_mode="strict", multi_mode="strict")


register_reward("accuracy", _accuracy)
register_reward("accuracy_lenient", _accuracy_lenient)
register_reward("accuracy_binary", _accuracy_binary)
register_reward("format", lambda ctx: format_reward(ctx.completion))
register_reward("tw_format", lambda ctx: tw_format_reward(ctx.completion))
register_reward("answer_format", lambda ctx: answer_format_reward(ctx.completion))
register_reward("iou", lambda ctx: iou_reward(ctx.completion, ctx.solution, ctx.problem_type))
register_reward("detection_f1", lambda ctx: detection_f1_reward(ctx.completion, ctx.solution, ctx.problem_type))


def load_custom_reward(spec: str) -> RewardFn:
    """Load the reward function named by ``"package.module:function"`` or ``"path/to/rewards.py:function"``.

    A path ends in ``.py`` and is taken relative to the working directory. ValueError naming the spec, and the module
    or file, when it cannot be loaded, lacks the function, or the attribute is not callable.
    """
    source, sep, attr = spec.rpartition(":")
    forms = "'package.module:function' or 'path/to/rewards.py:function'"
    if not sep or not source or not attr:
        raise ValueError(f"custom reward spec {spec!r} must look like {forms}")
    if source.endswith(".py"):
        path = Path(source).expanduser().resolve()
        where = f"file {path}"
        if not path.is_file():
            raise ValueError(
                f"custom reward spec {spec!r}: {where} does not exist (a relative path starts at {Path.cwd()})"
            )
        module_name = "vlm_rl_reward_file_" + hashlib.sha1(str(path).encode()).hexdigest()[:16]
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module  # so that pickle and dataclasses find the plug-in's own definitions
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise ValueError(
                f"custom reward spec {spec!r}: running {where} failed: {type(exc).__name__}: {exc}"
            ) from exc
    else:
        if ":" in source:
            raise ValueError(f"custom reward spec {spec!r} must look like {forms}")
        where = f"module {source!r}"
        try:
            module = importlib.import_module(source)
        except ImportError as exc:
            raise ValueError(f"custom reward spec {spec!r}: cannot import {where}: {exc}") from exc
    try:
        fn = getattr(module, attr)
    except AttributeError as exc:
        raise ValueError(f"custom reward spec {spec!r}: {where} has no attribute {attr!r}") from exc
    if not callable(fn):
        raise ValueError(f"custom reward spec {spec!r}: {attr!r} in {where} is not callable ({type(fn).__name__})")
    return fn


class RewardPipeline:
    """Computes named reward sub-scores and their weighted total for a batch of completions.

    ``weights`` maps reward names (built-in, see :func:`builtin_rewards`, or keys of ``custom``) to weights; its
    order is the order of ``names``. ``custom`` maps a new name to a ``"package.module:function"`` or ``"path/to/rewards.py:function"`` of a
    :data:`RewardFn`. Weights of 0 still compute and report the sub-score (log without rewarding).
    """

    def __init__(self, weights: Mapping[str, float], *, custom: Mapping[str, str] = MappingProxyType({})) -> None:
        if not weights:
            raise ValueError("RewardPipeline needs at least one reward weight")
        for name in custom:
            if name in _REGISTRY:
                raise ValueError(f"custom reward name {name!r} clashes with a built-in reward; pick another name")
            if name not in weights:
                raise ValueError(f"custom reward {name!r} has no weight; give it one (0 to log it only)")
        loaded = {name: load_custom_reward(spec) for name, spec in custom.items()}
        self._fns: dict[str, RewardFn] = {}
        self._weights: dict[str, float] = {}
        for name, weight in weights.items():
            if name in loaded:
                self._fns[name] = loaded[name]
            elif name in _REGISTRY:
                self._fns[name] = _REGISTRY[name]
            else:
                known = sorted(_REGISTRY) + sorted(loaded)
                raise ValueError(f"unknown reward {name!r}; known rewards: {', '.join(known)}")
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
                raise ValueError(f"weight of reward {name!r} must be a finite number, got {weight!r}")
            self._weights[name] = float(weight)

    @property
    def names(self) -> tuple[str, ...]:
        """Reward names in weight order."""
        return tuple(self._fns)

    @property
    def weights(self) -> Mapping[str, float]:
        """Read-only view of the weights by name."""
        return MappingProxyType(self._weights)

    def __call__(self, contexts: Sequence[RewardContext]) -> RewardResult:
        """Score every context with every reward; ValueError if a reward returns a non-number or non-finite value."""
        scores = {
            name: torch.tensor([self._score(name, fn, ctx) for ctx in contexts], dtype=torch.float32)
            for name, fn in self._fns.items()
        }
        total = torch.zeros(len(contexts), dtype=torch.float32)
        for name, weight in self._weights.items():
            total += weight * scores[name]
        return RewardResult(scores=scores, total=total, names=self.names)

    @staticmethod
    def _score(name: str, fn: RewardFn, ctx: RewardContext) -> float:
        try:
            value = fn(ctx)
        except Exception as exc:
            exc.add_note(f"in reward {name!r} for sample {ctx.sample_id!r}")
            raise
        if not isinstance(value, numbers.Real):
            raise ValueError(
                f"reward {name!r} returned {type(value).__name__} {value!r} for sample {ctx.sample_id!r}; "
                "expected a float"
            )
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"reward {name!r} returned non-finite {value!r} for sample {ctx.sample_id!r}")
        return value
