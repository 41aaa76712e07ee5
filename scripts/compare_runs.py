"""Compare the runs of two `scripts/same_steps.sh` outputs: every logged value (timings aside) and the final weights.

    python scripts/compare_runs.py RUNS_A RUNS_B     (exit 1 when anything differs)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = {}
    for path in sorted((run / "final").glob("*.safetensors")):
        weights.update(load_file(str(path)))
    return weights


def compare(a: Path, b: Path) -> bool:
    same = True
    for run in sorted(p.name for p in a.iterdir() if (p / "metrics.jsonl").is_file()):
        rows_a, rows_b = _rows(a / run), _rows(b / run)
        diffs = []
        for x, y in zip(rows_a, rows_b):
            for key in sorted(k for k in x.keys() | y.keys() if not k.startswith("time/") and k != "sec_per_step"):
                if x.get(key) != y.get(key):
                    diffs.append((x["step"], key, x.get(key), y.get(key)))
        wa, wb = _weights(a / run), _weights(b / run)
        equal_weights = wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
        print(f"{run}: {len(rows_a)} vs {len(rows_b)} rows, {len(diffs)} differing values, final weights bit-identical: {equal_weights}")
        for diff in diffs[:10]:
            print("   step {}: {} {!r} -> {!r}".format(*diff))
        same &= not diffs and equal_weights and len(rows_a) == len(rows_b)
    print("identical" if same else "different")
    return same


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(0 if compare(Path(sys.argv[1]), Path(sys.argv[2])) else 1)
