//! Lossless round trip of synthetic ONNX models built with the prost types: every tensor
//! placement and element type, subgraphs, functions, training info, metadata, non-canonical
//! data and external data. Each model is encoded, decoded in memory and through files, and
//! must come back bit-identical.
mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use nnc::container::tensor_header::{Storage, TensorHeader};
use nnc::onnx::dtype;
use nnc::onnx::proto::attribute_proto::AttributeType;
use nnc::onnx::proto::*;
use nnc::{DecodeOptions, EncodeOptions};
use prost::Message;

/// Files (relative paths, directories excluded) under `dir`.
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn go(root: &Path, d: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                go(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    go(dir, dir, &mut out);
    out
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Encodes `m` (no external data), decodes it in memory and through `decode_file`, checks both
/// against the original, checks that encoding is deterministic, and returns the decoded
/// tensor records. Done twice: with the default placement (small tensors stay in the graph)
/// and with a record for every tensor (whose records are returned).
fn round_trip(m: &ModelProto) -> Vec<Flat> {
    round_trip_with(m, &common::lossless_default());
    round_trip_with(m, &lossless())
}

fn round_trip_with(m: &ModelProto, opts: &EncodeOptions) -> Vec<Flat> {
    let nnc_bytes = encode_with(m, None, opts);
    assert_eq!(
        nnc_bytes,
        encode_with(m, None, opts),
        "encoding the same model twice gave different bytes"
    );
    assert_models_equal(m, &decode_inline(&nnc_bytes), "decode_to_bytes");

    let dir = tempfile::tempdir().unwrap();
    let nnc_path = dir.path().join("m.nnc");
    std::fs::write(&nnc_path, &nnc_bytes).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for inline in [false, true] {
        let onnx_path = out.join("m.onnx");
        nnc::decode_file(&nnc_path, &onnx_path, DecodeOptions::default(), inline)
            .unwrap_or_else(|e| panic!("decode_file (inline_external={inline}): {e}"));
        assert_models_equal(m, &read_model(&onnx_path), "decode_file");
        assert_eq!(files_under(&out), set(&["m.onnx"]), "stray files");
    }

    let (graph, tensors) = read_tensors(&nnc_bytes[..], DecodeOptions::default()).unwrap();
    assert_eq!(graph.ir_version, m.ir_version);
    tensors
}

fn storage_of<'a>(tensors: &'a [Flat], name: &str) -> &'a Flat {
    tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor record named {name:?}"))
}

/// A tensor whose data stayed in the graph is not a slot: it has no record (spec §5.2).
fn assert_in_graph(tensors: &[Flat], name: &str) {
    assert!(
        tensors.iter().all(|t| t.name != name),
        "{name:?} has a record but its data stays in the graph"
    );
}

fn assert_storage(tensors: &[Flat], name: &str, s: Storage) {
    let t = storage_of(tensors, name);
    assert_eq!(t.storage, s, "storage of {name:?}");
}

fn single_graph(init: Vec<TensorProto>) -> ModelProto {
    model(graph("g", init, Vec::new()))
}

#[test]
fn float_tensors_in_raw_data_and_float_data() {
    let mut rng = Rng(11);
    let m = single_graph(vec![
        raw(
            "w_raw",
            dtype::FLOAT,
            &[32, 32],
            f32_bytes(&rng.weights(1024, 0.02)),
        ),
        floats("w_typed", &[4, 5], rng.weights(20, 0.5)),
        floats("w_typed_big", &[600], rng.weights(600, 0.1)),
    ]);
    let t = round_trip(&m);
    assert_storage(&t, "w_raw", Storage::RawData);
    assert_storage(&t, "w_typed", Storage::Typed);
    assert_storage(&t, "w_typed_big", Storage::Typed);
    assert_eq!(
        storage_of(&t, "w_typed").data,
        f32_bytes(&m.graph.as_ref().unwrap().initializer[1].float_data)
    );
}

