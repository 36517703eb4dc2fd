//! Vectors of the data types (spec §6.2), storages (§6.3) and strings (§6.4).
use super::*;

pub(super) fn dtype_case(dt: i32) -> Case {
    let name = dtype::name(dt);
    let mut rng = Rng::new(1000 + dt as u64);
    let ts = vec![
        raw(&format!("{name}.scalar"), dt, &[], data_of(dt, 1, &mut rng)),
        raw(
            &format!("{name}.vector"),
            dt,
            &[37],
            data_of(dt, 37, &mut rng),
        ),
        raw(
            &format!("{name}.matrix"),
            dt,
            &[8, 16],
            data_of(dt, 128, &mut rng),
        ),
    ];
    case(
        &format!("dtype-{name}"),
        &format!(
            "Data type {dt} ({name}) in raw_data: a 0-d scalar, 37 elements (an odd count, so \
             sub-byte types end in a padded byte) and an 8x16 matrix; edge values of the type \
             first."
        ),
        model(graph("g", ts, vec![])),
    )
    .facts(&[&format!("dtype:{name}"), "storage:raw_data", "rank:0"])
}

pub(super) fn strings() -> Case {
    let mut s = typed("words", dtype::STRING, &[2, 3]);
    s.string_data = vec![
        b"".to_vec(),
        b"a".to_vec(),
        "gr\u{fc}\u{df}e \u{4e16}\u{754c} \u{1f600}"
            .as_bytes()
            .to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        b"a somewhat longer string that makes zstd worth it, a somewhat longer string".to_vec(),
        vec![b'x'; 300],
    ];
    let mut one = typed("scalar", dtype::STRING, &[]);
    one.string_data = vec![b"0-d".to_vec()];
    let mut none = typed("empty", dtype::STRING, &[0]);
    none.string_data = vec![];
    case(
        "dtype-string",
        "STRING tensors in string_data (storage typed, spec §6.4 framing): empty strings, \
         non-UTF-8 bytes, a 0-d string, an empty tensor; the large one zstd-coded.",
        model(graph("g", vec![s, one, none], vec![])),
    )
    .facts(&["dtype:string", "storage:typed", "coding:zstd", "coding:raw"])
}

/// Every type with a typed field (spec §6.2), its data in that field.
pub(super) fn storage_typed() -> Case {
    let mut rng = Rng::new(7);
    let mut ts = Vec::new();
    for dt in fixed_width_types() {
        let Some(_) = nnc_typed_field(dt) else {
            continue;
        };
        let n = 24;
        let mut t = typed(&format!("typed.{}", dtype::name(dt)), dt, &[4, 6]);
        let bytes = data_of(dt, n, &mut rng);
        assert!(dtype::bytes_to_typed(&mut t, &bytes), "{dt}");
        ts.push(t);
    }
    case(
        "storage-typed",
        "Each data type that has a typed field, its values in that field (float_data, \
         double_data, int32_data, int64_data, uint64_data): storage typed.",
        model(graph("g", ts, vec![])),
    )
    .facts(&[
        "storage:typed",
        "dtype:complex64",
        "dtype:uint32",
        "dtype:float8e5m2fnuz",
    ])
}

/// Whether `dt` has a typed field in spec §6.2 (all fixed-width types of 8 bits and more).
pub(super) fn nnc_typed_field(dt: i32) -> Option<()> {
    (dtype::bits(dt)? >= 8).then_some(())
}

pub(super) fn external_tensor(
    name: &str,
    dt: i32,
    dims: &[i64],
    keys: &[(&str, &str)],
) -> TensorProto {
    let mut t = typed(name, dt, dims);
    t.data_location = Some(1);
    t.external_data = keys
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: Some(k.to_string()),
            value: Some(v.to_string()),
        })
        .collect();
    t
}

