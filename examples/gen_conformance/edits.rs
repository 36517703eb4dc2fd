//! Edits of encoder output: the tools shared by the invalid vectors, and the valid-but-edited
//! vectors (files a conforming encoder may write although the reference encoder does not).
use nnc::bytes::put_varint;
use nnc::container::kind;
use nnc::onnx::proto::ModelProto;
use prost::Message;

use super::container::{header_name, NncFile, RawHeader, Rec};
use super::inspect::{self, PayloadInfo};

/// Position in `recs` of the TENSOR record named `name`.
pub fn tensor_named(f: &NncFile, name: &str) -> usize {
    f.find(kind::TENSOR)
        .into_iter()
        .find(|&i| header_name(&f.recs[i].header) == name)
        .unwrap_or_else(|| panic!("no tensor record {name:?}"))
}

/// Changes a tensor record's header fields.
pub fn edit_header(f: &mut NncFile, rec: usize, edit: impl FnOnce(&mut RawHeader)) {
    let mut h = RawHeader::parse(&f.recs[rec].header);
    edit(&mut h);
    f.recs[rec].header = h.bytes();
}

pub fn payload_info(f: &NncFile, rec: usize) -> PayloadInfo {
    inspect::parse_payload(&f.recs[rec].header, &f.recs[rec].payload)
}

/// The lifted model of the GRAPH record.
pub fn graph_model(f: &NncFile) -> ModelProto {
    let g = &f.recs[f.find(kind::GRAPH)[0]];
    let bytes = zstd::bulk::decompress(&g.payload, 1 << 30).expect("graph zstd");
    ModelProto::decode(bytes.as_slice()).expect("graph ModelProto")
}

/// Replaces the lifted model (one zstd frame at level 19, header length updated).
pub fn set_graph_model(f: &mut NncFile, m: &ModelProto) {
    set_graph_bytes(f, &m.encode_to_vec());
}

pub fn set_graph_bytes(f: &mut NncFile, bytes: &[u8]) {
    let i = f.find(kind::GRAPH)[0];
    f.recs[i].payload = zstd::bulk::compress(bytes, 19).expect("zstd");
    f.recs[i].header = graph_header(bytes.len() as u64);
}

pub fn graph_header(len: u64) -> Vec<u8> {
    let mut h = vec![1u8];
    h.extend_from_slice(&len.to_le_bytes());
    h
}

pub fn varint(v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    put_varint(&mut b, v);
    b
}

/// `v` as a varint of exactly `len` bytes (non-shortest when longer than needed; `len` at
/// most 10).
pub fn varint_padded(v: u64, len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(len);
    let mut x = v;
    for i in 0..len {
        let more = i + 1 < len;
        b.push((x & 0x7f) as u8 | if more { 0x80 } else { 0 });
        x >>= 7;
    }
    assert_eq!(x, 0, "{v} does not fit {len} varint bytes");
    b
}

/// Replaces `bytes[range]` with `with`.
pub fn splice(bytes: &mut Vec<u8>, range: std::ops::Range<usize>, with: &[u8]) {
    bytes.splice(range, with.iter().copied());
}

/// A zstd skippable frame (RFC 8878 §3.1.2) holding `content`.
pub fn skippable_frame(content: &[u8]) -> Vec<u8> {
    let mut b = 0x184D_2A50u32.to_le_bytes().to_vec();
    b.extend_from_slice(&(content.len() as u32).to_le_bytes());
    b.extend_from_slice(content);
    b
}

// -------------------------------------------------------------------------------------------
// Valid edits

/// Unknown non-critical records of kinds 0, 4, 200 and 255 around and between the known ones.
pub fn insert_noncritical(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let unknown = |k: u8, h: &[u8], p: &[u8]| Rec::new(k, 0, h.to_vec(), p.to_vec());
    let index = f.find(kind::INDEX)[0];
    f.recs.insert(index, unknown(255, b"", b"before the index"));
    let second = f.tensor(1);
    f.recs.insert(second, unknown(200, b"hdr", b""));
    f.recs.insert(1, unknown(5, b"", b"after the graph"));
    f.recs.insert(0, unknown(0, b"header bytes", &[0u8; 40]));
    f.bytes()
}

pub fn minor_version(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    f.head[10..12].copy_from_slice(&7u16.to_le_bytes());
    f.fix_head_crc();
    f.bytes()
}

pub fn index_critical(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let i = f.find(kind::INDEX)[0];
    f.recs[i].flags = 1;
    f.bytes()
}

