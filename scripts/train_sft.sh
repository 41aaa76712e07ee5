#!/usr/bin/env bash
# Supervised fine-tuning: bash scripts/train_sft.sh [CONFIG] [dotted overrides...]
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" sft "${1:-configs/sft.yaml}" "${@:2}"
