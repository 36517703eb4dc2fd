//! Shared helpers of the integration tests: the corpus location, synthetic ONNX models built
//! with the prost types, encoding and decoding shortcuts, and model comparison with a useful
//! failure message.
#![allow(dead_code)]

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use nnc::container::tensor_header::{Coding, Storage};
use nnc::onnx::dtype;
use nnc::onnx::proto::attribute_proto::AttributeType;
use nnc::onnx::proto::tensor_proto::Segment;
use nnc::onnx::proto::type_proto;
use nnc::onnx::proto::*;
use nnc::onnx::walk::{walk, SlotMut};
use nnc::{DecodeOptions, Decoder, EncodeOptions};
use prost::Message;

// ---------------------------------------------------------------------------------------------
// Corpus

/// `$NNC_CORPUS/models`, defaulting to `$HOME/.cache/nnc-corpus/models`.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("NNC_CORPUS") {
        Some(c) if !c.is_empty() => PathBuf::from(c).join("models"),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME is not set and NNC_CORPUS is not set");
            PathBuf::from(home).join(".cache/nnc-corpus/models")
        }
    }
}

/// Every `.onnx` of the corpus, sorted by name. Panics (fails the test) when the corpus is
/// missing: the tests never skip silently.
pub fn corpus_models() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let missing = |why: String| -> ! {
        panic!(
            "corpus models missing: {why}. Fetch them with `tools/fetch_corpus.sh` \
             (or run `tools/test.sh`, which does it), or point NNC_CORPUS at a directory \
             holding models/*.onnx"
        )
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => missing(format!("cannot read {}: {e}", dir.display())),
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    v.sort();
    if v.is_empty() {
        missing(format!("no .onnx files in {}", dir.display()));
    }
    v
}

/// The smallest corpus model (fast enough for exhaustive loops).
pub fn smallest_corpus_model() -> PathBuf {
    corpus_models()
        .into_iter()
        .min_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX))
        .unwrap()
}

/// Writes a line to the process's stderr directly, so it shows whether or not the test
/// harness captures output (`eprintln!` is captured unless `--nocapture`).
pub fn say(line: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

// ---------------------------------------------------------------------------------------------
// Encoding and decoding shortcuts

/// Lossless, every tensor in a record of its own (so tests can look at each record).
pub fn lossless() -> EncodeOptions {
    EncodeOptions {
        lossy: None,
        records_only: true,
        ..EncodeOptions::default()
    }
}

/// Lossless with the default placement: small tensors stay in the graph.
pub fn lossless_default() -> EncodeOptions {
    EncodeOptions {
        lossy: None,
        ..EncodeOptions::default()
    }
}

/// Encodes losslessly in memory; `base_dir` is where external data files live.
pub fn encode(model: &ModelProto, base_dir: Option<&Path>) -> Vec<u8> {
    encode_with(model, base_dir, &lossless())
}

pub fn encode_with(model: &ModelProto, base_dir: Option<&Path>, opts: &EncodeOptions) -> Vec<u8> {
    let (bytes, _report) = nnc::encode_model(model.clone(), base_dir, opts, Vec::new())
        .unwrap_or_else(|e| panic!("encode failed: {e}"));
    bytes
}

/// `decode_to_bytes` then parse (external tensors inlined).
pub fn decode_inline(nnc: &[u8]) -> ModelProto {
    let bytes = nnc::decode_to_bytes(nnc, DecodeOptions::default())
        .unwrap_or_else(|e| panic!("decode failed: {e}"));
    ModelProto::decode(bytes.as_slice()).expect("decoded bytes are not a ModelProto")
}

pub fn read_model(path: &Path) -> ModelProto {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    ModelProto::decode(bytes.as_slice())
        .unwrap_or_else(|e| panic!("{} is not a ModelProto: {e}", path.display()))
}

/// One decoded tensor in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flat {
    pub name: String,
    pub data_type: i32,
    pub dims: Vec<u64>,
    pub storage: Storage,
    pub coding: Coding,
    pub data: Vec<u8>,
}

impl From<nnc::Tensor> for Flat {
    fn from(t: nnc::Tensor) -> Flat {
        Flat {
            name: t.name,
            data_type: t.data_type,
            dims: t.dims,
            storage: t.storage,
            coding: t.coding,
            data: t.data,
        }
    }
}

/// The lifted graph and every tensor, read through `r`.
pub fn read_tensors<R: Read>(r: R, opts: DecodeOptions) -> nnc::Result<(ModelProto, Vec<Flat>)> {
    let mut d = Decoder::new(r, opts)?;
    let graph = d.graph().clone();
    let mut v = Vec::with_capacity(d.tensor_count());
    while let Some(t) = d.next_tensor()? {
        v.push(Flat::from(t));
    }
    Ok((graph, v))
}

