#!/usr/bin/env bash
# Set up .venv if needed, then run the test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# The demo's browser test drives Debian's chromium (Playwright's own browser download cannot work here).
if [ ! -x /usr/bin/chromium ]; then
    as_root=(); [ "$(id -u)" = 0 ] || as_root=(sudo -n)
    { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
        || echo "scripts/test.sh: could not install chromium with apt-get; the browser test will fail" >&2
fi
exec .venv/bin/python -m pytest "$@"
