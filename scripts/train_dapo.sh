#!/usr/bin/env bash
# DAPO training: bash scripts/train_dapo.sh [CONFIG] [dotted overrides...] (recipe in configs/dapo.yaml)
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" train "${1:-configs/dapo.yaml}" "${@:2}"