// ---------------------------------------------------------------------------------------------
// Readers for the streaming tests

/// Returns at most one byte per `read` call.
pub struct OneByte<'a>(pub &'a [u8]);

impl Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() || self.0.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

/// Alternates `ErrorKind::Interrupted` errors with short reads of 1..=7 bytes.
pub struct Stuttering<'a> {
    pub data: &'a [u8],
    calls: usize,
}

impl<'a> Stuttering<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Stuttering { data, calls: 0 }
    }
}

impl Read for Stuttering<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls % 2 == 1 {
            return Err(std::io::Error::new(ErrorKind::Interrupted, "EINTR"));
        }
        let n = (self.calls / 2 % 7 + 1).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Model comparison

/// Bit-exact comparison: the canonical prost serializations must be equal (this catches float
/// bit patterns such as NaN payloads and -0.0 that `PartialEq` would not), and, when no float
/// is NaN, `PartialEq` must agree. On failure, names the first differing tensor slot or the
/// first differing line of the data-free graph.
pub fn assert_models_equal(expected: &ModelProto, actual: &ModelProto, what: &str) {
    let (a, b) = (expected.encode_to_vec(), actual.encode_to_vec());
    if a == b {
        assert!(
            expected == actual || has_nan(expected),
            "{what}: same serialization but prost PartialEq differs"
        );
        return;
    }
    let (ea, eb) = (slots(expected), slots(actual));
    if ea.len() != eb.len() {
        panic!(
            "{what}: {} tensor slots expected, {} decoded",
            ea.len(),
            eb.len()
        );
    }
    for (x, y) in ea.iter().zip(&eb) {
        if x != y {
            panic!(
                "{what}: tensor slot {:?} differs (expected {} serialized bytes, got {}; \
                 decoded slot name {:?})",
                x.0,
                x.1.len(),
                y.1.len(),
                y.0
            );
        }
    }
    let (da, db) = (debug_without_data(expected), debug_without_data(actual));
    let line = da
        .lines()
        .zip(db.lines())
        .enumerate()
        .find(|(_, (x, y))| x != y);
    match line {
        Some((i, (x, y))) => {
            panic!("{what}: graphs differ at Debug line {i}:\n  expected: {x}\n  actual:   {y}")
        }
        None => panic!(
            "{what}: serializations differ ({} vs {} bytes) but no differing line found",
            a.len(),
            b.len()
        ),
    }
}

/// Whether any float of a tensor slot is NaN (then `PartialEq` cannot hold).
fn has_nan(m: &ModelProto) -> bool {
    let mut m = m.clone();
    let mut nan = false;
    walk(&mut m, 64, &mut |_, slot| {
        nan |= match slot {
            SlotMut::Tensor(t) => {
                t.float_data.iter().any(|x| x.is_nan()) || t.double_data.iter().any(|x| x.is_nan())
            }
            SlotMut::Floats(v) => v.iter().any(|x| x.is_nan()),
            SlotMut::Ints(_) => false,
        };
        Ok(())
    })
    .expect("walk");
    nan
}

/// Every slot of the walk: name and a serialization of its content.
fn slots(m: &ModelProto) -> Vec<(String, Vec<u8>)> {
    let mut m = m.clone();
    let mut out = Vec::new();
    walk(&mut m, 64, &mut |name, slot| {
        let bytes = match slot {
            SlotMut::Tensor(t) => t.encode_to_vec(),
            SlotMut::Floats(v) => v.iter().flat_map(|f| f.to_le_bytes()).collect(),
            SlotMut::Ints(v) => v.iter().flat_map(|f| f.to_le_bytes()).collect(),
        };
        out.push((name.to_string(), bytes));
        Ok(())
    })
    .expect("walk");
    out
}

fn debug_without_data(m: &ModelProto) -> String {
    let mut m = m.clone();
    walk(&mut m, 64, &mut |_, slot| {
        match slot {
            SlotMut::Tensor(t) => {
                t.raw_data = t.raw_data.as_ref().map(|_| Vec::new());
                t.float_data.clear();
                t.double_data.clear();
                t.int32_data.clear();
                t.int64_data.clear();
                t.uint64_data.clear();
                t.string_data.clear();
            }
            SlotMut::Floats(v) => v.clear(),
            SlotMut::Ints(v) => v.clear(),
        }
        Ok(())
    })
    .expect("walk");
    format!("{m:#?}")
}

