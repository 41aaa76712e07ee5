#!/usr/bin/env bash
# DeepVideo-R1 training: bash scripts/train_deepvideo_r1.sh [CONFIG] [dotted overrides...] (recipe in configs/deepvideo_r1.yaml)
# NUM_PROCESSES=N trains with N data-parallel processes (see scripts/launch.sh).
exec bash "$(dirname "$0")/launch.sh" train "${1:-configs/deepvideo_r1.yaml}" "${@:2}"
