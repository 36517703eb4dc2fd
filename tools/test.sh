#!/usr/bin/env bash
# The test command of README.md: installs what the tests need, then runs them: the library and
# the command-line tool, the C ABI (header freshness, the C example built with the system
# compiler), the layering checks, and the Python package (built from the checkout by pip and
# maturin, tested with pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export NNC_CORPUS=${NNC_CORPUS:-$HOME/.cache/nnc-corpus}
py=${PYTHON:-python3}
cargo test --release
cargo test --release -p nnc-capi
tools/check_deps.sh
target=$(cargo metadata -q --format-version 1 --no-deps | "$py" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
"$py" -m pip install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./python
NNC_BIN="$target/release/nnc" "$py" -m pytest -q python/tests
