#!/usr/bin/env bash
# GRPO-CARE training: bash scripts/train_grpo_care.sh [CONFIG] [dotted overrides...] (recipe in configs/grpo_care.yaml)
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" train "${1:-configs/grpo_care.yaml}" "${@:2}"
