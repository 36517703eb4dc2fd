"""Tests of the nnc Python package: decoding into onnxruntime from memory, the lazy tensor
mapping, encoding with the CLI's options, typed exceptions. Run by tools/test.sh (and so by
.ci/run) after `pip install ./python`."""
import os
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import nnc

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = "ch_ppocr_mobile_v2.0_cls_infer.onnx"


def corpus(name: str) -> pathlib.Path:
    base = os.environ.get("NNC_CORPUS") or os.path.expanduser("~/.cache/nnc-corpus")
    p = pathlib.Path(base) / "models" / name
    if not p.is_file():
        pytest.fail(f"corpus model {p} missing: run tools/fetch_corpus.sh (tools/test.sh does)")
    return p


def nnc_cli() -> str:
    """The command-line tool: $NNC_BIN (tools/test.sh sets it), else the release build."""
    cand = [os.environ.get("NNC_BIN", "")]
    for t in [os.environ.get("CARGO_TARGET_DIR", ""), str(ROOT / "target")]:
        if t:
            cand.append(os.path.join(t, "release", "nnc"))
    for c in cand:
        if c and os.access(c, os.X_OK):
            return c
    pytest.fail("the nnc command-line tool is not built (cargo build --release)")


def run(session: ort.InferenceSession, feed: dict) -> list:
    return session.run(None, feed)


def cls_feed(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((4, 3, 48, 192)).astype(np.float32)}


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("enc") / "cls.nnc"
    assert nnc.encode(str(corpus(MODEL)), str(out)) is None
    return out


def test_decode_model_bytes_run_in_onnxruntime_like_the_decoded_file(encoded, tmp_path):
    # The original decoded to a file by the command-line tool ...
    onnx_file = tmp_path / "decoded.onnx"
    subprocess.run([nnc_cli(), "decode", str(encoded), str(onnx_file)], check=True)
    from_file = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    # ... and decoded in memory from the .nnc's bytes, with no file written.
    blob = encoded.read_bytes()
    watched = [tempfile.gettempdir(), os.getcwd(), str(encoded.parent)]
    before = {d: set(os.listdir(d)) for d in watched}
    model_bytes = nnc.decode_model(blob)
    from_bytes = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    after = {d: set(os.listdir(d)) for d in watched}
    assert before == after, "decode_model wrote files"
    assert model_bytes == onnx_file.read_bytes()
    feed = cls_feed()
    for a, b in zip(run(from_file, feed), run(from_bytes, feed)):
        np.testing.assert_array_equal(a, b)
    # Path input gives the same bytes.
    assert nnc.decode_model(encoded) == model_bytes
    assert nnc.decode_model(str(encoded)) == model_bytes


def test_lossless_round_trip_equals_the_original_outputs(tmp_path):
    src = corpus(MODEL)
    blob = nnc.encode(src.read_bytes(), lossless=True)
    assert isinstance(blob, bytes) and blob[:4] == b"\x89NNC"
    a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(nnc.decode_model(blob), providers=["CPUExecutionProvider"])
    feed = cls_feed(1)
    for x, y in zip(run(a, feed), run(b, feed)):
        np.testing.assert_array_equal(x, y)


def test_open_is_a_lazy_mapping_of_numpy_arrays(tmp_path):
    src = corpus(MODEL)
    path = tmp_path / "lossless.nnc"
    nnc.encode(src, path, lossless=True, records_only=True)
    model = onnx.load(str(src))
    # The weights: initializers, and the values of Constant nodes (this model has only
    # those), named as their output.
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    inits[n.output[0]] = numpy_helper.to_array(a.t)
    assert len(inits) > 100
    with nnc.open(path) as tensors:
        assert set(inits) <= set(tensors)
        assert len(tensors) >= len(inits)
        for name, want in inits.items():
            got = tensors[name]
            assert got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want)
        got[...] = 0  # arrays are the caller's own
        assert "no such tensor" not in tensors
        with pytest.raises(KeyError):
            tensors["no such tensor"]
        assert tensors.get("no such tensor") is None
    # From bytes too, and in walk order.
    t2 = nnc.open(path.read_bytes())
    assert list(t2) == list(nnc.open(str(path)))


def test_lossy_options_change_the_size():
    src = corpus(MODEL).read_bytes()
    sizes = [len(nnc.encode(src, quality=q)) for q in ("high", "default", "small")]
    assert sizes[0] > sizes[1] > sizes[2]
    assert len(nnc.encode(src, quantizer="minifloat", exp_bits=4, man_bits=3)) < sizes[0]


