#!/usr/bin/env bash
# GRPO training: bash scripts/train_grpo.sh [CONFIG] [dotted overrides...]
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" train "${1:-configs/grpo.yaml}" "${@:2}"
