#!/usr/bin/env bash
# The Gradio demo on 127.0.0.1:7860: bash scripts/demo.sh --model DIR [--compare DIR ...] [--runs DIR ...]
# [--host H] [--port P] [--auth-file FILE]; see docs/demo.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/vlm-rl demo "$@"
