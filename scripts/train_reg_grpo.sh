#!/usr/bin/env bash
# Reg-GRPO training: bash scripts/train_reg_grpo.sh [CONFIG] [dotted overrides...] (recipe in configs/reg_grpo.yaml)
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" train "${1:-configs/reg_grpo.yaml}" "${@:2}"
