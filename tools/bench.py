#!/usr/bin/env python3
"""nnc against its peers, side by side in one run: prints a table (markdown) and writes JSON.

    python3 tools/bench.py [--models DIR] [--only NAME ...] [--no-nncodec] \
        [--out tools/bench-report.md] [--json tools/bench-report.json]

For each corpus model:
  * lossless: nnc --lossless vs `zstd -19` on the whole .onnx, and nnc's planes vs ZipNN on the
    float32 weight bytes;
  * lossy: nnc's default, nnc at NNCodec's step (2^-8, QP -32), NNCodec QP -32 with dependent
    quantization on and off, and nnc at equal or lower weight MSE than each NNCodec run
    (the largest fixed step whose MSE over all float32 tensors is <= NNCodec's, by bisection);
  * speeds: encode and decode MB/s of float32 weights (4 bytes x params / wall seconds; nnc's
    decode is `nnc verify`, which reads the file and decodes every tensor; NNCodec's times are its
    own encode()/decode() calls), nnc's decode also on one thread (RAYON_NUM_THREADS=1);
  * peak resident memory of each process (/usr/bin/time).
Ratios are peer / nnc for sizes (above 1: nnc smaller) and nnc / peer for speeds (above 1: nnc
faster). Every number is measured in this run; nothing is copied from elsewhere.
"""
import argparse, json, math, os, shutil, subprocess, sys, tempfile, time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_tensors import float32_tensors  # noqa: E402