pub(super) fn storage_external() -> Case {
    let mut rng = Rng::new(8);
    let a = f32_bytes(&rng.weights(16, 0.1));
    let b: Vec<u8> = (0..40u8).collect();
    let c_data = data_of(dtype::FLOAT16, 12, &mut rng);
    // weights.bin: a at 0, 8 bytes of padding the decoder does not reproduce, b at 72.
    let mut w = a.clone();
    w.extend([0xee; 8]);
    w.extend(&b);
    let ts = vec![
        external_tensor(
            "ext.a",
            dtype::FLOAT,
            &[4, 4],
            &[
                ("location", "weights.bin"),
                ("offset", "0"),
                ("length", "64"),
            ],
        ),
        external_tensor(
            "ext.b",
            dtype::UINT8,
            &[40],
            &[("location", "weights.bin"), ("offset", "72")],
        ),
        external_tensor(
            "ext.c",
            dtype::FLOAT16,
            &[3, 4],
            &[("location", "sub/dir/more.bin"), ("checksum", "none")],
        ),
        raw("inside", dtype::INT32, &[2], vec![1, 0, 0, 0, 2, 0, 0, 0]),
    ];
    let mut c = case(
        "storage-external",
        "Three tensors in external data files (two in weights.bin, one at offset 72 after a \
         gap; one in sub/dir/more.bin without an offset key) and one in raw_data. Decoded \
         self-contained, the external tensors get raw_data; decoded to files, weights.bin is \
         112 bytes with zeros in the gap.",
        model(graph("g", ts, vec![])),
    )
    .sections(&["§6.3", "§11"])
    .facts(&["storage:external", "storage:raw_data"]);
    c.files = vec![
        ("weights.bin".into(), w),
        ("sub/dir/more.bin".into(), c_data),
    ];
    c
}

/// Tensors the encoder cannot lift: those holding data stay in the graph and are not slots
/// (spec §5.2); those without data get inline records (spec §6.3).
pub(super) fn storage_inline() -> Case {
    let mut int4 = typed("int4.in.int32_data", 22, &[3]);
    int4.int32_data = vec![0x21, 0x03];
    let mut f_in_d = typed("float.in.double_data", dtype::FLOAT, &[2]);
    f_in_d.double_data = vec![1.5, -2.5];
    let mut out_of_range = typed("int8.out.of.range", dtype::INT8, &[2]);
    out_of_range.int32_data = vec![1, 300];
    let short_raw = raw("raw.wrong.length", dtype::FLOAT, &[2], vec![0, 0, 128, 63]);
    let mut negative = typed("negative.dim", dtype::FLOAT, &[-1, 2]);
    negative.float_data = vec![1.0, 2.0];
    let mut undefined = TensorProto {
        name: Some("no.data.type".into()),
        dims: vec![2],
        ..Default::default()
    };
    undefined.raw_data = Some(vec![1, 2]);
    let unknown = raw("data.type.99", 99, &[3], vec![1, 2, 3]);
    let mut count = typed("strings.count.mismatch", dtype::STRING, &[3]);
    count.string_data = vec![b"a".to_vec(), b"b".to_vec()];
    let mut both = raw("raw.and.typed", dtype::FLOAT, &[1], vec![0, 0, 128, 63]);
    both.float_data = vec![1.0];
    let missing = typed("typed.field.empty", dtype::INT32, &[2]);
    let neg_type = raw("data.type.negative", -5, &[1], vec![7]);
    let negative_empty = typed("negative.dim.no.data", dtype::FLOAT, &[3, -1]);
    let ts = vec![
        negative_empty,
        int4,
        f_in_d,
        out_of_range,
        short_raw,
        negative,
        undefined,
        unknown,
        count,
        both,
        missing,
        neg_type,
    ];
    case(
        "storage-inline",
        "Tensors the encoder cannot lift. Those holding data stay in the graph and are not \
         slots: a 4-bit type in int32_data, FLOAT in double_data, an INT8 value out of range, \
         raw_data of the wrong length, a negative dim, no data_type, data_type 99, a STRING \
         count mismatch, raw_data and a typed field together, a negative data_type. Those \
         without data get inline records: a negative dim, and an INT32 tensor whose typed \
         field is empty.",
        model(graph("g", ts, vec![])),
    )
    .facts(&["storage:inline"])
}