// ---------------------------------------------------------------------------------------------
// Deterministic data

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    /// Roughly normal, scaled like trained weights.
    pub fn weight(&mut self, scale: f32) -> f32 {
        let s: f32 = (0..4)
            .map(|_| (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
            .sum();
        (s - 2.0) * scale
    }
    pub fn weights(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.weight(scale)).collect()
    }
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// Building models

pub fn tensor(name: &str, dt: i32, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.to_owned()),
        data_type: Some(dt),
        dims: dims.to_vec(),
        ..Default::default()
    }
}

pub fn raw(name: &str, dt: i32, dims: &[i64], data: Vec<u8>) -> TensorProto {
    TensorProto {
        raw_data: Some(data),
        ..tensor(name, dt, dims)
    }
}

pub fn floats(name: &str, dims: &[i64], v: Vec<f32>) -> TensorProto {
    TensorProto {
        float_data: v,
        ..tensor(name, dtype::FLOAT, dims)
    }
}

pub fn int32s(name: &str, dt: i32, dims: &[i64], v: Vec<i32>) -> TensorProto {
    TensorProto {
        int32_data: v,
        ..tensor(name, dt, dims)
    }
}

pub fn kv(k: &str, v: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(k.to_owned()),
        value: Some(v.to_owned()),
    }
}

pub fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

pub fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(Box::new(t)),
        ..attr(name, AttributeType::Tensor)
    }
}

pub fn attr_g(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        g: Some(Box::new(g)),
        ..attr(name, AttributeType::Graph)
    }
}

pub fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        i: Some(i),
        ..attr(name, AttributeType::Int)
    }
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.to_owned()),
        name: Some(name.to_owned()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A `Constant` node whose one attribute is `a`.
pub fn constant(output: &str, a: AttributeProto) -> NodeProto {
    NodeProto {
        attribute: vec![a],
        ..node("Constant", &format!("const_{output}"), &[], &[output])
    }
}

pub fn value_info(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    use tensor_shape_proto::dimension::Value;
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            value: Some(if d < 0 {
                                Value::DimParam("N".into())
                            } else {
                                Value::DimValue(d)
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        doc_string: Some(format!("value {name}")),
        ..Default::default()
    }
}

pub fn graph(name: &str, initializer: Vec<TensorProto>, node: Vec<NodeProto>) -> GraphProto {
    GraphProto {
        name: Some(name.to_owned()),
        initializer,
        node,
        ..Default::default()
    }
}

/// A model around `g` with opset imports, producer fields and metadata.
pub fn model(g: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(21),
            },
            OperatorSetIdProto {
                domain: Some("com.example".into()),
                version: Some(1),
            },
        ],
        producer_name: Some("nnc-tests".into()),
        producer_version: Some("0.1".into()),
        domain: Some("org.example".into()),
        model_version: Some(7),
        doc_string: Some("synthetic model for the round-trip tests".into()),
        graph: Some(g),
        metadata_props: vec![kv("author", "tests"), kv("ключ", "значение ✓")],
        ..Default::default()
    }
}

/// A few-KB model that provokes every lossless coding (planes, zstd, raw) and several
/// storages (raw_data, typed, inline, value_floats, value_ints, strings). The corruption and
/// streaming tests use it.
pub fn small_model() -> ModelProto {
    let mut rng = Rng(1);
    // Planes: weight-like floats.
    let w = raw(
        "conv.weight",
        dtype::FLOAT,
        &[8, 4, 3, 3],
        f32_bytes(&rng.weights(288, 0.05)),
    );
    // Zstd: a long repeated pattern with a flat byte histogram.
    let pattern: Vec<u8> = (0..1500).map(|i| ((i % 61) * 4) as u8).collect();
    let table = raw("lut", dtype::UINT8, &[1500], pattern);
    // Raw: incompressible bytes.
    let noise = raw("noise", dtype::UINT8, &[96], rng.bytes(96));
    // Typed: float_data, int64_data; fp16 in int32_data.
    let bias = floats("conv.bias", &[8], rng.weights(8, 0.1));
    let shape = TensorProto {
        int64_data: vec![1, -1, 288],
        ..tensor("shape", dtype::INT64, &[3])
    };
    let half = int32s(
        "half",
        dtype::FLOAT16,
        &[40],
        (0..40).map(|i| 0x3c00 + i * 37).collect(),
    );
    // Stays in the graph (no record): int4 packed in int32_data.
    let int4 = int32s("int4_typed", 22, &[4], vec![0x21, 0x43]);
    // Inline record: a tensor with a negative dim and no data.
    let odd = TensorProto {
        name: Some("odd_dims".into()),
        data_type: Some(dtype::FLOAT),
        dims: vec![-1, 2],
        ..Default::default()
    };
    let labels = TensorProto {
        string_data: vec![b"cat".to_vec(), Vec::new(), "chien ✓".as_bytes().to_vec()],
        ..tensor("labels", dtype::STRING, &[3])
    };
    let mut vf = attr("value_floats", AttributeType::Floats);
    vf.floats = rng.weights(24, 1.0);
    let mut vi = attr("value_ints", AttributeType::Ints);
    vi.ints = vec![0, 1, -1, i64::MAX, i64::MIN, 42];
    let mut g = graph(
        "small",
        vec![w, table, noise, bias, shape, half, int4, odd, labels],
        vec![
            node("Conv", "conv", &["x", "conv.weight", "conv.bias"], &["y"]),
            constant("cf", vf),
            constant("ci", vi),
            constant(
                "ct",
                attr_t("value", floats("", &[2, 2], vec![1.0, 2.0, 3.0, 4.0])),
            ),
        ],
    );
    g.input = vec![value_info("x", dtype::FLOAT, &[-1, 4, 8, 8])];
    g.output = vec![value_info("y", dtype::FLOAT, &[-1, 8, 6, 6])];
    model(g)
}

