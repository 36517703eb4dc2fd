#!/usr/bin/env python3
"""Fine-tunes every layer of an ONNX BERT encoder (tools/export_bert.py: all-MiniLM-L6-v2 in
float32) with ONNX Runtime's on-device training API, for tools/bench_update.py: topic
classification of sentences (mean pooling of last_hidden_state, a linear head that is dropped
afterwards), cross-entropy, AdamW. The trainable parameters are every float initializer of one
dimension or more; the trained values are written back into a copy of the original model
(same names, shapes and graph).

    python finetune_bert.py MODEL.onnx OUT.onnx --sentences TRAIN.json --steps 200 --lr 5e-5

TRAIN.json: {"ids": [[token ids], ...], "labels": [...], "classes": N}, one sentence per step.
Runs in the virtual environment of tools/finetune_ort.py (onnxruntime-training 1.19.2).
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import finetune_ort  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--sentences", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    finetune_ort.stub_torch()
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.training import artifacts
    from onnxruntime.training.api import CheckpointState, Module, Optimizer

    data = json.load(open(a.sentences))
    classes = data["classes"]
    m = onnx.load(a.model)
    g = m.graph
    names = [t.name for t in g.initializer if t.data_type == TensorProto.FLOAT and len(t.dims) >= 1]
    hidden = next(numpy_helper.to_array(t).shape[-1] for t in g.initializer
                  if t.name.endswith("word_embeddings.weight"))
    rng = np.random.default_rng(a.seed)
    head = (rng.normal(size=(hidden, classes)) * 0.05).astype(np.float32)
    g.initializer.append(numpy_helper.from_array(head, "_ft_head_w"))
    g.initializer.append(numpy_helper.from_array(np.zeros(classes, np.float32), "_ft_head_b"))
    g.node.append(helper.make_node("ReduceMean", ["last_hidden_state"], ["_ft_pooled"], axes=[1], keepdims=0))
    g.node.append(helper.make_node("MatMul", ["_ft_pooled", "_ft_head_w"], ["_ft_logits0"]))
    g.node.append(helper.make_node("Add", ["_ft_logits0", "_ft_head_b"], ["_ft_logits"]))
    # ORT training's LayerNormalization gradient needs the optional mean and 1/std outputs.
    for k, n in enumerate(g.node):
        if n.op_type == "LayerNormalization" and len(n.output) == 1:
            n.output.extend([f"_ft_ln{k}_mean", f"_ft_ln{k}_istd"])
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("_ft_logits", TensorProto.FLOAT, [1, classes]))
    with tempfile.TemporaryDirectory() as d:
        artifacts.generate_artifacts(m, requires_grad=names + ["_ft_head_w", "_ft_head_b"], frozen_params=[],
                                     loss=artifacts.LossType.CrossEntropyLoss,
                                     optimizer=artifacts.OptimType.AdamW, artifact_directory=d)
        state = CheckpointState.load_checkpoint(os.path.join(d, "checkpoint"))
        module = Module(os.path.join(d, "training_model.onnx"), state, os.path.join(d, "eval_model.onnx"))
        opt = Optimizer(os.path.join(d, "optimizer_model.onnx"), module)
        opt.set_learning_rate(a.lr)
        module.train()
        losses = []
        for _ in range(a.steps):
            i = int(rng.integers(len(data["ids"])))
            ids = np.array([data["ids"][i]], np.int64)
            y = np.array([data["labels"][i]], np.int64)
            losses.append(float(module(ids, np.ones_like(ids), np.zeros_like(ids), y)))
            opt.step()
            module.lazy_reset_grad()
        params = {n: state.parameters[n].data for n in names}
    finetune_ort.write_back(a.model, a.out, params, losses)

if __name__ == "__main__":
    main()
