//! Builders of hostile inputs (issue 11): small `.nnc` and `.onnx` files whose protobuf graph
//! expands in memory, whose slots copy long names, whose external data escapes or blocks, or
//! that break two rules at once. The protobuf is written by hand on the wire format, so that
//! building a file never allocates what decoding it would.
#![allow(dead_code)]

use nnc::container::tensor_header::{Coding, Storage, TensorHeader};
use nnc::container::writer::ContainerWriter;

pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field.
pub fn ld(field: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 6);
    varint(&mut b, (field as u64) << 3 | 2);
    varint(&mut b, body.len() as u64);
    b.extend_from_slice(body);
    b
}

/// A varint field.
pub fn vi(field: u32, v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    varint(&mut b, (field as u64) << 3);
    varint(&mut b, v);
    b
}

/// `part` repeated `n` times.
pub fn rep(part: &[u8], n: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(part.len() * n);
    for _ in 0..n {
        b.extend_from_slice(part);
    }
    b
}

// Field numbers of onnx.proto.
pub const MODEL_IR_VERSION: u32 = 1;
pub const MODEL_GRAPH: u32 = 7;
pub const MODEL_OPSET: u32 = 8;
pub const GRAPH_NODE: u32 = 1;
pub const GRAPH_NAME: u32 = 2;
pub const GRAPH_INITIALIZER: u32 = 5;
pub const NODE_OUTPUT: u32 = 2;
pub const NODE_OP_TYPE: u32 = 4;
pub const NODE_ATTRIBUTE: u32 = 5;
pub const ATTR_NAME: u32 = 1;
pub const ATTR_T: u32 = 5;
pub const ATTR_G: u32 = 6;
pub const TENSOR_DIMS: u32 = 1;
pub const TENSOR_DATA_TYPE: u32 = 2;
pub const TENSOR_NAME: u32 = 8;
pub const TENSOR_RAW_DATA: u32 = 9;
pub const TENSOR_EXTERNAL_DATA: u32 = 13;
pub const TENSOR_DATA_LOCATION: u32 = 14;

/// A ModelProto holding `graph` (GraphProto body bytes).
pub fn model(graph: &[u8]) -> Vec<u8> {
    let mut m = vi(MODEL_IR_VERSION, 8);
    m.extend(ld(MODEL_OPSET, &vi(2, 13)));
    m.extend(ld(MODEL_GRAPH, graph));
    m
}

/// A `.nnc` whose GRAPH record holds `model_bytes`, followed by `records` TENSOR records
/// (header, payload) and a matching INDEX.
pub fn nnc(model_bytes: &[u8], records: &[(TensorHeader, Vec<u8>)]) -> Vec<u8> {
    let frame = zstd::bulk::compress(model_bytes, 19).unwrap();
    let mut w = ContainerWriter::new(Vec::new()).unwrap();
    w.graph(model_bytes.len() as u64, &frame).unwrap();
    for (h, p) in records {
        w.tensor(h, p).unwrap();
    }
    w.finish().unwrap().0
}

/// A raw-coded FLOAT record.
pub fn float_record(name: &str, storage: Storage, values: &[f32]) -> (TensorHeader, Vec<u8>) {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    (
        TensorHeader {
            data_type: 1,
            storage,
            coding: Coding::Raw,
            name: name.into(),
            dims: vec![values.len() as u64],
            elements: values.len() as u64,
            data_bytes: data.len() as u64,
            params: Vec::new(),
        },
        data,
    )
}

/// A FLOAT tensor of dims `[n]` without data, named `name`, optionally external.
pub fn float_slot(name: &str, n: u64, external: Option<(&str, u64)>) -> Vec<u8> {
    let mut t = vi(TENSOR_DIMS, n);
    t.extend(vi(TENSOR_DATA_TYPE, 1));
    t.extend(ld(TENSOR_NAME, name.as_bytes()));
    if let Some((loc, offset)) = external {
        let mut e = ld(1, b"location");
        e.extend(ld(2, loc.as_bytes()));
        t.extend(ld(TENSOR_EXTERNAL_DATA, &e));
        let mut e = ld(1, b"offset");
        e.extend(ld(2, offset.to_string().as_bytes()));
        t.extend(ld(TENSOR_EXTERNAL_DATA, &e));
        t.extend(vi(TENSOR_DATA_LOCATION, 1));
    }
    t
}

/// One hostile input: its file name, its bytes and what it attacks.
pub struct Case {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub what: &'static str,
}

/// Slots of a node whose output name is `name_len` bytes: `n` attributes, each with an empty
/// tensor `t`, so every slot's fallback name copies the output name (issue 11: 662 bytes
/// asked for 5 TB).
pub fn node_output_names(name_len: usize, n: usize) -> Vec<u8> {
    let mut node = ld(NODE_OUTPUT, &vec![b'o'; name_len]);
    node.extend(rep(&ld(NODE_ATTRIBUTE, &ld(ATTR_T, &[])), n));
    model(&ld(GRAPH_NODE, &node))
}

/// A graph of `n` empty attributes (2 bytes each on the wire): valid, no slots.
pub fn empty_attributes(n: usize) -> Vec<u8> {
    let node = rep(&ld(NODE_ATTRIBUTE, &[]), n);
    model(&ld(GRAPH_NODE, &node))
}

