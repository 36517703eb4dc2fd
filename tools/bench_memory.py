#!/usr/bin/env python3
"""Memory and time of nnc on big models: peak RSS of encode, verify and decode against the
largest tensor, at several model sizes (issue 13: bounded memory at any size).

The models are synthetic and transformer-shaped, with real statistics where it matters for a
codec: blocks of LayerNorm -> MatMul 4096x4096 -> Add, weights Laplace-distributed with a
log-normal scale per output row, a 4096x32000 `lm_head` (524 MB), every tensor in one external
data file (as exporters write models over 2 GB). They are generated tensor by tensor, so the
generator itself holds one tensor at a time.

    python3 tools/bench_memory.py [--sizes 1,4,12] [--nnc target/release/nnc] [--dir DIR]
                                  [--mode weight-domain|lossless] [--keep] [--drop-input]
                                  [--json FILE]

Prints a table. Peak RSS comes from the kernel (`/usr/bin/time -f %M`, the maximum resident
set of the process, file pages it maps included). With `--mode lossless` the decoded external
data file is also compared byte for byte with the original.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper

HIDDEN = 4096
VOCAB = 32000


def write_tensor(f, arr):
    offset = f.tell()
    b = np.ascontiguousarray(arr).tobytes()
    f.write(b)
    return offset, len(b)


def external_init(name, arr_shape, location, offset, length):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(arr_shape)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key = k
        e.value = v
    return t


def make_model(dirpath, gb, seed=0):
    """Writes model.onnx + model.bin in dirpath with about `gb` GB of weights; returns
    (total weight bytes, largest tensor bytes, tensor count)."""
    rng = np.random.default_rng(seed)
    os.makedirs(dirpath, exist_ok=True)
    block = HIDDEN * HIDDEN * 4 + 3 * HIDDEN * 4
    head = HIDDEN * VOCAB * 4
    blocks = max(1, round((gb * 1e9 - head) / block))
    inits, nodes = [], []
    largest, total = 0, 0
    x = "x"
    with open(os.path.join(dirpath, "model.bin"), "wb") as f:
        for b in range(blocks):
            scale = np.exp(rng.normal(-4.0, 0.5, size=(1, HIDDEN))).astype(np.float32)
            w = (rng.laplace(0.0, 1.0, size=(HIDDEN, HIDDEN)).astype(np.float32) * scale)
            gamma = (1.0 + 0.05 * rng.standard_normal(HIDDEN)).astype(np.float32)
            beta = (0.02 * rng.standard_normal(HIDDEN)).astype(np.float32)
            bias = (0.02 * rng.standard_normal(HIDDEN)).astype(np.float32)
            for name, arr in ((f"b{b}.ln.g", gamma), (f"b{b}.ln.b", beta),
                              (f"b{b}.w", w), (f"b{b}.bias", bias)):
                off, n = write_tensor(f, arr)
                inits.append(external_init(name, arr.shape, "model.bin", off, n))
                largest, total = max(largest, n), total + n
            nodes += [
                helper.make_node("LayerNormalization", [x, f"b{b}.ln.g", f"b{b}.ln.b"],
                                 [f"b{b}.n"], axis=-1),
                helper.make_node("MatMul", [f"b{b}.n", f"b{b}.w"], [f"b{b}.m"]),
                helper.make_node("Add", [f"b{b}.m", f"b{b}.bias"], [f"b{b}.y"]),
            ]
            x = f"b{b}.y"
        # The head, written a slice of rows at a time.
        off = f.tell()
        for r in range(0, HIDDEN, 512):
            scale = np.exp(rng.normal(-4.0, 0.5, size=(1, VOCAB))).astype(np.float32)
            part = rng.laplace(0.0, 1.0, size=(512, VOCAB)).astype(np.float32) * scale
            f.write(part.tobytes())
        inits.append(external_init("lm_head", (HIDDEN, VOCAB), "model.bin", off, head))
        largest, total = max(largest, head), total + head
        nodes.append(helper.make_node("MatMul", [x, "lm_head"], ["logits"]))
    graph = helper.make_graph(
        nodes, "synthetic_transformer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, HIDDEN])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, VOCAB])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with open(os.path.join(dirpath, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    return total, largest, len(inits)


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS bytes)."""
    t = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    secs = time.time() - t
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    rss_kb = int(r.stderr.strip().splitlines()[-1])
    return secs, rss_kb * 1024


