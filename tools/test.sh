#!/usr/bin/env bash
# The test command of README.md: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export NNC_CORPUS=${NNC_CORPUS:-$HOME/.cache/nnc-corpus}
cargo test --release