/// Non-shortest varints: a constant stream's symbol, and every varint of the INDEX payload.
pub fn non_shortest_varints(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    // The float tensor "d" (multiples of 0.25) has constant low planes.
    let d = tensor_named(&f, "d");
    let info = payload_info(&f, d);
    let s = info
        .streams
        .iter()
        .find(|s| s.mode == 1)
        .expect("a constant plane in tensor d")
        .clone();
    let sym = {
        let mut c = nnc::bytes::Cursor::new(
            &f.recs[d].payload[s.start + 1..],
            0,
            nnc::FormatRule::Payload,
        );
        c.varint("symbol").unwrap()
    };
    splice(
        &mut f.recs[d].payload,
        s.start + 1..s.end,
        &varint_padded(sym, 3),
    );
    // Rebuild the index with 10-byte offsets, a 2-byte count and 3-byte name lengths.
    let (fixed, layout) = f.assemble(true);
    let tensors = f.find(kind::TENSOR);
    let mut p = varint_padded(tensors.len() as u64, 2);
    for &t in &tensors {
        let name = header_name(&f.recs[t].header);
        p.extend(varint_padded(layout.offsets[t] as u64, 10));
        p.extend(varint_padded(name.len() as u64, 3));
        p.extend_from_slice(name.as_bytes());
    }
    drop(fixed);
    let i = f.find(kind::INDEX)[0];
    f.recs[i].payload = p;
    f.assemble(false).0
}

/// The graph in two zstd frames; the zstd-coded tensor "b" in two frames with a skippable
/// frame between them.
pub fn zstd_frames(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let two = |data: &[u8], skip: Option<&[u8]>| {
        let (a, b) = data.split_at(data.len() / 2);
        let mut out = zstd::bulk::compress(a, 19).unwrap();
        if let Some(s) = skip {
            out.extend(skippable_frame(s));
        }
        out.extend(zstd::bulk::compress(b, 19).unwrap());
        out
    };
    let m = graph_model(&f).encode_to_vec();
    let g = f.find(kind::GRAPH)[0];
    f.recs[g].payload = two(&m, None);
    let b = tensor_named(&f, "b");
    assert_eq!(f.recs[b].header[5], 2, "tensor b is zstd-coded");
    let data = zstd::bulk::decompress(&f.recs[b].payload, 1 << 20).unwrap();
    f.recs[b].payload = two(&data, Some(b"skipped by every decoder"));
    f.bytes()
}

/// Empty tensors recoded: planes with count-0 streams in modes 0..3, and an empty zstd frame.
pub fn empty_streams(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    // Mode 2 with count 0: m = 2, s0 = 0, gap 0, f0 − 1 = 100; chunk 1; no word counts.
    let exact: &[u8] = &[2, 2, 0, 0, 100, 1];
    // Mode 3: one run 0..2 with codes 5 and 9; chunk 4096 (varint 0x80 0x20).
    let compact: &[u8] = &[3, 1, 0, 1, 5, 9, 0x80, 0x20];
    let payloads: Vec<(&str, u8, Vec<u8>)> = vec![
        ("e0", 1, [&[0u8][..], &[1, 7], exact, compact].concat()),
        ("e1", 2, zstd::bulk::compress(&[], 19).unwrap()),
        ("e2", 1, compact.to_vec()),
        ("e3", 1, exact.to_vec()),
        (
            "e4",
            1,
            [&[0u8, 0, 1, 0xff, 0x01][..], exact, compact, &[1, 0, 0, 0]].concat(),
        ),
    ];
    for (name, coding, payload) in payloads {
        let r = tensor_named(&f, name);
        edit_header(&mut f, r, |h| h.coding = coding);
        f.recs[r].payload = payload;
    }
    f.bytes()
}

/// Spec §13.2.3: the FLOAT16 tensor "w" recoded by hand as dead zone (delta 0.25) with steps
/// 0.5 and the binary32 nearest to 0.1 per channel, levels 0, 1, -2, 3, -1, 0 stored.
pub fn spec_deadzone_f16(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let r = tensor_named(&f, "w");
    let params = nnc::quant::QuantParams {
        kind: nnc::quant::Kind::DeadZone { delta: 0.25 },
        steps: vec![0.5, f32::from_bits(0x3dcc_cccd)],
    };
    edit_header(&mut f, r, |h| {
        h.coding = 3;
        h.params = params.to_bytes();
    });
    f.recs[r].payload = vec![1, 0, 0, 2, 3, 6, 1, 0];
    f.bytes()
}