/// A model holding every kind of tensor placement and element type the lossless round trip
/// must preserve (no external data).
pub fn rich_model() -> ModelProto {
    let mut rng = Rng(7);
    let mut init = Vec::new();
    // Floats in raw_data and float_data.
    init.push(raw(
        "w_raw",
        dtype::FLOAT,
        &[16, 16],
        f32_bytes(&rng.weights(256, 0.02)),
    ));
    init.push(floats("w_typed", &[4, 5], rng.weights(20, 0.5)));
    // fp16 / bf16 raw and int32_data.
    let h: Vec<u16> = (0..64).map(|i| 0x3000 + (i * 97 % 2048) as u16).collect();
    init.push(raw(
        "fp16_raw",
        dtype::FLOAT16,
        &[64],
        h.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ));
    init.push(int32s(
        "fp16_typed",
        dtype::FLOAT16,
        &[8],
        h[..8].iter().map(|&v| v as i32).collect(),
    ));
    init.push(raw(
        "bf16_raw",
        dtype::BFLOAT16,
        &[2, 16],
        h.iter()
            .take(32)
            .flat_map(|v| (v ^ 0x8000).to_le_bytes())
            .collect(),
    ));
    init.push(int32s(
        "bf16_typed",
        dtype::BFLOAT16,
        &[3],
        vec![0x3f80, 0xbf80, 0xffff],
    ));
    init.extend(integer_tensors(&mut rng));
    init.extend(float_family_tensors(&mut rng));
    init.extend(string_tensors());
    init.extend(empty_and_scalar_tensors());
    init.extend(non_canonical_tensors());
    init.push(raw(
        "重み/ü",
        dtype::FLOAT,
        &[3],
        f32_bytes(&[1.5, -2.5, 0.0]),
    ));

    let mut nodes = constant_nodes(&mut rng);
    nodes.push(tensors_attr_node(&mut rng));
    nodes.push(if_node(&mut rng));
    nodes.push(loop_node(&mut rng));

    let mut g = graph("rich", init, nodes);
    g.sparse_initializer = vec![sparse(
        "sparse_init",
        &[10, 10],
        vec![1.0, 2.0, 3.0],
        vec![3, 47, 99],
    )];
    g.doc_string = Some("main graph".into());
    g.input = vec![value_info("x", dtype::FLOAT, &[-1, 16])];
    g.output = vec![value_info("y", dtype::FLOAT, &[-1, 16])];
    g.value_info = vec![value_info("mid", dtype::FLOAT16, &[2, 3])];
    g.metadata_props = vec![kv("graph-key", "graph-value")];
    g.quantization_annotation = vec![TensorAnnotation {
        tensor_name: Some("w_raw".into()),
        quant_parameter_tensor_names: vec![kv("SCALE_TENSOR", "w_typed")],
    }];
    let mut m = model(g);
    m.functions = vec![function(&mut rng)];
    m.training_info = vec![training_info(&mut rng)];
    m
}

