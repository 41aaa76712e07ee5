#!/usr/bin/env bash
# TON, both stages: thought dropout on the SFT records, SFT, then GRPO from the SFT model.
# bash scripts/train_ton.sh SFT_RECORDS GRPO_RECORDS OUT_DIR [overrides for both stages...]
#   SFT_RECORDS: .json/.jsonl with `process` thoughts; GRPO_RECORDS: the RL questions (may be the same file).
#   TON_P (default 0.5) is the dropout probability, TON_SEED (default 0) its seed; TON_SFT_CONFIG and
#   TON_GRPO_CONFIG pick the stage configs (default configs/ton_sft.yaml and configs/ton_grpo.yaml).
#   Overrides apply to both stages (e.g. model.path for the SFT stage's base model; the GRPO stage
#   always starts from OUT_DIR/sft/final). NUM_PROCESSES=N runs both stages data-parallel.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: bash scripts/train_ton.sh SFT_RECORDS GRPO_RECORDS OUT_DIR [overrides...]" >&2; exit 2; }
sft_records=$1 grpo_records=$2 out=$3; shift 3
cd "$(dirname "$0")/.."  # paths are relative to the repository root, as in scripts/launch.sh
bash scripts/setup_env.sh
suffix=${sft_records##*.}
# the dropped-thought copy lives in OUT_DIR, so its media stay relative to the original file's folder
media_root=$(dirname "$sft_records")
for arg in "$@"; do
    case $arg in data.media_root=*) media_root=${arg#data.media_root=} ;; esac
done
.venv/bin/vlm-rl data drop-thoughts "$sft_records" "$out/sft_records.$suffix" \
    --probability "${TON_P:-0.5}" --seed "${TON_SEED:-0}"
bash scripts/launch.sh sft "${TON_SFT_CONFIG:-configs/ton_sft.yaml}" "$@" \
    data.train_files=["$out/sft_records.$suffix"] data.media_root="$media_root" output_dir="$out/sft"
bash scripts/launch.sh train "${TON_GRPO_CONFIG:-configs/ton_grpo.yaml}" "$@" \
    model.path="$out/sft/final" data.train_files=["$grpo_records"] output_dir="$out/grpo"