/// Count-0 streams of modes 4 and 5 (spec §7.1): the empty FLOAT tensor "c4" recoded as
/// quantized midtread (one step 1.0) whose level stream is mode 4 with two classes, segment
/// 1, a class stream of 0 symbols (mode 0) and chunk 1; "c5" as planes whose plane 2 is mode
/// 5 with two classes and chunk 1 (planes 3, 1, 0 stored, no bytes).
pub fn empty_class_streams(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    // Kc = 2, two exact models (kind 2: m = 2, s0 = 0, gap 0, f0 - 1 = 100).
    let classes: &[u8] = &[2, 2, 2, 0, 0, 100, 2, 2, 0, 0, 100];
    let r = tensor_named(&f, "c4");
    let params = nnc::quant::QuantParams {
        kind: nnc::quant::Kind::Midtread,
        steps: vec![1.0],
    };
    edit_header(&mut f, r, |h| {
        h.coding = 3;
        h.params = params.to_bytes();
    });
    f.recs[r].payload = [&[1u8, 4][..], classes, &[1, 0, 1]].concat();
    let r = tensor_named(&f, "c5");
    edit_header(&mut f, r, |h| h.coding = 1);
    f.recs[r].payload = [&[0u8, 5][..], classes, &[1, 0, 0]].concat();
    f.bytes()
}

/// The μ-law table entry T[0] of tensor "w" set to −0.0 (spec §7.6.4: not negative; level 0
/// then reconstructs −0).
pub fn mulaw_negative_zero(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let r = tensor_named(&f, "w");
    let k = payload_info(&f, r).quant.expect("quantized").mulaw_table as u64 - 1;
    let at = varint(k).len();
    f.recs[r].payload[at..at + 4].copy_from_slice(&0x8000_0000u32.to_le_bytes());
    f.bytes()
}

/// The fields of a serialized message as (field number, bytes of the whole field).
fn wire_fields(b: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut c = nnc::bytes::Cursor::new(b, 0, nnc::FormatRule::Graph);
    while !c.is_empty() {
        let start = b.len() - c.remaining();
        let key = c.varint("key").unwrap();
        match key & 7 {
            0 => {
                c.varint("v").unwrap();
            }
            1 => {
                c.take(8, "f64").unwrap();
            }
            2 => {
                let n = c.varint("len").unwrap() as usize;
                c.take(n, "body").unwrap();
            }
            5 => {
                c.take(4, "f32").unwrap();
            }
            w => panic!("wire type {w}"),
        }
        out.push((key >> 3, b[start..b.len() - c.remaining()].to_vec()));
    }
    out
}

/// The lifted graph re-serialized with every `sparse_initializer` (field 15) before the
/// first `initializer` (field 5) on the wire: the walk order (§5.2) is by field, not by
/// position in the bytes.
pub fn sparse_first_on_the_wire(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let g = &f.recs[f.find(kind::GRAPH)[0]];
    let model = zstd::bulk::decompress(&g.payload, 1 << 30).expect("graph zstd");
    let mut out = Vec::new();
    for (field, whole) in wire_fields(&model) {
        if field != 7 {
            out.extend_from_slice(&whole);
            continue;
        }
        // ModelProto.graph: key, length, GraphProto.
        let mut c = nnc::bytes::Cursor::new(&whole, 0, nnc::FormatRule::Graph);
        c.varint("key").unwrap();
        let n = c.varint("len").unwrap() as usize;
        let body = c.take(n, "graph").unwrap();
        let fields = wire_fields(body);
        let mut graph: Vec<u8> = fields
            .iter()
            .filter(|(n, _)| *n == 15)
            .flat_map(|(_, b)| b.clone())
            .collect();
        graph.extend(
            fields
                .iter()
                .filter(|(n, _)| *n != 15)
                .flat_map(|(_, b)| b.clone()),
        );
        out.push(0x3a);
        put_varint(&mut out, graph.len() as u64);
        out.extend_from_slice(&graph);
    }
    set_graph_bytes(&mut f, &out);
    f.bytes()
}

/// The serialized lifted model of the GRAPH record.
pub fn graph_bytes(f: &NncFile) -> Vec<u8> {
    let g = &f.recs[f.find(kind::GRAPH)[0]];
    zstd::bulk::decompress(&g.payload, 1 << 30).expect("graph zstd")
}

