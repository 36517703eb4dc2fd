#!/usr/bin/env python3
"""Time to the first inference in Python, from .onnx against from .nnc (issue 12, item 6).

    python3 tools/first_inference.py [MODEL.onnx ...]   (default: two corpus models)

Each measurement is a fresh interpreter that imports numpy, onnxruntime and nnc, then times
from "have a path" to "have the first output": InferenceSession(path) + run for .onnx;
InferenceSession(nnc.decode_model(path)) + run for .nnc (decoded in memory, no file). The .nnc
is the default lossy encoding. Prints the median of 5 runs of each, as a Markdown table.
"""
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import sys, time
import numpy as np, onnxruntime as ort, nnc
path = sys.argv[1]
t0 = time.perf_counter()
src = nnc.decode_model(path) if path.endswith(".nnc") else path
s = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
t1 = time.perf_counter()
feed = {}
for i in s.get_inputs():
    dims = [d if isinstance(d, int) and d > 0 else None for d in i.shape]
    if len(dims) == 4:
        dims = [dims[0] or 1, dims[1] or 3, dims[2] or 320, dims[3] or 320]
    dims = [d or 1 for d in dims]
    dt = {"tensor(float)": np.float32, "tensor(int64)": np.int64}.get(i.type, np.float32)
    feed[i.name] = np.zeros(dims, dtype=dt)
s.run(None, feed)
t2 = time.perf_counter()
print(f"{t1 - t0:.4f} {t2 - t0:.4f}")
"""


def measure(path, n=5):
    sess, total = [], []
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", CHILD, path], check=True, capture_output=True, text=True)
        a, b = map(float, out.stdout.split())
        sess.append(a)
        total.append(b)
    return statistics.median(sess), statistics.median(total)


def main():
    corpus = os.path.join(os.environ.get("NNC_CORPUS") or os.path.expanduser("~/.cache/nnc-corpus"), "models")
    models = sys.argv[1:] or [os.path.join(corpus, m) for m in ("ch_PP-OCRv4_det_infer.onnx", "320n.onnx")]
    import nnc

    print("| model | .onnx | .nnc | session from .onnx | first output | session from .nnc (decode in memory) | first output |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for m in models:
            enc = os.path.join(d, os.path.basename(m)[:-5] + ".nnc")
            nnc.encode(m, enc)
            so, to = measure(m)
            sn, tn = measure(enc)
            mb = lambda p: f"{os.path.getsize(p) / 1e6:.2f} MB"
            print(f"| {os.path.basename(m)} | {mb(m)} | {mb(enc)} | {so*1e3:.0f} ms | {to*1e3:.0f} ms | {sn*1e3:.0f} ms | {tn*1e3:.0f} ms |")


if __name__ == "__main__":
    main()
