#!/usr/bin/env bash
# Run `vlm-rl COMMAND CONFIG [overrides...]` in one process, or in NUM_PROCESSES data-parallel
# processes with accelerate (ACCELERATE_CONFIG=file picks e.g. a DeepSpeed config in configs/accelerate/;
# ACCELERATE_ARGS adds launcher options, e.g. the machine rank and main address of a multi-node run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
command=$1; shift
if [ "${NUM_PROCESSES:-1}" -le 1 ]; then
    exec .venv/bin/vlm-rl "$command" "$@"
fi
launch=(--num_processes "$NUM_PROCESSES")
read -r -a extra <<< "${ACCELERATE_ARGS:-}"
launch+=("${extra[@]}")
if [ -n "${ACCELERATE_CONFIG:-}" ]; then
    launch+=(--config_file "$ACCELERATE_CONFIG")
else
    # accelerate's data-parallel launcher (torchrun); without GPUs the processes train on the CPU
    # over gloo, which accelerate only does when told to use the CPU.
    launch+=(--multi_gpu)
    if ! nvidia-smi -L >/dev/null 2>&1; then
        export ACCELERATE_USE_CPU=true
    fi
fi
exec .venv/bin/accelerate launch "${launch[@]}" -m vlm_rl.cli "$command" "$@"
