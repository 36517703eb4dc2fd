//! Edit scripts: how the `decode_mutated` target turns fuzzer bytes into a `.nnc` that is a
//! valid seed file with changes *below* the framing. A random byte flip in a file almost
//! always stops at a CRC32; here the seed is split into its parts (graph ModelProto, GRAPH
//! header, tensor record headers and payloads, index payload), the edits change the parts,
//! and the file is framed again with fresh lengths, CRCs, index and trailer, so mutations
//! reach the tensor-header, quantizer and entropy-stream parsers. Edits to the `FILE`
//! section are applied after framing and can break the framing itself.
//!
//! Script: byte 0 picks the seed file; then 5-byte edits `[op, section, offset lo, offset
//! hi, value]`.
use std::sync::OnceLock;

use nnc::container::index::{self, Entry};
use nnc::container::reader::RecordReader;
use nnc::container::record::Prefix;
use nnc::container::{file_header, kind, FLAG_CRITICAL};
use nnc::Limits;

/// One record after the GRAPH record (TENSOR records, or records the edits inserted).
#[derive(Debug, Clone)]
struct Rec {
    kind: u8,
    flags: u8,
    header: Vec<u8>,
    payload: Vec<u8>,
}

/// A seed file taken apart.
#[derive(Debug, Clone)]
struct Parts {
    graph_header: Vec<u8>,
    graph_proto: Vec<u8>,
    graph_frame: Vec<u8>,
    records: Vec<Rec>,
    index_payload: Vec<u8>,
}

fn split(file: &[u8]) -> Parts {
    let mut r = RecordReader::new(file, Limits::default()).expect("seed file header");
    let g = r.next_record().expect("seed GRAPH record");
    assert_eq!(g.prefix.kind, kind::GRAPH);
    let graph_proto = zstd::bulk::decompress(&g.payload, 1 << 24).expect("seed graph frame");
    let mut records = Vec::new();
    loop {
        let rec = r.next_record().expect("seed record");
        if rec.prefix.kind == kind::INDEX {
            return Parts {
                graph_header: g.header,
                graph_proto,
                graph_frame: g.payload.into_vec(),
                records,
                index_payload: rec.payload.into_vec(),
            };
        }
        records.push(Rec {
            kind: rec.prefix.kind,
            flags: rec.prefix.flags,
            header: rec.header,
            payload: rec.payload.into_vec(),
        });
    }
}

fn seeds() -> &'static [Parts] {
    static SEEDS: OnceLock<Vec<Parts>> = OnceLock::new();
    SEEDS.get_or_init(|| crate::seed::files().iter().map(|(_, f)| split(f)).collect())
}

/// Number of seed files a script can pick from.
pub fn seed_count() -> usize {
    seeds().len()
}

const SEC_GRAPH_PROTO: usize = 0;
const SEC_GRAPH_HEADER: usize = 1;
const SEC_INDEX: usize = 2;
const SEC_FILE: usize = 3;
const SEC_RECORDS: usize = 4;

const U32S: [u32; 16] = [
    0,
    1,
    2,
    3,
    4,
    8,
    16,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];
const U64S: [u64; 16] = [
    0,
    1,
    2,
    3,
    4,
    0xff,
    1 << 16,
    1 << 20,
    1 << 24,
    1 << 30,
    1 << 32,
    1 << 40,
    1 << 62,
    1 << 63,
    i64::MAX as u64,
    u64::MAX,
];

/// Applies one byte-level edit to `buf`.
fn edit_bytes(buf: &mut Vec<u8>, op: u8, off: u16, val: u8) {
    let len = buf.len();
    let at = off as usize % (len + 1);
    match op {
        2 => buf.insert(at, val),
        4 => buf.truncate(at),
        _ if len == 0 => {}
        0 => buf[at % len] ^= val.max(1),
        1 => buf[at % len] = val,
        3 => {
            buf.remove(at % len);
        }
        5 => {
            let b = U32S[val as usize % 16].to_le_bytes();
            let at = at % len;
            let n = b.len().min(len - at);
            buf[at..at + n].copy_from_slice(&b[..n]);
        }
        6 => {
            let b = U64S[val as usize % 16].to_le_bytes();
            let at = at % len;
            let n = b.len().min(len - at);
            buf[at..at + n].copy_from_slice(&b[..n]);
        }
        _ => buf[at % len] = buf[at % len].wrapping_add(val),
    }
}

/// Name of a TENSOR record header (bytes 8..12 its length), for the regenerated index.
fn header_name(h: &[u8]) -> String {
    let Some(n) = h.get(8..12) else {
        return String::new();
    };
    let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
    h.get(12..12usize.saturating_add(n))
        .and_then(|s| std::str::from_utf8(s).ok())
        .unwrap_or_default()
        .to_owned()
}