def test_typed_exceptions(tmp_path):
    with pytest.raises(nnc.FormatError, match="bad-magic"):
        nnc.decode_model(b"not an nnc file, not at all")
    with pytest.raises(nnc.InvalidOptionsError, match="delta"):
        nnc.encode(corpus(MODEL), quantizer="deadzone", delta=5.0)
    with pytest.raises(nnc.InvalidOptionsError):
        nnc.encode(corpus(MODEL), quality="huge")
    with pytest.raises(nnc.InputError):
        nnc.encode(b"\xff\xff\xff garbage")
    with pytest.raises(nnc.NncIOError):
        nnc.decode_model(tmp_path / "missing.nnc")
    blob = nnc.encode(corpus(MODEL).read_bytes(), lossless=True)
    with pytest.raises(nnc.FormatError, match="truncated"):
        nnc.decode_model(blob[: len(blob) // 2])
    with pytest.raises(nnc.LimitError):
        nnc.decode_model(blob, limits={"max_tensors": 1})
    with pytest.raises(TypeError):
        nnc.decode_model(12345)
    assert issubclass(nnc.FormatError, nnc.NncError)


def test_decode_file_writes_external_data_beside_the_model(tmp_path):
    # A corpus model re-saved with its weights in an external file, as exporters write big
    # models; encoded losslessly, decoded by nnc.decode_file: the same tensors, in a file.
    m = onnx.load(str(corpus(MODEL)))
    def tensors(model):  # initializers and Constant values (this model's weights)
        out = list(model.graph.initializer)
        for n in model.graph.node:
            out += [a.t for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
        return out

    for t in tensors(m):  # onnx externalizes raw_data only
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t), t.name))
    src = tmp_path / "src"
    src.mkdir()
    onnx.save_model(m, str(src / "m.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=1024,
                    convert_attribute=True)
    packed = tmp_path / "m.nnc"
    subprocess.run([nnc_cli(), "encode", str(src / "m.onnx"), str(packed), "--lossless",
                    "--quiet"], check=True)
    out = tmp_path / "out"
    out.mkdir()
    nnc.decode_file(packed, out / "m.onnx")
    assert (src / "weights.bin").is_file() and (out / "weights.bin").is_file()
    decoded = onnx.load(str(out / "m.onnx"))  # loads the external data from out/
    m = onnx.load(str(corpus(MODEL)))
    want = [numpy_helper.to_array(t) for t in tensors(m)]
    got = [numpy_helper.to_array(t) for t in tensors(decoded)]
    assert len(want) == len(got) > 0
    for w, g in zip(want, got):
        np.testing.assert_array_equal(w, g)
    # Inlined: one self-contained file, the bytes decode_model gives.
    nnc.decode_file(str(packed), str(out / "inline.onnx"), inline_external=True)
    assert (out / "inline.onnx").read_bytes() == nnc.decode_model(packed)
    # A failure leaves nothing: an output path that is a directory.
    with pytest.raises(nnc.UnsupportedError):
        nnc.decode_file(packed, out)


def test_update_decodes_only_with_its_base(tmp_path):
    """An update (spec §14) of silero_vad 6.2.3 against 5.1.2, encoded and decoded in Python:
    the same model as the full lossless encode, smaller; refused without its base."""
    models = corpus("silero_vad.onnx")
    base = models.parent.parent / "bases" / "silero_vad-5.1.2.onnx"
    if not base.is_file():
        pytest.fail(f"{base} missing: run tools/fetch_corpus.sh (tools/test.sh does)")
    full = nnc.encode(str(models), lossless=True)
    update = nnc.encode(str(models), lossless=True, base=str(base))
    assert len(update) < len(full)
    assert nnc.decode_model(update, base=base) == nnc.decode_model(full)
    (tmp_path / "u.nnc").write_bytes(update)
    nnc.decode_file(tmp_path / "u.nnc", tmp_path / "u.onnx", base=[str(base)])
    assert (tmp_path / "u.onnx").read_bytes() == nnc.decode_model(full)
    with nnc.open(update, base=base) as t:
        assert len(t) == 18
    with pytest.raises(nnc.FormatError, match="base-missing"):
        nnc.decode_model(update)
    with pytest.raises(nnc.FormatError, match="base-mismatch"):
        nnc.decode_model(update, base=models)
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(nnc.FormatError):
        nnc.decode_file(tmp_path / "u.nnc", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