pub fn integer_tensors(rng: &mut Rng) -> Vec<TensorProto> {
    let mut v = Vec::new();
    // Raw data for every fixed-width integer type.
    for (name, dt, w) in [
        ("i8_raw", dtype::INT8, 1),
        ("u8_raw", dtype::UINT8, 1),
        ("i16_raw", dtype::INT16, 2),
        ("u16_raw", dtype::UINT16, 2),
        ("i32_raw", dtype::INT32, 4),
        ("i64_raw", dtype::INT64, 8),
        ("u32_raw", dtype::UINT32, 4),
        ("u64_raw", dtype::UINT64, 8),
    ] {
        v.push(raw(name, dt, &[5, 7], rng.bytes(35 * w)));
    }
    v.push(raw(
        "bool_raw",
        dtype::BOOL,
        &[40],
        (0..40).map(|i| (i % 3 == 0) as u8).collect(),
    ));
    // Typed fields, extreme values included.
    v.push(int32s(
        "i8_typed",
        dtype::INT8,
        &[4],
        vec![-128, -1, 0, 127],
    ));
    v.push(int32s("u8_typed", dtype::UINT8, &[3], vec![0, 128, 255]));
    v.push(int32s(
        "i16_typed",
        dtype::INT16,
        &[3],
        vec![-32768, -2, 32767],
    ));
    v.push(int32s("u16_typed", dtype::UINT16, &[2], vec![0, 65535]));
    v.push(int32s(
        "i32_typed",
        dtype::INT32,
        &[2, 2],
        vec![i32::MIN, -1, 0, i32::MAX],
    ));
    v.push(TensorProto {
        int64_data: vec![i64::MIN, -1, 0, 1, i64::MAX],
        ..tensor("i64_typed", dtype::INT64, &[5])
    });
    v.push(TensorProto {
        uint64_data: vec![0, 1, u32::MAX as u64],
        ..tensor("u32_typed", dtype::UINT32, &[3])
    });
    v.push(TensorProto {
        uint64_data: vec![0, u64::MAX, 1 << 40],
        ..tensor("u64_typed", dtype::UINT64, &[3])
    });
    v.push(int32s("bool_typed", dtype::BOOL, &[4], vec![1, 0, 0, 1]));
    // A larger int64 tensor (planes or zstd).
    v.push(TensorProto {
        int64_data: (0..300).map(|i| (i * i) % 1000 - 500).collect(),
        ..tensor("i64_big_typed", dtype::INT64, &[300])
    });
    v
}

pub fn float_family_tensors(rng: &mut Rng) -> Vec<TensorProto> {
    let mut v = Vec::new();
    let d: Vec<f64> = (0..12).map(|i| (i as f64 - 6.0) / 7.0).collect();
    v.push(raw(
        "f64_raw",
        dtype::DOUBLE,
        &[12],
        d.iter().flat_map(|x| x.to_le_bytes()).collect(),
    ));
    v.push(TensorProto {
        double_data: d.clone(),
        ..tensor("f64_typed", dtype::DOUBLE, &[3, 4])
    });
    // complex64: 3 elements, 6 floats; complex128: 2 elements, 4 doubles.
    v.push(raw(
        "c64_raw",
        dtype::COMPLEX64,
        &[3],
        f32_bytes(&[1.0, -1.0, 0.5, 0.25, -3.0, 8.0]),
    ));
    v.push(TensorProto {
        float_data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        ..tensor("c64_typed", dtype::COMPLEX64, &[3])
    });
    v.push(raw(
        "c128_raw",
        dtype::COMPLEX128,
        &[2],
        d[..4].iter().flat_map(|x| x.to_le_bytes()).collect(),
    ));
    v.push(TensorProto {
        double_data: d[4..8].to_vec(),
        ..tensor("c128_typed", dtype::COMPLEX128, &[2])
    });
    // float8 types: raw and int32_data.
    for dt in [17, 18, 19, 20, 24] {
        v.push(raw(&format!("f8_{dt}_raw"), dt, &[33], rng.bytes(33)));
        v.push(int32s(
            &format!("f8_{dt}_typed"),
            dt,
            &[4],
            vec![0, 0x7e, 0x80, 0xff],
        ));
    }
    // Packed sub-byte types in raw_data (odd element counts: a half-used last byte).
    v.push(raw("u4_raw", 21, &[7], rng.bytes(4)));
    v.push(raw("i4_raw", 22, &[3, 3], rng.bytes(5)));
    v.push(raw("f4_raw", 23, &[2], rng.bytes(1)));
    v.push(raw("u2_raw", 25, &[9], rng.bytes(3)));
    v.push(raw("i2_raw", 26, &[4], rng.bytes(1)));
    v.push(raw("f6_raw", 27, &[5], rng.bytes(4)));
    // int4 in int32_data must stay inline (several elements per entry).
    v.push(int32s("i4_typed", 22, &[3], vec![0x21, 0x0f]));
    v.push(int32s("u4_typed", 21, &[2], vec![0xf1]));
    v
}

