#!/usr/bin/env bash
# Time GRPO steps phase by phase, shared-prefix loss forward against the repeated-prompt form:
# bash scripts/bench.sh [video|image|long-video|search] [vlm-rl bench options...]   (results: docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/vlm-rl bench --workload "${1:-video}" "${@:2}"
