#!/usr/bin/env bash
# The TimeSearch-R comparison on the needle task with the tiny model, on a CPU, for each seed:
#   preview  SFT on the answers, no tool (it sees only the 8-frame preview, which misses the event)
#   sft      SFT cold start on search traces (one whole-video search, then the answer)
#   grpo     GRPO with search from `sft`, reward 1.0 * search_format + 0.5 * search_accuracy
#   grpo_csv the same plus 0.5 * csv (GRPO-CSV), same steps
# then every model on the held-out clips (greedy; the search arms with the tool loop) and one table.
#   bash scripts/timesearch_needle.sh
# NEEDLE_DIR (default runs/needle), NEEDLE_SEEDS (default "0 1 2"), NEEDLE_SFT_STEPS (600), NEEDLE_RL_STEPS (80),
# NEEDLE_RL_LR (1e-4), NEEDLE_TRAIN / NEEDLE_TEST clips (300 / 48). Finished stages are kept: a rerun continues
# where it stopped (so a folder whose seed*/{model-init,preview,sft} link to another run's reruns only RL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" TOKENIZERS_PARALLELISM=false
out=${NEEDLE_DIR:-runs/needle}
seeds=${NEEDLE_SEEDS:-0 1 2}
sft_steps=${NEEDLE_SFT_STEPS:-600}
rl_steps=${NEEDLE_RL_STEPS:-80}
rl_lr=${NEEDLE_RL_LR:-1e-4}
mapfile -t tiny < <(grep -Ev '^[[:space:]]*(#|$)' configs/timesearch_needle.overrides)
data="$out/data"
[ -f "$data/test.json" ] || vlm-rl make-data "$data" --tasks needle --n-train "${NEEDLE_TRAIN:-300}" \
    --n-test "${NEEDLE_TEST:-48}" --needle-frames 64 --seed 0
common=(data.train_files=["$data/train.json"] trainer.log_every=10 trainer.sample_every=0)
sft=(trainer.steps="$sft_steps" trainer.prompts_per_step=8 trainer.micro_batch_prompts=8 trainer.lr=5e-4)
rl=(trainer.steps="$rl_steps" rollout.num_generations=8 trainer.prompts_per_step=2 trainer.micro_batch_prompts=2 trainer.lr="$rl_lr")
for seed in $seeds; do
    run="$out/seed$seed"
    [ -f "$run/model-init/config.json" ] || vlm-rl make-tiny-model "$run/model-init" --seed "$seed"
    [ -f "$run/preview/final/config.json" ] || vlm-rl sft configs/timesearch_sft.yaml "${tiny[@]}" "${common[@]}" "${sft[@]}" \
        seed="$seed" model.path="$run/model-init" search.enabled=false data.prompt_template=short output_dir="$run/preview"
    [ -f "$run/sft/final/config.json" ] || vlm-rl sft configs/timesearch_sft.yaml "${tiny[@]}" "${common[@]}" "${sft[@]}" \
        seed="$seed" model.path="$run/model-init" output_dir="$run/sft"
    for arm in grpo grpo_csv; do
        csv=$([ "$arm" = grpo_csv ] && echo true || echo false)
        [ -f "$run/$arm/final/config.json" ] || vlm-rl train configs/timesearch_r.yaml "${tiny[@]}" "${common[@]}" "${rl[@]}" \
            seed="$seed" model.path="$run/sft/final" search.csv="$csv" output_dir="$run/$arm"
    done
    for arm in preview sft grpo grpo_csv; do
        [ -f "$run/$arm/eval.json" ] || vlm-rl eval --model "$run/$arm/final" --data "$data/test.json" --out "$run/$arm/eval.json" search.csv=true
    done
done
echo
echo "Held-out needle clips ($data/test.json), greedy; mean ± std over seeds ($seeds), per-seed values in brackets:"
python scripts/needle_table.py "$out" $seeds