/// The default placement: tensors that cost less in the graph than in a record stay there
/// (not slots, spec §5.2), beside ones in records.
pub(super) fn in_graph() -> Case {
    let mut rng = Rng::new(23);
    let small = raw(
        "small",
        dtype::FLOAT,
        &[2, 3],
        f32_bytes(&rng.weights(6, 0.5)),
    );
    let mut small_typed = typed("small.typed", dtype::INT64, &[3]);
    small_typed.int64_data = vec![-1, 0, 7];
    let big = raw(
        "big",
        dtype::FLOAT,
        &[32, 32],
        f32_bytes(&rng.weights(1024, 0.05)),
    );
    let empty = raw("empty", dtype::FLOAT, &[0], Vec::new());
    let nodes = vec![
        node(
            "Constant",
            &[],
            &["floats.in.graph"],
            vec![attr_floats("value_floats", &[1.5, -2.0, 0.25])],
        ),
        node(
            "Constant",
            &[],
            &["ints.empty"],
            vec![attr_ints("value_ints", &[])],
        ),
    ];
    case(
        "placement-in-graph",
        "The encoder's default placement: a small raw_data tensor, a small int64_data tensor \
         and a non-empty value_floats list stay in the graph (not slots); a 32x32 float \
         tensor, an empty tensor and an empty value_ints list have records.",
        model(graph("g", vec![small, small_typed, big, empty], nodes)),
    )
    .opts(EncodeOptions {
        lossy: None,
        ..EncodeOptions::default()
    })
    .sections(&["§5.2"])
    .facts(&["placement:in-graph"])
}

pub(super) fn constant_lists() -> Case {
    let mut v = typed("ignored.name", dtype::FLOAT, &[2]);
    v.float_data = vec![1.0, 2.0];
    let mut onnx_domain = node(
        "Constant",
        &[],
        &["ints.ai.onnx"],
        vec![attr_ints("value_ints", &[-1, 0, i64::MAX, i64::MIN])],
    );
    onnx_domain.domain = Some("ai.onnx".into());
    let mut custom = node(
        "Constant",
        &[],
        &["custom.domain"],
        vec![attr_floats("value_floats", &[9.0, 8.0])],
    );
    custom.domain = Some("com.example".into());
    let mut named = node(
        "Constant",
        &[],
        &[],
        vec![attr_floats("value_floats", &[0.5; 20])],
    );
    named.name = Some("constant.without.output".into());
    let nodes = vec![
        node(
            "Constant",
            &[],
            &["floats"],
            vec![attr_floats("value_floats", &[1.0, -0.0, f32::NAN, 3.25])],
        ),
        node(
            "Constant",
            &[],
            &["ints"],
            vec![attr_ints("value_ints", &[1, 2, 3, -4, 5, 6, 7, 8])],
        ),
        node(
            "Constant",
            &[],
            &["no.floats"],
            vec![attr_floats("value_floats", &[])],
        ),
        node(
            "Constant",
            &[],
            &["no.ints"],
            vec![attr_ints("value_ints", &[])],
        ),
        node(
            "Constant",
            &[],
            &["value.named.by.output"],
            vec![attr_t("value", v)],
        ),
        onnx_domain,
        custom,
        named,
        node(
            "Foo",
            &[],
            &["not.a.constant"],
            vec![attr_floats("value_floats", &[4.0])],
        ),
    ];
    case(
        "storage-constant-lists",
        "Constant nodes: value_floats and value_ints (storages value_floats and value_ints, \
         also empty lists), a value tensor named by the node's output, domain ai.onnx; a \
         Constant of another domain and another op keep their lists in the graph.",
        model(graph("g", vec![], nodes)),
    )
    .sections(&["§5.2"])
    .facts(&[
        "storage:value_floats",
        "storage:value_ints",
        "storage:typed",
    ])
}

