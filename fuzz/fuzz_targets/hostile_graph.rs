//! Structure-aware: builds hostile graphs on the protobuf wire format (many slots, long
//! names, empty messages, unpacked repeated values, strings, deep nesting, functions, sparse
//! tensors), wraps them in a valid container (CRCs right, zstd graph, a few matching or
//! mismatching TENSOR records, index, trailer) and decodes the file completely with the
//! default limits. The promise of spec §10–§11 and issue 11: every such file, at most a few
//! KB, ends in a typed error or decodes, within 16 MB and about 1 s per KB. Run with
//! `-malloc_limit_mb=16 -rss_limit_mb=256 -timeout=5 -max_len=1024` (tools/fuzz.sh): no single
//! allocation over 16 MB, the process (AddressSanitizer included) under 256 MB, no input over
//! 5 s (1 s per KB under the sanitizer's slowdown).
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nnc::container::tensor_header::{Coding, Storage, TensorHeader};
use nnc::container::writer::ContainerWriter;

/// Largest serialized graph the target builds. Its own buffers are reserved up front below
/// the malloc limit (a first version let a 6 MiB node grow the graph's vector to 21.6 MB:
/// the harness, not the decoder, tripped `-malloc_limit_mb=16`).
const MAX_GRAPH: usize = 3 << 20;

#[derive(Arbitrary, Debug)]
enum Piece {
    /// Empty initializers (slots) in a graph named with `name_len` bytes.
    Initializers { count: u16, holds_data: bool },
    /// A node whose output name is `name_len` bytes, with `count` attributes holding an
    /// empty tensor (slots named after the output) or nothing.
    Node {
        count: u16,
        name_len: u16,
        tensors: bool,
        constant: bool,
    },
    /// Empty nodes.
    EmptyNodes(u16),
    /// One attribute with `count` unpacked ints.
    Ints(u16),
    /// One node with `count` input strings of `len` bytes.
    Strings { count: u16, len: u16 },
    /// Subgraphs nested `depth` deep.
    Nested(u8),
    /// Sparse initializers with empty values and indices.
    Sparse(u16),
    /// A function with `count` attribute defaults holding a tensor each.
    Function { count: u16, name_len: u16 },
    /// An unknown field of `len` bytes.
    Unknown { field: u16, len: u16 },
}

