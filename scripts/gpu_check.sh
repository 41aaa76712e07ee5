#!/usr/bin/env bash
# GRPO in bf16 at the real Qwen2.5-VL sizes (3B, 7B; random weights) on one GPU: step time by phase,
# generation and training tokens/s, MFU, peak memory, the shared-prefix forms, LoRA, ZeRO-3, and the bf16
# equivalence and resume checks. vlm_rl/gpu_check/ says what each case measures; docs/performance.md has results.
#
#   bash scripts/gpu_check.sh prepare [--only CASES]
#       here (network, PyAV): the clips, and the wheels a bare GPU machine lacks (pinned to this environment's
#       versions), under $GPU_CHECK_DIR (default .gpu_check, ignored by git; about 35 MB)
#   bash scripts/gpu_check.sh run [--out DIR] [--only CASES]
#       on the GPU machine: installs those wheels into a temporary folder, builds the models (about 25 GB on
#       disk), runs every case in its own process and writes gpu_check.json and gpu_check.md to DIR
#       (default $OUT, else $GPU_CHECK_DIR/out); about 9 minutes on one H100
#   bash scripts/gpu_check.sh run --smoke
#       every case with the small tiny model in float32 on any machine (what the test suite runs)
#
# CASES: comma-separated, of 3b-repeated, 3b-shared, 3b-default, 7b-lora, 3b-zero3, 3b-equivalence, 3b-resume.
# Exit status: 0 every case ran, 1 a case failed, 2 bad arguments, 77 no CUDA device (nothing measured).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${GPU_CHECK_DIR:-.gpu_check}
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
command=$1; shift

case $command in
    prepare)
        bash scripts/setup_env.sh  # this machine's .venv, whose versions the wheels are pinned to
        python=.venv/bin/python
        "$python" -m vlm_rl.gpu_check prepare --work "$dir/work" "$@"
        # deepspeed ships as a source archive: built here into a pure-Python wheel
        pins=$("$python" -c 'import importlib.metadata as m
print(" ".join(f"{n}=={m.version(n)}" for n in ["transformers", "peft", "decord", "json-repair", "hjson", "pydantic",
    "pydantic-core", "annotated-types", "typing-inspection"]))')
        rm -rf "$dir/wheels"
        "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux2010_x86_64 -d "$dir/wheels" $pins
        "$python" -m pip wheel -q --no-deps -w "$dir/wheels" "deepspeed==$("$python" -c 'import importlib.metadata as m; print(m.version("deepspeed"))')"
        du -sh "$dir/wheels" "$dir/work/data"
        echo "carry $dir/wheels and $dir/work/data to the GPU machine and run: bash scripts/gpu_check.sh run" ;;
    run)
        if [ -d "$dir/wheels" ] && [ ! -x .venv/bin/python ]; then  # a bare machine: bring what it lacks
            site=$(mktemp -d)
            "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$dir"/wheels/*.whl
            export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
        fi
        export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
        out=${OUT:-$dir/out}
        exec "$python" -m vlm_rl.gpu_check run --work "$dir/work" --out "$out" "$@" ;;
    *) usage ;;
esac