/// A graph of `n` empty nodes.
pub fn empty_nodes(n: usize) -> Vec<u8> {
    model(&rep(&ld(GRAPH_NODE, &[]), n))
}

/// A graph of `n` initializers that hold (empty) data: no slots.
pub fn empty_initializers(n: usize) -> Vec<u8> {
    model(&rep(&ld(GRAPH_INITIALIZER, &ld(TENSOR_RAW_DATA, &[])), n))
}

/// A graph named with `name_len` bytes and `n` empty initializers: every slot's fallback
/// name `gname.initializer[i]` copies the graph's name (issue 11: 421 bytes, 10 minutes).
pub fn graph_name_slots(name_len: usize, n: usize) -> Vec<u8> {
    let mut g = ld(GRAPH_NAME, &vec![b'g'; name_len]);
    g.extend(rep(&ld(GRAPH_INITIALIZER, &[]), n));
    model(&g)
}

/// Subgraphs nested `depth` deep (each level GraphProto → NodeProto → AttributeProto).
pub fn nested_graphs(depth: usize) -> Vec<u8> {
    let mut g: Vec<u8> = Vec::new();
    for _ in 0..depth {
        let a = ld(ATTR_G, &g);
        g = ld(GRAPH_NODE, &ld(NODE_ATTRIBUTE, &a));
    }
    model(&g)
}

/// A graph of `n` unpacked int64 entries of one attribute (`ints`, 2 bytes each on the wire,
/// 8 in memory).
pub fn many_ints(n: usize) -> Vec<u8> {
    let attr = rep(&vi(8, 1), n);
    model(&ld(GRAPH_NODE, &ld(NODE_ATTRIBUTE, &attr)))
}

/// The `.nnc` attack files (decoder side), all well under 1 KB.
pub fn nnc_cases() -> Vec<Case> {
    vec![
        Case {
            name: "slot-names-node-output.nnc",
            bytes: nnc(&node_output_names(60_000, 2_000_000), &[]),
            what: "2 M slots copy a 60 KB node output name (tiny file, huge memory)",
        },
        Case {
            name: "empty-attributes.nnc",
            bytes: nnc(&empty_attributes(4_000_000), &[]),
            what: "valid: 4 M empty attributes, 2 bytes each on disk",
        },
        Case {
            name: "empty-nodes.nnc",
            bytes: nnc(&empty_nodes(4_000_000), &[]),
            what: "valid: 4 M empty nodes",
        },
        Case {
            name: "empty-initializers.nnc",
            bytes: nnc(&empty_initializers(2_000_000), &[]),
            what: "valid: 2 M initializers holding empty raw_data (no slots)",
        },
        Case {
            name: "graph-name-slots.nnc",
            bytes: nnc(&graph_name_slots(60_000, 100_000), &[]),
            what: "100 k slots copy a 60 KB graph name (CPU: quadratic copying)",
        },
        Case {
            name: "many-ints.nnc",
            bytes: nnc(&many_ints(4_000_000), &[]),
            what: "valid: 4 M unpacked ints of one attribute",
        },
        Case {
            name: "empty-attributes-200k.nnc",
            bytes: nnc(&empty_attributes(200_000), &[]),
            what: "valid: 200 k empty attributes (a 400 KB graph, 1 GB parsed)",
        },
        Case {
            name: "slot-names-3000.nnc",
            bytes: nnc(&graph_name_slots(60_000, 3_000), &[]),
            what: "3000 slots copy a 60 KB graph name (the graph parses small)",
        },
        Case {
            name: "nested-graphs.nnc",
            bytes: nnc(&nested_graphs(200), &[]),
            what: "subgraphs 200 deep",
        },
    ]
}

/// A model with one external FLOAT tensor `w` of 4 elements at `location`, offset `offset`,
/// and a second raw tensor `b`; `bad_second`: the second record's payload is 3 bytes.
pub fn external_model(location: &str, offset: u64, bad_second: bool) -> Vec<u8> {
    let mut g = ld(
        GRAPH_INITIALIZER,
        &float_slot("w", 4, Some((location, offset))),
    );
    g.extend(ld(GRAPH_INITIALIZER, &float_slot("b", 4, None)));
    let m = model(&g);
    let w = float_record("w", Storage::External, &[1.0, 2.0, 3.0, 4.0]);
    let mut b = float_record("b", Storage::RawData, &[5.0, 6.0, 7.0, 8.0]);
    if bad_second {
        b.1.truncate(3);
    }
    nnc(&m, &[w, b])
}

/// A model with `files` external tensors, each in its own file at offset `offset`.
pub fn sparse_externals(files: usize, offset: u64) -> Vec<u8> {
    let mut g = Vec::new();
    let mut recs = Vec::new();
    for i in 0..files {
        let name = format!("w{i}");
        let loc = format!("big{i}.bin");
        g.extend(ld(
            GRAPH_INITIALIZER,
            &float_slot(&name, 1, Some((&loc, offset))),
        ));
        recs.push(float_record(&name, Storage::External, &[1.0]));
    }
    nnc(&model(&g), &recs)
}
