#!/usr/bin/env python3
"""Fine-tunes every layer of an ONNX image classifier with ONNX Runtime's on-device training
API (onnxruntime-training), for tools/bench_update.py: the trainable parameters are the float
initializers (batch-norm running statistics excepted), the loss is cross-entropy on the logits
before the final Softmax, the optimizer plain SGD. The trained values are written back into a
copy of the original model (same names, shapes and graph).

    python finetune_ort.py MODEL.onnx OUT.onnx --data orientation --steps 60 --lr 3e-3

Runs in a virtual environment holding onnxruntime-training 1.19.2 and onnx 1.16 (the newest
onnx writes IR versions that runtime cannot load); onnxruntime-training's package imports its
PyTorch front end at import time, which this script does not use: a stand-in `torch` module is
installed before the import.
"""
import argparse
import importlib.machinery
import json
import os
import sys
import tempfile
import types

import numpy as np


def stub_torch():
    class _Any(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            m = _Any(f"{self.__name__}.{name}")
            setattr(self, name, m)
            return m

        def __call__(self, *a, **k):
            return self

        def __mro_entries__(self, bases):
            return (object,)

    t = _Any("torch")
    t.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    t.__version__ = "0.0"
    sys.modules["torch"] = t


def rewrite_hard(m):
    """HardSwish / HardSigmoid as Mul, Add and Clip, which have gradients in ORT training."""
    from onnx import helper, numpy_helper
    g = m.graph
    new, k = [], 0

    def const(v):
        nonlocal k
        k += 1
        g.initializer.append(numpy_helper.from_array(np.array(v, np.float32), f"_ft_c{k}"))
        return f"_ft_c{k}"

    for n in g.node:
        if n.op_type in ("HardSwish", "HardSigmoid"):
            attr = {a.name: a.f for a in n.attribute}
            alpha = 1 / 6 if n.op_type == "HardSwish" else attr.get("alpha", 0.2)
            beta = 0.5 if n.op_type == "HardSwish" else attr.get("beta", 0.5)
            x, t1, t2, t3 = n.input[0], f"{n.output[0]}_ft1", f"{n.output[0]}_ft2", f"{n.output[0]}_ft3"
            new.append(helper.make_node("Mul", [x, const(alpha)], [t1]))
            new.append(helper.make_node("Add", [t1, const(beta)], [t2]))
            out = n.output[0] if n.op_type == "HardSigmoid" else t3
            new.append(helper.make_node("Clip", [t2, const(0.0), const(1.0)], [out]))
            if n.op_type == "HardSwish":
                new.append(helper.make_node("Mul", [x, t3], [n.output[0]]))
        else:
            new.append(n)
    del g.node[:]
    g.node.extend(new)


def trainable(m):
    stats = {i for n in m.graph.node if n.op_type == "BatchNormalization" for i in n.input[3:5]}
    return [t.name for t in m.graph.initializer
            if len(t.dims) >= 1 and t.data_type == 1 and t.name not in stats]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--data", default="orientation")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    stub_torch()
    import onnx
    from onnxruntime.training import artifacts
    from onnxruntime.training.api import CheckpointState, Module, Optimizer
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_update
    batch = {"orientation": bench_update.orientation_batch}[a.data]

    m = onnx.load(a.model)
    names = trainable(m)
    g = m.graph
    sm = [n for n in g.node if n.op_type == "Softmax"][-1]
    classes = None
    rng = np.random.default_rng(a.seed)
    x0, _ = batch(rng, 2)
    probe = onnx.load(a.model)
    import onnxruntime as ort
    probe.graph.output.append(onnx.helper.make_tensor_value_info(sm.input[0], onnx.TensorProto.FLOAT, None))
    s = ort.InferenceSession(probe.SerializeToString())
    classes = s.run([sm.input[0]], {s.get_inputs()[0].name: x0})[0].shape[-1]
    del g.output[:]
    g.output.append(onnx.helper.make_tensor_value_info(sm.input[0], onnx.TensorProto.FLOAT, ["N", classes]))
    g.node.remove(sm)
    rewrite_hard(m)
    with tempfile.TemporaryDirectory() as d:
        artifacts.generate_artifacts(m, requires_grad=names, frozen_params=[],
                                     loss=artifacts.LossType.CrossEntropyLoss,
                                     optimizer=artifacts.OptimType.SGD, artifact_directory=d)
        state = CheckpointState.load_checkpoint(os.path.join(d, "checkpoint"))
        module = Module(os.path.join(d, "training_model.onnx"), state, os.path.join(d, "eval_model.onnx"))
        opt = Optimizer(os.path.join(d, "optimizer_model.onnx"), module)
        opt.set_learning_rate(a.lr)
        module.train()
        losses = []
        for _ in range(a.steps):
            x, y = batch(rng, a.batch)
            losses.append(float(module(x, y.astype(np.int64))))
            opt.step()
            module.lazy_reset_grad()
        params = {n: state.parameters[n].data for n in names}
    write_back(a.model, a.out, params, losses)


def write_back(model, out, params, losses):
    """Writes the trained `params` (name -> array) into a copy of `model` at `out` and prints
    a JSON summary: how many tensors, their median relative change, the loss of the first and
    last 10 steps."""
    import onnx
    from onnx import numpy_helper
    orig = onnx.load(model)
    inits = {t.name: t for t in orig.graph.initializer}
    rel = []
    for n, p in params.items():
        old = numpy_helper.to_array(inits[n])
        rel.append(float(np.linalg.norm(p - old) / max(np.linalg.norm(old), 1e-12)))
        inits[n].CopyFrom(numpy_helper.from_array(p.astype(np.float32).reshape(old.shape), n))
    onnx.save(orig, out)
    print(json.dumps({"tensors": len(params), "median_relative_change": float(np.median(rel)),
                      "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:]))}))


if __name__ == "__main__":
    main()
