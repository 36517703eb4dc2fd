#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (see fuzz/README.md) for SECONDS each (default 60), one
# after the other in one process each, with AddressSanitizer, debug assertions (overflow
# checks) and the allocation guards: an allocation of 64 MB or more, RSS above 2 GB or one
# input taking over 20 s counts as a crash. `hostile_graph` (structure-aware hostile graphs)
# runs under the promises of spec §10-§11 instead: no allocation over 16 MB, inputs of at
# most 1 KB, 5 s each (1 s per KB under the sanitizer's slowdown), RSS under 1 GB (the
# AddressSanitizer's own quarantine and shadow included; 64 MB quarantine). Exits non-zero if any target fails; crash inputs
# are in fuzz/artifacts/TARGET/, each target's log in fuzz/artifacts/TARGET.log.
#
# cargo-fuzz needs nightly flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
targets=(decode decode_mutated decode_update buf_independent roundtrip hostile_graph)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
flags=(--release --debug-assertions)

cd fuzz
cargo fuzz build "${flags[@]}"
mkdir -p artifacts
failed=()
for t in "${targets[@]}"; do
    # The committed seeds start the working corpus (fuzz/corpus/, not committed).
    mkdir -p "corpus/$t"
    cp "seeds/$t/"* "corpus/$t/"
    echo "== fuzz target $t: ${secs}s"
    limits=(-rss_limit_mb=2048 -malloc_limit_mb=64 -timeout=20)
    if [ "$t" = hostile_graph ]; then
        limits=(-rss_limit_mb=1024 -malloc_limit_mb=16 -timeout=5 -max_len=1024)
    fi
    if ASAN_OPTIONS=quarantine_size_mb=64 \
        cargo fuzz run "${flags[@]}" "$t" -- \
        -max_total_time="$secs" "${limits[@]}" \
        -print_final_stats=1 >"artifacts/$t.log" 2>&1; then
        echo "   ok: $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "artifacts/$t.log" || echo '?')"
    else
        failed+=("$t")
        echo "   FAILED (log: fuzz/artifacts/$t.log):"
        grep -m1 -A4 -E 'panicked at|==[0-9]+==ERROR|ERROR: libFuzzer|^SUMMARY' "artifacts/$t.log" | sed 's/^/   | /' || true
        grep -A2 'Failing input' "artifacts/$t.log" | sed 's/^/   | /' || true
    fi
done
if ((${#failed[@]})); then
    echo "fuzz targets failed: ${failed[*]}" >&2
    exit 1
fi
echo "all fuzz targets ran ${secs}s without a finding"
