//! Updates (spec §14) under edits: an update of the seed model against a base (the seed model
//! with some tensors changed), built once, with the fuzzer's bytes applied as 4-byte edits
//! `[record, offset lo, offset hi, value]` to the headers and payloads of its records (BASE,
//! GRAPH, TENSOR, INDEX), then framed again with fresh lengths, CRCs, index and trailer, so that
//! the edits reach the BASE record, the graph compressed against the base and the references.
//! Decoded against the right base, streaming and whole: must never panic or allocate beyond the
//! limits; when both succeed they agree (as in `decode`).
#![no_main]
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use nnc::container::index::{self, Entry};
use nnc::container::record::Prefix;
use nnc::container::{kind, FILE_HEADER_LEN};
use nnc::onnx::proto::ModelProto;
use nnc::{BaseModel, DecodeOptions, Decoder, EncodeOptions};

struct Rec {
    kind: u8,
    flags: u8,
    header: Vec<u8>,
    payload: Vec<u8>,
}

struct Seed {
    base: Arc<BaseModel>,
    head: Vec<u8>,
    recs: Vec<Rec>,
}

fn seed() -> &'static Seed {
    static SEED: OnceLock<Seed> = OnceLock::new();
    SEED.get_or_init(|| {
        let base_model = nnc_fuzz::seed::model(false);
        let base = Arc::new(
            BaseModel::from_model(base_model.clone(), None, &nnc::Limits::default()).expect("base"),
        );
        // The update: every other initializer with raw data changed.
        let mut new = base_model.clone();
        if let Some(g) = new.graph.as_mut() {
            for t in g.initializer.iter_mut().step_by(2) {
                if let Some(r) = t.raw_data.as_mut() {
                    r.reverse();
                }
            }
        }
        let opts = EncodeOptions {
            base: Some(base.clone()),
            ..EncodeOptions::default()
        };
        let (file, _) = nnc::encode_model(new, None, &opts, Vec::new()).expect("update encodes");
        let mut recs = Vec::new();
        let mut at = FILE_HEADER_LEN;
        while at + 16 < file.len() {
            let p = &file[at..at + 24];
            let h = u32::from_le_bytes(p[4..8].try_into().unwrap()) as usize;
            let n = u64::from_le_bytes(p[8..16].try_into().unwrap()) as usize;
            recs.push(Rec {
                kind: p[0],
                flags: p[1],
                header: file[at + 24..at + 24 + h].to_vec(),
                payload: file[at + 24 + h..at + 24 + h + n].to_vec(),
            });
            at += 24 + h + n;
        }
        Seed {
            base,
            head: file[..FILE_HEADER_LEN].to_vec(),
            recs,
        }
    })
}

fuzz_target!(|edits: &[u8]| {
    let s = seed();
    let mut recs: Vec<(u8, u8, Vec<u8>, Vec<u8>)> = s
        .recs
        .iter()
        .map(|r| (r.kind, r.flags, r.header.clone(), r.payload.clone()))
        .collect();
    for e in edits.chunks_exact(4) {
        let r = &mut recs[e[0] as usize % s.recs.len()];
        let off = u16::from_le_bytes([e[1], e[2]]) as usize;
        let part = if off & 1 == 0 && !r.2.is_empty() {
            &mut r.2
        } else {
            &mut r.3
        };
        if part.is_empty() {
            part.push(e[3]);
        } else if e[3] == 0xff && part.len() > 1 {
            part.truncate(off / 2 % part.len());
        } else {
            let n = part.len();
            part[off / 2 % n] = e[3];
        }
    }
    // Frame again: lengths, CRCs, the index of the TENSOR records as they now lie, trailer.
    let mut out = s.head.clone();
    let mut entries = Vec::new();
    let mut index_at = 0u64;
    for (k, flags, header, payload) in &recs {
        let at = out.len() as u64;
        let payload = if *k == kind::INDEX {
            index_at = at;
            index::write(&entries)
        } else {
            payload.clone()
        };
        if *k == kind::TENSOR && header.len() >= 12 {
            let n = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
            let name = header.get(12..12 + n).unwrap_or_default();
            entries.push(Entry {
                offset: at,
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
        out.extend_from_slice(&Prefix::build(*k, *flags, header, &payload));
        out.extend_from_slice(header);
        out.extend_from_slice(&payload);
    }
    out.extend_from_slice(&index::trailer(index_at));

    let opts = DecodeOptions::default();
    let streamed = Decoder::with_base(out.as_slice(), opts, Some(s.base.clone())).and_then(|d| {
        let mut n = 0usize;
        for t in d {
            n += t?.data.len();
        }
        Ok(n)
    });
    let full = nnc::decode_to_bytes_with_base(out.as_slice(), opts, Some(s.base.clone()));
    if let Ok(onnx) = &full {
        assert!(
            streamed.is_ok(),
            "whole decode succeeded, streaming failed: {streamed:?}"
        );
        <ModelProto as prost::Message>::decode(onnx.as_slice()).expect("a ModelProto");
    }
});