#[test]
fn half_precision_tensors_raw_and_int32_data() {
    let mut rng = Rng(12);
    let init: Vec<TensorProto> = rich_model()
        .graph
        .unwrap()
        .initializer
        .into_iter()
        .filter(|t| {
            t.name.as_deref().unwrap_or("").starts_with(['f', 'b'])
                && t.data_type
                    .is_some_and(|d| d == dtype::FLOAT16 || d == dtype::BFLOAT16)
        })
        .collect();
    assert_eq!(init.len(), 4);
    let mut init = init;
    init.push(raw("fp16_big", dtype::FLOAT16, &[500], rng.bytes(1000)));
    let t = round_trip(&single_graph(init));
    assert_storage(&t, "fp16_raw", Storage::RawData);
    assert_storage(&t, "fp16_typed", Storage::Typed);
    assert_storage(&t, "bf16_raw", Storage::RawData);
    assert_storage(&t, "bf16_typed", Storage::Typed);
    // 0xffff is a valid bf16 (NaN) in int32_data and must come back unchanged.
    assert_eq!(
        storage_of(&t, "bf16_typed").data,
        vec![0x80, 0x3f, 0x80, 0xbf, 0xff, 0xff]
    );
}

#[test]
fn integer_and_bool_tensors_raw_and_typed() {
    let tensors = integer_tensors(&mut Rng(13));
    let names: Vec<String> = tensors.iter().map(|t| t.name.clone().unwrap()).collect();
    let t = round_trip(&single_graph(tensors));
    for n in &names {
        let want = if n.ends_with("_raw") {
            Storage::RawData
        } else {
            Storage::Typed
        };
        assert_storage(&t, n, want);
    }
    // Canonical little-endian bytes of typed fields.
    assert_eq!(storage_of(&t, "i8_typed").data, vec![0x80, 0xff, 0, 0x7f]);
    assert_eq!(
        storage_of(&t, "u32_typed").data,
        [0u32, 1, u32::MAX]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>()
    );
}

#[test]
fn double_and_complex_tensors() {
    let tensors: Vec<TensorProto> = float_family_tensors(&mut Rng(14))
        .into_iter()
        .filter(|t| {
            matches!(
                t.data_type,
                Some(dtype::DOUBLE | dtype::COMPLEX64 | dtype::COMPLEX128)
            )
        })
        .collect();
    assert_eq!(tensors.len(), 6);
    let t = round_trip(&single_graph(tensors));
    assert_storage(&t, "f64_typed", Storage::Typed);
    assert_storage(&t, "c64_typed", Storage::Typed);
    assert_storage(&t, "c128_typed", Storage::Typed);
    assert_storage(&t, "c64_raw", Storage::RawData);
    assert_eq!(storage_of(&t, "c64_typed").data.len(), 24);
    assert_eq!(storage_of(&t, "c128_typed").data.len(), 32);
}

#[test]
fn float8_and_sub_byte_tensors() {
    let tensors: Vec<TensorProto> = float_family_tensors(&mut Rng(15))
        .into_iter()
        .filter(|t| t.data_type.is_some_and(|d| d >= 17))
        .collect();
    let t = round_trip(&single_graph(tensors));
    for dt in [17, 18, 19, 20, 24] {
        assert_storage(&t, &format!("f8_{dt}_raw"), Storage::RawData);
        assert_storage(&t, &format!("f8_{dt}_typed"), Storage::Typed);
    }
    for n in ["u4_raw", "i4_raw", "f4_raw", "u2_raw", "i2_raw", "f6_raw"] {
        assert_storage(&t, n, Storage::RawData);
    }
    assert_eq!(
        storage_of(&t, "i4_raw").data.len(),
        5,
        "9 int4 elements pack into 5 bytes"
    );
    // int4 in int32_data packs two elements per entry: kept in the graph as it is.
    assert_in_graph(&t, "i4_typed");
    assert_in_graph(&t, "u4_typed");
}

#[test]
fn string_tensors_with_empty_and_non_ascii_elements() {
    let t = round_trip(&single_graph(string_tensors()));
    assert_storage(&t, "strings", Storage::Typed);
    assert_storage(&t, "vocab", Storage::Typed);
    assert_storage(&t, "string_scalar", Storage::Typed);
    let s = &storage_of(&t, "strings").data;
    assert_eq!(&s[..9], &[5, 0, 0, 0, b'h', b'e', b'l', b'l', b'o']);
}

