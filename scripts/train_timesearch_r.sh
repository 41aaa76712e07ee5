#!/usr/bin/env bash
# TimeSearch-R: SFT cold start on search traces, then GRPO-CSV from that checkpoint.
#   bash scripts/train_timesearch_r.sh [dotted overrides for both stages...]
# SFT_OVERRIDES / RL_OVERRIDES add overrides to one stage (e.g. its output_dir); STAGE=sft or STAGE=grpo
# runs one stage; SFT_CONFIG / RL_CONFIG pick other recipes (defaults configs/timesearch_sft.yaml and
# configs/timesearch_r.yaml). The RL stage starts from the SFT run's final model. NUM_PROCESSES=N trains
# with N data-parallel processes (see scripts/launch.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
stage=${STAGE:-all}
sft_config=${SFT_CONFIG:-configs/timesearch_sft.yaml}
rl_config=${RL_CONFIG:-configs/timesearch_r.yaml}
read -r -a sft_extra <<< "${SFT_OVERRIDES:-}"
read -r -a rl_extra <<< "${RL_OVERRIDES:-}"
sft_dir=$(.venv/bin/python -c 'import sys; from vlm_rl.config import load_config; print(load_config(sys.argv[1], sys.argv[2:]).output_dir)' \
    "$sft_config" "$@" "${sft_extra[@]}")
if [ "$stage" = all ] || [ "$stage" = sft ]; then
    bash scripts/launch.sh sft "$sft_config" "$@" "${sft_extra[@]}"
fi
if [ "$stage" = all ] || [ "$stage" = grpo ]; then
    bash scripts/launch.sh train "$rl_config" "$@" model.path="$sft_dir/final" "${rl_extra[@]}"
fi
