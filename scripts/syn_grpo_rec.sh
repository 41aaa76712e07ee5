#!/usr/bin/env bash
# GRPO vs Syn-GRPO on the embedded REC task ("Where is the small red triangle?", answered with a box), tiny model
# on a CPU: one SFT warm-up, then for each seed GRPO (configs/rec_grpo.yaml) and Syn-GRPO (configs/syn_grpo.yaml:
# the same settings plus algo.syn, beside its own synthesis server) with the same step budget, each evaluated on the
# held-out set; then the table of scripts/syn_grpo_table.py.
#   bash scripts/syn_grpo_rec.sh        SYN_REC_DIR (default runs/rec), SYN_REC_SEEDS (default "0 1 2"),
#                                       SYN_REC_IMAGE_SIZE and SYN_REC_OBJECTS (default 112 and 3,6: the image side
#                                       and shapes per image), SYN_REC_SCALE=smoke (a reduced run, for the tests)
# A stage whose result exists is not run again, so an interrupted comparison continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" TOKENIZERS_PARALLELISM=false
out=${SYN_REC_DIR:-runs/rec}
read -r -a seeds <<< "${SYN_REC_SEEDS:-0 1 2}"
side=${SYN_REC_IMAGE_SIZE:-112}
if [ "${SYN_REC_SCALE:-full}" = smoke ]; then
    n_train=32 n_test=16 sft=(trainer.steps=10) rl=(trainer.steps=3 trainer.log_every=1)
else
    n_train=2000 n_test=256 sft=() rl=()
fi
data=(data.train_files=["$out/data/train.json"] data.eval_files=[] "data.image={min_pixels: $((side * side)), max_pixels: $((side * side))}")
test_set="$out/data/test.json"
free_port() { python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
evaluate() { vlm-rl eval --model "$1/final" --data "$test_set" --config "$1/config.yaml" --out "$2"; }

[ -f "$out/model-init/config.json" ] || vlm-rl make-tiny-model "$out/model-init" --size tiny --seed 0
[ -f "$test_set" ] || vlm-rl make-data "$out/data" --n-train "$n_train" --n-test "$n_test" --seed 0 --tasks rec \
    --image-size "$side" --image-objects "${SYN_REC_OBJECTS:-3,6}"
if [ ! -f "$out/eval_sft.json" ]; then
    vlm-rl sft configs/rec_sft.yaml model.path="$out/model-init" output_dir="$out/sft" trainer.overwrite=true "${data[@]}" "${sft[@]}"
    evaluate "$out/sft" "$out/eval_sft.json"
fi
for seed in "${seeds[@]}"; do
    run=(seed="$seed" model.path="$out/sft/final" "${data[@]}" "${rl[@]}" trainer.overwrite=true)
    if [ ! -f "$out/grpo_$seed/eval.json" ]; then
        vlm-rl train configs/rec_grpo.yaml "${run[@]}" output_dir="$out/grpo_$seed"
        evaluate "$out/grpo_$seed" "$out/grpo_$seed/eval.json"
    fi
    if [ ! -f "$out/syn_grpo_$seed/eval.json" ]; then
        rm -rf "$out/syn_grpo_${seed}_server"
        SYNTH_PORT=$(free_port) SYNTH_WORKDIR="$out/syn_grpo_${seed}_server" \
            bash scripts/train_syn_grpo.sh configs/syn_grpo.yaml "${run[@]}" output_dir="$out/syn_grpo_$seed"
        evaluate "$out/syn_grpo_$seed" "$out/syn_grpo_$seed/eval.json"
    fi
done
echo
python scripts/syn_grpo_table.py "$out" "${seeds[@]}"
