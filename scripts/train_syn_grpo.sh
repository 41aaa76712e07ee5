#!/usr/bin/env bash
# Syn-GRPO: start `vlm-rl synth-server` here, train beside it, and stop the server when training ends.
#   bash scripts/train_syn_grpo.sh [CONFIG] [dotted overrides...]        (CONFIG: configs/syn_grpo.yaml)
# SYNTH_PORT (default 8100) and SYNTH_WORKDIR (default runs/synth-server, kept across runs) place the server;
# SYNTH_ARGS adds its options, e.g. "--generator diffusers --inpaint-model DIR --workers 1".
# SYNTH_SERVER=URL trains against a server already running (e.g. on another machine) and starts none.
# A token in $VLM_RL_SYNTH_TOKEN is read by both sides. NUM_PROCESSES is not supported with Syn-GRPO yet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
config=${1:-configs/syn_grpo.yaml}
[ $# -gt 0 ] && shift
if [ -n "${SYNTH_SERVER:-}" ]; then
    exec bash scripts/launch.sh train "$config" algo.syn.server="$SYNTH_SERVER" "$@"
fi
port=${SYNTH_PORT:-8100}
read -r -a server_args <<< "${SYNTH_ARGS:-}"
.venv/bin/vlm-rl synth-server --workdir "${SYNTH_WORKDIR:-runs/synth-server}" --port "$port" "${server_args[@]}" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port"
until .venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/health', timeout=1)" "$url" 2>/dev/null; do
    if ! kill -0 "$server" 2>/dev/null; then
        echo "train_syn_grpo.sh: the synthesis server did not start (its error is above)" >&2
        exit 2
    fi
    sleep 0.2
done
bash scripts/launch.sh train "$config" algo.syn.server="$url" "$@"
