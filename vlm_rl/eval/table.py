"""A before/after table of evaluation reports."""

from __future__ import annotations

import json
from pathlib import Path

ROWS = (
    ("accuracy", "accuracy", "{:.1%}"),
    ("accuracy, strict letter match", "accuracy_strict", "{:.1%}"),
    ("accuracy, lenient letter match", "accuracy_lenient", "{:.1%}"),
    ("failed items (counted wrong)", "failures", "{:d}"),
    ("format rate", "format_rate", "{:.1%}"),
    ("mean completion length (tokens)", "mean_length", "{:.1f}"),
    ("empty-thought (skip) rate", "skip_ratio", "{:.1%}"),
    ("eval wall time (s)", "wall_time_s", "{:.1f}"),
)


class ReportError(ValueError):
    """The reports and labels given to `vlm-rl report` do not fit together."""


def comparison_table(paths: list[Path], labels: list[str] | None = None) -> str:
    """A Markdown table: one column per report, rows for the scoring of the headline accuracy, the headline
    numbers and the accuracy per task and per group (e.g. ``domain=Hobbies``); a number a report lacks (the
    letter-match accuracies of a judged evaluation) is ``-``."""
    reports = [json.loads(p.read_text()) for p in paths]
    labels = labels or [p.stem for p in paths]
    if len(labels) != len(reports):
        raise ReportError(f"{len(labels)} labels for {len(reports)} reports; give one label per report")
    lines = ["| metric | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    lines.append("| scoring | " + " | ".join(str(r.get("settings", {}).get("scoring", "-")) for r in reports) + " |")
    for title, key, fmt in ROWS:
        lines.append(f"| {title} | " + " | ".join("-" if r.get(key) is None else fmt.format(r[key]) for r in reports) + " |")
    breakdowns = [("", lambda r: r["by_task"])] + [
        (f"{key}=", lambda r, key=key: r.get("by_group", {}).get(key, {}))
        for key in sorted({k for r in reports for k in r.get("by_group", {})})
    ]
    for prefix, groups in breakdowns:
        for name in sorted({g for r in reports for g in groups(r)}):
            cells = [f"{groups(r)[name]['accuracy']:.1%}" if name in groups(r) else "-" for r in reports]
            lines.append(f"| accuracy: {prefix}{name} | " + " | ".join(cells) + " |")
    lines.append("| training wall time (s) | " + " | ".join(_train_time(r) for r in reports) + " |")
    lines.append("| records | " + " | ".join(str(r["n"]) for r in reports) + " |")
    return "\n".join(lines)


def _train_time(report: dict) -> str:
    summary = Path(report["settings"].get("model", "")) / "train_summary.json"
    if not summary.is_file():
        return "-"
    return f"{json.loads(summary.read_text())['train_wall_time_s']:.0f}"
