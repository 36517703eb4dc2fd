#!/usr/bin/env bash
# Measures the nnc CLI on the hostile inputs of issue 11 (tests/hostile/gen.rs writes them:
# `NNC_HOSTILE_DIR=DIR cargo test --release --test hostile write_cases`): for each case the
# command, its exit status, peak RSS (/usr/bin/time -v), wall time, the first line of its
# error, and any file it left in its fresh output directory. Cases are killed after TIMEOUT s.
#   tools/hostile.sh NNC_BINARY CASE_DIR [TIMEOUT]
set -uo pipefail
nnc=$1 dir=$2 timeout=${3:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '| case | command | exit | peak RSS MB | wall s | outcome | left behind |\n|---|---|---|---|---|---|---|\n'
run() { # case command args...
    local case=$1; shift
    local out="$work/out"; rm -rf "$out"; mkdir -p "$out"
    ( cd "$out" && /usr/bin/time -v -o "$work/time" timeout --foreground -k 5 -s TERM "$timeout" "$@" >"$work/stdout" 2>"$work/stderr" )
    local rc=$?
    local rss wall msg left
    rss=$(awk -F': ' '/Maximum resident/{printf "%.1f", $2/1024}' "$work/time")
    wall=$(awk -F': ' '/Elapsed \(wall/{print $2}' "$work/time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    msg=$(grep -v '^Command' "$work/stderr" | head -c 300 | head -1 | cut -c1-110 | tr '|' '/')
    { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && msg="killed after ${timeout}s: ${msg}"
    [ "$rc" = 134 ] && msg="SIGABRT: ${msg}"
    left=$(cd "$out" && find . -mindepth 1 -printf '%p(%s) ' | cut -c1-80)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$case" "$2" "$rc" "$rss" "$wall" "$msg" "$left"
}
for f in "$dir"/*.nnc; do
    c=$(basename "$f")
    run "$c" "$nnc" verify "$f"
    case $c in external-*|sparse-*) run "$c" "$nnc" decode "$f" m.onnx ;; esac
done
for f in "$dir"/*.onnx; do
    run "$(basename "$f")" "$nnc" encode "$f" out.nnc
done
