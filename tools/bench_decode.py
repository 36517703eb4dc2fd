#!/usr/bin/env python3
"""Decode speed side by side in one run (issue 13): nnc against zstd -d, NNCodec, ZipNN and
memcpy, on every corpus model and on one synthetic model of about 600 MB.

    python3 tools/bench_decode.py [--models DIR] [--only NAME ...] [--no-nncodec] [--no-big]
                                  [--runs 3] [--against OLD_NNC] [--out FILE.md] [--json FILE.json]

Per model, the .nnc is the default encode (`nnc encode M.onnx M.nnc`) and the zstd file is
`zstd -19` of the same .onnx (`-9` above 100 MB, where -19 would take minutes; zstd's decoding
speed hardly depends on the level). Every time is the best of --runs wall-clock runs:

  * `nnc verify F.nnc`: reads the file and decodes every tensor, writes nothing (2 threads, and
    1 thread with RAYON_NUM_THREADS=1);
  * `nnc decode F.nnc OUT.onnx`: the decoded ONNX file, written (renamed into place whole, not
    synced, as zstd), and `nnc decode --sync` (synced to disk before the rename);
  * in memory: `nnc.decode_model(bytes)` of the Python package, in process (no start-up);
  * `zstd -d -f F.zst -o OUT.onnx`: the same ONNX file, from zstd (not synced);
  (every output is a new file: the previous one is removed before each run, untimed)
  * NNCodec 2.1.3: its decode() of its own bitstream of the model's float32 tensors (QP -32,
    dependent quantization on), in process;
  * ZipNN: decompress() of the float32 tensors' bytes, in process (when zipnn is installed);
  * memcpy: numpy copy of a buffer of the ONNX file's size.

MB/s count decoded bytes: the ONNX file's size for nnc, zstd and memcpy, the float32 weight
bytes for NNCodec and ZipNN. Ratios compare times on the same work: zstd -d / nnc decode (above
1: nnc faster), NNCodec / nnc verify (both decode every float32 tensor and write nothing; nnc
as a process, start-up included, NNCodec in process), NNCodec / nnc in memory (both in
process; nnc also assembles the whole ONNX model's bytes).
Every number is measured in this run.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_common import corpus_models, emit  # noqa: E402
from bench_tensors import float32_tensors  # noqa: E402

NNC = os.path.join(ROOT, "target", "release", "nnc")


def best(runs, fn, before=None):
    ts = []
    for _ in range(runs):
        if before:
            before()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.decode(errors='replace')[-500:]}")
    return p.stdout


def nncodec_decode_s(model, venv):
    py = os.path.join(venv, "bin", "python")
    out = run([py, os.path.join(HERE, "peers", "nncodec_run.py"), model, "-32", "--dq", "on"])
    rows = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    return rows[0]


def zipnn_decode_s(weights, runs):
    try:
        import zipnn
    except Exception:
        return None
    raw = b"".join(a.astype(np.float32).tobytes() for _, a in weights)
    z = zipnn.ZipNN(input_format="byte", bytearray_dtype="float32")
    # ZipNN 0.5.4 reorders the bytes of its input in place (even of an immutable `bytes`):
    # it gets a copy, so that `raw` stays the reference for the round trip.
    c = z.compress(bytearray(raw))
    s = best(runs, lambda: z.decompress(c))
    return {"bytes": len(c), "decode_s": s, "roundtrip": bytes(z.decompress(c)) == raw}


def big_model(work):
    """About 600 MB of transformer-shaped weights (tools/bench_memory.py's generator), inlined
    into one ONNX file."""
    import onnx
    from bench_memory import make_model
    d = os.path.join(work, "big")
    make_model(d, 0.6)
    m = onnx.load(os.path.join(d, "model.onnx"), load_external_data=True)
    for t in m.graph.initializer:
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT
    path = os.path.join(work, "synthetic_600mb.onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    del m
    shutil.rmtree(d)
    return path


def measure(path, work, a):
    import nnc
    name = os.path.basename(path)
    size = os.path.getsize(path)
    weights = float32_tensors(path)
    wbytes = 4 * sum(x.size for _, x in weights)
    f = os.path.join(work, "m.nnc")
    z = os.path.join(work, "m.zst")
    out = os.path.join(work, "out.onnx")
    print(f"[bench] {name}: encoding", file=sys.stderr)
    run([NNC, "encode", path, f])
    level = 19 if size < 100e6 else 9
    run(["zstd", f"-{level}", "-T0", "-q", "-f", path, "-o", z])
    r = {"model": name, "onnx_bytes": size, "float_bytes": wbytes, "nnc_bytes": os.path.getsize(f),
         "zstd_level": level, "zstd_bytes": os.path.getsize(z)}
    print(f"[bench] {name}: timing", file=sys.stderr)
    one = dict(os.environ, RAYON_NUM_THREADS="1")
    r["verify_s"] = best(a.runs, lambda: run([NNC, "verify", f]))
    r["verify_1t_s"] = best(a.runs, lambda: run([NNC, "verify", f], env=one))
    # Both write a new file (the output removed before each run, untimed): replacing a file
    # by renaming over it makes ext4 flush the new one first, which writing it in place does not.
    fresh = lambda: os.path.exists(out) and os.remove(out)
    if a.against:
        # Another build's decode of the same file, runs interleaved with this one's, so that
        # the machine's drift between runs falls on both alike.
        mine, theirs = [], []
        for _ in range(a.runs):
            for cmd, ts in (([NNC, "decode", f, out], mine), ([a.against, "decode", f, out], theirs)):
                fresh()
                t = time.perf_counter()
                run(cmd)
                ts.append(time.perf_counter() - t)
        r["decode_s"], r["against_decode_s"] = min(mine), min(theirs)
    else:
        r["decode_s"] = best(a.runs, lambda: run([NNC, "decode", f, out]), fresh)
    r["decode_sync_s"] = best(a.runs, lambda: run([NNC, "decode", "--sync", f, out]), fresh)
    data = open(f, "rb").read()
    r["in_memory_s"] = best(a.runs, lambda: nnc.decode_model(data))
    r["zstd_s"] = best(a.runs, lambda: run(["zstd", "-d", "-q", "-f", z, "-o", out]), fresh)
    buf = np.frombuffer(os.urandom(1 << 20) * max(1, size >> 20), dtype=np.uint8)
    dst = np.empty_like(buf)
    r["memcpy_s"] = best(max(a.runs, 5), lambda: np.copyto(dst, buf)) * size / buf.size
    r["zipnn"] = zipnn_decode_s(weights, a.runs)
    r["nncodec"] = None
    if not a.no_nncodec and not (a.no_nncodec_big and size > 100e6):
        print(f"[bench] {name}: NNCodec", file=sys.stderr)
        try:
            r["nncodec"] = nncodec_decode_s(path, a.venv)
        except RuntimeError as e:
            # NNCodec refuses some models (e.g. "Prevention of integer-overflow failed!" in its
            # quantizer): the row says so instead of ending the benchmark.
            last = [x for x in str(e).splitlines() if x.strip()][-1:]
            r["nncodec_error"] = (last[0].strip() if last else "failed")[:120]
            print(f"[bench] {name}: NNCodec failed: {r['nncodec_error']}", file=sys.stderr)
    return r


def fmt(x, spec="", none="n/a"):
    return none if x is None else format(x, spec)


def render(rows):
    L = ["| model | .onnx MB | nnc MB | zstd MB (level) | nnc verify MB/s (2 thr / 1 thr) | "
         "nnc decode to file MB/s (--sync) | nnc in memory MB/s | zstd -d MB/s | memcpy MB/s | "
         "NNCodec dec MB/s | ZipNN dec MB/s | zstd -d / nnc decode | NNCodec / nnc verify | "
         "NNCodec / nnc in memory |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mb = r["onnx_bytes"] / 1e6
        wmb = r["float_bytes"] / 1e6
        nc, zn = r["nncodec"], r["zipnn"]
        L.append(
            f"| {r['model']} | {mb:.1f} | {r['nnc_bytes']/1e6:.2f} | {r['zstd_bytes']/1e6:.2f} (-{r['zstd_level']}) | "
            f"{mb/r['verify_s']:.0f} / {mb/r['verify_1t_s']:.0f} | {mb/r['decode_s']:.0f} ({mb/r['decode_sync_s']:.0f}) | "
            f"{mb/r['in_memory_s']:.0f} | {mb/r['zstd_s']:.0f} | {mb/r['memcpy_s']:.0f} | "
            f"{fmt(nc and wmb/nc['decode_s'], '.1f')} | {fmt(zn and wmb/zn['decode_s'], '.0f')}{'' if not zn or zn['roundtrip'] else ' (not exact)'} | "
            f"**{r['zstd_s']/r['decode_s']:.2f}** | **{fmt(nc and nc['decode_s']/r['verify_s'], '.1f')}** | "
            f"**{fmt(nc and nc['decode_s']/r['in_memory_s'], '.1f')}** |")
    if any("against_decode_s" in r for r in rows):
        L += ["", "| model | nnc decode ms | --against decode ms | this / --against |", "|---|---|---|---|"]
        L += [f"| {r['model']} | {1e3*r['decode_s']:.2f} | {1e3*r['against_decode_s']:.2f} | "
              f"**{r['decode_s']/r['against_decode_s']:.3f}** |" for r in rows if "against_decode_s" in r]
    failed = [r for r in rows if r.get("nncodec_error")]
    if failed:
        L.append("")
        L += [f"NNCodec failed on {r['model']}: `{r['nncodec_error']}`" for r in failed]
    return "\n".join(L)


def main():
    global NNC
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.path.join(os.environ.get("NNC_CORPUS", os.path.expanduser("~/.cache/nnc-corpus")), "models"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-nncodec", action="store_true")
    ap.add_argument("--no-nncodec-big", action="store_true", help="skip NNCodec on the 600 MB model (it takes minutes)")
    ap.add_argument("--no-big", action="store_true", help="skip the 600 MB synthetic model")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nnc", default=NNC, help="the nnc binary (default: this tree's release build)")
    ap.add_argument("--against", metavar="NNC", help="another nnc binary (e.g. an earlier commit's "
                    "release build) whose decode of the same files is timed interleaved with this one's")
    ap.add_argument("--venv", default=os.path.expanduser("~/.cache/nnc-peers/nncodec-venv"))
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()
    NNC = a.nnc
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    if not a.no_nncodec and not os.path.exists(os.path.join(a.venv, "bin", "python")):
        subprocess.run(["bash", os.path.join(HERE, "peers", "install-nncodec.sh"), a.venv], check=True)
    work = tempfile.mkdtemp(prefix="nnc-bench-decode-", dir=a.work)
    try:
        models = corpus_models(a.models, a.only)
        if not a.no_big:
            print("[bench] generating the 600 MB synthetic model", file=sys.stderr)
            models.append(big_model(work))
        rows = [measure(m, work, a) for m in models]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(render(rows), rows, a.out, a.json)


if __name__ == "__main__":
    main()
