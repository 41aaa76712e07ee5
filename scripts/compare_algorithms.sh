#!/usr/bin/env bash
# Each algorithm's recipe on the embedded default, from the same SFT checkpoint, seed and number of
# steps, then one held-out table: bash scripts/compare_algorithms.sh [ALGO ...]
# ALGO is a recipe name in configs/ (default: grpo tw_grpo reg_grpo grpo_care dapo t_grpo).
# COMPARE_FROM is a finished quickstart directory (default runs/quickstart; made by
# bash scripts/quickstart.sh), COMPARE_DIR the output (default runs/compare), COMPARE_STEPS the steps
# (default 200). Only what makes the 7B recipes fit the tiny model and the CPU is overridden
# (configs/tiny_cpu.overrides, plus the model, data, group size, lengths, steps and reward below); every
# algorithm-specific setting (KL, clipping, bonuses, schedules) stays the recipe's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" TOKENIZERS_PARALLELISM=false
from=${COMPARE_FROM:-runs/quickstart}
out=${COMPARE_DIR:-runs/compare}
steps=${COMPARE_STEPS:-200}
algos=("$@")
[ ${#algos[@]} -gt 0 ] || algos=(grpo tw_grpo reg_grpo grpo_care dapo t_grpo)
if [ ! -f "$from/sft/final/config.json" ] || [ ! -f "$from/data/test.json" ]; then
    echo "compare_algorithms.sh: $from has no SFT model or test set; run bash scripts/quickstart.sh first (or set COMPARE_FROM)" >&2
    exit 2
fi
mapfile -t tiny < <(grep -Ev '^[[:space:]]*(#|$)' configs/tiny_cpu.overrides)
run=(
    seed=0 model.path="$from/sft/final" data.train_files=["$from/data/train.json"]
    rollout.num_generations=8 rollout.max_new_tokens=24 "reward.weights={accuracy: 1.0, format: 0.0}"
    trainer.steps="$steps" trainer.prompts_per_step=8 trainer.micro_batch_prompts=8 trainer.lr=5e-5
    trainer.log_every=10 trainer.sample_every=50
)
reports=()
for algo in "${algos[@]}"; do
    [ -f "configs/$algo.yaml" ] || { echo "compare_algorithms.sh: no recipe configs/$algo.yaml" >&2; exit 2; }
    bash "scripts/train_$algo.sh" "configs/$algo.yaml" "${tiny[@]}" "${run[@]}" output_dir="$out/$algo"
    vlm-rl eval --model "$out/$algo/final" --data "$from/data/test.json" --config configs/quickstart_grpo.yaml \
        --out "$out/$algo/eval.json"
    reports+=("$out/$algo/eval.json")
done
echo
echo "Held-out synthetic test set ($from/data/test.json), greedy, exact match; $steps steps from $from/sft/final:"
vlm-rl report "$from/eval_sft.json" "${reports[@]}" --labels "SFT,$(IFS=,; echo "${algos[*]}")"