fn push_record(out: &mut Vec<u8>, kind: u8, flags: u8, header: &[u8], payload: &[u8]) -> u64 {
    let at = out.len() as u64;
    out.extend_from_slice(&Prefix::build(kind, flags, header, payload));
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    at
}

/// Builds the `.nnc` bytes an edit script describes (see the module docs).
pub fn apply(script: &[u8]) -> Vec<u8> {
    let seeds = seeds();
    let (pick, edits) = script.split_first().map_or((0, &[][..]), |(p, e)| (*p, e));
    let mut p = seeds[pick as usize % seeds.len()].clone();
    let (mut graph_edited, mut header_edited, mut index_edited) = (false, false, false);
    let mut file_edits = Vec::new();
    for e in edits.chunks_exact(5) {
        let (op, sec, off, val) = (e[0] % 11, e[1], u16::from_le_bytes([e[2], e[3]]), e[4]);
        let sec = sec as usize % (SEC_RECORDS + 2 * p.records.len());
        match (op, sec) {
            // Record-level edits: remove, duplicate, swap, insert an unknown record, change
            // kind or flags. The record is chosen by the offset.
            (9 | 10, _) if sec >= SEC_RECORDS || p.records.is_empty() => {
                let n = p.records.len();
                let k = if n == 0 { 0 } else { off as usize % n };
                match (op, val % 6) {
                    (9, 0) if n > 0 => {
                        p.records.remove(k);
                    }
                    (9, 1) if n > 0 => {
                        let r = p.records[k].clone();
                        p.records.insert(k, r);
                    }
                    (9, 2) if n > 1 => p.records.swap(k, (k + 1) % n),
                    (9, _) => p.records.insert(
                        k,
                        Rec {
                            kind: 4 + val / 6,
                            flags: 0,
                            header: vec![val; (val % 3) as usize],
                            payload: vec![val; (val % 5) as usize],
                        },
                    ),
                    (_, _) if n > 0 => {
                        let r = &mut p.records[k];
                        match val % 4 {
                            0 => r.flags ^= FLAG_CRITICAL,
                            1 => r.flags = val,
                            _ => r.kind = [kind::GRAPH, kind::INDEX, 0, 4, 255][val as usize % 5],
                        }
                    }
                    _ => {}
                }
            }
            (_, SEC_FILE) => file_edits.push((op.min(8), off, val)),
            (_, SEC_GRAPH_PROTO) => {
                graph_edited = true;
                edit_bytes(&mut p.graph_proto, op.min(8), off, val);
            }
            (_, SEC_GRAPH_HEADER) => {
                header_edited = true;
                edit_bytes(&mut p.graph_header, op.min(8), off, val);
            }
            (_, SEC_INDEX) => {
                index_edited = true;
                edit_bytes(&mut p.index_payload, op.min(8), off, val);
            }
            (_, s) => {
                let r = &mut p.records[(s - SEC_RECORDS) / 2];
                let part = if (s - SEC_RECORDS).is_multiple_of(2) {
                    &mut r.header
                } else {
                    &mut r.payload
                };
                edit_bytes(part, op.min(8), off, val);
            }
        }
    }
    let frame = if graph_edited {
        zstd::bulk::compress(&p.graph_proto, 1).expect("zstd")
    } else {
        p.graph_frame
    };
    let graph_header = if header_edited {
        p.graph_header
    } else {
        let mut h = vec![1u8];
        h.extend_from_slice(&(p.graph_proto.len() as u64).to_le_bytes());
        h
    };
    let mut out = file_header().to_vec();
    push_record(&mut out, kind::GRAPH, FLAG_CRITICAL, &graph_header, &frame);
    let mut entries = Vec::new();
    for r in &p.records {
        let at = push_record(&mut out, r.kind, r.flags, &r.header, &r.payload);
        if r.kind == kind::TENSOR {
            entries.push(Entry {
                offset: at,
                name: header_name(&r.header),
            });
        }
    }
    let index_payload = if index_edited {
        p.index_payload
    } else {
        index::write(&entries)
    };
    let at = push_record(&mut out, kind::INDEX, 0, &[], &index_payload);
    out.extend_from_slice(&index::trailer(at));
    for (op, off, val) in file_edits {
        edit_bytes(&mut out, op, off, val);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn empty_script_gives_the_seed_file() {
        let files = crate::seed::files();
        for (i, (_, f)) in files.iter().enumerate() {
            assert_eq!(&super::apply(&[i as u8]), f);
        }
    }
}
