#!/usr/bin/env bash
# SEED-Bench-R1 L1/L2/L3 with the GRPO-CARE evaluation preset (configs/eval_seed_bench_r1.yaml):
# bash scripts/eval_seed_bench_r1.sh MODEL_DIR DATA_ROOT [dotted overrides...]
# LEVELS=L1,L2,L3 picks levels; OUT=folder (default MODEL_DIR/eval). An interrupted run resumes.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bash scripts/eval_seed_bench_r1.sh MODEL_DIR DATA_ROOT [overrides...]" >&2; exit 2; }
model=$1 root=$2; shift 2
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/vlm-rl eval --model "$model" --benchmark seed-bench-r1 --data-root "$root" \
    --levels "${LEVELS:-L1,L2,L3}" ${OUT:+--out "$OUT"} "$@"
