#!/usr/bin/env bash
# The README's main command: set up a fresh Debian 12 machine (QGIS, GDAL, a venv
# with onnxruntime), then map landslides on the bundled sample event through the
# Processing algorithm with the default model. Outputs go to out/sample_event/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_debian.sh plugin
QT_QPA_PLATFORM=offscreen exec .venv/bin/python scripts/map_sample_event.py "$@"