#[test]
fn empty_tensors_and_scalars() {
    let t = round_trip(&single_graph(empty_and_scalar_tensors()));
    assert_eq!(storage_of(&t, "empty_f32").dims, vec![3, 0]);
    assert!(storage_of(&t, "empty_f32").data.is_empty());
    assert_storage(&t, "empty_raw_i64", Storage::RawData);
    assert!(storage_of(&t, "scalar_f32").dims.is_empty());
    assert_eq!(storage_of(&t, "scalar_f32").data, 3.5f32.to_le_bytes());
    assert_storage(&t, "scalar_i64_raw", Storage::RawData);
    assert_storage(&t, "segmented", Storage::RawData);
}

#[test]
fn non_ascii_names_and_metadata() {
    let mut t0 = raw("重み/ü", dtype::FLOAT, &[3], f32_bytes(&[1.5, -2.5, 0.0]));
    t0.doc_string = Some("doc ✓".into());
    let mut g = graph(
        "グラフ",
        vec![
            t0,
            floats("", &[1], vec![1.0]),
            floats("😀", &[1], vec![2.0]),
        ],
        vec![node("Identity", "ノード", &["重み/ü"], &["出力"])],
    );
    g.output = vec![value_info("出力", dtype::FLOAT, &[3])];
    let t = round_trip(&model(g));
    assert_storage(&t, "重み/ü", Storage::RawData);
    assert_storage(&t, "😀", Storage::Typed);
    // An unnamed initializer gets a name derived from its place.
    assert_eq!(t[1].name, "グラフ.initializer[1]");
}

#[test]
fn constant_nodes_value_value_floats_value_ints_sparse_value() {
    let nodes = constant_nodes(&mut Rng(16));
    let t = round_trip(&model(graph("g", Vec::new(), nodes)));
    // A Constant's value is known by the node's output name.
    assert_storage(&t, "c_value", Storage::RawData);
    assert_storage(&t, "c_value_typed", Storage::Typed);
    assert_storage(&t, "c_floats", Storage::AttrFloats);
    assert_storage(&t, "c_floats_empty", Storage::AttrFloats);
    assert_storage(&t, "c_ints", Storage::AttrInts);
    assert_storage(&t, "c_doc", Storage::RawData);
    assert_eq!(storage_of(&t, "c_ints").data.len(), 32);
    assert_eq!(storage_of(&t, "c_ints").dims, vec![4]);
    assert_storage(&t, "c_sparse.values", Storage::Typed);
    assert_storage(&t, "c_sparse.indices", Storage::Typed);
    assert_storage(&t, "c_domain", Storage::RawData);
    // value_floats of a non-default-domain node is an ordinary attribute: no slot.
    assert!(t.iter().all(|x| x.name != "c_custom"));
}

#[test]
fn sparse_initializers_and_tensors_attributes() {
    let mut rng = Rng(17);
    let mut g = graph("g", Vec::new(), vec![tensors_attr_node(&mut rng)]);
    g.sparse_initializer = vec![
        sparse(
            "sparse_init",
            &[10, 10],
            vec![1.0, 2.0, 3.0],
            vec![3, 47, 99],
        ),
        SparseTensorProto {
            values: Some(raw("sp_raw", dtype::FLOAT16, &[2], vec![0, 0x3c, 0, 0xbc])),
            indices: Some(raw(
                "sp_raw_idx",
                dtype::INT64,
                &[2, 2],
                [0i64, 1, 2, 3]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            )),
            dims: vec![3, 4],
        },
    ];
    let t = round_trip(&model(g));
    assert_storage(&t, "sparse_init", Storage::Typed);
    assert_storage(&t, "sparse_init.indices", Storage::Typed);
    assert_storage(&t, "sp_raw", Storage::RawData);
    assert_storage(&t, "sp_raw_idx", Storage::RawData);
    assert_storage(&t, "custom_out.tables[0]", Storage::RawData);
    assert_storage(&t, "second", Storage::Typed);
    assert_storage(&t, "custom_out.tables[2]", Storage::Typed);
    assert_storage(&t, "sp0", Storage::Typed);
}

#[test]
fn if_branches_and_loop_body_two_levels_deep() {
    let mut rng = Rng(18);
    let m = model(graph(
        "g",
        vec![floats("top", &[1], vec![1.0])],
        vec![if_node(&mut rng), loop_node(&mut rng)],
    ));
    let t = round_trip(&m);
    let names: Vec<&str> = t.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "top",
            "then_init",
            "then_c",
            "else_c",
            "body_init",
            "deep_init",
            "deep_c"
        ]
    );
    assert_storage(&t, "deep_init", Storage::RawData);
    assert_storage(&t, "else_c", Storage::AttrInts);
}

