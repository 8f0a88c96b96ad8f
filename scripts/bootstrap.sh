#!/usr/bin/env bash
# Create .venv (once) and install geodiff into it. Idempotent: a second run installs nothing new.
# A torch already importable in the venv (e.g. a CUDA build) is kept; otherwise the CPU build is taken.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # torch 2.13.0 CPU lies on disk on this platform; elsewhere pip takes the matching build.
  .venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
fi
if ! .venv/bin/python -c "import geodiff, pytest, hypothesis, bm3d" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.geodiff-installed ]; then
  .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
  touch .venv/.geodiff-installed
fi