#[derive(Arbitrary, Debug)]
struct Plan {
    /// Plain float initializers "v0", "v1", ... first in walk order, with matching records.
    valid: u8,
    graph_name_len: u16,
    /// Counts are multiplied by 2^scale (at most 2^16).
    scale: u8,
    pieces: Vec<Piece>,
    /// Extra records after the valid ones, named "v{i}" or by the pieces' first name.
    extra_records: u8,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
fn ld(out: &mut Vec<u8>, field: u32, body: &[u8]) {
    varint(out, (field as u64) << 3 | 2);
    varint(out, body.len() as u64);
    out.extend_from_slice(body);
}
fn vi(out: &mut Vec<u8>, field: u32, v: u64) {
    varint(out, (field as u64) << 3);
    varint(out, v);
}
/// `part` appended `n` times, as long as the buffer stays under MAX_GRAPH.
fn rep(out: &mut Vec<u8>, part: &[u8], n: u64) {
    if out.capacity() < MAX_GRAPH + 64 {
        out.reserve_exact(MAX_GRAPH + 64 - out.len());
    }
    for _ in 0..n {
        if out.len() + part.len() > MAX_GRAPH {
            return;
        }
        out.extend_from_slice(part);
    }
}

fn float_tensor(name: &str, n: u64) -> Vec<u8> {
    let mut t = Vec::new();
    vi(&mut t, 1, n);
    vi(&mut t, 2, 1);
    ld(&mut t, 8, name.as_bytes());
    t
}

fn build(p: &Plan) -> Vec<u8> {
    let scale = 1u64 << (p.scale % 17);
    let n = |c: u16| (c as u64).saturating_mul(scale);
    // Pieces go into g while it stays under MAX_GRAPH; g itself never reallocates.
    let mut g = Vec::with_capacity(2 * MAX_GRAPH + (1 << 18));
    ld(
        &mut g,
        2,
        &vec![b'g'; (p.graph_name_len as usize).min(1 << 17)],
    );
    for i in 0..p.valid % 8 {
        ld(&mut g, 5, &float_tensor(&format!("v{i}"), 2));
    }
    let mut functions = Vec::new();
    for piece in &p.pieces {
        // Every piece adds at most MAX_GRAPH + a few bytes: stop while g has room for one.
        if g.len() > MAX_GRAPH {
            break;
        }
        match piece {
            Piece::Initializers { count, holds_data } => {
                let mut part = Vec::new();
                ld(&mut part, 5, if *holds_data { &[0x4a, 0] } else { &[] });
                rep(&mut g, &part, n(*count));
            }
            Piece::Node {
                count,
                name_len,
                tensors,
                constant,
            } => {
                let mut node = Vec::new();
                ld(&mut node, 2, &vec![b'o'; *name_len as usize]);
                if *constant {
                    ld(&mut node, 4, b"Constant");
                }
                let mut attr = Vec::new();
                let mut body = Vec::new();
                if *tensors {
                    ld(&mut body, 5, &[]);
                }
                ld(&mut attr, 5, &body);
                rep(&mut node, &attr, n(*count));
                ld(&mut g, 1, &node);
            }
            Piece::EmptyNodes(c) => rep(&mut g, &[0x0a, 0], n(*c)),
            Piece::Ints(c) => {
                let mut attr = Vec::new();
                rep(&mut attr, &[0x40, 1], n(*c));
                let mut node = Vec::new();
                ld(&mut node, 5, &attr);
                ld(&mut g, 1, &node);
            }
            Piece::Strings { count, len } => {
                let mut s = Vec::new();
                ld(&mut s, 1, &vec![b's'; *len as usize]);
                let mut node = Vec::new();
                rep(&mut node, &s, n(*count));
                ld(&mut g, 1, &node);
            }
            Piece::Nested(depth) => {
                let mut inner: Vec<u8> = Vec::new();
                ld(&mut inner, 5, &[]);
                for _ in 0..*depth {
                    let mut a = Vec::new();
                    ld(&mut a, 6, &inner);
                    let mut node = Vec::new();
                    ld(&mut node, 5, &a);
                    let mut graph = Vec::new();
                    ld(&mut graph, 1, &node);
                    inner = graph;
                }
                if let Some(body) = inner.get(2..) {
                    g.extend_from_slice(body);
                }
            }
            Piece::Sparse(c) => {
                let mut s = Vec::new();
                ld(&mut s, 1, &[]);
                ld(&mut s, 2, &[]);
                let mut part = Vec::new();
                ld(&mut part, 15, &s);
                rep(&mut g, &part, n(*c));
            }
            Piece::Function { count, name_len } => {
                let mut f = Vec::new();
                ld(&mut f, 1, &vec![b'f'; *name_len as usize]);
                let mut a = Vec::new();
                ld(&mut a, 1, b"a");
                ld(&mut a, 5, &[]);
                let mut part = Vec::new();
                ld(&mut part, 11, &a);
                rep(&mut f, &part, n(*count));
                functions.push(f);
            }
            Piece::Unknown { field, len } => {
                ld(&mut g, 1000 + *field as u32, &vec![0; *len as usize]);
            }
        }
    }
    let mut m = Vec::with_capacity(g.len() + MAX_GRAPH + 64);
    vi(&mut m, 1, 8);
    ld(&mut m, 7, &g);
    drop(g);
    for f in functions {
        if m.len() + f.len() + 16 < m.capacity() {
            ld(&mut m, 25, &f);
        }
    }
    m
}

fn record(name: &str) -> (TensorHeader, Vec<u8>) {
    (
        TensorHeader {
            data_type: 1,
            storage: Storage::RawData,
            coding: Coding::Raw,
            name: name.into(),
            dims: vec![2],
            elements: 2,
            data_bytes: 8,
            params: Vec::new(),
        },
        vec![0, 0, 128, 63, 0, 0, 0, 64],
    )
}

fuzz_target!(|p: Plan| {
    let model = build(&p);
    let Ok(frame) = zstd::bulk::compress(&model, 1) else {
        return;
    };
    let Ok(mut w) = ContainerWriter::new(Vec::new()) else {
        return;
    };
    let _ = w.graph(model.len() as u64, &frame);
    for i in 0..(p.valid % 8) + p.extra_records % 4 {
        let (h, payload) = record(&format!("v{i}"));
        let _ = w.tensor(&h, &payload);
    }
    let Ok((file, _)) = w.finish() else { return };
    drop(model);
    drop(frame);
    nnc_fuzz::outcome::decode_fully(&file);
});
