#!/usr/bin/env bash
# T-GRPO training: bash scripts/train_t_grpo.sh [CONFIG] [dotted overrides...] (recipe in configs/t_grpo.yaml)
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" train "${1:-configs/t_grpo.yaml}" "${@:2}"
