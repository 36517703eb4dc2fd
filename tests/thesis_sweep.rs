//! The thesis's sweep (Tonin 2021 §3.5, THESIS-NOTES.md "Sweeps the thesis ran") on one real
//! model, ch_ppocr_mobile_v2.0_cls_infer.onnx (the smallest of the corpus, 0.13 M weights):
//! one range [−1, 1] for the whole model, 2^k levels, every float tensor quantized
//! (`all_tensors`, as the thesis did), for midtread, midrise, dead zone δ ∈ {0.1, 0.25, 0.4,
//! 0.7} and μ-law (μ = 255), k ∈ {2, 4, 6, 8, 10, 12}; and the minifloat layouts (1,5,10),
//! (1,4,3), (1,3,4), (1,2,3), (1,1,2), (1,0,3).
//!
//! For every setting the model is encoded and decoded, and the entropy the encoder reports
//! (order-0 entropy of the levels, `QuantReport::entropy_bits`) must equal the order-0 entropy
//! of the DECODED tensors (histogram of their distinct bit patterns) to a relative 1e-9, per
//! tensor. Where two levels decode to the same number the two differ; such tensors are
//! detected, explained, and checked against the levels instead. The entropy must also fall as
//! k falls for every level-based quantizer. Prints a table (run with `-- --nocapture`).
use std::collections::HashMap;
use std::path::PathBuf;

use nnc::container::tensor_header::Coding;
use nnc::encoder::{parse_model, EncodeReport};
use nnc::quant::minifloat::Layout;
use nnc::quant::policy::{Family, LossyOptions, StepRule};
use nnc::quant::{self, Kind, QuantParams};
use nnc::{DecodeOptions, Decoder, EncodeOptions};

const MODEL: &str = "ch_ppocr_mobile_v2.0_cls_infer.onnx";

fn corpus_model(name: &str) -> PathBuf {
    let root = std::env::var_os("NNC_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nnc-corpus")
        });
    let p = root.join("models").join(name);
    assert!(
        p.is_file(),
        "corpus model {} is missing: run tools/fetch_corpus.sh (it fetches the corpus into \
         $NNC_CORPUS, default ~/.cache/nnc-corpus)",
        p.display()
    );
    p
}

struct Decoded {
    name: String,
    data_type: i32,
    coding: Coding,
    data: Vec<u8>,
    params: Vec<u8>,
    dims: Vec<u64>,
}

fn encode(
    model: &nnc::onnx::proto::ModelProto,
    lossy: Option<LossyOptions>,
) -> (Vec<u8>, EncodeReport) {
    // Every tensor in a record of its own: the test compares records with the report.
    let opts = EncodeOptions {
        lossy,
        records_only: true,
        ..Default::default()
    };
    nnc::encode_model(model.clone(), None, &opts, Vec::new())
        .unwrap_or_else(|e| panic!("encode: {e}"))
}

fn decode(bytes: &[u8]) -> Vec<Decoded> {
    let mut d = Decoder::new(bytes, DecodeOptions::default()).expect("decoder");
    let mut out = Vec::new();
    while let Some(t) = d.next_tensor().expect("tensor") {
        out.push(Decoded {
            name: t.name,
            data_type: t.data_type,
            coding: t.coding,
            data: t.data,
            params: t.params,
            dims: t.dims,
        });
    }
    out
}

/// Element width of a float type's canonical bytes.
fn width(dt: i32) -> usize {
    match dt {
        1 => 4,
        11 => 8,
        10 | 16 => 2,
        _ => panic!("quantized tensor of type {dt}"),
    }
}

fn values(dt: i32, b: &[u8]) -> Vec<f64> {
    match dt {
        1 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        11 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        10 => b
            .chunks_exact(2)
            .map(|c| nnc::quant::float::f16_to_f32(u16::from_le_bytes([c[0], c[1]])) as f64)
            .collect(),
        16 => b
            .chunks_exact(2)
            .map(|c| nnc::quant::float::bf16_to_f32(u16::from_le_bytes([c[0], c[1]])) as f64)
            .collect(),
        _ => unreachable!(),
    }
}

/// −Σ c·log2(c/n) over a histogram, in bits; and the number of distinct symbols.
fn entropy_bits<K: std::hash::Hash + Eq>(items: impl Iterator<Item = K>) -> (f64, usize) {
    let mut h: HashMap<K, u64> = HashMap::new();
    let mut n = 0u64;
    for k in items {
        *h.entry(k).or_default() += 1;
        n += 1;
    }
    let mut counts: Vec<u64> = h.into_values().collect();
    counts.sort_unstable();
    let nf = n as f64;
    let bits = counts
        .iter()
        .map(|&c| -(c as f64) * (c as f64 / nf).log2())
        .sum();
    (bits, counts.len())
}

#[derive(Clone, Copy, Debug)]
struct Setting {
    label: &'static str,
    family: Family,
    k: Option<u32>,
}

struct Row {
    setting: Setting,
    weights: u64,
    entropy_bits: f64,
    coded_bits: f64,
    sse: f64,
    tensors: usize,
    collisions: Vec<String>,
}