pub fn string_tensors() -> Vec<TensorProto> {
    vec![
        TensorProto {
            string_data: vec![
                b"hello".to_vec(),
                Vec::new(),
                "naïve 日本語 🚀".as_bytes().to_vec(),
                vec![0xff, 0x00, 0xfe],
                Vec::new(),
            ],
            ..tensor("strings", dtype::STRING, &[5])
        },
        TensorProto {
            string_data: (0..50).map(|i| format!("token_{i}").into_bytes()).collect(),
            ..tensor("vocab", dtype::STRING, &[50])
        },
        TensorProto {
            string_data: vec![b"scalar".to_vec()],
            ..tensor("string_scalar", dtype::STRING, &[])
        },
    ]
}

pub fn empty_and_scalar_tensors() -> Vec<TensorProto> {
    vec![
        tensor("empty_f32", dtype::FLOAT, &[3, 0]),
        raw("empty_raw_i64", dtype::INT64, &[0], Vec::new()),
        tensor("empty_string", dtype::STRING, &[0, 2]),
        floats("scalar_f32", &[], vec![3.5]),
        raw(
            "scalar_i64_raw",
            dtype::INT64,
            &[],
            42i64.to_le_bytes().to_vec(),
        ),
        int32s("scalar_bool", dtype::BOOL, &[], vec![1]),
        // Explicit DEFAULT data location and a segment.
        TensorProto {
            data_location: Some(0),
            segment: Some(Segment {
                begin: Some(0),
                end: Some(2),
            }),
            doc_string: Some("segmented".into()),
            metadata_props: vec![kv("tensor-key", "v")],
            ..raw("segmented", dtype::FLOAT, &[2], f32_bytes(&[1.0, 2.0]))
        },
    ]
}

/// Tensors whose data is not in canonical form: they must stay inline and come back as they
/// were.
pub fn non_canonical_tensors() -> Vec<TensorProto> {
    vec![
        int32s("i8_300", dtype::INT8, &[2], vec![300, 1]),
        int32s("bool_2", dtype::BOOL, &[2], vec![2, 0]),
        int32s("u8_neg", dtype::UINT8, &[1], vec![-1]),
        TensorProto {
            uint64_data: vec![1 << 33],
            ..tensor("u32_big", dtype::UINT32, &[1])
        },
        // Wrong field for the type.
        TensorProto {
            int64_data: vec![1, 2],
            ..tensor("i32_in_int64", dtype::INT32, &[2])
        },
        // Both raw and typed data.
        TensorProto {
            float_data: vec![1.0],
            ..raw("f32_both", dtype::FLOAT, &[1], f32_bytes(&[2.0]))
        },
        // Wrong length.
        raw("f32_short_raw", dtype::FLOAT, &[4], vec![1, 2, 3]),
        floats("f32_long_typed", &[1], vec![1.0, 2.0]),
        // Strings in raw_data, unknown type code, negative dim, no data for a 2-element tensor.
        raw("string_raw", dtype::STRING, &[1], b"abc".to_vec()),
        raw("unknown_type", 99, &[2], vec![1, 2]),
        raw("undefined_type", 0, &[2], vec![1, 2]),
        raw("negative_dim", dtype::UINT8, &[-1], vec![1, 2]),
        tensor("no_data", dtype::FLOAT, &[2]),
        raw("negative_type", -3, &[2], vec![1, 2]),
        TensorProto {
            data_type: None,
            ..raw("unset_type", 0, &[1], vec![1])
        },
        // Dims whose product needs more than 32 bits: no data, so it stays in the graph.
        tensor("huge_dims_no_data", dtype::FLOAT, &[1 << 20, 1 << 20]),
    ]
}

pub fn sparse(name: &str, dims: &[i64], values: Vec<f32>, indices: Vec<i64>) -> SparseTensorProto {
    let n = values.len() as i64;
    SparseTensorProto {
        values: Some(floats(name, &[n], values)),
        indices: Some(TensorProto {
            int64_data: indices,
            ..tensor("", dtype::INT64, &[n])
        }),
        dims: dims.to_vec(),
    }
}