#[test]
fn functions_with_constants_and_attribute_defaults() {
    let mut m = model(graph(
        "g",
        Vec::new(),
        vec![node("MyFunc", "call", &["x"], &["y"])],
    ));
    m.functions = vec![function(&mut Rng(19))];
    let t = round_trip(&m);
    let names: Vec<&str> = t.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names[..3], ["fc", "fcf", "gamma_default"]);
    // An unnamed attribute default gets a name derived from the function and attribute
    // (currently "MyFunc.delta.delta": the attribute name appears twice).
    assert!(
        names[3].starts_with("MyFunc.delta"),
        "derived name {:?}",
        names[3]
    );
    assert_eq!(names.len(), 4);
    assert_storage(&t, "fcf", Storage::AttrFloats);
    assert_eq!(t[3].storage, Storage::Typed);
}

#[test]
fn training_info_graphs() {
    let mut m = model(graph(
        "g",
        vec![floats("w", &[2], vec![1.0, 2.0])],
        Vec::new(),
    ));
    m.training_info = vec![training_info(&mut Rng(20)), training_info(&mut Rng(21))];
    let t = round_trip(&m);
    let names: Vec<&str> = t.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        ["w", "ti_seed", "ti_c", "lr", "ti_seed", "ti_c", "lr"]
    );
}

#[test]
fn metadata_doc_strings_opsets_and_value_info_without_tensors() {
    let mut g = graph("g", Vec::new(), vec![node("Relu", "relu", &["x"], &["y"])]);
    g.doc_string = Some("doc\nwith newline".into());
    g.input = vec![value_info("x", dtype::FLOAT, &[-1, 3])];
    g.output = vec![value_info("y", dtype::FLOAT, &[-1, 3])];
    g.value_info = vec![value_info("z", dtype::INT64, &[])];
    g.metadata_props = vec![kv("a", "b"), kv("", "")];
    let m = model(g);
    assert!(round_trip(&m).is_empty());
    // A model with no graph at all.
    assert!(round_trip(&ModelProto::default()).is_empty());
}

#[test]
fn non_canonical_typed_data_stays_in_the_graph() {
    let tensors = non_canonical_tensors();
    let names: Vec<String> = tensors.iter().map(|t| t.name.clone().unwrap()).collect();
    let with_data: Vec<bool> = tensors.iter().map(nnc::onnx::walk::holds_data).collect();
    let t = round_trip(&single_graph(tensors));
    for (n, data) in names.iter().zip(with_data) {
        if data {
            assert_in_graph(&t, n);
        } else {
            assert_storage(&t, n, Storage::Inline);
        }
    }
}

#[test]
fn tensors_without_data_and_odd_dims_get_inline_records() {
    let odd = |name: &str, dt: Option<i32>, dims: Vec<i64>| TensorProto {
        name: Some(name.into()),
        data_type: dt,
        dims,
        ..Default::default()
    };
    let t = round_trip(&single_graph(vec![
        odd("negative_dim", Some(dtype::FLOAT), vec![-1, 4]),
        odd("no_type", None, vec![3]),
    ]));
    for n in ["negative_dim", "no_type"] {
        assert_storage(&t, n, Storage::Inline);
        assert!(storage_of(&t, n).data.is_empty());
    }
}