/// Fields unknown to onnx-ml.proto added to the lifted model: ModelProto field 1000 (bytes)
/// and field 1001 (a varint), and GraphProto field 1002 inside `graph` (spec §5.1 step 6:
/// skipped by the walk, dropped from the rebuilt model).
pub fn unknown_fields(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let mut out = Vec::new();
    for (field, whole) in wire_fields(&graph_bytes(&f)) {
        if field != 7 {
            out.extend_from_slice(&whole);
            continue;
        }
        let mut c = nnc::bytes::Cursor::new(&whole, 0, nnc::FormatRule::Graph);
        c.varint("key").unwrap();
        let n = c.varint("len").unwrap() as usize;
        let mut graph = c.take(n, "graph").unwrap().to_vec();
        put_varint(&mut graph, 1002 << 3 | 2);
        put_varint(&mut graph, 5);
        graph.extend_from_slice(b"extra");
        out.push(0x3a);
        put_varint(&mut out, graph.len() as u64);
        out.extend_from_slice(&graph);
    }
    put_varint(&mut out, 1000 << 3 | 2);
    put_varint(&mut out, 7);
    out.extend_from_slice(b"unknown");
    put_varint(&mut out, 1001 << 3);
    put_varint(&mut out, 42);
    set_graph_bytes(&mut f, &out);
    f.bytes()
}

/// A FIDELITY record (spec §8.3) with `payload`, inserted before the INDEX record; minor
/// version 1.
fn with_fidelity(bytes: Vec<u8>, payload: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let index = f.find(kind::INDEX)[0];
    f.recs
        .insert(index, Rec::new(kind::FIDELITY, 0, Vec::new(), payload));
    f.head[10..12].copy_from_slice(&1u16.to_le_bytes());
    f.fix_head_crc();
    f.bytes()
}

/// The FIDELITY content of the vectors: every target kind's field, an identical output
/// (+inf dB), an unmeasured agreement (NaN), a non-ASCII output name.
pub fn fidelity_sample() -> nnc::container::fidelity::Fidelity {
    use nnc::container::fidelity::{Fidelity, InputSource, OutputFidelity, Target};
    Fidelity {
        target: Target::Snr(36.0),
        source: InputSource::Synthetic,
        inputs: 8,
        runtime: "onnxruntime 1.32.0".into(),
        outputs: vec![
            OutputFidelity {
                name: "logits".into(),
                snr_db: 37.25,
                agreement: 0.9921875,
            },
            OutputFidelity {
                name: "état".into(),
                snr_db: f64::INFINITY,
                agreement: f64::NAN,
            },
        ],
    }
}

pub fn fidelity(bytes: Vec<u8>) -> Vec<u8> {
    with_fidelity(bytes, fidelity_sample().to_bytes())
}

/// A later version of the record (version 2, content unknown): skipped.
pub fn fidelity_later_version(bytes: Vec<u8>) -> Vec<u8> {
    let mut p = vec![2u8];
    p.extend_from_slice(b"a later layout");
    with_fidelity(bytes, p)
}

/// Malformed FIDELITY payloads: the model decodes; reading the record is `fidelity`.
pub fn fidelity_truncated(bytes: Vec<u8>) -> Vec<u8> {
    let p = fidelity_sample().to_bytes();
    with_fidelity(bytes, p[..p.len() - 3].to_vec())
}

pub fn fidelity_nan_snr(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = fidelity_sample();
    f.outputs[0].snr_db = f64::NAN;
    with_fidelity(bytes, f.to_bytes())
}

pub fn fidelity_agreement_range(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = fidelity_sample();
    f.outputs[0].agreement = 1.5;
    with_fidelity(bytes, f.to_bytes())
}

pub fn fidelity_target_kind(bytes: Vec<u8>) -> Vec<u8> {
    let mut p = fidelity_sample().to_bytes();
    p[1] = 9;
    with_fidelity(bytes, p)
}

pub fn fidelity_trailing(bytes: Vec<u8>) -> Vec<u8> {
    let mut p = fidelity_sample().to_bytes();
    p.push(0);
    with_fidelity(bytes, p)
}

/// Tensor "w"'s level stream coded again as split levels with k = 2 and m = 0 (a choice the
/// reference encoder never makes), its tokens in narrow modes: same levels, another stream.
pub fn split_k2_m0(bytes: Vec<u8>) -> Vec<u8> {
    let mut f = NncFile::parse(&bytes);
    let w = tensor_named(&f, "w");
    let info = payload_info(&f, w);
    let q = info.quant.expect("a quantized tensor");
    let p = &f.recs[w].payload;
    let n = RawHeader::parse(&f.recs[w].header).elements as usize;
    let levels = nnc::quant::decode_levels(n, &p[q.width_pos..]).expect("levels");
    let symbols: Vec<u32> = levels.iter().map(|&l| nnc::quant::zigzag(l)).collect();
    let mut out = p[..q.width_pos + 1].to_vec();
    let opt = nnc::entropy::StreamOptions {
        width: q.width,
        chunk: 4096,
        segment: 0,
        wide: false,
        extra: 0,
    };
    nnc::entropy::split::encode(&symbols, (1 << 31) - 1, 2, 0, opt, &mut out).expect("split");
    f.recs[w].payload = out;
    f.bytes()
}