fn settings() -> Vec<Setting> {
    let mut s = Vec::new();
    let uniform: [(&'static str, Family); 7] = [
        ("midtread", Family::Midtread),
        ("midrise", Family::Midrise),
        ("deadzone 0.1", Family::DeadZone { delta: 0.1 }),
        ("deadzone 0.25", Family::DeadZone { delta: 0.25 }),
        ("deadzone 0.4", Family::DeadZone { delta: 0.4 }),
        ("deadzone 0.7", Family::DeadZone { delta: 0.7 }),
        ("mulaw 255", Family::MuLaw { mu: 255.0 }),
    ];
    for (label, family) in uniform {
        for k in [2u32, 4, 6, 8, 10, 12] {
            s.push(Setting {
                label,
                family,
                k: Some(k),
            });
        }
    }
    let mini: [(&'static str, u8, u8); 6] = [
        ("minifloat 1,5,10", 5, 10),
        ("minifloat 1,4,3", 4, 3),
        ("minifloat 1,3,4", 3, 4),
        ("minifloat 1,2,3", 2, 3),
        ("minifloat 1,1,2", 1, 2),
        ("minifloat 1,0,3", 0, 3),
    ];
    for (label, e, m) in mini {
        s.push(Setting {
            label,
            family: Family::Minifloat {
                layout: Layout {
                    exp_bits: e,
                    man_bits: m,
                },
            },
            k: None,
        });
    }
    s
}

fn run(
    model: &nnc::onnx::proto::ModelProto,
    originals: &[Decoded],
    setting: Setting,
) -> Result<Row, String> {
    let l = LossyOptions {
        family: setting.family,
        step: StepRule::Thesis {
            min: -1.0,
            max: 1.0,
            // Minifloats ignore the level count (their layout fixes the levels).
            levels_bits: setting.k.unwrap_or(8),
        },
        per_channel: false,
        min_elements: 0,
        all_tensors: true,
        mulaw_levels_bits: setting.k.unwrap_or(8),
        ..LossyOptions::default()
    };
    let what = format!("{} k={:?}", setting.label, setting.k);
    let (bytes, report) = encode(model, Some(l));
    let decoded = decode(&bytes);
    if decoded.len() != report.tensors.len() || decoded.len() != originals.len() {
        return Err(format!("{what}: tensor counts differ"));
    }
    let mut row = Row {
        setting,
        weights: 0,
        entropy_bits: 0.0,
        coded_bits: 0.0,
        sse: 0.0,
        tensors: 0,
        collisions: Vec::new(),
    };
    let mut errors = Vec::new();
    for ((t, rep), orig) in decoded.iter().zip(&report.tensors).zip(originals) {
        assert_eq!(t.name, rep.name);
        assert_eq!(t.name, orig.name);
        let Some(q) = &rep.quant else {
            if t.data != orig.data {
                errors.push(format!("{what}: {} not quantized but not exact", t.name));
            }
            continue;
        };
        if t.coding != Coding::Quantized {
            errors.push(format!(
                "{what}: {} reported quantized, decoded {:?}",
                t.name, t.coding
            ));
            continue;
        }
        let p = QuantParams::parse(&t.params, 0, &t.dims).expect("params");
        assert_eq!(p, q.params);
        let w = width(t.data_type);
        let n = t.data.len() / w;
        assert_eq!(n as u64, rep.elements);
        // The order-0 entropy of what the decoder produced.
        let (h_dec, distinct) = entropy_bits(t.data.chunks_exact(w));
        let x = values(orig.data_type, &orig.data);
        let y = values(t.data_type, &t.data);
        let sse: f64 = x.iter().zip(&y).map(|(a, b)| (a - b) * (a - b)).sum();
        let mse = sse / n as f64;
        if (q.mse - mse).abs() > 1e-9 * mse.max(1e-300) {
            errors.push(format!(
                "{what}: {}: report mse {} but decoded mse {mse}",
                t.name, q.mse
            ));
        }
        if distinct == q.levels {
            let tol = 1e-9 * q.entropy_bits.abs().max(h_dec.abs());
            if (q.entropy_bits - h_dec).abs() > tol.max(1e-9) {
                errors.push(format!(
                    "{what}: {} ({n} elements, {distinct} levels): reported entropy {} bits, \
                     decoded tensor {h_dec} bits",
                    t.name, q.entropy_bits
                ));
            }
        } else if distinct < q.levels {
            // Two levels decode to the same number: find them, explain, and check the report
            // against the levels themselves.
            let mut xs = x.clone();
            for v in &mut xs {
                *v = v.clamp(-1.0, 1.0);
            }
            let limit = match p.kind {
                Kind::Minifloat { .. } => None,
                _ => Some(1i64 << (setting.k.unwrap() - 1)),
            };
            let levels = quant::quantize(&xs, &p, limit);
            let (h_lev, nlev) = entropy_bits(levels.iter().copied());
            let mut by_value: HashMap<&[u8], Vec<i64>> = HashMap::new();
            for (lv, b) in levels.iter().zip(t.data.chunks_exact(w)) {
                let e = by_value.entry(b).or_default();
                if !e.contains(lv) {
                    e.push(*lv);
                }
            }
            let mut merged: Vec<String> = by_value
                .iter()
                .filter(|(_, l)| l.len() > 1)
                .map(|(b, l)| format!("levels {l:?} -> {:e}", values(t.data_type, b)[0]))
                .collect();
            merged.sort();
            merged.truncate(4);
            row.collisions.push(format!(
                "{what}: {}: {} levels decode to {distinct} distinct values ({}); the level \
                 entropy {:.3} bits exceeds the decoded-value entropy {h_dec:.3} bits",
                t.name,
                q.levels,
                merged.join(", "),
                q.entropy_bits
            ));
            if nlev != q.levels || (h_lev - q.entropy_bits).abs() > 1e-9 * h_lev.max(1.0) {
                errors.push(format!(
                    "{what}: {}: report {} levels / {} bits but the levels give {nlev} / {h_lev}",
                    t.name, q.levels, q.entropy_bits
                ));
            }
            if h_dec > q.entropy_bits * (1.0 + 1e-12) {
                errors.push(format!(
                    "{what}: {}: merging levels raised the entropy",
                    t.name
                ));
            }
        } else {
            errors.push(format!(
                "{what}: {}: {distinct} distinct decoded values but only {} levels reported",
                t.name, q.levels
            ));
        }
        let coded = 8.0 * rep.payload_bytes as f64;
        row.weights += n as u64;
        row.entropy_bits += q.entropy_bits;
        row.coded_bits += coded;
        row.sse += sse;
        row.tensors += 1;
    }
    if row.tensors == 0 {
        errors.push(format!("{what}: nothing was quantized"));
    }
    if errors.is_empty() {
        Ok(row)
    } else {
        Err(errors.join("\n"))
    }
}

#[test]
fn thesis_sweep_entropy_matches_decoded_tensors() {
    let path = corpus_model(MODEL);
    let t0 = std::time::Instant::now();
    let model = parse_model(&std::fs::read(&path).expect("read model")).expect("parse model");
    // The original tensors, in walk order, through the lossless path.
    let (lossless, _) = encode(&model, None);
    let originals = decode(&lossless);

    let settings = settings();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let results: Vec<Result<Row, String>> = std::thread::scope(|s| {
        let chunks: Vec<Vec<Setting>> = (0..threads)
            .map(|i| settings.iter().skip(i).step_by(threads).copied().collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (model, originals) = (&model, &originals);
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|st| run(model, originals, st))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut per_thread: Vec<std::vec::IntoIter<Result<Row, String>>> = handles
            .into_iter()
            .map(|h| h.join().expect("worker").into_iter())
            .collect();
        // Back into the settings' order.
        (0..settings.len())
            .map(|i| per_thread[i % threads].next().unwrap())
            .collect()
    });

    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for r in results {
        match r {
            Ok(row) => rows.push(row),
            Err(e) => errors.push(e),
        }
    }

    println!(
        "\nthesis sweep on {MODEL}: range [-1, 1], all float tensors quantized ({} s)",
        t0.elapsed().as_secs_f32()
    );
    println!(
        "{:<18} {:>3} {:>8} {:>12} {:>12} {:>7} {:>12}",
        "quantizer", "k", "tensors", "H bits/w", "coded bits/w", "CR=32/H", "weight MSE"
    );
    for r in &rows {
        let w = r.weights as f64;
        println!(
            "{:<18} {:>3} {:>8} {:>12.4} {:>12.4} {:>7.2} {:>12.4e}",
            r.setting.label,
            r.setting.k.map_or("-".to_string(), |k| k.to_string()),
            r.tensors,
            r.entropy_bits / w,
            r.coded_bits / w,
            32.0 * w / r.entropy_bits.max(1e-9),
            r.sse / w
        );
    }
    let collisions: Vec<&String> = rows.iter().flat_map(|r| &r.collisions).collect();
    if collisions.is_empty() {
        println!(
            "no two levels of any tensor decoded to the same number: the entropy of the decoded \
             tensors equals the reported level entropy everywhere"
        );
    } else {
        println!("levels that decode to the same number (entropy compared against the levels):");
        for c in &collisions {
            println!("  {c}");
        }
    }

    // Entropy falls as the number of levels falls, for every level-based quantizer.
    let mut by_label: HashMap<&str, Vec<(u32, f64)>> = HashMap::new();
    for r in &rows {
        if let Some(k) = r.setting.k {
            by_label
                .entry(r.setting.label)
                .or_default()
                .push((k, r.entropy_bits / r.weights as f64));
        }
    }
    for (label, mut v) in by_label {
        v.sort_by_key(|e| e.0);
        for w in v.windows(2) {
            if w[0].1 >= w[1].1 {
                errors.push(format!(
                    "{label}: entropy {:.4} bits/weight at k={} is not below {:.4} at k={}",
                    w[0].1, w[0].0, w[1].1, w[1].0
                ));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(rows.len(), settings.len());
}