pub(super) fn special_values() -> Case {
    let mut rng = Rng::new(18);
    let mut f = special_f32();
    f.extend(rng.weights(44, 1e3));
    let mut d = special_f64();
    d.extend((0..48).map(|_| rng.gauss(1e-300)));
    let mut h = special_f16();
    h.extend(special_f16());
    let mut b = special_bf16();
    b.extend(special_bf16());
    let ts = vec![
        floats("f32.specials", &[64], &f),
        raw("f64.specials", dtype::DOUBLE, &[64], f64_bytes(&d)),
        raw("f16.specials", dtype::FLOAT16, &[32], u16_bytes(&h)),
        raw("bf16.specials", dtype::BFLOAT16, &[32], u16_bytes(&b)),
        floats(
            "f32.max.only",
            &[4],
            &[f32::MAX, -f32::MAX, f32::MAX, -f32::MAX],
        ),
    ];
    case(
        "special-values",
        "Lossless float tensors holding ±0, ±MAX, subnormals, ±inf and NaNs with payloads \
         (float32, float64, float16, bfloat16): every bit pattern must come back.",
        model(weights_graph("g", ts)),
    )
    .facts(&[
        "dtype:float",
        "dtype:double",
        "dtype:float16",
        "dtype:bfloat16",
    ])
}

pub(super) fn empty_and_scalar() -> Case {
    let mut es = typed("empty.string", dtype::STRING, &[0, 5]);
    es.string_data = vec![];
    let mut ef = typed("empty.float.typed", dtype::FLOAT, &[0]);
    ef.float_data = vec![];
    let mut sf = typed("scalar.float.typed", dtype::FLOAT, &[]);
    sf.float_data = vec![42.0];
    let ts = vec![
        raw("empty.float", dtype::FLOAT, &[0], vec![]),
        raw("empty.int64.3x0x2", dtype::INT64, &[3, 0, 2], vec![]),
        raw("empty.int4", 22, &[0], vec![]),
        raw("empty.bool", dtype::BOOL, &[2, 0], vec![]),
        ef,
        es,
        raw("scalar.f16", dtype::FLOAT16, &[], vec![0x00, 0x3c]),
        raw("scalar.int4", 22, &[], vec![0x07]),
        raw("scalar.uint2", 25, &[], vec![0x03]),
        sf,
        raw("one.element.2d", dtype::INT8, &[1, 1], vec![0x80]),
    ];
    let nodes = vec![node(
        "Constant",
        &[],
        &["empty.constant"],
        vec![attr_t("value", raw("x", dtype::FLOAT, &[0, 3], vec![]))],
    )];
    case(
        "empty-and-scalar",
        "Tensors with zero elements (dims [0], [3,0,2], [2,0], [0,5]) in raw_data and typed \
         storage, 0-d scalars of several types including sub-byte ones, and a 1x1 tensor.",
        model(graph("g", ts, nodes)),
    )
    .facts(&[
        "rank:0",
        "empty-tensor",
        "storage:raw_data",
        "storage:typed",
    ])
}

pub(super) fn rank_and_dims() -> Case {
    let ts = vec![
        raw("rank64", dtype::UINT8, &[1; 64], vec![9]),
        raw(
            "rank8",
            dtype::INT16,
            &[1, 2, 1, 3, 1, 1, 2, 1],
            (0..24).collect(),
        ),
        raw(
            "long.vector",
            dtype::UINT8,
            &[1000],
            (0..1000).map(|i| (i % 7) as u8).collect(),
        ),
    ];
    case(
        "rank-and-dims",
        "A rank-64 tensor (the default max_dims), a rank-8 tensor with unit dims, and a long \
         vector.",
        model(graph("g", ts, vec![])),
    )
    .sections(&["§6.1", "§10"])
    .facts(&["rank:64"])
}
