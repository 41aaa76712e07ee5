"""The needle comparison table of scripts/timesearch_needle.sh: one row per arm, mean and per-seed values.

    python scripts/needle_table.py runs/needle 0 1 2
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ARMS = (
    ("preview", "preview only (SFT, no tool)"),
    ("sft", "SFT cold start, with search"),
    ("grpo", "GRPO with search (no CSV)"),
    ("grpo_csv", "GRPO-CSV"),
)
COLUMNS = (
    ("accuracy", lambda r: r["accuracy"]),
    ("multiple choice", lambda r: r["by_problem_type"].get("multiple choice", {}).get("accuracy")),
    ("numerical", lambda r: r["by_problem_type"].get("numerical", {}).get("accuracy")),
    ("grounding (IoU)", lambda r: r["by_problem_type"].get("grounding", {}).get("accuracy")),
    ("tool calls / item", lambda r: (r.get("search") or {}).get("tool_calls")),
    ("valid-call rate", lambda r: (r.get("search") or {}).get("valid_call_rate")),
    ("CSV rate", lambda r: (r.get("search") or {}).get("csv_rate")),
)


def cell(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "—"
    spread = f" ± {statistics.stdev(known):.2f}" if len(known) > 1 else ""
    return f"{statistics.mean(known):.2f}{spread} ({', '.join(f'{v:.2f}' for v in known)})"


def main(root: Path, seeds: list[str]) -> str:
    lines = ["| arm | " + " | ".join(name for name, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for arm, title in ARMS:
        reports = [json.loads((root / f"seed{seed}" / arm / "eval.json").read_text()) for seed in seeds]
        lines.append(f"| {title} | " + " | ".join(cell([get(r) for r in reports]) for _, get in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), sys.argv[2:]))
