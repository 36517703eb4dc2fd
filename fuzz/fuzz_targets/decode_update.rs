//! Updates (spec §14) under edits: an update of the seed model against a base (the seed model
//! with some tensors changed), built once, with the fuzzer's bytes applied as 4-byte edits
//! `[record, offset lo, offset hi, value]` to the headers and payloads of its records (BASE,
//! GRAPH, TENSOR, INDEX), then framed again with fresh lengths, CRCs, index and trailer, so that
//! the edits reach the BASE record, the graph compressed against the base and the references.
//! Decoded against the right base, streaming and whole: must never panic or allocate beyond the
//! limits; when both succeed they agree (as in `decode`). The first byte picks the seed: the
//! lossless update above (its float tensors scaled by 1 % and rounded to 12 mantissa bits,
//! coded as integer differences, §14.7.1), or a lossy one whose changed weight is coded as residual
//! levels with a low-rank term and steps coded against the base (spec §14.6.1, §14.6.2).
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

/// A 24 x 40 float weight: `base` plus, when `delta`, a matrix of rank 2 of a few steps.
fn low_rank_weight(delta: bool) -> nnc::onnx::proto::TensorProto {
    let mut rng = nnc_fuzz::seed::Rng(0x10a);
    let data: Vec<u8> = (0..24 * 40)
        .flat_map(|j| {
            let (a, b) = ((j / 40) as f64, (j % 40) as f64);
            let d = if delta {
                0.01 * (a * 0.3).sin() * (b * 0.2).cos() + 0.006 * (a * 0.1).cos() * (b * 0.5).sin()
            } else {
                0.0
            };
            ((rng.weight(0.05) + d) as f32).to_le_bytes()
        })
        .collect();
    nnc::onnx::proto::TensorProto {
        name: Some("lr.w".into()),
        data_type: Some(1),
        dims: vec![24, 40],
        raw_data: Some(data),
        ..Default::default()
    }
}

/// Lossy, only "lr.w" quantized (the one float tensor of 512 elements or more).
fn lossy_opts() -> EncodeOptions {
    EncodeOptions {
        lossy: Some(nnc::LossyOptions {
            all_tensors: true,
            min_elements: 512,
            ..nnc::LossyOptions::default()
        }),
        ..EncodeOptions::default()
    }
}

fn seeds() -> &'static [Seed; 2] {
    static SEEDS: OnceLock<[Seed; 2]> = OnceLock::new();
    SEEDS.get_or_init(|| [seed(false), seed(true)])
}

fn seed(low_rank: bool) -> Seed {
    {
        let mut base_model = nnc_fuzz::seed::model(false);
        if low_rank {
            if let Some(g) = base_model.graph.as_mut() {
                g.initializer.push(low_rank_weight(false));
            }
        }
        if low_rank {
            // The base as a lossy encode decodes it (its weight on a grid, so that the
            // update's steps are coded against it, flag bit 3).
            let (bytes, _) = nnc::encode_model(base_model, None, &lossy_opts(), Vec::new())
                .expect("base encodes");
            let (m, _) = nnc::Decoder::new(bytes.as_slice(), DecodeOptions::default())
                .and_then(|d| d.into_model(true))
                .expect("base decodes");
            base_model = m;
        }
        let base = Arc::new(
            BaseModel::from_model(base_model.clone(), None, &nnc::Limits::default()).expect("base"),
        );
        let mut new = base_model.clone();
        let opts = if low_rank {
            // The update: "lr.w" moved by a matrix of rank 2, the only tensor quantized.
            if let Some(g) = new.graph.as_mut() {
                let w = g
                    .initializer
                    .iter_mut()
                    .find(|t| t.name.as_deref() == Some("lr.w"))
                    .expect("lr.w");
                *w = low_rank_weight(true);
            }
            EncodeOptions {
                base: Some(base.clone()),
                ..lossy_opts()
            }
        } else {
            // The update: every other initializer with raw data changed; FLOAT ones scaled by
            // 1 % and rounded to 12 mantissa bits, as `--fine-bits` rounds a fine-tuned bias
            // (coded as integer differences, §14.7.1), the others reversed.
            if let Some(g) = new.graph.as_mut() {
                for t in g.initializer.iter_mut().step_by(2) {
                    let float = t.data_type == Some(1);
                    if let Some(r) = t.raw_data.as_mut() {
                        if float {
                            for b in r.chunks_exact_mut(4) {
                                let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                                let y = nnc::quant::policy::round_mantissa(x * 1.01, 12);
                                b.copy_from_slice(&y.to_le_bytes());
                            }
                        } else {
                            r.reverse();
                        }
                    }
                }
            }
            EncodeOptions {
                base: Some(base.clone()),
                ..EncodeOptions::default()
            }
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
        let header = |r: &Rec| {
            nnc::container::tensor_header::TensorHeader::parse(&r.header, 0, &nnc::Limits::default())
        };
        if !low_rank {
            // The seed must hold what it is for: a difference of inner coding 3.
            assert!(
                recs.iter().any(|r| r.kind == kind::TENSOR
                    && header(r).is_ok_and(|h| h.coding == nnc::Coding::Difference)
                    && r.payload.get(1) == Some(&3)),
                "the lossless seed has no integer differences"
            );
        }
        if low_rank {
            // The seed must hold what it is for: a record with quantizer flags 1 and 2.
            assert!(
                recs.iter().any(|r| r.kind == kind::TENSOR
                    && nnc::container::tensor_header::TensorHeader::parse(
                        &r.header,
                        0,
                        &nnc::Limits::default()
                    )
                    .is_ok_and(|h| h.params.get(1).is_some_and(|f| f & 14 == 14))),
                "the low-rank seed has no low-rank record"
            );
        }
        Seed {
            base,
            head: file[..FILE_HEADER_LEN].to_vec(),
            recs,
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&pick, edits)) = input.split_first() else {
        return;
    };
    let s = &seeds()[pick as usize % 2];
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
