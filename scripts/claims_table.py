"""The table of one part of scripts/compare_claims.sh: per arm, held-out and training measures, mean ± SE over seeds.

    python scripts/claims_table.py runs/claims/consistency consistency 0 1 2 [--arms grpo grpo_care]

Held-out measures come from each run's eval.json (greedy, one item per test record); training measures are the mean
over a run's logged steps in its metrics.jsonl (sampled at temperature 1), then over seeds. SE is the standard
deviation over seeds divided by sqrt(number of seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from data_pipelines.consistency import completion_consistent

TITLES = {
    "sft": "SFT (start)",
    "ton_sft": "TON SFT (start)",
    "grpo": "GRPO",
    "grpo_soft": "GRPO, soft reward",
    "tw_grpo": "TW-GRPO",
    "grpo_care": "GRPO-CARE",
    "ton_grpo": "TON",
    "vl_rethinker": "VL-Rethinker",
    "deepvideo_r1": "DeepVideo-R1",
    "dapo": "DAPO",
    "t_grpo": "T-GRPO",
}
ARMS = {
    "multi_answer": ("grpo", "grpo_soft", "tw_grpo"),
    "consistency": ("grpo", "grpo_care"),
    "difficulty": ("grpo", "ton_grpo", "vl_rethinker", "deepvideo_r1", "dapo"),
    "temporal": ("grpo", "t_grpo"),
}
STARTS = {"difficulty": ("sft", "ton_sft")}
Results = list[dict]


def _mean(values: list[float]) -> float | None:
    return statistics.mean(values) if values else None


def _share(results: Results, keep: Callable[[dict], bool], hit: Callable[[dict], bool]) -> float | None:
    chosen = [r for r in results if keep(r)]
    return _mean([float(hit(r)) for r in chosen])


def _accuracy(results: Results, _records: list[dict]) -> float | None:
    return _mean([float(r["correct"]) for r in results])


def _verdicts(results: Results, records: list[dict]) -> list[bool | None]:
    """`completion_consistent` of each result against its test record's question (``origin`` ends in ``#index``)."""
    return [completion_consistent(r["output"], records[int(r["origin"].rsplit("#", 1)[1])]["problem"]) for r in results]


def _consistency(results: Results, records: list[dict]) -> float | None:
    """Share of completions whose answer follows from the counts their thought states, among those stating them."""
    return _mean([float(v) for v in _verdicts(results, records) if v is not None])


def _difficulty(level: str) -> Callable[[dict], bool]:
    return lambda r: r["groups"].get("difficulty") == level


HELD_OUT: dict[str, dict[str, Callable[[Results, list[dict]], float | None]]] = {
    "multi_answer": {
        "exact accuracy": _accuracy,
        "soft accuracy": lambda rs, _: _mean([r["reward"] for r in rs]),
    },
    "consistency": {
        "accuracy": _accuracy,
        "consistency rate": _consistency,
        "states both counts": lambda rs, recs: _mean([float(v is not None) for v in _verdicts(rs, recs)]),
    },
    "difficulty": {
        "accuracy": _accuracy,
        "accuracy easy": lambda rs, _: _share(rs, _difficulty("easy"), lambda r: r["correct"]),
        "accuracy hard": lambda rs, _: _share(rs, _difficulty("hard"), lambda r: r["correct"]),
        "skip easy": lambda rs, _: _share(rs, _difficulty("easy"), lambda r: r["skipped_thought"]),
        "skip hard": lambda rs, _: _share(rs, _difficulty("hard"), lambda r: r["skipped_thought"]),
        "length": lambda rs, _: _mean([float(r["length"]) for r in rs]),
    },
    "temporal": {"accuracy": _accuracy},
}
TRAINING = {
    "multi_answer": ("accuracy", "zero_std_groups", "tw/answer_weight_ratio"),
    "consistency": ("accuracy", "zero_std_groups", "care/bonus_rate"),
    "difficulty": (
        "accuracy",
        "zero_std_groups",
        "skip_ratio",
        "replay/effective_ratio",
        "rethink/attempt_rate",
        "rethink/kept_rate",
        "rethink/first_pass_accuracy",
        "rethink/accuracy",
        "difficulty/noised_rate",
        "difficulty/hinted_rate",
    ),
    "temporal": ("accuracy", "zero_std_groups", "temporal/bonus_rate", "temporal/ordered_accuracy", "temporal/shuffled_accuracy"),
}


def cell(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "—"
    if len(present) == 1:
        return f"{present[0]:.3f}"
    se = statistics.stdev(present) / math.sqrt(len(present))
    return f"{statistics.mean(present):.3f} ± {se:.3f}"


def training_mean(run: Path, key: str) -> float | None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return _mean([r[key] for r in rows if key in r and "eval/accuracy" not in r])


def table(root: Path, part: str, seeds: list[str], arms: tuple[str, ...] | None = None, tag: str = "") -> str:
    """The part's table; `arms` (default all of the part's) picks the rows after the SFT start, `tag` the runs
    (``"_recipe"``: those trained with their recipe's own learning-rate schedule)."""
    records = json.loads((root / "data" / "test.json").read_text())
    held = HELD_OUT[part]
    train_keys = TRAINING[part]
    lines = [
        f"{part}: held-out ({len(records)} items, greedy) and training (mean over logged steps, sampled); "
        f"mean ± SE over seeds {', '.join(seeds)}",
        "",
        "| arm | " + " | ".join(held) + " | " + " | ".join(f"train {k}" for k in train_keys) + " |",
        "|---" * (1 + len(held) + len(train_keys)) + "|",
    ]
    for start in STARTS.get(part, ("sft",)):
        results = json.loads((root / f"eval_{start}.json").read_text())["results"]
        lines.append(
            f"| {TITLES[start]} | " + " | ".join(cell([f(results, records)]) for f in held.values()) + " |" + " |" * len(train_keys)
        )
    for arm in arms or ARMS[part]:
        runs = [root / f"{arm}{tag}_{s}" for s in seeds]
        evals = [json.loads((run / "eval.json").read_text())["results"] for run in runs]
        held_cells = [cell([f(results, records) for results in evals]) for f in held.values()]
        train_cells = [cell([training_mean(run, k) for run in runs]) for k in train_keys]
        title = TITLES[arm] + (", its recipe's schedule" if tag else "")
        lines.append(f"| {title} | " + " | ".join(held_cells + train_cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The table of one part of scripts/compare_claims.sh.")
    parser.add_argument("run_dir", type=Path, help="the part's folder, e.g. runs/claims/consistency")
    parser.add_argument("part", choices=list(ARMS), help="which part it is")
    parser.add_argument("seeds", nargs="+", help="the seeds whose runs to read")
    parser.add_argument("--arms", nargs="+", choices=sorted({a for arms in ARMS.values() for a in arms}), help="rows after the SFT start (default: all of the part's arms)")
    parser.add_argument("--tag", default="", help="run folder tag: _recipe for the runs with each recipe's own schedule")
    args = parser.parse_args()
    print(table(args.run_dir, args.part, args.seeds, tuple(args.arms) if args.arms else None, args.tag))
