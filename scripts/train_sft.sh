#!/usr/bin/env bash
# Supervised fine-tuning: bash scripts/train_sft.sh [CONFIG] [dotted overrides...]
# NUM_PROCESSES=N runs N processes with accelerate (ACCELERATE_CONFIG picks e.g. a DeepSpeed file).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
config=${1:-configs/sft.yaml}; shift || true
if [ "${NUM_PROCESSES:-1}" -gt 1 ]; then
    exec .venv/bin/accelerate launch --num_processes "$NUM_PROCESSES" ${ACCELERATE_CONFIG:+--config_file "$ACCELERATE_CONFIG"} \
        -m vlm_rl.cli sft "$config" "$@"
fi
exec .venv/bin/vlm-rl sft "$config" "$@"
