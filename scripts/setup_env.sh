#!/usr/bin/env bash
# Creates .venv (or $FAKESCOPE_VENV) and installs fakescope with everything it needs.
# Idempotent: a stamp keyed on the dependency files skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FAKESCOPE_VENV:-.venv}"
PY="${PYTHON:-python3}"
stamp_key=$(cat pyproject.toml requirements/*.txt scripts/setup_env.sh | sha256sum | cut -c1-16)
stamp="$VENV/.fakescope-setup-$stamp_key"
if [ -f "$stamp" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
echo "[setup] installing PyTorch (requirements/torch.txt; several minutes on first run)"
pip install -q -r requirements/torch.txt
echo "[setup] installing fakescope and its dependencies"
pip install -q -e ".[dev]"
# Optional: MTCNN (preprocess.detector=mtcnn). facenet-pytorch pins old torch/numpy/Pillow in its
# metadata; what it imports is already installed above, so it goes in without its pins.
echo "[setup] installing the optional MTCNN weights (facenet-pytorch, --no-deps)"
pip install -q --no-deps -r requirements/weights.txt
rm -f "$VENV"/.fakescope-setup-*
touch "$stamp"
echo "[setup] done: $VENV"
