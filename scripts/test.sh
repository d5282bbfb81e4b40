#!/usr/bin/env bash
# The README's test command: set up a fresh Debian 12 machine, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_debian.sh training
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
