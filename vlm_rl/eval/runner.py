"""Evaluate a model on records: accuracy per problem type and task, format rate, lengths."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data_pipelines.schema import Sample
from data_pipelines.thought_dropout import is_empty_thought
from vlm_rl.config import EvalConfig
from vlm_rl.models.adapter import QwenVLAdapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import accuracy_reward, extract_answer, format_reward
from vlm_rl.rollout import HFRolloutEngine, SamplingParams


@dataclass
class EvalReport:
    """Scores of one evaluation; `results` holds one entry per record (nothing is dropped)."""

    n: int
    accuracy: float
    format_rate: float
    mean_length: float
    truncated_rate: float
    skip_ratio: float
    wall_time_s: float
    by_problem_type: dict[str, dict[str, float]]
    by_task: dict[str, dict[str, float]]
    settings: dict[str, Any]
    results: list[dict[str, Any]] = field(repr=False)

    def summary(self) -> dict[str, float]:
        """Flat scalars for logging."""
        out = {
            "accuracy": self.accuracy,
            "format_rate": self.format_rate,
            "mean_length": self.mean_length,
            "skip_ratio": self.skip_ratio,
        }
        out.update({f"accuracy/{k}": v["accuracy"] for k, v in self.by_problem_type.items()})
        return out

    def write(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(asdict(self), indent=1))


def evaluate(
    model,
    adapter: QwenVLAdapter,
    encoder: PromptEncoder,
    samples: Sequence[Sample],
    cfg: EvalConfig,
) -> EvalReport:
    """Answer every sample once (greedy when cfg.temperature == 0) and score it like the accuracy reward."""
    if not samples:
        raise ValueError("evaluation needs at least one record")
    started = time.perf_counter()
    engine = HFRolloutEngine(model, adapter)
    params = SamplingParams(n=1, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
    results: list[dict[str, Any]] = []
    for start in range(0, len(samples), cfg.batch_size):
        chunk = samples[start : start + cfg.batch_size]
        rollouts = engine.generate([encoder.encode(s) for s in chunk], params)
        for sample, text, ids, cut in zip(chunk, rollouts.texts, rollouts.completion_ids, rollouts.truncated):
            reward = accuracy_reward(text, sample.solution, sample.problem_type, mc_mode=cfg.mc_mode)
            results.append(
                {
                    "origin": sample.origin,
                    "problem_type": sample.problem_type,
                    "task": _task(sample),
                    "answer": sample.answer,
                    "prediction": extract_answer(text),
                    "output": text,
                    "reward": reward,
                    "correct": reward == 1.0,
                    "format": format_reward(text),
                    "skipped_thought": is_empty_thought(text),
                    "length": len(ids),
                    "truncated": cut,
                }
            )
    return EvalReport(
        n=len(results),
        accuracy=_mean(r["reward"] for r in results),
        format_rate=_mean(r["format"] for r in results),
        mean_length=_mean(r["length"] for r in results),
        truncated_rate=_mean(float(r["truncated"]) for r in results),
        skip_ratio=_mean(float(r["skipped_thought"]) for r in results),
        wall_time_s=time.perf_counter() - started,
        by_problem_type=_grouped(results, "problem_type"),
        by_task=_grouped(results, "task"),
        settings={**asdict(cfg), "prompt_template": encoder.data.prompt_template},
        results=results,
    )


def _task(sample: Sample) -> str:
    return str(sample.extra.get("task") or sample.extra.get("data_source") or sample.problem_type)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _grouped(results: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[r[key]].append(r)
    return {
        name: {"n": len(rows), "accuracy": _mean(r["reward"] for r in rows), "format_rate": _mean(r["format"] for r in rows)}
        for name, rows in sorted(groups.items())
    }
