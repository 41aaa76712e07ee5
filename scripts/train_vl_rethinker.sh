#!/usr/bin/env bash
# VL-Rethinker training: bash scripts/train_vl_rethinker.sh [CONFIG] [dotted overrides...] (recipe in configs/vl_rethinker.yaml)
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" train "${1:-configs/vl_rethinker.yaml}" "${@:2}"
