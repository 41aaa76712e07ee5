"""The REC comparison of scripts/syn_grpo_rec.sh: held-out accuracy per seed, and the diversity curve.

    python scripts/syn_grpo_table.py runs/rec 0 1 2

Diversity is `accuracy_variance` (the mean over a step's groups of the variance of their accuracy rewards) from
each run's metrics.jsonl, averaged over seeds within bins of steps; for Syn-GRPO the step's groups include the
synthesised ones.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ARMS = (("grpo", "GRPO"), ("syn_grpo", "Syn-GRPO"))
BINS = 5


def cell(values: list[float]) -> str:
    spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.3f}{spread}"


def curve(run: Path, key: str) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r[key]) for r in rows if key in r]


def binned(points: list[tuple[int, float]], steps: int) -> list[float | None]:
    width = steps / BINS
    out: list[float | None] = []
    for b in range(BINS):
        inside = [v for s, v in points if b * width < s <= (b + 1) * width]
        out.append(statistics.mean(inside) if inside else None)
    return out


def main(root: Path, seeds: list[str]) -> str:
    sft = json.loads((root / "eval_sft.json").read_text())["accuracy"]
    lines = [
        f"Held-out REC accuracy (IoU >= 0.5, greedy, {json.loads((root / 'eval_sft.json').read_text())['n']} items); "
        f"the SFT start: {sft:.3f}",
        "",
        "| arm | mean ± std over seeds | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---" * (len(seeds) + 2) + "|",
    ]
    steps = 0
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    for arm, title in ARMS:
        accuracy = [json.loads((root / f"{arm}_{s}" / "eval.json").read_text())["accuracy"] for s in seeds]
        lines.append(f"| {title} | {cell(accuracy)} | " + " | ".join(f"{a:.3f}" for a in accuracy) + " |")
        curves[arm] = [curve(root / f"{arm}_{s}", "accuracy_variance") for s in seeds]
        steps = max(steps, *(p[-1][0] for p in curves[arm] if p))
    width = steps / BINS
    lines += [
        "",
        "Diversity during training (mean `accuracy_variance` over the logged steps of each bin, then over seeds):",
        "",
        "| arm | " + " | ".join(f"steps {int(b * width) + 1}-{int((b + 1) * width)}" for b in range(BINS)) + " |",
        "|---" * (BINS + 1) + "|",
    ]
    for arm, title in ARMS:
        per_seed = [binned(points, steps) for points in curves[arm]]
        cells = []
        for b in range(BINS):
            values = [seed[b] for seed in per_seed if seed[b] is not None]
            cells.append(cell(values) if values else "—")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    synthetic = [v for s in seeds for _, v in curve(root / f"syn_grpo_{s}", "syn/synthetic_fraction")]
    rows = [v for s in seeds for _, v in curve(root / f"syn_grpo_{s}", "syn/description_rows")]
    lines += [
        "",
        f"Syn-GRPO: synthesised share of the groups {statistics.mean(synthetic):.2f} on average, "
        f"{statistics.mean(rows):.2f} description rows trained per logged step.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python scripts/syn_grpo_table.py RUN_DIR SEED [SEED ...]")
    print(main(Path(sys.argv[1]), sys.argv[2:]))
