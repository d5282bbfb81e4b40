#!/usr/bin/env bash
# Set up a fresh Debian 12 machine: QGIS 3.22 + GDAL from Debian, and a venv
# (with system site packages, so it sees QGIS and GDAL) holding the pinned
# Python requirements. Usage: bash scripts/setup_debian.sh [plugin|dev|training]
set -euo pipefail
cd "$(dirname "$0")/.."
level="${1:-training}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! dpkg -s python3-qgis qgis qgis-providers python3-gdal gdal-bin python3-venv python3-scipy python3-matplotlib xvfb >/dev/null 2>&1; then
  echo "== Installing QGIS and GDAL from Debian (apt)"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
    python3-qgis qgis qgis-providers python3-gdal gdal-bin python3-venv python3-pip xauth xvfb \
    python3-scipy python3-matplotlib
fi

if [ ! -x .venv/bin/python ]; then
  echo "== Creating .venv (with system site packages)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
echo "== Installing requirements-${level}.txt into .venv"
.venv/bin/python -m pip install -q -r "requirements-${level}.txt"
.venv/bin/python - <<'PY'
import numpy, onnxruntime
from osgeo import gdal
import qgis.core
print(f"numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__}, GDAL {gdal.__version__}, "
      f"QGIS {qgis.core.Qgis.QGIS_VERSION}")
PY