def same_file(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 24), fb.read(1 << 24)
            if x != y:
                return False
            if not x:
                return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,4,12", help="model sizes in GB, comma-separated")
    ap.add_argument("--nnc", default="target/release/nnc")
    ap.add_argument("--dir", default="/tmp/nnc-bench-memory")
    ap.add_argument("--mode", default="weight-domain", choices=["weight-domain", "lossless"])
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--drop-input", action="store_true",
                    help="delete the generated model once encoded and verified, before decoding "
                         "(a model larger than half the free disk: its .nnc and its decoded "
                         "copy fit where the model and its decoded copy would not)")
    ap.add_argument("--json", help="write the rows as JSON here")
    a = ap.parse_args()
    nnc = os.path.abspath(a.nnc)
    rows = []
    for gb in [float(s) for s in a.sizes.split(",")]:
        d = os.path.join(a.dir, f"{gb:g}GB")
        shutil.rmtree(d, ignore_errors=True)
        t = time.time()
        total, largest, count = make_model(os.path.join(d, "in"), gb)
        gen = time.time() - t
        src = os.path.join(d, "in", "model.onnx")
        packed = os.path.join(d, "model.nnc")
        out = os.path.join(d, "out", "model.onnx")
        os.makedirs(os.path.dirname(out))
        enc_s, enc_rss = timed([nnc, "encode", src, packed, f"--{a.mode}", "--quiet"])
        ver_s, ver_rss = timed([nnc, "verify", packed, "--quiet"])
        if a.drop_input:
            shutil.rmtree(os.path.join(d, "in"))
        dec_s, dec_rss = timed([nnc, "decode", packed, out, "--quiet"])
        exact = None
        if a.mode == "lossless" and not a.drop_input:
            exact = same_file(os.path.join(d, "in", "model.bin"),
                              os.path.join(d, "out", "model.bin"))
        row = {
            "model_GB": total / 1e9, "tensors": count, "largest_MB": largest / 1e6,
            "nnc_MB": os.path.getsize(packed) / 1e6, "generate_s": gen,
            "encode_s": enc_s, "encode_rss_MB": enc_rss / 1e6,
            "verify_s": ver_s, "verify_rss_MB": ver_rss / 1e6,
            "decode_s": dec_s, "decode_rss_MB": dec_rss / 1e6,
            "decode_rss_over_largest_MB": (dec_rss - largest) / 1e6,
            "verify_rss_over_largest_MB": (ver_rss - largest) / 1e6,
            "exact": exact,
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
    print(f"nnc {a.mode}: peak RSS (kernel maxrss) against the largest tensor "
          f"({rows[0]['largest_MB']:.0f} MB)")
    print("| model GB | tensors | .nnc MB | encode s | encode RSS MB | verify s | verify RSS MB "
          "| decode s | decode RSS MB | decode RSS - largest MB | exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model_GB']:.2f} | {r['tensors']} | {r['nnc_MB']:.0f} | {r['encode_s']:.1f} "
              f"| {r['encode_rss_MB']:.0f} | {r['verify_s']:.1f} | {r['verify_rss_MB']:.0f} "
              f"| {r['decode_s']:.1f} | {r['decode_rss_MB']:.0f} "
              f"| {r['decode_rss_over_largest_MB']:.0f} "
              f"| {'' if r['exact'] is None else ('yes' if r['exact'] else 'NO')} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
