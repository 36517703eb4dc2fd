//! Invalid vectors of the graph (§5), the tensor header and its slot (§6) and the quantizer
//! parameters (§7.6.2).
use super::*;

/// Spec §5.1, §6.3 (external locations), §11.
pub(super) fn graph_record(o: &mut Out) {
    let mut f = o.file(EX);
    f.recs[GRAPH].header.pop();
    o.add(
        "graph-header-length-8",
        "graph",
        &["§5.1"],
        EX,
        "GRAPH header of 8 bytes.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs[GRAPH].header.push(0);
    o.add(
        "graph-header-length-10",
        "graph",
        &["§5.1"],
        EX,
        "GRAPH header of 10 bytes.",
        f.bytes(),
    );
    for c in [0u8, 3] {
        let mut f = o.file(EX);
        f.recs[GRAPH].header[0] = c;
        o.add(
            &format!("graph-compression-{c}"),
            "graph",
            &["§5.1"],
            EX,
            &format!("GRAPH compression byte {c}."),
            f.bytes(),
        );
    }
    let mut f = o.file(EX);
    let n = f.recs[GRAPH].payload.len();
    f.recs[GRAPH].payload = (0..n as u32).map(|i| (i * 7) as u8).collect();
    o.add(
        "graph-bad-zstd",
        "graph",
        &["§5.1", "§7.5"],
        EX,
        "GRAPH payload replaced by bytes that are not zstd.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs[GRAPH].payload.truncate(n - 3);
    o.add(
        "graph-zstd-truncated",
        "graph",
        &["§5.1", "§7.5"],
        EX,
        "GRAPH payload: the zstd frame without its last 3 bytes.",
        f.bytes(),
    );
    let len = graph_model(&o.file(EX)).encode_to_vec().len() as u64;
    for (tag, l) in [("too-large", len + 1), ("too-small", len - 1)] {
        let mut f = o.file(EX);
        f.recs[GRAPH].header = graph_header(l);
        o.add(
            &format!("graph-length-{tag}"),
            "graph",
            &["§5.1", "§7.5"],
            EX,
            &format!("GRAPH header says the model has {l} bytes; the frame holds {len}."),
            f.bytes(),
        );
    }
    let mut f = o.file(EX);
    set_graph_bytes(&mut f, &[0xff; 24]);
    o.add(
        "graph-not-modelproto",
        "graph",
        &["§5.1"],
        EX,
        "GRAPH payload: valid zstd of 24 bytes 0xFF, which do not parse as a ModelProto.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs[GRAPH].header = graph_header(3 << 30);
    o.add(
        "limit-graph-bytes",
        "limit",
        &["§5.1", "§10"],
        EX,
        "GRAPH header claims a 3 GiB model (over max_graph_bytes, 1 GiB): limit \"graph bytes\".",
        f.bytes(),
    );
    // 2^20 + 1 empty initializers (2 bytes each in the ModelProto): one slot over max_tensors.
    let mut f = o.file(EX);
    let mut g = graph("g", vec![], vec![]);
    g.initializer = vec![Default::default(); (1 << 20) + 1];
    set_graph_model(&mut f, &model(g));
    f.recs.truncate(1);
    let (b, lay) = f.assemble(false);
    o.add(
        "limit-tensor-count",
        "limit",
        &["§5.1", "§10"],
        EX,
        "A graph with 2^20 + 1 empty initializers (over max_tensors, 2^20), the file ending \
         after its GRAPH record: limit \"tensor count\", checked before any TENSOR record.",
        b[..lay.trailer].to_vec(),
    );

    let base = "storage-constant-lists";
    for (name, what) in [("value_floats", "floats"), ("value_ints", "ints")] {
        let mut f = o.file(base);
        let mut m = graph_model(&f);
        let g = m.graph.as_mut().unwrap();
        let a = g
            .node
            .iter_mut()
            .filter(|n| n.op_type.as_deref() == Some("Constant"))
            .flat_map(|n| n.attribute.iter_mut())
            .find(|a| a.name.as_deref() == Some(name))
            .unwrap();
        if what == "floats" {
            a.floats = vec![1.0];
        } else {
            a.ints = vec![1];
        }
        set_graph_model(&mut f, &m);
        o.add(
            &format!("tensor-header-{}-in-graph", name.replace('_', "-")),
            "tensor-header",
            &["§5.2", "§6.3"],
            base,
            &format!(
                "The lifted graph holds a Constant whose {name} list is not empty: that place \
                 is then not a slot, so the record written for it meets the next slot, whose \
                 name differs."
            ),
            f.bytes(),
        );
    }

    // 65 levels of subgraphs: beyond max_depth (64); prost's own recursion limit stops it
    // earlier, also as a `graph` error.
    let mut g = graph("level65", vec![], vec![]);
    for i in (1..65).rev() {
        g = graph(
            &format!("level{i}"),
            vec![],
            vec![node("If", &["c"], &["o"], vec![attr_g("then_branch", g)])],
        );
    }
    // The encoder writes only what its decoder accepts: encode a model without subgraphs,
    // then put the deep one in its place.
    let opts = super::super::valid::lossless();
    let (b, _) = nnc::encode_model(
        model(graph("level1", vec![], vec![])),
        None,
        &opts,
        Vec::new(),
    )
    .expect("shallow model");
    let mut f = NncFile::parse(&b);
    set_graph_model(&mut f, &model(g));
    let b = f.bytes();
    o.add(
        "graph-nesting-too-deep",
        "graph",
        &["§5.1", "§5.2", "§10"],
        "",
        "Subgraphs nested 65 levels deep (If within If), one more than max_depth (64).",
        b,
    );

    let base = "storage-external";
    let mut f = o.file(base);
    let mut m = graph_model(&f);
    m.graph.as_mut().unwrap().initializer[0].raw_data = Some(vec![0; 4]);
    set_graph_model(&mut f, &m);
    o.add(
        "graph-external-tensor-holds-data",
        "graph",
        &["§5.2"],
        base,
        "External tensor \"ext.a\" also holds raw_data in the lifted graph: neither a slot \
         nor a tensor a decoder can write.",
        f.bytes(),
    );
    for (tag, loc) in [
        ("parent", "../weights.bin"),
        ("absolute", "/tmp/weights.bin"),
        ("backslash", "sub\\weights.bin"),
        ("empty-component", "sub//weights.bin"),
        ("trailing-slash", "weights.bin/"),
        ("colon", "C:weights.bin"),
        ("dot-only", "./."),
    ] {
        let mut f = o.file(base);
        let mut m = graph_model(&f);
        let t = &mut m.graph.as_mut().unwrap().initializer[0];
        for e in &mut t.external_data {
            if e.key.as_deref() == Some("location") {
                e.value = Some(loc.into());
            }
        }
        set_graph_model(&mut f, &m);
        o.add(
            &format!("graph-external-location-{tag}"),
            "graph",
            &["§6.3", "§11"],
            base,
            &format!(
                "External tensor \"ext.a\" with location {loc:?}. Only a decoder that writes \
                 external files meets this rule: decoding to a self-contained model succeeds."
            ),
            f.bytes(),
        );
        o.v.last_mut().unwrap().decode = "files";
    }
}

/// Spec §6.1.
pub(super) fn tensor_header(o: &mut Out) {
    let edit = |o: &mut Out,
                name: &str,
                expected: &'static str,
                sections: &[&'static str],
                rec: usize,
                what: &str,
                e: &dyn Fn(&mut RawHeader)| {
        let mut f = o.file(EX);
        edit_header(&mut f, rec, e);
        o.add(name, expected, sections, EX, what, f.bytes());
    };
    let mut f = o.file(EX);
    let h = f.recs[K].header.len();
    f.recs[K].header.truncate(h - 4);
    o.add(
        "tensor-header-cut-off",
        "tensor-header",
        &["§6.1"],
        EX,
        "Tensor \"k\": header without its params length field.",
        f.bytes(),
    );
    edit(
        o,
        "tensor-header-name-cut-off",
        "tensor-header",
        &["§6.1"],
        K,
        "Tensor \"k\": name length 100 in a 45-byte header.",
        &|h| h.name_len_override = Some(100),
    );
    edit(
        o,
        "tensor-header-unknown-storage",
        "tensor-header",
        &["§6.1", "§12"],
        K,
        "Tensor \"k\": storage 6.",
        &|h| h.storage = 6,
    );
    edit(
        o,
        "tensor-header-unknown-coding",
        "tensor-header",
        &["§6.1", "§12"],
        K,
        "Tensor \"k\": coding 6.",
        &|h| h.coding = 6,
    );
    edit(
        o,
        "tensor-header-data-type-0",
        "tensor-header",
        &["§6.1"],
        K,
        "Tensor \"k\": data_type 0 with storage raw_data.",
        &|h| h.data_type = 0,
    );
    edit(
        o,
        "tensor-header-data-type-negative",
        "tensor-header",
        &["§6.1"],
        K,
        "Tensor \"k\": data_type 0xFFFFFFF9 (-7 as i32) with storage raw_data.",
        &|h| h.data_type = (-7i32) as u32,
    );
    edit(
        o,
        "reserved-nonzero-tensor-header",
        "reserved-nonzero",
        &["§6.1"],
        K,
        "Tensor \"k\": reserved header bytes 6..8 are 1.",
        &|h| h.reserved = 1,
    );
    edit(
        o,
        "tensor-header-unknown-storage-before-reserved",
        "tensor-header",
        &["§6.1", "§9"],
        K,
        "Tensor \"k\": storage 9 and reserved bytes 1: storage is checked first.",
        &|h| {
            h.storage = 9;
            h.reserved = 1;
        },
    );
    edit(
        o,
        "limit-name-length",
        "limit",
        &["§6.1", "§10"],
        K,
        "Tensor \"k\": name length 131072 (over max_name_len, 65536): limit \"name length\".",
        &|h| h.name_len_override = Some(1 << 17),
    );
    edit(
        o,
        "tensor-header-name-not-utf8",
        "tensor-header",
        &["§6.1"],
        K,
        "Tensor \"k\": name byte 0xFF (not UTF-8).",
        &|h| h.name = vec![0xff],
    );
    edit(
        o,
        "limit-rank",
        "limit",
        &["§6.1", "§10"],
        K,
        "Tensor \"k\": rank 65 (over max_dims, 64): limit \"rank\".",
        &|h| h.rank_override = Some(65),
    );
    edit(
        o,
        "tensor-header-elements-not-product",
        "tensor-header",
        &["§6.1"],
        K,
        "Tensor \"k\": elements 4, dims [3].",
        &|h| h.elements = 4,
    );
    edit(
        o,
        "tensor-header-elements-overflow",
        "tensor-header",
        &["§6.1"],
        K,
        "Tensor \"k\": dims [2^33, 2^33], elements 0 (their product modulo 2^64).",
        &|h| {
            h.dims = vec![1 << 33, 1 << 33];
            h.elements = 0;
        },
    );
    edit(
        o,
        "limit-elements",
        "limit",
        &["§6.1", "§10"],
        K,
        "Tensor \"k\": dims [2^33], elements 2^33 (over max_elements, 2^32): limit \"elements\".",
        &|h| {
            h.dims = vec![1 << 33];
            h.elements = 1 << 33;
            h.data_bytes = 1 << 36;
        },
    );
    edit(o, "limit-tensor-bytes", "limit", &["§6.1", "§10"], K, "Tensor \"k\" made inline with dims [2^40] and data_bytes 2^35 (over max_alloc, 16 GiB): limit \"tensor bytes\" comes before the inline rule.", &|h| {
        h.storage = 3;
        h.dims = vec![1 << 40];
        h.elements = 1 << 40;
        h.data_bytes = 1 << 35;
    });
    edit(
        o,
        "tensor-header-data-bytes-wrong",
        "tensor-header",
        &["§6.1", "§6.2"],
        K,
        "Tensor \"k\": data_bytes 25 for 3 INT64 elements (24).",
        &|h| h.data_bytes = 25,
    );
    edit(
        o,
        "tensor-header-data-type-without-width",
        "tensor-header",
        &["§6.1", "§6.2"],
        K,
        "Tensor \"k\": data_type 29 (unknown, no width) with storage raw_data.",
        &|h| h.data_type = 29,
    );
    edit(
        o,
        "tensor-header-bytes-after-params",
        "tensor-header",
        &["§6.1"],
        K,
        "Tensor \"k\": one byte after params.",
        &|h| h.extra = vec![0],
    );
    edit(
        o,
        "tensor-header-params-on-raw-coding",
        "tensor-header",
        &["§6.3", "§7"],
        K,
        "Tensor \"k\": coding raw with 4 parameter bytes.",
        &|h| h.params = vec![0; 4],
    );
    edit(
        o,
        "tensor-header-storage-external-for-raw-slot",
        "tensor-header",
        &["§6.3"],
        K,
        "Tensor \"k\": storage external for a slot that is not EXTERNAL.",
        &|h| h.storage = 2,
    );
    edit(
        o,
        "tensor-header-storage-value-ints-for-tensor-slot",
        "tensor-header",
        &["§6.3"],
        K,
        "Tensor \"k\" (INT64, rank 1): storage value_ints for a TensorProto slot.",
        &|h| h.storage = 5,
    );
    edit(
        o,
        "tensor-header-quantized-int64",
        "tensor-header",
        &["§7.6"],
        K,
        "Tensor \"k\" (INT64): coding quantized with valid midtread parameters.",
        &|h| {
            h.coding = 3;
            h.params = QuantParams {
                kind: Kind::Midtread,
                steps: vec![1.0],
            }
            .to_bytes();
        },
    );

    let base = "storage-inline";
    let inline_rec = |f: &NncFile| f.tensor(0);
    for (name, what, e) in [
        (
            "tensor-header-inline-with-coding",
            "coding planes",
            (|h: &mut RawHeader| h.coding = 1) as fn(&mut RawHeader),
        ),
        (
            "tensor-header-inline-with-data-bytes",
            "data_bytes 2",
            |h: &mut RawHeader| h.data_bytes = 2,
        ),
    ] {
        let mut f = o.file(base);
        let r = inline_rec(&f);
        edit_header(&mut f, r, e);
        o.add(
            name,
            "tensor-header",
            &["§6.1", "§6.3"],
            base,
            &format!("An inline record with {what}."),
            f.bytes(),
        );
    }
    let mut f = o.file(base);
    let r = inline_rec(&f);
    f.recs[r].payload = vec![0];
    o.add(
        "payload-inline-with-payload",
        "payload",
        &["§6.3"],
        base,
        "An inline record with a 1-byte payload.",
        f.bytes(),
    );

    let base = "dtype-string";
    let mut f = o.file(base);
    let r = tensor_named(&f, "words");
    edit_header(&mut f, r, |h| h.data_bytes = 23);
    o.add(
        "tensor-header-string-data-bytes-small",
        "tensor-header",
        &["§6.1", "§6.4"],
        base,
        "STRING tensor \"words\" (6 elements) with data_bytes 23 (< 4 x 6).",
        f.bytes(),
    );
    let mut f = o.file(base);
    let r = tensor_named(&f, "words");
    edit_header(&mut f, r, |h| h.storage = 0);
    o.add(
        "tensor-header-raw-data-string",
        "tensor-header",
        &["§6.1"],
        base,
        "STRING tensor \"words\" with storage raw_data.",
        f.bytes(),
    );
    let mut f = o.file(base);
    let r = tensor_named(&f, "scalar");
    f.recs[r].payload[0] = 4;
    o.add("payload-string-framing", "payload", &["§6.4"], base, "STRING tensor \"scalar\" (raw): length prefix 4 for a 3-byte string, so the framing runs past the data.", f.bytes());
    let mut f = o.file(base);
    let r = tensor_named(&f, "scalar");
    edit_header(&mut f, r, |h| h.data_bytes = 8);
    f.recs[r].payload = vec![0; 8];
    o.add(
        "payload-string-count",
        "payload",
        &["§6.4"],
        base,
        "STRING tensor \"scalar\" (1 element): intact framing of 2 empty strings.",
        f.bytes(),
    );
    let mut f = o.file(base);
    let r = tensor_named(&f, "words");
    let data = zstd::bulk::decompress(&f.recs[r].payload, 1 << 20).unwrap();
    edit_header(&mut f, r, |h| h.coding = 1);
    f.recs[r].payload = std::iter::once(0u8).chain(data).collect();
    o.add(
        "payload-planes-for-string",
        "payload",
        &["§7.4"],
        base,
        "STRING tensor \"words\" coded as planes (one stored stream of its bytes).",
        f.bytes(),
    );

    let base = "storage-constant-lists";
    let mut f = o.file(base);
    let r = tensor_named(&f, "floats");
    edit_header(&mut f, r, |h| {
        h.dims = vec![2, 2];
    });
    o.add(
        "tensor-header-value-floats-rank-2",
        "tensor-header",
        &["§6.1"],
        base,
        "A value_floats record of rank 2 (dims [2, 2]).",
        f.bytes(),
    );
    let mut f = o.file(base);
    let r = tensor_named(&f, "floats");
    edit_header(&mut f, r, |h| h.storage = 0);
    o.add(
        "tensor-header-raw-data-for-floats-slot",
        "tensor-header",
        &["§6.3"],
        base,
        "The value_floats slot \"floats\" filled by a raw_data record.",
        f.bytes(),
    );
    let mut f = o.file(base);
    let r = tensor_named(&f, "ints");
    edit_header(&mut f, r, |h| {
        h.data_type = 6;
        h.data_bytes /= 2;
    });
    o.add(
        "tensor-header-value-ints-int32",
        "tensor-header",
        &["§6.1"],
        base,
        "A value_ints record with data_type INT32.",
        f.bytes(),
    );
}

/// Spec §6.3: records against their slots.
pub(super) fn slots(o: &mut Out) {
    let edit = |o: &mut Out, name: &str, rec: usize, what: &str, e: &dyn Fn(&mut RawHeader)| {
        let mut f = o.file(EX);
        edit_header(&mut f, rec, e);
        o.add(name, "tensor-header", &["§6.3"], EX, what, f.bytes());
    };
    edit(
        o,
        "tensor-header-name-mismatch",
        K,
        "Tensor record \"K\" fills slot \"k\" (index updated to match the record).",
        &|h| h.name = b"K".to_vec(),
    );
    edit(
        o,
        "tensor-header-data-type-mismatch",
        C,
        "Tensor \"c\": data_type INT32, the slot says FLOAT (same width).",
        &|h| h.data_type = 6,
    );
    edit(
        o,
        "tensor-header-dims-mismatch",
        C,
        "Tensor \"c\": dims [3, 2], the slot says [2, 3].",
        &|h| h.dims = vec![3, 2],
    );
    edit(
        o,
        "tensor-header-rank-mismatch",
        C,
        "Tensor \"c\": dims [6], the slot says [2, 3].",
        &|h| h.dims = vec![6],
    );
    let mut f = o.file(EX);
    let mut m = graph_model(&f);
    m.graph.as_mut().unwrap().initializer[0].raw_data = Some(vec![0; 24]);
    set_graph_model(&mut f, &m);
    o.add(
        "tensor-header-slot-still-holds-data",
        "tensor-header",
        &["§6.3"],
        EX,
        "The lifted graph still holds raw_data for slot \"k\", whose record has storage raw_data.",
        f.bytes(),
    );

    let base = "special-values";
    let mut f = o.file(base);
    let r = tensor_named(&f, "f32.specials");
    edit_header(&mut f, r, |h| h.storage = 4);
    o.add(
        "tensor-header-value-floats-for-tensor-slot",
        "tensor-header",
        &["§6.3"],
        base,
        "A FLOAT rank-1 TensorProto slot filled by a value_floats record.",
        f.bytes(),
    );

    let base = "storage-external";
    let mut f = o.file(base);
    let r = tensor_named(&f, "ext.a");
    edit_header(&mut f, r, |h| h.storage = 0);
    o.add(
        "tensor-header-raw-data-for-external-slot",
        "tensor-header",
        &["§6.3"],
        base,
        "EXTERNAL slot \"ext.a\" filled by a raw_data record.",
        f.bytes(),
    );

    let base = "storage-typed";
    let mut f = o.file(base);
    let r = tensor_named(&f, "typed.bool");
    edit_header(&mut f, r, |h| h.coding = 0);
    f.recs[r].payload = (0..24)
        .map(|i| if i == 5 { 2 } else { (i % 2) as u8 })
        .collect();
    o.add(
        "tensor-header-typed-bool-out-of-range",
        "tensor-header",
        &["§6.2", "§6.3"],
        base,
        "Typed BOOL tensor (raw coding) holding a byte 2: int32_data cannot hold it as a BOOL.",
        f.bytes(),
    );

    let base = "dtype-int4";
    let mut f = o.file(base);
    let r = tensor_named(&f, "int4.vector");
    edit_header(&mut f, r, |h| h.storage = 1);
    o.add(
        "tensor-header-typed-int4",
        "tensor-header",
        &["§6.2", "§6.3"],
        base,
        "An INT4 tensor with storage typed: 4-bit types have no typed field.",
        f.bytes(),
    );
}

/// Spec §7.6 parameters (in the tensor header: `tensor-header` errors).
pub(super) fn quant_params(o: &mut Out) {
    let with = |o: &mut Out,
                name: &str,
                expected: &'static str,
                base: &'static str,
                what: &str,
                e: &dyn Fn(&mut Vec<u8>)| {
        let mut f = o.file(base);
        let r = tensor_named(&f, "w");
        edit_header(&mut f, r, |h| e(&mut h.params));
        o.add(name, expected, &["§7.6.2"], base, what, f.bytes());
    };
    let dz = "quant-deadzone-0.25";
    with(
        o,
        "tensor-header-unknown-quantizer",
        "tensor-header",
        dz,
        "Quantizer kind 5.",
        &|p| p[0] = 5,
    );
    with(
        o,
        "reserved-nonzero-quantizer-flags",
        "reserved-nonzero",
        dz,
        "Quantizer flags 0x04 (reserved bit; bit 1 is the residual flag of updates, \
         spec §14.6).",
        &|p| p[1] = 4,
    );
    with(
        o,
        "reserved-nonzero-quantizer-reserved",
        "reserved-nonzero",
        dz,
        "Quantizer params bytes 2..4 (reserved) are 1.",
        &|p| p[2] = 1,
    );
    with(
        o,
        "tensor-header-deadzone-delta-above-1",
        "tensor-header",
        dz,
        "Dead-zone delta 1.5.",
        &|p| p[4..8].copy_from_slice(&1.5f32.to_le_bytes()),
    );
    with(
        o,
        "tensor-header-deadzone-delta-nan",
        "tensor-header",
        dz,
        "Dead-zone delta NaN.",
        &|p| p[4..8].copy_from_slice(&f32::NAN.to_le_bytes()),
    );
    with(
        o,
        "tensor-header-deadzone-delta-negative",
        "tensor-header",
        dz,
        "Dead-zone delta -0.25.",
        &|p| p[4..8].copy_from_slice(&(-0.25f32).to_le_bytes()),
    );
    for (tag, s) in [
        ("zero", 0.0f32),
        ("negative", -0.01),
        ("infinite", f32::INFINITY),
        ("nan", f32::NAN),
    ] {
        with(
            o,
            &format!("tensor-header-step-{tag}"),
            "tensor-header",
            dz,
            &format!("Step {s}."),
            &|p| {
                let n = p.len();
                p[n - 4..].copy_from_slice(&s.to_le_bytes());
            },
        );
    }
    with(
        o,
        "tensor-header-step-count",
        "tensor-header",
        dz,
        "Two steps without the per-channel flag.",
        &|p| {
            let n = p.len();
            p[n - 8..n - 4].copy_from_slice(&2u32.to_le_bytes());
            p.extend_from_slice(&0.01f32.to_le_bytes());
        },
    );
    with(
        o,
        "tensor-header-params-cut-off",
        "tensor-header",
        dz,
        "The step's last byte missing.",
        &|p| {
            p.pop();
        },
    );
    with(
        o,
        "tensor-header-bytes-after-quantizer-params",
        "tensor-header",
        dz,
        "A byte after the steps.",
        &|p| p.push(0),
    );
    let pc = "quant-per-channel";
    with(
        o,
        "tensor-header-per-channel-count",
        "tensor-header",
        pc,
        "Per-channel flag with 15 steps for 16 channels.",
        &|p| {
            // kind, flags, reserved, delta, count (at 8), 16 steps: drop one, count 15.
            let n = p.len();
            p.truncate(n - 4);
            p[8..12].copy_from_slice(&15u32.to_le_bytes());
        },
    );
    let mf = "quant-minifloat-e4m3";
    for (tag, e, m) in [
        ("e9m0", 9u8, 0u8),
        ("e0m0", 0, 0),
        ("e8m16", 8, 16),
        ("e0m24", 0, 24),
    ] {
        with(
            o,
            &format!("tensor-header-minifloat-layout-{tag}"),
            "tensor-header",
            mf,
            &format!("Minifloat layout E{e}M{m}."),
            &|p| {
                p[4] = e;
                p[5] = m;
            },
        );
    }
    with(
        o,
        "tensor-header-minifloat-scale-500",
        "tensor-header",
        mf,
        "Minifloat scale exponent 500.",
        &|p| p[6..8].copy_from_slice(&500i16.to_le_bytes()),
    );
    with(
        o,
        "tensor-header-minifloat-per-channel",
        "tensor-header",
        mf,
        "Minifloat with the per-channel flag.",
        &|p| p[1] = 1,
    );
    with(
        o,
        "tensor-header-minifloat-with-step",
        "tensor-header",
        mf,
        "Minifloat with a step count of 1.",
        &|p| {
            let n = p.len();
            p[n - 4..].copy_from_slice(&1u32.to_le_bytes());
            p.extend_from_slice(&1.0f32.to_le_bytes());
        },
    );
    let mu = "quant-mulaw";
    with(
        o,
        "tensor-header-mulaw-xmax-zero",
        "tensor-header",
        mu,
        "mu-law Xmax 0.",
        &|p| p[4..8].copy_from_slice(&0f32.to_le_bytes()),
    );
    with(
        o,
        "tensor-header-mulaw-mu-negative",
        "tensor-header",
        mu,
        "mu-law mu -255.",
        &|p| p[8..12].copy_from_slice(&(-255f32).to_le_bytes()),
    );
    with(
        o,
        "tensor-header-mulaw-per-channel",
        "tensor-header",
        mu,
        "mu-law with the per-channel flag.",
        &|p| p[1] = 1,
    );
}

/// Two external tensors of one file whose byte ranges overlap (spec §6.3), and files that
/// break two rules at once, named for the one that comes first in the check order (§9).
pub(super) fn order_and_overlap(o: &mut Out) {
    let base = "storage-external";
    let mut f = o.file(base);
    let mut m = graph_model(&f);
    let t = &mut m.graph.as_mut().unwrap().initializer[1];
    for e in &mut t.external_data {
        if e.key.as_deref() == Some("offset") {
            e.value = Some("60".into());
        }
    }
    set_graph_model(&mut f, &m);
    o.add(
        "graph-external-overlap",
        "graph",
        &["§6.3"],
        base,
        "External tensors \"ext.a\" (bytes 0..64) and \"ext.b\" (60..100) of weights.bin \
         overlap. Only a decoder that writes external files meets this rule.",
        f.bytes(),
    );
    o.v.last_mut().unwrap().decode = "files";

    // A string field that is not UTF-8 (ModelProto.producer_name).
    let mut f = o.file(EX);
    let mut g = graph_bytes(&f);
    g.extend_from_slice(&[0x12, 2, 0xff, 0xfe]);
    set_graph_bytes(&mut f, &g);
    o.add(
        "graph-string-not-utf8",
        "graph",
        &["§5.1"],
        EX,
        "ModelProto.producer_name (a protobuf string) holds the bytes FF FE, not UTF-8: the \
         graph does not parse as an onnx.ModelProto (spec §5.1 step 6; bytes fields are \
         not checked).",
        f.bytes(),
    );
    // A known field with the wrong wire type (ModelProto.graph as a varint).
    let mut f = o.file(EX);
    let mut g = graph_bytes(&f);
    g.extend_from_slice(&[0x38, 1]);
    set_graph_bytes(&mut f, &g);
    o.add(
        "graph-wrong-wire-type",
        "graph",
        &["§5.1"],
        EX,
        "ModelProto field 7 (graph, a message) repeated as a varint: a known field number with \
         another wire type (spec §5.1 step 6).",
        f.bytes(),
    );

    // GRAPH without the critical flag and with a 10-byte header: §4.2 comes before §5.1.
    let mut f = o.file(EX);
    f.recs[GRAPH].flags = 0;
    f.recs[GRAPH].header.push(0);
    o.add(
        "reserved-nonzero-two-rules-graph-flag-and-header",
        "reserved-nonzero",
        &["§4.2", "§5.1", "§9"],
        EX,
        "The GRAPH record's critical flag is clear and its header has 10 bytes: the flag \
         (§4.2) is checked before the GRAPH header (§5.1).",
        f.bytes(),
    );
    // Raw coding with parameters and a short payload: p != 0 comes before the payload.
    let mut f = o.file(EX);
    edit_header(&mut f, K, |h| h.params = vec![0]);
    f.recs[K].payload.pop();
    o.add(
        "tensor-header-two-rules-params-and-payload",
        "tensor-header",
        &["§6.3", "§7", "§9"],
        EX,
        "Tensor \"k\" (raw coding) has one parameter byte and a payload one byte short: \
         codings 0..2 with parameters (tensor-header) are rejected before the payload is \
         decoded.",
        f.bytes(),
    );
    // A wrong name and dims that pass the expansion rule: consistency comes first.
    let mut f = o.file(EX);
    edit_header(&mut f, K, |h| {
        h.name = b"kk".to_vec();
        h.dims = vec![1 << 30];
        h.elements = 1 << 30;
        h.data_bytes = 8 << 30;
    });
    o.add(
        "tensor-header-two-rules-slot-and-expansion",
        "tensor-header",
        &["§6.3", "§10", "§9"],
        EX,
        "Tensor record \"kk\" of 2^30 INT64 elements for the slot \"k\": the consistency \
         rules of §6.3 are checked before the expansion rule (which this record also breaks).",
        f.bytes(),
    );
    // mu-law with Xmax NaN (parameters) and a NaN table entry (payload).
    let mut f = o.file("quant-mulaw");
    let r = tensor_named(&f, "w");
    let k = payload_info(&f, r).quant.expect("quantized").mulaw_table as u64 - 1;
    edit_header(&mut f, r, |h| {
        h.params[4..8].copy_from_slice(&f32::NAN.to_le_bytes())
    });
    let at = varint(k).len() + 4;
    f.recs[r].payload[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    o.add(
        "tensor-header-two-rules-mulaw-xmax-and-table",
        "tensor-header",
        &["§7.6.2", "§7.6.4", "§9"],
        "quant-mulaw",
        "mu-law Xmax is NaN (parameters, tensor-header) and table entry T[1] is NaN (payload): \
         parameters are checked first.",
        f.bytes(),
    );
}
