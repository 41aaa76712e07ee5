#!/usr/bin/env bash
# The embedded default, end to end on a CPU: tiny Qwen2.5-VL + synthetic video clips,
# evaluate -> SFT warm-up -> evaluate -> GRPO -> evaluate, then a before/after table.
# QUICKSTART_DIR picks the output folder (default runs/quickstart), QUICKSTART_SEED the seed of
# the model, the data and training (default 0); QUICKSTART_SCALE=smoke runs a reduced version in
# about a minute (used by the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" TOKENIZERS_PARALLELISM=false
out=${QUICKSTART_DIR:-runs/quickstart}
seed=${QUICKSTART_SEED:-0}
if [ -e "$out/sft" ] || [ -e "$out/grpo" ]; then
    echo "quickstart.sh: $out already holds a quickstart run; remove it, or choose another folder with QUICKSTART_DIR=DIR" >&2
    exit 2
fi
if [ "${QUICKSTART_SCALE:-full}" = smoke ]; then
    n_train=64 n_test=32 sft=(trainer.steps=20) grpo=(trainer.steps=4)
else
    n_train=2000 n_test=512 sft=() grpo=()
fi
data=(seed="$seed" data.train_files=["$out/data/train.json"] data.eval_files=[])
test_set="$out/data/test.json"
started=$(date +%s)

vlm-rl make-tiny-model "$out/model-init" --size tiny --seed "$seed"
vlm-rl make-data "$out/data" --n-train "$n_train" --n-test "$n_test" --seed "$seed" --tasks count --distractors 2
vlm-rl eval --model "$out/model-init" --data "$test_set" --config configs/quickstart_sft.yaml --out "$out/eval_untrained.json"
vlm-rl sft configs/quickstart_sft.yaml model.path="$out/model-init" output_dir="$out/sft" "${data[@]}" "${sft[@]}"
vlm-rl eval --model "$out/sft/final" --data "$test_set" --out "$out/eval_sft.json"
vlm-rl train configs/quickstart_grpo.yaml model.path="$out/sft/final" output_dir="$out/grpo" "${data[@]}" "${grpo[@]}"
vlm-rl eval --model "$out/grpo/final" --data "$test_set" --out "$out/eval_grpo.json"

echo
echo "Held-out synthetic test set ($test_set), greedy decoding, exact answer match:"
vlm-rl report "$out/eval_untrained.json" "$out/eval_sft.json" "$out/eval_grpo.json" --labels untrained,SFT,SFT+GRPO
echo "total wall time: $(( $(date +%s) - started )) s"