/// `Constant` nodes: `value` (raw and typed), `value_floats`, `value_ints`, `sparse_value`.
pub fn constant_nodes(rng: &mut Rng) -> Vec<NodeProto> {
    let mut vf = attr("value_floats", AttributeType::Floats);
    vf.floats = rng.weights(40, 1.0);
    let mut vi = attr("value_ints", AttributeType::Ints);
    vi.ints = vec![3, -4, 5, i64::MIN];
    let mut vf_empty = attr("value_floats", AttributeType::Floats);
    vf_empty.floats = Vec::new();
    let mut sp = attr("sparse_value", AttributeType::SparseTensor);
    sp.sparse_tensor = Some(Box::new(sparse("", &[4, 4], vec![9.0, -9.0], vec![0, 15])));
    let mut with_domain = constant(
        "c_domain",
        attr_t(
            "value",
            raw(
                "",
                dtype::INT64,
                &[2],
                [7i64, -7].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ),
    );
    with_domain.domain = Some("ai.onnx".into());
    let mut no_output = constant("", attr_t("value", floats("", &[1], vec![7.0])));
    no_output.output.clear();
    no_output.name = None;
    let mut documented = constant(
        "c_doc",
        attr_t(
            "value",
            raw(
                "named_differently",
                dtype::FLOAT,
                &[8],
                f32_bytes(&rng.weights(8, 1.0)),
            ),
        ),
    );
    documented.doc_string = Some("a constant".into());
    documented.metadata_props = vec![kv("node-key", "node-value")];
    vec![
        constant(
            "c_value",
            attr_t(
                "value",
                raw("", dtype::FLOAT, &[2, 3], f32_bytes(&rng.weights(6, 1.0))),
            ),
        ),
        constant(
            "c_value_typed",
            attr_t("value", floats("", &[2], vec![0.5, -0.5])),
        ),
        constant("c_floats", vf),
        constant("c_floats_empty", vf_empty),
        constant("c_ints", vi),
        constant("c_sparse", sp),
        with_domain,
        no_output,
        documented,
        // Not a Constant of the default domain: value_floats is an ordinary attribute.
        NodeProto {
            domain: Some("com.example".into()),
            attribute: vec![{
                let mut a = attr("value_floats", AttributeType::Floats);
                a.floats = vec![1.0, 2.0];
                a
            }],
            ..node("Constant", "custom_constant", &[], &["c_custom"])
        },
    ]
}

/// A custom node with attributes of type TENSORS, SPARSE_TENSORS, plus scalar attributes.
pub fn tensors_attr_node(rng: &mut Rng) -> NodeProto {
    let mut ts = attr("tables", AttributeType::Tensors);
    ts.tensors = vec![
        raw("", dtype::FLOAT, &[4], f32_bytes(&rng.weights(4, 1.0))),
        int32s("second", dtype::INT16, &[2], vec![-7, 7]),
        TensorProto {
            string_data: vec![b"a".to_vec(), b"bc".to_vec()],
            ..tensor("", dtype::STRING, &[2])
        },
    ];
    let mut sts = attr("sparse_tables", AttributeType::SparseTensors);
    sts.sparse_tensors = vec![sparse("sp0", &[8], vec![1.0], vec![5])];
    let mut s = attr("mode", AttributeType::String);
    s.s = Some("fast ✓".as_bytes().to_vec());
    let mut f = attr("alpha", AttributeType::Float);
    f.f = Some(0.25);
    NodeProto {
        domain: Some("com.example".into()),
        attribute: vec![ts, sts, s, f, attr_i("axis", -1)],
        doc_string: Some("custom op".into()),
        ..node("CustomOp", "custom", &["x"], &["custom_out"])
    }
}

/// An `If` whose branches hold `Constant` nodes and an initializer.
pub fn if_node(rng: &mut Rng) -> NodeProto {
    let then_g = graph(
        "then",
        vec![raw(
            "then_init",
            dtype::FLOAT,
            &[3],
            f32_bytes(&rng.weights(3, 1.0)),
        )],
        vec![constant(
            "then_c",
            attr_t(
                "value",
                raw("", dtype::FLOAT, &[4], f32_bytes(&rng.weights(4, 1.0))),
            ),
        )],
    );
    let mut vi = attr("value_ints", AttributeType::Ints);
    vi.ints = vec![1, 2, 3];
    let else_g = graph("else", Vec::new(), vec![constant("else_c", vi)]);
    NodeProto {
        attribute: vec![attr_g("then_branch", then_g), attr_g("else_branch", else_g)],
        ..node("If", "if", &["cond"], &["if_out"])
    }
}

/// A `Loop` whose body has an initializer and an `If` whose branch has an initializer (two
/// levels of nesting).
pub fn loop_node(rng: &mut Rng) -> NodeProto {
    let inner_then = graph(
        "inner_then",
        vec![raw(
            "deep_init",
            dtype::FLOAT,
            &[2, 2],
            f32_bytes(&rng.weights(4, 1.0)),
        )],
        vec![constant(
            "deep_c",
            attr_t("value", int32s("", dtype::INT8, &[3], vec![-1, 0, 1])),
        )],
    );
    let inner_else = graph("inner_else", Vec::new(), Vec::new());
    let inner_if = NodeProto {
        attribute: vec![
            attr_g("then_branch", inner_then),
            attr_g("else_branch", inner_else),
        ],
        ..node("If", "inner_if", &["c"], &["inner_out"])
    };
    let mut body = graph(
        "body",
        vec![raw(
            "body_init",
            dtype::FLOAT,
            &[5],
            f32_bytes(&rng.weights(5, 1.0)),
        )],
        vec![inner_if],
    );
    body.input = vec![value_info("iter", dtype::INT64, &[])];
    NodeProto {
        attribute: vec![attr_g("body", body)],
        ..node("Loop", "loop", &["trip", "cond"], &["loop_out"])
    }
}

/// A function with a `Constant` node inside and an attribute default holding a tensor.
pub fn function(rng: &mut Rng) -> FunctionProto {
    let mut vf = attr("value_floats", AttributeType::Floats);
    vf.floats = vec![0.1, 0.2];
    let mut ref_attr = attr("alpha", AttributeType::Float);
    ref_attr.ref_attr_name = Some("alpha".into());
    FunctionProto {
        name: Some("MyFunc".into()),
        domain: Some("com.example".into()),
        input: vec!["a".into()],
        output: vec!["b".into()],
        attribute: vec!["beta".into()],
        attribute_proto: vec![
            attr_t(
                "gamma",
                raw(
                    "gamma_default",
                    dtype::FLOAT,
                    &[3],
                    f32_bytes(&rng.weights(3, 1.0)),
                ),
            ),
            attr_t("delta", int32s("", dtype::UINT8, &[2], vec![1, 2])),
        ],
        node: vec![
            constant(
                "fc",
                attr_t(
                    "value",
                    raw("", dtype::FLOAT, &[6], f32_bytes(&rng.weights(6, 1.0))),
                ),
            ),
            constant("fcf", vf),
            NodeProto {
                attribute: vec![ref_attr],
                ..node("LeakyRelu", "lr", &["a"], &["b"])
            },
        ],
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        doc_string: Some("a function".into()),
        value_info: vec![value_info("fc", dtype::FLOAT, &[6])],
        metadata_props: vec![kv("fn-key", "fn-value")],
        ..Default::default()
    }
}

pub fn training_info(rng: &mut Rng) -> TrainingInfoProto {
    let init = graph(
        "init",
        vec![raw(
            "ti_seed",
            dtype::INT64,
            &[1],
            5i64.to_le_bytes().to_vec(),
        )],
        vec![constant(
            "ti_c",
            attr_t("value", floats("", &[3], rng.weights(3, 1.0))),
        )],
    );
    let algo = graph(
        "algo",
        vec![raw("lr", dtype::FLOAT, &[], f32_bytes(&[0.01]))],
        vec![node("Sub", "update", &["w_raw", "grad"], &["w_new"])],
    );
    TrainingInfoProto {
        initialization: Some(init),
        algorithm: Some(algo),
        initialization_binding: vec![kv("w_raw", "ti_c")],
        update_binding: vec![kv("w_raw", "w_new")],
    }
}

/// Whether the file offset `off` lies in the file header, a record (which part), or the
/// trailer: for failure messages.
pub fn describe_offset(file: &[u8], off: usize) -> String {
    if off < 16 {
        return format!("file header byte {off}");
    }
    let mut at = 16usize;
    let mut n = 0usize;
    while at + 24 <= file.len().saturating_sub(16) {
        let h = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
        let p = u64::from_le_bytes(file[at + 8..at + 16].try_into().unwrap()) as usize;
        let end = at + 24 + h + p;
        if off < end {
            let kind = file[at];
            let part = if off < at + 24 {
                let i = off - at;
                let field = match i {
                    0 => "kind",
                    1 => "flags",
                    2..=3 => "reserved",
                    4..=7 => "header length",
                    8..=15 => "payload length",
                    16..=19 => "payload CRC",
                    _ => "header CRC",
                };
                format!("prefix byte {i} ({field})")
            } else if off < at + 24 + h {
                format!("header byte {}", off - at - 24)
            } else {
                format!("payload byte {} of {p}", off - at - 24 - h)
            };
            return format!("record #{n} (kind {kind}) at {at}: {part}");
        }
        at = end;
        n += 1;
    }
    format!("trailer byte {}", off.saturating_sub(file.len() - 16))
}
