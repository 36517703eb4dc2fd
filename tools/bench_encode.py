#!/usr/bin/env python3
"""Encode speed and where its time goes (issue 13, "encode that keeps up"), every corpus model.

    python3 tools/bench_encode.py [--models DIR] [--only NAME ...] [--runs 1]
                                  [--out FILE.md] [--json FILE.json]

Per model, in one run:
  * the default encode (`nnc encode M.onnx F.nnc --json`: the model is run, steps allocated by
    sensitivity, the decoded model checked) on all cores and on one core (`taskset -c 0`: the
    encoder's threads and onnxruntime's then share one core). Its wall time splits into the
    time in onnxruntime (building sessions, running the model: `runtime_seconds` of the JSON
    report, summed over the encoder's calls) and the rest, the encoder's own work (reading,
    rate-distortion curves, quantizing, coding, checking the payloads, writing). On one core
    that rest is CPU time, so float MB / own seconds there is the "MB/s per core" of the
    issue's target (>= 200), model runs excluded;
  * `--weight-domain` (no model runs: one step rule for every tensor) on one core;
  * zstd -3 on one core, compressing the same .onnx file, for scale;
  * whether the one-core and all-core default encodes wrote the same bytes (they must).
Float MB: bytes of the model's float tensors (float32/16, bfloat16, float64) as stored.
Times are the best of --runs. Every number is measured in this run.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_common import corpus_models, emit  # noqa: E402

NNC = os.path.join(ROOT, "target", "release", "nnc")
FLOAT_TYPES = {"float", "float16", "double", "bfloat16"}
ONE_CORE = ["taskset", "-c", "0"]


def timed(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()[-400:]}")
    return wall, p.stdout


def encode(model, out, runs, prefix=(), flags=()):
    best = None
    for _ in range(runs):
        if os.path.exists(out):
            os.remove(out)
        wall, stdout = timed(list(prefix) + [NNC, "encode", model, out, "--json", "--quiet"] + list(flags))
        rep = json.loads(stdout)
        if best is None or wall < best[0]:
            best = (wall, rep)
    return best


def measure(model, work, a):
    name = os.path.basename(model)[:-5]
    print(f"[bench] {name}", file=sys.stderr)
    all_out = os.path.join(work, name + ".all.nnc")
    one_out = os.path.join(work, name + ".one.nnc")
    wall, rep = encode(model, all_out, a.runs)
    wall1, rep1 = encode(model, one_out, a.runs, prefix=ONE_CORE)
    wd_out = os.path.join(work, name + ".wd.nnc")
    wall_wd, _ = encode(model, wd_out, a.runs, prefix=ONE_CORE, flags=["--weight-domain"])
    zst = os.path.join(work, name + ".zst")
    zstd_s = min(timed(ONE_CORE + ["zstd", "-3", "-q", "-f", "-T1", model, "-o", zst])[0] for _ in range(a.runs))
    float_bytes = sum(t["data_bytes"] for t in rep["tensors"] if t.get("dtype") in FLOAT_TYPES)
    same = open(all_out, "rb").read() == open(one_out, "rb").read()
    return {
        "model": name,
        "onnx_bytes": os.path.getsize(model),
        "float_bytes": float_bytes,
        "ratio": rep["input_bytes"] / rep["total_bytes"],
        "calibrated": rep.get("calibration_seconds", 0.0) > 0,
        "wall_s": wall, "runtime_s": rep.get("runtime_seconds", 0.0),
        "wall_1core_s": wall1, "runtime_1core_s": rep1.get("runtime_seconds", 0.0),
        "weight_domain_1core_s": wall_wd,
        "zstd3_1core_s": zstd_s,
        "same_bytes": same,
    }


def render(rows):
    L = []
    L.append("Encode speed (tools/bench_encode.py). Float MB: the model's float tensors as stored. "
             "Own = wall time minus time in onnxruntime; on one core (taskset -c 0) that is the "
             "encoder's CPU time, so float MB / own s there is MB/s per core (target >= 200). "
             "zstd -3 compresses the whole .onnx on one core, for scale.")
    L.append("")
    L.append("| model | float MB | ratio | all cores: wall s | in runtime s | own s | one core: wall s "
             "| in runtime s | own s | **own MB/s per core** | --weight-domain one core MB/s | zstd -3 MB/s "
             "| same bytes |")
    L.append("|" + "---|" * 13)
    tot_mb = tot_own = 0.0
    for r in rows:
        mb = r["float_bytes"] / 1e6
        own = r["wall_s"] - r["runtime_s"]
        own1 = r["wall_1core_s"] - r["runtime_1core_s"]
        tot_mb += mb
        tot_own += own1
        L.append(
            f"| {r['model']} | {mb:.1f} | {r['ratio']:.2f}x | {r['wall_s']:.2f} | {r['runtime_s']:.2f} | {own:.2f} "
            f"| {r['wall_1core_s']:.2f} | {r['runtime_1core_s']:.2f} | {own1:.2f} | **{mb / own1:.1f}** "
            f"| {mb / r['weight_domain_1core_s']:.0f} | {r['onnx_bytes'] / 1e6 / r['zstd3_1core_s']:.0f} "
            f"| {'yes' if r['same_bytes'] else '**NO**'} |")
    if tot_own > 0:
        L.append("")
        L.append(f"All models: {tot_mb:.0f} float MB, {tot_own:.1f} s of the encoder's own work on one core: "
                 f"{tot_mb / tot_own:.1f} MB/s per core (target 200).")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.path.join(os.environ.get("NNC_CORPUS", os.path.expanduser("~/.cache/nnc-corpus")), "models"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()
    for tool in ("taskset", "zstd"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_encode: needs {tool}")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="nnc-bench-encode-", dir=a.work)
    try:
        models = corpus_models(a.models, a.only)
        rows = [measure(m, work, a) for m in models]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(render(rows), rows, a.out, a.json)


if __name__ == "__main__":
    main()