#[test]
fn small_tensors_stay_in_the_graph_by_default_and_large_ones_get_records() {
    let mut rng = Rng(5);
    let mut vf = attr("value_floats", AttributeType::Floats);
    vf.floats = rng.weights(6, 1.0);
    let mut vi = attr("value_ints", AttributeType::Ints);
    vi.ints = vec![1, 2, 3];
    let mut empty = attr("value_ints", AttributeType::Ints);
    empty.ints = Vec::new();
    let mut g = graph(
        "g",
        vec![
            raw(
                "small",
                dtype::FLOAT,
                &[3, 3],
                f32_bytes(&rng.weights(9, 0.1)),
            ),
            floats("small_typed", &[5], rng.weights(5, 0.1)),
            raw(
                "big",
                dtype::FLOAT,
                &[64, 64],
                f32_bytes(&rng.weights(4096, 0.1)),
            ),
            raw("empty", dtype::FLOAT, &[0], Vec::new()),
        ],
        vec![
            constant("cf_out", vf),
            constant("ci_out", vi),
            constant("ce_out", empty),
        ],
    );
    g.name = Some("g".into());
    let m = model(g);
    let t = round_trip_with(&m, &common::lossless_default());
    let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
    // Data-less places (an empty tensor, an empty list) are slots and keep their records.
    assert_eq!(names, ["big", "empty", "ce_out"], "records");
    for n in ["small", "small_typed", "cf_out", "ci_out"] {
        assert_in_graph(&t, n);
    }
    // With `records_only`, every place has a record.
    assert_eq!(round_trip(&m).len(), 7);
}

#[test]
fn special_float_bit_patterns_are_preserved() {
    // NaN payloads (quiet and signalling), -0.0, infinities, subnormals: PartialEq cannot see
    // all of these, so the comparison is on the serialized bytes.
    let bits32 = [
        0x7fc0_0001u32,
        0x7f80_0001,
        0xffc1_2345,
        0x8000_0000,
        0x7f80_0000,
        0xff80_0000,
        0x0000_0001,
        0x807f_ffff,
    ];
    let f: Vec<f32> = bits32.iter().map(|&b| f32::from_bits(b)).collect();
    let bits64 = [
        0x7ff8_0000_0000_0001u64,
        0x8000_0000_0000_0000,
        0x0000_0000_0000_0001,
    ];
    let d: Vec<f64> = bits64.iter().map(|&b| f64::from_bits(b)).collect();
    let mut vf = attr(
        "value_floats",
        nnc::onnx::proto::attribute_proto::AttributeType::Floats,
    );
    vf.floats = f.clone();
    let m = model(graph(
        "g",
        vec![
            floats("f_typed", &[8], f.clone()),
            raw("f_raw", dtype::FLOAT, &[8], f32_bytes(&f)),
            TensorProto {
                double_data: d.clone(),
                ..tensor("d_typed", dtype::DOUBLE, &[3])
            },
            TensorProto {
                float_data: f.clone(),
                ..tensor("c_typed", dtype::COMPLEX64, &[4])
            },
        ],
        vec![constant("vf", vf)],
    ));
    let t = round_trip(&m);
    let want: Vec<u8> = bits32.iter().flat_map(|b| b.to_le_bytes()).collect();
    assert_eq!(storage_of(&t, "f_typed").data, want);
    assert_eq!(storage_of(&t, "vf").data, want);
    // And the decoded model holds the same bit patterns.
    let back = decode_inline(&encode(&m, None));
    let g = back.graph.unwrap();
    let got: Vec<u32> = g.initializer[0]
        .float_data
        .iter()
        .map(|x| x.to_bits())
        .collect();
    assert_eq!(got, bits32);
    let got: Vec<u64> = g.initializer[2]
        .double_data
        .iter()
        .map(|x| x.to_bits())
        .collect();
    assert_eq!(got, bits64);
}

#[test]
fn rich_model_round_trips_through_files() {
    let m = rich_model();
    let dir = tempfile::tempdir().unwrap();
    let onnx_path = dir.path().join("rich.onnx");
    std::fs::write(&onnx_path, m.encode_to_vec()).unwrap();
    let nnc_path = dir.path().join("rich.nnc");
    let report = nnc::encode_file(&onnx_path, &nnc_path, &lossless()).unwrap();
    let file = std::fs::read(&nnc_path).unwrap();
    assert_eq!(report.total_bytes, file.len() as u64);
    assert_eq!(
        file,
        encode(&m, None),
        "encode_file and encode_model differ"
    );
    assert_eq!(files_under(dir.path()), set(&["rich.nnc", "rich.onnx"]));
    let t = round_trip(&m);
    let records: Vec<_> = report.tensors.iter().filter(|r| !r.in_graph).collect();
    assert_eq!(t.len(), records.len());
    for (a, b) in t.iter().zip(records) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.storage, b.storage);
        assert_eq!(a.coding, b.coding);
    }
}

