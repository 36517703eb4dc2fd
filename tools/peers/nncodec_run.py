"""Run Fraunhofer's NNCodec (MPEG NNC reference) on every float32 tensor of an ONNX model.

Usage: VENV/bin/python tools/peers/nncodec_run.py MODEL.onnx [QP ...] [--dq on|off]
Prints one JSON line per (QP, dependent quantization on/off, or only the one --dq names): bitstream bytes, weight MSE over
all float32 tensors, encode/decode wall seconds of NNCodec's own encode()/decode() calls.
NNCodec's weight step is 2**(QP/4); one-dimensional tensors use its nonweight_qp (-75).
The tensor set is the one tools/bench.py uses for nnc (tools/bench_tensors.py).
"""
import contextlib, io, json, os, sys, tempfile, time, warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_tensors import float32_tensors  # noqa: E402

warnings.filterwarnings("ignore")


def main():
    from nncodec.nn import decode, encode
    argv = sys.argv[1:]
    dqs = (True, False)
    if "--dq" in argv:
        i = argv.index("--dq")
        dqs = (argv[i + 1] == "on",)
        del argv[i:i + 2]
    path = argv[0]
    qps = [int(q) for q in argv[1:]] or [-32]
    # NNCodec 2.1.3 fails on 0-d tensors (IndexError): scalars travel as shape (1,).
    params = {f"t{i}_{k}"[:60]: np.atleast_1d(v) for i, (k, v) in enumerate(float32_tensors(path))}
    n = sum(a.size for a in params.values())
    results = tempfile.mkdtemp(prefix="nncodec-")
    for qp in qps:
        for dq in dqs:
            args = {"qp": qp, "use_dq": dq, "verbose": False, "results": results}
            with contextlib.redirect_stdout(io.StringIO()):
                t = time.perf_counter(); bitstream = encode(params, args=args); enc = time.perf_counter() - t
                t = time.perf_counter(); rec = decode(bitstream); dec = time.perf_counter() - t
            sq = sum(float(((a.astype(np.float64) - np.asarray(rec[k], dtype=np.float64).reshape(a.shape)) ** 2).sum())
                     for k, a in params.items())
            print(json.dumps({"qp": qp, "dq": dq, "params": n, "bytes": len(bitstream), "mse": sq / n,
                              "encode_s": enc, "decode_s": dec}), flush=True)


if __name__ == "__main__":
    main()
