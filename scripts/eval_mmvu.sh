#!/usr/bin/env bash
# MMVU validation: bash scripts/eval_mmvu.sh MODEL_DIR DATA_ROOT [mc|official] [dotted overrides...]
# mc (default): the 625 multiple-choice items with strict letter matching, as the RL papers report.
# official: all items, MMVU's CoT prompts, rule pre-check then an LLM judge (VLM_RL_JUDGE_BASE_URL,
# VLM_RL_JUDGE_MODEL, VLM_RL_JUDGE_API_KEY). OUT=folder (default MODEL_DIR/eval). An interrupted run resumes.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bash scripts/eval_mmvu.sh MODEL_DIR DATA_ROOT [mc|official] [overrides...]" >&2; exit 2; }
model=$1 root=$2 mode=${3:-mc}; shift $(( $# >= 3 ? 3 : 2 ))
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/vlm-rl eval --model "$model" --benchmark mmvu --data-root "$root" --mode "$mode" ${OUT:+--out "$OUT"} "$@"