#[test]
fn rich_model_round_trips_with_tiny_rans_chunks() {
    // Many rANS chunks per stream (spec §7.3).
    let mut opts = lossless();
    opts.lossless.chunk = 7;
    round_trip_with(&rich_model(), &opts);
    opts.lossless.chunk = 1;
    round_trip_with(&small_model(), &opts);
}

// ---------------------------------------------------------------------------------------------
// External data

fn external(name: &str, dt: i32, dims: &[i64], entries: &[(&str, &str)]) -> TensorProto {
    TensorProto {
        data_location: Some(1),
        external_data: entries.iter().map(|(k, v)| kv(k, v)).collect(),
        ..tensor(name, dt, dims)
    }
}

struct ExternalFixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    model: ModelProto,
    /// (location, offset, bytes) of every external tensor, by tensor name.
    data: Vec<(String, String, u64, Vec<u8>)>,
}

fn external_fixture() -> ExternalFixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("src");
    std::fs::create_dir_all(root.join("weights")).unwrap();
    let mut rng = Rng(23);
    let a = f32_bytes(&rng.weights(1000, 0.1));
    let b = rng.bytes(300);
    let c: Vec<u8> = (0..64i64)
        .flat_map(|v| (v * 1000 - 7).to_le_bytes())
        .collect();
    let d = rng.bytes(100);
    // shared.bin: a at 0, junk, b at 4096, junk, d at 8192, trailing junk.
    let mut shared = a.clone();
    shared.extend(rng.bytes(4096 - a.len()));
    shared.extend(&b);
    shared.extend(rng.bytes(8192 - shared.len()));
    shared.extend(&d);
    shared.extend(rng.bytes(33));
    std::fs::write(root.join("shared.bin"), &shared).unwrap();
    std::fs::write(root.join("weights/w.bin"), &c).unwrap();

    let then_g = graph(
        "then",
        vec![external(
            "ext_d",
            dtype::FLOAT16,
            &[50],
            &[
                ("location", "shared.bin"),
                ("offset", "8192"),
                ("length", "100"),
            ],
        )],
        Vec::new(),
    );
    let if_node = NodeProto {
        attribute: vec![
            attr_g("then_branch", then_g),
            attr_g("else_branch", graph("else", Vec::new(), Vec::new())),
        ],
        ..node("If", "if", &["cond"], &["out"])
    };
    let mut ext_b = external(
        "ext_b",
        dtype::UINT8,
        &[300],
        &[
            ("location", "shared.bin"),
            ("offset", "4096"),
            ("length", "300"),
            ("checksum", "0123456789abcdef"),
        ],
    );
    ext_b.doc_string = Some("second tensor of shared.bin".into());
    let m = model(graph(
        "g",
        vec![
            external(
                "ext_a",
                dtype::FLOAT,
                &[10, 100],
                &[
                    ("location", "shared.bin"),
                    ("offset", "0"),
                    ("length", "4000"),
                ],
            ),
            floats("inline_w", &[2], vec![1.0, 2.0]),
            ext_b,
            external(
                "ext_c",
                dtype::INT64,
                &[8, 8],
                &[("location", "weights/w.bin")],
            ),
        ],
        vec![if_node],
    ));
    ExternalFixture {
        _dir: dir,
        root,
        model: m,
        data: vec![
            ("ext_a".into(), "shared.bin".into(), 0, a),
            ("ext_b".into(), "shared.bin".into(), 4096, b),
            ("ext_c".into(), "weights/w.bin".into(), 0, c),
            ("ext_d".into(), "shared.bin".into(), 8192, d),
        ],
    }
}

/// The model with every external tensor's data moved into `raw_data`.
fn inlined(m: &ModelProto, data: &[(String, String, u64, Vec<u8>)]) -> ModelProto {
    let mut m = m.clone();
    nnc::onnx::walk::walk(&mut m, 64, &mut |name, slot| {
        if let nnc::onnx::walk::SlotMut::Tensor(t) = slot {
            if t.data_location == Some(1) {
                let (_, _, _, bytes) = data.iter().find(|d| name.eq_str(&d.0)).unwrap();
                t.raw_data = Some(bytes.clone());
                t.data_location = None;
                t.external_data.clear();
            }
        }
        Ok(())
    })
    .unwrap();
    m
}

