"""What the speed benchmarks (tools/bench_decode.py, tools/bench_encode.py) share: the corpus
models they run on, and where their table and rows go."""
import json
import os


def corpus_models(models_dir, only=None):
    """The .onnx files of `models_dir`, sorted; those whose name contains one of `only`."""
    models = sorted(os.path.join(models_dir, m) for m in os.listdir(models_dir) if m.endswith(".onnx"))
    if only:
        models = [m for m in models if any(o in os.path.basename(m) for o in only)]
    return models


def emit(text, rows, out=None, json_path=None):
    """Prints the table; writes it to `out` and the rows to `json_path` when given."""
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(rows, f, indent=1)