NNC = os.path.join(ROOT, "target", "release", "nnc")


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout, wall seconds, peak RSS MB)."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".time") as tf:
        full = ["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd
        t = time.perf_counter()
        p = subprocess.run(full, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()[-500:]}")
        rss = int(open(tf.name).read().strip().splitlines()[-1]) / 1024
    return p.stdout, wall, rss


def mse(orig, path):
    dec = dict(float32_tensors(path))
    se, n = 0.0, 0
    for name, a in orig:
        b = dec[name].astype(np.float64)
        se += float(((a.astype(np.float64) - b.reshape(a.shape)) ** 2).sum())
        n += a.size
    return se / n


def nnc_point(model, orig, work, flags, tag):
    out = os.path.join(work, f"{tag}.nnc")
    dec = os.path.join(work, f"{tag}.onnx")
    js, enc_s, enc_rss = timed([NNC, "encode", model, out, "--json"] + flags)
    rep = json.loads(js)
    _, _, dec_rss = timed([NNC, "decode", out, dec])
    v = json.loads(timed([NNC, "verify", out, "--json"])[0])
    v1 = json.loads(timed([NNC, "verify", out, "--json"], env=dict(os.environ, RAYON_NUM_THREADS="1"))[0])
    return {
        "bytes": os.path.getsize(out), "report": rep, "mse": mse(orig, dec),
        "encode_s": rep["seconds"], "encode_wall_s": enc_s, "decode_s": v["seconds"], "decode_1t_s": v1["seconds"],
        "peak_mb_encode": enc_rss, "peak_mb_decode": dec_rss,
    }


# nnc variants compared at equal MSE: (label, extra encoder flags).
VARIANTS = [
    ("nnc --step", []),
    ("nnc --step --rdo 0.1155", ["--rdo", "0.1155"]),
    ("nnc --step --rdo 0.1155 --fine-bits 10", ["--rdo", "0.1155", "--fine-bits", "10"]),
]


def nnc_at_mse(model, orig, work, target, tag, extra):
    """Largest fixed step with MSE <= target (bisection on log2 step)."""
    lo, hi = -16.0, -2.0
    best = None
    for _ in range(8):
        mid = (lo + hi) / 2
        p = nnc_point(model, orig, work, ["--step", repr(2 ** mid)] + extra, tag)
        if p["mse"] <= target:
            best, lo = dict(p, step=2 ** mid), mid
        else:
            hi = mid
    return best


def nncodec(model, venv):
    py = os.path.join(venv, "bin", "python")
    out, wall, rss = timed([py, os.path.join(HERE, "peers", "nncodec_run.py"), model, "-32"])
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    for r in rows:
        r["peak_mb"] = rss
    return rows


def zipnn_bytes(orig):
    try:
        import zipnn
    except Exception:
        return None
    raw = b"".join(a.astype(np.float32).tobytes() for _, a in orig)
    z = zipnn.ZipNN(input_format="byte", bytearray_dtype="float32")
    t = time.perf_counter()
    # ZipNN 0.5.4 reorders the bytes of its input in place (even of an immutable `bytes`):
    # it gets a copy, so that `raw` stays the reference for the round trip.
    c = z.compress(bytearray(raw))
    enc = time.perf_counter() - t
    t = time.perf_counter()
    back = z.decompress(c)
    dec = time.perf_counter() - t
    return {"bytes": len(c), "roundtrip": bytes(back) == raw, "encode_s": enc, "decode_s": dec}


def zstd19(model):
    t = time.perf_counter()
    p = subprocess.run(["zstd", "-19", "-q", "-c", model], capture_output=True)
    enc = time.perf_counter() - t
    return {"bytes": len(p.stdout), "encode_s": enc}


def fmt(x, spec):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.path.join(os.environ.get("NNC_CORPUS", os.path.expanduser("~/.cache/nnc-corpus")), "models"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-nncodec", action="store_true")
    ap.add_argument("--venv", default=os.path.expanduser("~/.cache/nnc-peers/nncodec-venv"))
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    if not a.no_nncodec and not os.path.exists(os.path.join(a.venv, "bin", "python")):
        subprocess.run(["bash", os.path.join(HERE, "peers", "install-nncodec.sh"), a.venv], check=True)
    models = sorted(f for f in os.listdir(a.models) if f.endswith(".onnx"))
    if a.only:
        models = [m for m in models if any(o in m for o in a.only)]
    results = []
    for m in models:
        path = os.path.join(a.models, m)
        orig = float32_tensors(path)
        params = sum(x.size for _, x in orig)
        work = tempfile.mkdtemp(prefix="nnc-bench-")
        r = {"model": m, "onnx_bytes": os.path.getsize(path), "params": params}
        print(f"[bench] {m}: lossless", file=sys.stderr)
        ll = nnc_point(path, orig, work, ["--lossless"], "lossless")
        ll_w = sum(t["payload_bytes"] for t in ll["report"]["tensors"] if t["dtype"] == "float")
        r["lossless"] = {"nnc": ll, "nnc_float_weight_bytes": ll_w, "zstd19": zstd19(path), "zipnn": zipnn_bytes(orig)}
        print(f"[bench] {m}: nnc lossy", file=sys.stderr)
        r["nnc_default"] = nnc_point(path, orig, work, [], "default")
        r["nnc_step8"] = nnc_point(path, orig, work, ["--step", repr(2 ** -8)], "step8")
        if not a.no_nncodec:
            print(f"[bench] {m}: NNCodec", file=sys.stderr)
            r["nncodec"] = nncodec(path, a.venv)
            for row in r["nncodec"]:
                tag = "dq" if row["dq"] else "nodq"
                for vi, (label, extra) in enumerate(VARIANTS):
                    print(f"[bench] {m}: {label} at NNCodec {tag} MSE", file=sys.stderr)
                    r[f"nnc_at_mse_{tag}_{vi}"] = nnc_at_mse(path, orig, work, row["mse"], tag, extra)
        shutil.rmtree(work, ignore_errors=True)
        results.append(r)
    text = render(results)
    print(text)
    if a.out:
        open(a.out, "w").write(text + "\n")
    if a.json:
        json.dump(strip(results), open(a.json, "w"), indent=1)


def strip(results):
    """JSON without the per-tensor lists (kept small for the committed report)."""
    def s(v):
        if isinstance(v, dict):
            return {k: s(x) for k, x in v.items() if k != "tensors"}
        if isinstance(v, list):
            return [s(x) for x in v]
        return v
    return s(results)


def render(results):
    L = []
    L.append("## Lossless (bit-exact)")
    L.append("")
    L.append("| model | .onnx bytes | nnc bytes | nnc ratio | zstd -19 ratio | zstd/nnc | float32 weight bytes | nnc planes ratio | ZipNN ratio | ZipNN/nnc | nnc enc MB/s | nnc dec MB/s |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ll = r["lossless"]
        n = ll["nnc"]
        wb = 4 * r["params"]
        zb = ll["zipnn"]["bytes"] if ll["zipnn"] else None
        L.append(f"| {r['model']} | {r['onnx_bytes']} | {n['bytes']} | {r['onnx_bytes']/n['bytes']:.3f} | "
                 f"{r['onnx_bytes']/ll['zstd19']['bytes']:.3f} | {ll['zstd19']['bytes']/n['bytes']:.3f} | {wb} | "
                 f"{wb/ll['nnc_float_weight_bytes']:.3f} | {fmt(wb/zb if zb else None, '.3f')} | "
                 f"{fmt(zb/ll['nnc_float_weight_bytes'] if zb else None, '.3f')} | "
                 f"{wb/1e6/n['encode_s']:.0f} | {wb/1e6/n['decode_s']:.0f} |")
    L.append("")
    L.append("## Lossy: nnc and NNCodec 2.1.3 (all float32 tensors; bits/weight = 8 x bytes / params; MSE over all float32 weights)")
    L.append("")
    L.append("| model | codec / setting | bytes | bits/weight | H (bits/q-weight) | coded bits/q-weight | weight MSE | enc MB/s | dec MB/s (2 thr) | dec MB/s (1 thr) | peak MB enc/dec | size: peer/nnc | dec speed: nnc/peer | enc speed: nnc/peer |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        P = r["params"]
        wb = 4 * P

        def nrow(label, p):
            if not p:
                L.append(f"| {r['model']} | {label} | n/a (no step reached the MSE) | | | | | | | | | | | |")
                return
            rep = p["report"]
            L.append(f"| {r['model']} | {label} | {p['bytes']} | {8*p['bytes']/P:.3f} | {rep['entropy_bits_per_weight']:.3f} | "
                     f"{rep['coded_bits_per_weight']:.3f} | {p['mse']:.3e} | {wb/1e6/p['encode_s']:.0f} | {wb/1e6/p['decode_s']:.0f} | "
                     f"{wb/1e6/p['decode_1t_s']:.0f} | {p['peak_mb_encode']:.0f}/{p['peak_mb_decode']:.0f} | | | |")
        nrow("nnc default (σ/16 per channel)", r["nnc_default"])
        nrow("nnc --step 2^-8", r["nnc_step8"])
        for row in r.get("nncodec", []):
            tag = "dq" if row["dq"] else "nodq"
            L.append(f"| {r['model']} | NNCodec QP -32, DQ {'on' if row['dq'] else 'off'} | {row['bytes']} | {8*row['bytes']/P:.3f} | | | "
                     f"{row['mse']:.3e} | {wb/1e6/row['encode_s']:.1f} | {wb/1e6/row['decode_s']:.1f} | | {row['peak_mb']:.0f} | | | |")
            for vi, (label, _) in enumerate(VARIANTS):
                mine = r.get(f"nnc_at_mse_{tag}_{vi}")
                if not mine:
                    L.append(f"| {r['model']} | {label}: no step reached MSE <= DQ {'on' if row['dq'] else 'off'} | | | | | | | | | | | | |")
                    continue
                rep = mine["report"]
                L.append(f"| {r['model']} | {label} 2^{math.log2(mine['step']):.2f} (MSE <= DQ {'on' if row['dq'] else 'off'}) | {mine['bytes']} | "
                         f"{8*mine['bytes']/P:.3f} | {rep['entropy_bits_per_weight']:.3f} | {rep['coded_bits_per_weight']:.3f} | {mine['mse']:.3e} | "
                         f"{wb/1e6/mine['encode_s']:.0f} | {wb/1e6/mine['decode_s']:.0f} | {wb/1e6/mine['decode_1t_s']:.0f} | "
                         f"{mine['peak_mb_encode']:.0f}/{mine['peak_mb_decode']:.0f} | **{row['bytes']/mine['bytes']:.3f}** | "
                         f"**{row['decode_s']/mine['decode_s']:.1f}** | **{row['encode_s']/mine['encode_s']:.1f}** |")
    L.append("")
    L.append("H: order-0 entropy of the quantized levels per quantized weight (the thesis's ideal coder); coded bits/q-weight: "
             "nnc's level payloads (model descriptions included) per quantized weight. nnc keeps tensors under 1024 elements "
             "and non-weight inputs exact (the small ones inside the graph); their bytes, and the graph's, are in 'bytes' "
             "and 'bits/weight'. NNCodec's bitstream holds the float32 tensors only, no graph.")
    return "\n".join(L)


if __name__ == "__main__":
    main()
