#!/usr/bin/env bash
# The first 10 steps of four recipes (quickstart GRPO, GRPO-CARE, VL-Rethinker's replay + rethinking,
# Reg-GRPO) with a fixed seed on a 20-step SFT of the tiny model, for checking that a refactor changes
# no number: run it at two commits and compare the runs with scripts/compare_runs.py.
#   bash scripts/same_steps.sh OUT [BASE]     (BASE: where the tiny model, data and SFT are made once;
#                                              default OUT/../same_steps_base)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash scripts/same_steps.sh OUT [BASE]}
base=${2:-$(dirname "$out")/same_steps_base}
py=${PYTHON:-.venv/bin/python}
export TOKENIZERS_PARALLELISM=false
if [ ! -f "$base/sft/final/config.json" ]; then
    $py -m vlm_rl.cli make-tiny-model "$base/model-init" --size tiny --seed 0
    $py -m vlm_rl.cli make-data "$base/data" --n-train 64 --n-test 8 --seed 0 --tasks count --distractors 2
    $py -m vlm_rl.cli sft configs/quickstart_sft.yaml model.path="$base/model-init" output_dir="$base/sft" seed=0 \
        data.train_files=["$base/data/train.json"] data.eval_files=[] trainer.steps=20
fi
mapfile -t tiny < <(grep -Ev '^[[:space:]]*(#|$)' configs/tiny_cpu.overrides)
run=(seed=0 model.path="$base/sft/final" data.train_files=["$base/data/train.json"]
    rollout.num_generations=4 rollout.max_new_tokens=16
    "reward.custom={length: 'tests/integration/rewards_for_tests.py:text_length'}" "reward.weights={accuracy: 1.0, length: 0.5}"
    trainer.steps=10 trainer.prompts_per_step=4 trainer.micro_batch_prompts=2 trainer.lr=5e-5
    trainer.log_every=1 trainer.sample_every=0)
for recipe in quickstart_grpo grpo_care vl_rethinker reg_grpo; do
    extra=()
    [ "$recipe" = grpo_care ] && extra=(algo.care.ema_every=2 algo.care.min_accuracy=0.0)
    $py -m vlm_rl.cli train "configs/$recipe.yaml" "${tiny[@]}" "${run[@]}" "${extra[@]}" output_dir="$out/$recipe"
done
