"""The float32 tensors of an ONNX model, wherever they live, in a fixed order: initializers,
Constant/attribute tensors, subgraphs (If/Loop/Scan), functions. Shared by tools/bench.py and
tools/peers/nncodec_run.py so that every codec is measured on the same weights."""
import onnx
from onnx import numpy_helper


def _graph(g, out):
    for t in g.initializer:
        out.append(t)
    for n in g.node:
        _node(n, out)


def _node(n, out):
    for a in n.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out.append(a.t if not a.t.name and not n.output else _named(a.t, n.output[0] if n.output else a.t.name))
        elif a.type == onnx.AttributeProto.TENSORS:
            out.extend(a.tensors)
        elif a.type == onnx.AttributeProto.GRAPH:
            _graph(a.g, out)
        elif a.type == onnx.AttributeProto.GRAPHS:
            for s in a.graphs:
                _graph(s, out)


def _named(t, name):
    c = onnx.TensorProto()
    c.CopyFrom(t)
    c.name = name
    return c


def float32_tensors(path):
    """[(name, float32 numpy array)] for every non-empty FLOAT tensor (external data loaded)."""
    m = onnx.load(path)
    out = []
    _graph(m.graph, out)
    for f in m.functions:
        for n in f.node:
            _node(n, out)
    res = []
    for t in out:
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        a = numpy_helper.to_array(t, base_dir=__import__("os").path.dirname(path))
        if a.size:
            res.append((t.name, a))
    return res
