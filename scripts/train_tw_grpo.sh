#!/usr/bin/env bash
# TW-GRPO training: bash scripts/train_tw_grpo.sh [CONFIG] [dotted overrides...] (recipe in configs/tw_grpo.yaml)
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" train "${1:-configs/tw_grpo.yaml}" "${@:2}"