#[test]
fn external_data_round_trips_to_the_same_files_and_offsets() {
    let fx = external_fixture();
    let onnx_path = fx.root.join("model.onnx");
    std::fs::write(&onnx_path, fx.model.encode_to_vec()).unwrap();
    let nnc_path = fx.root.join("model.nnc");
    let report = nnc::encode_file(&onnx_path, &nnc_path, &lossless()).unwrap();
    let ext: Vec<&str> = report
        .tensors
        .iter()
        .filter(|t| t.storage == Storage::External)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(ext, ["ext_a", "ext_b", "ext_c", "ext_d"]);
    // In memory too, with the same bytes.
    let nnc_bytes = std::fs::read(&nnc_path).unwrap();
    assert_eq!(nnc_bytes, encode(&fx.model, Some(&fx.root)));

    // Decode beside a new file: external data goes to the same relative locations.
    let out = fx.root.parent().unwrap().join("out");
    std::fs::create_dir(&out).unwrap();
    let decoded = out.join("decoded.onnx");
    nnc::decode_file(&nnc_path, &decoded, DecodeOptions::default(), false).unwrap();
    assert_models_equal(&fx.model, &read_model(&decoded), "decode_file");
    assert_eq!(
        files_under(&out),
        set(&["decoded.onnx", "shared.bin", "weights/w.bin"])
    );
    for (name, loc, off, bytes) in &fx.data {
        let f = std::fs::read(out.join(loc)).unwrap();
        let (s, e) = (*off as usize, *off as usize + bytes.len());
        assert!(f.len() >= e, "{loc} too short for {name}");
        assert_eq!(&f[s..e], &bytes[..], "bytes of {name} in {loc} at {off}");
    }

    // inline_external: the data lands in raw_data, no file beside the model.
    let want = inlined(&fx.model, &fx.data);
    let out2 = fx.root.parent().unwrap().join("out2");
    std::fs::create_dir(&out2).unwrap();
    let inl = out2.join("inline.onnx");
    nnc::decode_file(&nnc_path, &inl, DecodeOptions::default(), true).unwrap();
    assert_models_equal(&want, &read_model(&inl), "decode_file inline_external");
    assert_eq!(files_under(&out2), set(&["inline.onnx"]));
    assert_models_equal(&want, &decode_inline(&nnc_bytes), "decode_to_bytes");

    // The records carry the external bytes.
    let (_, tensors) = read_tensors(&nnc_bytes[..], DecodeOptions::default()).unwrap();
    for (name, _, _, bytes) in &fx.data {
        let t = storage_of(&tensors, name);
        assert_eq!(t.storage, Storage::External);
        assert_eq!(&t.data, bytes, "record data of {name}");
    }
}

fn encode_err(m: &ModelProto, base: &Path) -> String {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        nnc::encode_model(m.clone(), Some(base), &lossless(), Vec::new())
    }));
    match r {
        Err(_) => panic!("encoder panicked instead of returning an error"),
        Ok(Ok(_)) => panic!("encoder accepted an unsafe external location"),
        Ok(Err(e)) => e.to_string(),
    }
}

#[test]
fn unsafe_external_locations_are_rejected_by_the_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("model_dir");
    std::fs::create_dir(&base).unwrap();
    // The files exist: the rejection must be a policy, not a missing file.
    let bytes = f32_bytes(&[1.0, 2.0]);
    std::fs::write(dir.path().join("x.bin"), &bytes).unwrap();
    std::fs::write(base.join("ok.bin"), &bytes).unwrap();
    let abs = dir.path().join("x.bin");
    let abs = abs.to_str().unwrap();
    for loc in ["../x.bin", abs, "ok/../../x.bin", ""] {
        let m = single_graph(vec![external(
            "e",
            dtype::FLOAT,
            &[2],
            &[("location", loc)],
        )]);
        let msg = encode_err(&m, &base);
        assert!(msg.contains("location"), "{loc:?}: {msg}");
    }
    // Control: the same tensor with a safe location encodes.
    let ok = single_graph(vec![external(
        "e",
        dtype::FLOAT,
        &[2],
        &[("location", "ok.bin")],
    )]);
    let nnc_bytes = encode(&ok, Some(&base));
    let back = decode_inline(&nnc_bytes);
    assert_eq!(
        back.graph.unwrap().initializer[0].raw_data.as_deref(),
        Some(&bytes[..])
    );
    // Out-of-range offsets, a wrong length and a missing file are errors too.
    for entries in [
        vec![("location", "ok.bin"), ("offset", "4")],
        vec![("location", "ok.bin"), ("length", "4")],
        vec![("location", "ok.bin"), ("offset", "x")],
        vec![("location", "missing.bin")],
        vec![("offset", "0")],
    ] {
        let m = single_graph(vec![external("e", dtype::FLOAT, &[2], &entries)]);
        encode_err(&m, &base);
    }
}

