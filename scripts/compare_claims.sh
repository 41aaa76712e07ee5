#!/usr/bin/env bash
# Each method against plain GRPO on the task family that tests what its paper claims, tiny model on a CPU, 3 seeds:
#   bash scripts/compare_claims.sh PART
# PART (one per claim; each runs its own data, SFT start and RL arms, then prints its table):
#   multi_answer  colors_fixed, "Which colors appear?" (a set of letters): GRPO on the 0/1 reward, GRPO on TW-GRPO's
#                 soft reward, TW-GRPO (soft reward + token weighting)
#   consistency   compare, "Are there more Xs than Ys?" (the thought states both counts): GRPO, GRPO-CARE
#   difficulty    difficulty_mix, counts: half easy (1-3 shapes, nothing else), half hard (among distractors),
#                 labelled: GRPO, TON (thought dropout SFT, then GRPO), VL-Rethinker (selective replay + forced
#                 rethinking), DeepVideo-R1 (Reg-GRPO + difficulty augmentation), DAPO (dynamic sampling)
#   temporal      direction_fixed at --speed 2.8 (at 1 the tiny model never sees the motion), "In which direction
#                 does the red square move?": GRPO, T-GRPO
# Every arm of a part starts from the same SFT model (TON from its own thought-dropout SFT of the same data and
# steps), has the same data, group size, lengths, steps, learning rate and reward weights (accuracy only; the
# multi-answer arms differ in which accuracy), and, with CLAIMS_SCHEDULE=same (the default), the same constant
# learning rate; CLAIMS_SCHEDULE=recipe keeps each recipe's own schedule and warm-up (runs ARM_recipe_SEED beside the
# others, from the same data and SFT model). Everything else is the
# recipe's (configs/NAME.yaml), fitted to the tiny model by configs/tiny_cpu.overrides.
# CLAIMS_DIR (default runs/claims), CLAIMS_SEEDS (default "0 1 2"), CLAIMS_STEPS (RL steps, default 200),
# CLAIMS_SFT_STEPS (default 1000, as at the quickstart's 300 the tiny model answers compare questions with one letter;
# 300 for multi_answer and temporal, which 1000 steps already answer perfectly, leaving RL nothing to show),
# CLAIMS_ARMS (default: all of the part's arms; e.g. "grpo_care" with CLAIMS_SCHEDULE=recipe, since GRPO's recipe
# schedule is the constant one), CLAIMS_SCALE=smoke (a reduced run, for the tests). A stage whose result exists is not run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: bash scripts/compare_claims.sh multi_answer|consistency|difficulty|temporal" >&2; exit 2; }
part=$1
case $part in
    multi_answer) tasks=colors_fixed arms=(grpo grpo_soft tw_grpo) sft_steps=300 make=() ;;
    consistency) tasks=compare arms=(grpo grpo_care) sft_steps=1000 make=() ;;
    difficulty) tasks=difficulty_mix arms=(grpo ton_grpo vl_rethinker deepvideo_r1 dapo) sft_steps=1000 make=() ;;
    temporal) tasks=direction_fixed arms=(grpo t_grpo) sft_steps=300 make=(--speed 2.8) ;;
    *) echo "compare_claims.sh: unknown part $part; choose multi_answer, consistency, difficulty or temporal" >&2; exit 2 ;;
esac
if [ -n "${CLAIMS_ARMS:-}" ]; then
    read -r -a chosen <<< "$CLAIMS_ARMS"
    for arm in "${chosen[@]}"; do
        [[ " ${arms[*]} " == *" $arm "* ]] || { echo "compare_claims.sh: part $part has no arm $arm; its arms: ${arms[*]}" >&2; exit 2; }
    done
    arms=("${chosen[@]}")
fi
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" TOKENIZERS_PARALLELISM=false
schedule=${CLAIMS_SCHEDULE:-same}
out=${CLAIMS_DIR:-runs/claims}/$part
case $schedule in
    same) tag="" sched=(trainer.lr_scheduler=constant trainer.warmup_steps=0) ;;
    recipe) tag=_recipe sched=() ;;
    *) echo "compare_claims.sh: CLAIMS_SCHEDULE must be same or recipe, not $schedule" >&2; exit 2 ;;
