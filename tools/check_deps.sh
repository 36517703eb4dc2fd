#!/usr/bin/env bash
# The layers as the issue promises them (CI runs this through tools/test.sh):
# - the library without the `cli` feature has none of clap, serde_json, statrs, argmin (nor the model
#   runtime's ort, indicatif, zip, half) in its dependency tree, with or without the encoder
#   (sha2 is the decoder's: the identity of an update's base, spec §14.1);
# - the decoder-only static library of the C ABI holds no code of the analysis, sweep or
#   conformance modules, nor of clap or serde_json (checked on its symbols);
# - the public API is documented: `missing_docs` denied on the decoder and encoder builds.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check_deps: $*" >&2; exit 1; }
cli_deps='^(clap|clap_builder|clap_derive|serde_json|statrs|argmin|argmin-math|ort|ort-sys|indicatif|zip|half) v'

for feats in "" "encoder"; do
  tree=$(cargo tree -q -p nnc --no-default-features ${feats:+--features $feats} -e normal --prefix none)
  if bad=$(grep -E "$cli_deps" <<<"$tree"); then
    fail "nnc --no-default-features ${feats:+--features $feats} depends on: $(echo $bad)"
  fi
done
tree=$(cargo tree -q -p nnc-capi -e normal --prefix none)
if bad=$(grep -E "$cli_deps" <<<"$tree"); then fail "nnc-capi depends on: $(echo $bad)"; fi

cargo build -q --release -p nnc-capi
target=$(cargo metadata -q --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
lib="$target/release/libnnc_capi.a"
[[ -f $lib ]] || fail "$lib not built"
syms=$(nm -C --defined-only "$lib" 2>/dev/null || true)
[[ -n $syms ]] || fail "no symbols read from $lib"
if bad=$(grep -E 'nnc::(analysis|conformance|encoder|runtime)::|clap(_builder)?::|serde_json::' <<<"$syms" | head -n 5); then
  fail "decoder-only static library holds CLI or encoder code:
$bad"
fi

for feats in "" "encoder"; do
  cargo rustc -q -p nnc --lib --no-default-features ${feats:+--features $feats} -- -D missing_docs
done
echo "check_deps: library without cli: no clap/serde_json/runtime dependencies; static library $(du -k "$lib" | cut -f1) KiB without CLI, analysis or encoder code; public API documented"