/// Rewrites the graph of a `.nnc` (records re-framed, tensor records kept as they are).
fn rewrite_graph(nnc_bytes: &[u8], f: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    use nnc::container::kind;
    use nnc::container::reader::RecordReader;
    use nnc::container::writer::ContainerWriter;
    let limits = nnc::Limits::default();
    let mut r = RecordReader::new(nnc_bytes, limits).unwrap();
    let g = r.next_record().unwrap();
    assert_eq!(g.prefix.kind, kind::GRAPH);
    let len = u64::from_le_bytes(g.header[1..9].try_into().unwrap());
    let raw = zstd::bulk::decompress(&g.payload, len as usize).unwrap();
    let mut m = ModelProto::decode(raw.as_slice()).unwrap();
    f(&mut m);
    let raw = m.encode_to_vec();
    let frame = zstd::bulk::compress(&raw, 3).unwrap();
    let mut w = ContainerWriter::new(Vec::new()).unwrap();
    w.graph(raw.len() as u64, &frame).unwrap();
    loop {
        let rec = r.next_record().unwrap();
        if rec.prefix.kind == kind::INDEX {
            break;
        }
        let h = TensorHeader::parse(&rec.header, 0, &limits).unwrap();
        w.tensor(&h, &rec.payload).unwrap();
    }
    w.finish().unwrap().0
}

#[test]
fn unsafe_external_locations_are_rejected_by_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("ok.bin"), f32_bytes(&[1.0, 2.0])).unwrap();
    let m = single_graph(vec![external(
        "e",
        dtype::FLOAT,
        &[2],
        &[("location", "ok.bin")],
    )]);
    let good = encode(&m, Some(&src));
    let abs = dir.path().join("abs.bin");
    for loc in ["../x.bin", abs.to_str().unwrap(), "a/../../x.bin"] {
        let bad = rewrite_graph(&good, |m| {
            m.graph.as_mut().unwrap().initializer[0].external_data[0].value = Some(loc.into())
        });
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let nnc_path = dir.path().join("bad.nnc");
        std::fs::write(&nnc_path, &bad).unwrap();
        let r = std::panic::catch_unwind(|| {
            nnc::decode_file(
                &nnc_path,
                &out.join("m.onnx"),
                DecodeOptions::default(),
                false,
            )
        });
        match r {
            Err(_) => panic!("decoder panicked on location {loc:?}"),
            Ok(Ok(())) => panic!("decoder wrote external data to {loc:?}"),
            Ok(Err(e)) => assert!(e.to_string().contains("location"), "{loc:?}: {e}"),
        }
        assert!(files_under(&out).is_empty(), "{loc:?}: output left behind");
        assert!(!dir.path().join("x.bin").exists());
        assert!(!abs.exists());
    }
}

#[test]
fn dims_overflowing_64_bits_never_give_an_undecodable_file() {
    // No data and dims whose product exceeds 2^64 - 1: the encoder may refuse the model, but
    // must not panic nor write a file its own decoder rejects.
    let m = single_graph(vec![
        tensor("huge", dtype::FLOAT, &[1 << 40, 1 << 40]),
        tensor("huge_negative", dtype::FLOAT, &[-1, 1 << 40, 1 << 40]),
    ]);
    let r =
        std::panic::catch_unwind(|| nnc::encode_model(m.clone(), None, &lossless(), Vec::new()));
    match r {
        Err(_) => panic!("encoder panicked"),
        Ok(Err(e)) => assert!(e.to_string().contains("huge"), "{e}"),
        Ok(Ok((bytes, _))) => assert_models_equal(&m, &decode_inline(&bytes), "huge dims"),
    }
}