esac
read -r -a seeds <<< "${CLAIMS_SEEDS:-0 1 2}"
if [ "${CLAIMS_SCALE:-full}" = smoke ]; then
    n_train=32 n_test=16 sft=(trainer.steps=10) steps=2 log=(trainer.log_every=1)
else
    n_train=2000 n_test=512 sft=(trainer.steps="${CLAIMS_SFT_STEPS:-$sft_steps}") steps=${CLAIMS_STEPS:-200}
    log=(trainer.log_every=10 trainer.sample_every=0)
fi
mapfile -t tiny < <(grep -Ev '^[[:space:]]*(#|$)' configs/tiny_cpu.overrides)
data=(data.train_files=["$out/data/train.json"] data.eval_files=[])
test_set="$out/data/test.json"
evaluate() { vlm-rl eval --model "$1/final" --data "$test_set" --config configs/quickstart_grpo.yaml --out "$2"; }

[ -f "$out/model-init/config.json" ] || vlm-rl make-tiny-model "$out/model-init" --size tiny --seed 0
[ -f "$test_set" ] || vlm-rl make-data "$out/data" --n-train "$n_train" --n-test "$n_test" --seed 0 --tasks "$tasks" "${make[@]}"
if [ ! -f "$out/eval_sft.json" ]; then
    vlm-rl sft configs/quickstart_sft.yaml seed=0 model.path="$out/model-init" "${data[@]}" "${sft[@]}" \
        output_dir="$out/sft" trainer.overwrite=true
    evaluate "$out/sft" "$out/eval_sft.json"
fi
if [[ " ${arms[*]} " == *" ton_grpo "* ]] && [ ! -f "$out/eval_ton_sft.json" ]; then
    vlm-rl data drop-thoughts "$out/data/train.json" "$out/data/train_dropped.json" --probability 0.5 --seed 0
    vlm-rl sft configs/quickstart_sft.yaml seed=0 model.path="$out/model-init" data.train_files=["$out/data/train_dropped.json"] \
        data.eval_files=[] "${sft[@]}" output_dir="$out/ton_sft" trainer.overwrite=true
    evaluate "$out/ton_sft" "$out/eval_ton_sft.json"
fi

# arm -> recipe and what differs from it besides the shared run settings
recipe_of() { case $1 in grpo_soft) echo grpo ;; *) echo "$1" ;; esac; }
reward_of() {
    case $part:$1 in
        multi_answer:grpo) echo "{accuracy_binary: 1.0, accuracy: 0.0, format: 0.0}" ;;  # soft accuracy logged, not rewarded
        *) echo "{accuracy: 1.0, format: 0.0}" ;;
    esac
}
start_of() { case $1 in ton_grpo) echo "$out/ton_sft/final" ;; *) echo "$out/sft/final" ;; esac; }

for seed in "${seeds[@]}"; do
    for arm in "${arms[@]}"; do
        run_dir="$out/${arm}${tag}_$seed"
        [ -f "$run_dir/eval.json" ] && continue
        recipe=$(recipe_of "$arm")
        # forced rethinking keeps a right continuation only past 30 new tokens, a length for 7B reasoning; the tiny
        # model's whole completion is about 13 tokens, so at 30 nothing would ever be kept
        extra=()
        [ "$arm" = vl_rethinker ] && extra=(algo.rethink.min_new_tokens=0)
        vlm-rl train "configs/$recipe.yaml" "${tiny[@]}" seed="$seed" model.path="$(start_of "$arm")" "${data[@]}" \
            rollout.num_generations=8 rollout.max_new_tokens=24 "reward.weights=$(reward_of "$arm")" \
            trainer.steps="$steps" trainer.prompts_per_step=8 trainer.micro_batch_prompts=8 trainer.lr=5e-5 \
            "${log[@]}" "${sched[@]}" "${extra[@]}" output_dir="$run_dir" trainer.overwrite=true
        evaluate "$run_dir" "$run_dir/eval.json"
    done
done
echo
python scripts/claims_table.py "$out" "$part" "${seeds[@]}" --arms "${arms[@]}" ${tag:+--tag "$tag"}
