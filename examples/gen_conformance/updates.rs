//! Updates against a base (spec §14): valid updates whose bases are other valid vectors (a
//! chain of two), and the invalid files around them (no base, another base, a broken chain,
//! a damaged BASE record, references that do not fit the base, the features of an update in
//! a file that is not one). The manifest names each case's base chain in `base_files`.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use nnc::container::kind;
use nnc::onnx::proto::ModelProto;
use nnc::{BaseModel, DecodeOptions, Limits};
use prost::Message;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::container::{NncFile, RawHeader};
use super::{decoded_json, error_class, hex, merge, sorted_sections, write};

/// The root base: a valid vector with three FLOAT tensors of different sizes.
const ROOT: &str = "dtype-float";
const FIRST: &str = "update-reference";
const SECOND: &str = "update-chain";
/// A quantized vector (one midtread tensor "w") and its update with residual levels.
const QUANT: &str = "quant-midtread";
const RESIDUAL: &str = "update-residual";
/// The same update as the encoder writes it: the step as a difference from the base's.
const BASE_STEPS: &str = "update-residual-base-steps";
const DIFFERENCE: &str = "update-difference";
const LOW_RANK: &str = "update-low-rank";
/// The base of the low-rank update: a 64 × 128 dead-zone tensor with per-channel steps.
const LARGE: &str = "quant-per-channel-large";
/// An update of LARGE whose 64 steps are coded (quantizer flag bit 4, spec §14.6.2).
const CODED_STEPS: &str = "update-residual-coded-steps";
/// An update of ROOT whose changed tensor is coded as integer differences (spec §14.7.1).
const INTEGER_DIFFERENCE: &str = "update-integer-difference";

/// `m` with every value of its initializer "float.matrix" mapped by `f`.
fn map_matrix(m: &ModelProto, f: impl Fn(f32) -> f32) -> ModelProto {
    let mut m = m.clone();
    let g = m.graph.as_mut().expect("graph");
    let t = g
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some("float.matrix"))
        .expect("float.matrix");
    for b in t.raw_data.as_mut().expect("raw_data").chunks_exact_mut(4) {
        let x = f(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        b.copy_from_slice(&x.to_le_bytes());
    }
    m
}

/// `opts` with `base`.
fn lopts_of(opts: &nnc::EncodeOptions, base: Arc<BaseModel>) -> nnc::EncodeOptions {
    nnc::EncodeOptions {
        base: Some(base),
        ..opts.clone()
    }
}

fn file_of(name: &str) -> String {
    format!("valid/{name}/input.nnc")
}

fn chain(out: &Path, names: &[&str]) -> Result<Arc<BaseModel>, String> {
    let paths: Vec<_> = names.iter().map(|n| out.join(file_of(n))).collect();
    BaseModel::open_chain(&paths, DecodeOptions::default()).map_err(|e| e.to_string())
}

fn decode(bytes: &[u8], base: Arc<BaseModel>) -> Result<ModelProto, String> {
    let (m, _) = nnc::Decoder::with_base(bytes, DecodeOptions::default(), Some(base))
        .map_err(|e| e.to_string())?
        .into_model(true)
        .map_err(|e| e.to_string())?;
    Ok(m)
}

/// The model with the values of initializer `name` changed (each float times 1.5 plus 0.25).
fn changed(mut m: ModelProto, name: &str) -> ModelProto {
    let g = m.graph.as_mut().expect("graph");
    let t = g
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no initializer {name}"));
    let raw = t.raw_data.as_mut().expect("raw_data");
    for b in raw.chunks_exact_mut(4) {
        let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * 1.5 + 0.25;
        b.copy_from_slice(&x.to_le_bytes());
    }
    m
}

pub struct Vectors {
    pub valid: Vec<Value>,
    pub invalid: Vec<Value>,
    pub bytes: u64,
}

/// Writes the update vectors into `out` (after the other valid vectors, whose files are
/// their bases).
pub fn generate(out: &Path, valid: &BTreeMap<String, Vec<u8>>) -> Result<Vectors, String> {
    let mut v = Vectors {
        valid: Vec::new(),
        invalid: Vec::new(),
        bytes: 0,
    };
    let root_bytes = valid.get(ROOT).ok_or("no root vector")?;
    let opts = |base: Arc<BaseModel>| nnc::EncodeOptions {
        base: Some(base),
        ..super::valid::lossless()
    };

    // 1. An update of the root: "float.matrix" changed, the other two tensors referenced.
    let root = chain(out, &[ROOT])?;
    let m1 = changed(decode(root_bytes, root.clone())?, "float.matrix");
    let (first, _) = nnc::encode_model(m1.clone(), None, &opts(root.clone()), Vec::new())
        .map_err(|e| format!("encoding {FIRST}: {e}"))?;
    v.valid.push(valid_entry(
        out,
        FIRST,
        &first,
        &[ROOT],
        &m1,
        "An update (spec §14) of valid/dtype-float: minor version 2, a BASE record naming the \
         base's identity, the graph compressed against the base's dictionary (compression 2), \
         `float.scalar` and `float.vector` as references to the base's places 0 and 1 \
         (coding 4), `float.matrix` changed and coded on its own. `base_files` gives the base.",
        &[
            "§3", "§4.2", "§4.3", "§5.1", "§14", "§14.1", "§14.2", "§14.3", "§14.4", "§14.5",
        ],
        Expect::Reference,
    )?);
    v.bytes += first.len() as u64;

    // 2. An update of the update: "float.vector" changed in turn.
    let both = chain(out, &[ROOT, FIRST])?;
    let m2 = changed(m1, "float.vector");
    let (second, _) = nnc::encode_model(m2.clone(), None, &opts(both), Vec::new())
        .map_err(|e| format!("encoding {SECOND}: {e}"))?;
    v.valid.push(valid_entry(
        out,
        SECOND,
        &second,
        &[ROOT, FIRST],
        &m2,
        "An update of valid/update-reference, itself an update of valid/dtype-float (a chain, \
         spec §14): `float.vector` changed, `float.scalar` and `float.matrix` referenced. The \
         base is the model update-reference decodes to against its own base; `base_files` \
         lists the chain root first.",
        &["§14", "§14.1", "§14.2", "§14.3", "§14.4"],
        Expect::Reference,
    )?);
    v.bytes += second.len() as u64;

    // 3. An update of a quantized vector: every eighth weight of "w" moved by 5 %, the tensor
    // quantized on the base's grid and coded as residual levels.
    let qcase = super::valid::cases()
        .into_iter()
        .find(|c| c.name == QUANT)
        .ok_or("no quant-midtread case")?;
    let mut m3 = qcase.model.clone();
    {
        let g = m3.graph.as_mut().expect("graph");
        let raw = g.initializer[0].raw_data.as_mut().expect("raw_data");
        for (j, b) in raw.chunks_exact_mut(4).enumerate() {
            if j % 8 == 0 {
                let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * 1.05;
                b.copy_from_slice(&x.to_le_bytes());
            }
        }
    }
    let qbase = chain(out, &[QUANT])?;
    let ropts = nnc::EncodeOptions {
        base: Some(qbase),
        ..qcase.opts.clone()
    };
    let (encoded, _) = nnc::encode_model(m3.clone(), None, &ropts, Vec::new())
        .map_err(|e| format!("encoding {RESIDUAL}: {e}"))?;
    // The encoder codes the step against the base's (quantizer flag bit 3, spec §14.6.2); the
    // plain residual vector carries it in the params instead: the same levels and stream.
    let third = without_base_steps(&encoded, &chain(out, &[QUANT])?)?;
    if decode(&third, chain(out, &[QUANT])?)? != decode(&encoded, chain(out, &[QUANT])?)? {
        return Err(format!(
            "{RESIDUAL}: the steps moved into the params decode otherwise"
        ));
    }
    v.valid.push(valid_entry(
        out,
        RESIDUAL,
        &third,
        &[QUANT],
        &m3,
        "An update (spec §14.6) of valid/quant-midtread: tensor `w` with every eighth weight \
         moved by 5 %, quantized on the base's grid (the same midtread step) and coded as \
         residual levels (quantizer flag bit 1) against the base's tensor 0: most residuals \
         are 0. Lossy: the manifest's hashes are of the decoded levels.",
        &["§7.6.2", "§14", "§14.5", "§14.6"],
        Expect::Residual,
    )?);
    v.bytes += third.len() as u64;
    v.valid.push(valid_entry(
        out,
        BASE_STEPS,
        &encoded,
        &[QUANT],
        &m3,
        "valid/update-residual as the reference encoder writes it (spec §14.6.2): quantizer \
         flag bit 3 set, the params end after the step count, and the payload codes the step \
         after the place number as the difference (a zigzag varint, here 0) of its binary32 \
         bits from the base's smallest nonzero magnitude. Decodes to the same tensor.",
        &["§7.6.2", "§14.6", "§14.6.2"],
        Expect::Residual,
    )?);
    v.bytes += encoded.len() as u64;

    // 4. Differences (spec §14.7): "float.matrix" with its lowest mantissa bits changed.
    let root_model = decode(root_bytes, root.clone())?;
    let m4 = map_matrix(&root_model, |x| f32::from_bits(x.to_bits() ^ 0x15));
    let (fourth, _) = nnc::encode_model(m4.clone(), None, &opts(root.clone()), Vec::new())
        .map_err(|e| format!("encoding {DIFFERENCE}: {e}"))?;
    v.valid.push(valid_entry(
        out,
        DIFFERENCE,
        &fourth,
        &[ROOT],
        &m4,
        "An update (spec §14.7) of valid/dtype-float: `float.matrix` with the low mantissa \
         bits of every value changed, coded as the XOR of its bytes with the base's (coding 5, \
         inner coding planes); the two other tensors referenced. Lossless.",
        &["§14", "§14.7"],
        Expect::Difference,
    )?);
    v.bytes += fourth.len() as u64;

    // 5. A low-rank term (spec §14.6.1): "w" of valid/quant-per-channel-large plus a matrix
    // of rank 2 and a little noise of full rank.
    let lcase = super::valid::cases()
        .into_iter()
        .find(|c| c.name == LARGE)
        .ok_or("no quant-per-channel-large case")?;
    let mut m5 = lcase.model.clone();
    {
        let g = m5.graph.as_mut().expect("graph");
        let t = &mut g.initializer[0];
        let cols = (t.dims[1]) as usize;
        let raw = t.raw_data.as_mut().expect("raw_data");
        let mut noise = 0x2545_f491_4f6c_dd1du64;
        for (j, b) in raw.chunks_exact_mut(4).enumerate() {
            let (a, c) = ((j / cols) as f32, (j % cols) as f32);
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let e = (noise >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let d = 0.006 * (a * 0.37).sin() * (c * 0.11).cos()
                + 0.003 * ((a * 0.05).cos()) * (c * 0.29 + 1.0).sin()
                + 0.0004 * e;
            let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) + d;
            b.copy_from_slice(&x.to_le_bytes());
        }
    }
    let lbase = chain(out, &[LARGE])?;
    let lopts = nnc::EncodeOptions {
        base: Some(lbase),
        ..lcase.opts.clone()
    };
    let (fifth, _) = nnc::encode_model(m5.clone(), None, &lopts, Vec::new())
        .map_err(|e| format!("encoding {LOW_RANK}: {e}"))?;
    v.valid.push(valid_entry(
        out,
        LOW_RANK,
        &fifth,
        &[LARGE],
        &m5,
        "An update (spec §14.6.1) of valid/quant-per-channel-large: tensor `w` (64 × 128, a \
         step per row) plus a matrix of rank 2 and a little noise, coded as residual levels \
         with a low-rank term (quantizer flag bits 1 and 2): factors (levels times a step \
         per column of U and per row of V) whose product is added to the base's values \
         before the prediction, the residuals in context classes (mode 5) \
         whose context bytes come from the predictions. Lossy: the manifest's hashes are of \
         the decoded levels.",
        &["§7.3.3", "§7.6.2", "§14", "§14.6", "§14.6.1"],
        Expect::LowRank,
    )?);
    v.bytes += fifth.len() as u64;

    // 6. Coded steps (spec §14.6.2, quantizer flag bit 4): "w" of valid/quant-per-channel-large
    // with every eighth weight moved by 5 %, encoded with the later stream modes on.
    let mut m6 = lcase.model.clone();
    {
        let g = m6.graph.as_mut().expect("graph");
        let raw = g.initializer[0].raw_data.as_mut().expect("raw_data");
        for b in raw.chunks_exact_mut(4).step_by(8) {
            let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * 1.05;
            b.copy_from_slice(&x.to_le_bytes());
        }
    }
    let wide = |o: &nnc::EncodeOptions, base: Arc<BaseModel>| nnc::EncodeOptions {
        base: Some(base),
        lossless: nnc::LosslessOptions {
            wide: true,
            ..o.lossless
        },
        ..o.clone()
    };
    let (sixth, _) = nnc::encode_model(
        m6.clone(),
        None,
        &wide(&lcase.opts, chain(out, &[LARGE])?),
        Vec::new(),
    )
    .map_err(|e| format!("encoding {CODED_STEPS}: {e}"))?;
    v.valid.push(valid_entry(
        out,
        CODED_STEPS,
        &sixth,
        &[LARGE],
        &m6,
        "An update (spec §14.6.2) of valid/quant-per-channel-large: tensor `w` (64 × 128, a \
         step per row) with every eighth weight moved by 5 %, quantized on the base's grid \
         and coded as residual levels whose 64 steps are coded (quantizer flag bits 1, 3 and \
         4): after the place number, the byte count of the steps' varints (one byte each: \
         differences of 0 or an ulp from the base's smallest magnitude over 0.8, the dead \
         zone's δ being 0.3) and a symbol stream of those bytes. Lossy: the manifest's hashes \
         are of the decoded levels.",
        &["§7.1", "§7.6.2", "§14", "§14.6", "§14.6.2"],
        Expect::CodedSteps,
    )?);
    v.bytes += sixth.len() as u64;

    // 7. Integer differences (spec §14.7.1): "float.matrix" of the root times 1.01, each value
    // rounded to 12 mantissa bits, its NaNs and subnormals ±0.5 (so the shift is 11 and the
    // base's low bits are dropped).
    let m7 = map_matrix(&root_model, |x| {
        if x == 0.0 || x.is_infinite() {
            x
        } else if x.is_normal() {
            nnc::quant::policy::round_mantissa(x * 1.01, 12)
        } else {
            // NaN and subnormals (low bits set) become ±0.5.
            0.5f32.copysign(x)
        }
    });
    let (seventh, _) = nnc::encode_model(
        m7.clone(),
        None,
        &wide(&super::valid::lossless(), root.clone()),
        Vec::new(),
    )
    .map_err(|e| format!("encoding {INTEGER_DIFFERENCE}: {e}"))?;
    v.valid.push(valid_entry(
        out,
        INTEGER_DIFFERENCE,
        &seventh,
        &[ROOT],
        &m7,
        "An update (spec §14.7.1) of valid/dtype-float: `float.matrix` times 1.01 with each \
         normal value rounded to 12 mantissa bits (the largest finite values become \
         infinities), ±0 and ±∞ kept, NaNs and subnormals replaced by ±0.5; coded as a \
         difference (coding 5) with inner coding 3: shift 11 (the record's magnitudes end in \
         11 zero bits; the base's own low bits, a NaN's payload among them, are dropped from \
         its keys) and the differences of the values' ordered keys from the base's as a level \
         stream (+0 and −0 keep their keys 0 and −1). The two other tensors referenced. \
         Lossless.",
        &["§7.1", "§14", "§14.7", "§14.7.1"],
        Expect::IntegerDifference,
    )?);
    v.bytes += seventh.len() as u64;

    // 3. Invalid files.
    let mut bad = |name: &str,
                   expected: &'static str,
                   sections: &[&str],
                   from: &str,
                   bases: &[&str],
                   description: &str,
                   bytes: Vec<u8>|
     -> Result<(), String> {
        assert!(
            name.starts_with(expected),
            "{name} must be named for {expected}"
        );
        let file = format!("invalid/{name}.nnc");
        write(&out.join(&file), &bytes)?;
        let paths: Vec<_> = bases.iter().map(|n| out.join(file_of(n))).collect();
        let base = if bases.is_empty() {
            Ok(None)
        } else {
            BaseModel::open_chain(&paths, DecodeOptions::default()).map(Some)
        };
        let got = match base {
            Ok(b) => {
                nnc::decode_to_bytes_with_base(bytes.as_slice(), DecodeOptions::default(), b).err()
            }
            Err(e) => Some(e),
        };
        let class = got.as_ref().map(error_class);
        if class.as_deref() != Some(expected) {
            return Err(format!(
                "{file}: expected {expected}, the reference decoder gives {:?}",
                got.map(|e| e.to_string())
            ));
        }
        let mut entry = json!({
            "name": name,
            "file": file,
            "expected": expected,
            "decode": "model",
            "features": sorted_sections(sections.iter().map(|s| s.to_string())),
            "base": from,
            "description": description,
            "file_sha256": hex(&Sha256::digest(&bytes)),
        });
        if !bases.is_empty() {
            entry["base_files"] = json!(bases.iter().map(|n| file_of(n)).collect::<Vec<_>>());
        }
        v.invalid.push(entry);
        v.bytes += bytes.len() as u64;
        Ok(())
    };
    let f = NncFile::parse(&first);
    let base_rec = f.find(kind::BASE)[0];
    bad(
        "base-missing-no-base-given",
        "base-missing",
        &["§14.2"],
        FIRST,
        &[],
        "valid/update-reference decoded without a base: refused before the graph is read.",
        first.clone(),
    )?;
    bad(
        "base-mismatch-another-base",
        "base-mismatch",
        &["§14.1", "§14.2"],
        FIRST,
        &["dtype-int8"],
        "valid/update-reference decoded against valid/dtype-int8 instead of its base.",
        first.clone(),
    )?;
    bad(
        "base-mismatch-chain-root-for-second",
        "base-mismatch",
        &["§14.1", "§14.2"],
        SECOND,
        &[ROOT],
        "valid/update-chain decoded against the root of its chain instead of its own base (the \
         model valid/update-reference decodes to).",
        second.clone(),
    )?;
    bad(
        "base-missing-broken-chain",
        "base-missing",
        &["§14", "§14.2"],
        SECOND,
        &[FIRST],
        "valid/update-chain with a chain that lacks its root: its base, valid/update-reference, \
         is itself an update and cannot be decoded without its own base (the error comes from \
         opening the chain).",
        second.clone(),
    )?;
    let mut e = f.clone();
    e.recs[base_rec].payload[0] = 2;
    bad(
        "base-record-version-2",
        "base",
        &["§14.2"],
        FIRST,
        &[ROOT],
        "valid/update-reference with BASE version 2.",
        e.bytes(),
    )?;
    let mut e = f.clone();
    e.recs[base_rec].payload.pop();
    bad(
        "base-record-51-bytes",
        "base",
        &["§14.2"],
        FIRST,
        &[ROOT],
        "valid/update-reference with a BASE payload one byte short.",
        e.bytes(),
    )?;
    let mut e = f.clone();
    e.recs[base_rec].payload[2] = 1;
    bad(
        "reserved-nonzero-base-record",
        "reserved-nonzero",
        &["§14.2"],
        FIRST,
        &[ROOT],
        "valid/update-reference with a reserved BASE byte set.",
        e.bytes(),
    )?;
    let mut e = f.clone();
    let g = e.find(kind::GRAPH)[0];
    let moved = e.recs.remove(base_rec);
    e.recs.insert(g, moved);
    bad(
        "base-record-after-graph",
        "base",
        &["§4.3", "§5.1", "§14.2", "§14.4"],
        FIRST,
        &[ROOT],
        "valid/update-reference with its BASE record moved after the GRAPH record: the GRAPH \
         record comes first, and its compression 2 in a file with no BASE record before it is \
         the first rule broken (§5.1 step 2; the misplaced BASE would be `record-order`).",
        e.bytes(),
    )?;
    let mut e = f.clone();
    let dup = e.recs[base_rec].clone();
    e.recs.insert(base_rec, dup);
    bad(
        "record-order-two-base-records",
        "record-order",
        &["§4.3", "§14.2"],
        FIRST,
        &[ROOT],
        "valid/update-reference with its BASE record twice.",
        e.bytes(),
    )?;
    // References: tensor 0 ("float.scalar") refers to place 0.
    let scalar = f.tensor(0);
    assert_eq!(
        RawHeader::parse(&f.recs[scalar].header).coding,
        4,
        "float.scalar is a reference"
    );
    for (name, payload, description) in [
        (
            "base-reference-out-of-range",
            vec![3u8],
            "`float.scalar` refers to place 3; the base has 3 places.",
        ),
        (
            "base-reference-other-tensor",
            vec![1u8],
            "`float.scalar` refers to place 1, `float.vector`: another name and dims.",
        ),
        (
            "base-reference-trailing-bytes",
            vec![0u8, 0],
            "`float.scalar`'s reference payload has a byte after the varint.",
        ),
        (
            "base-reference-varint-cut-off",
            vec![0x80u8],
            "`float.scalar`'s reference payload is a varint cut off.",
        ),
    ] {
        let mut e = f.clone();
        e.recs[scalar].payload = payload;
        bad(
            name,
            "base",
            &["§14.3"],
            FIRST,
            &[ROOT],
            &format!("valid/update-reference: {description}"),
            e.bytes(),
        )?;
    }
    let d = NncFile::parse(&fourth);
    let dm = first_difference(&d)?;
    let mut e = d.clone();
    e.recs[dm].payload[0] = 0;
    bad(
        "base-difference-other-tensor",
        "base",
        &["§14.7"],
        DIFFERENCE,
        &[ROOT],
        "valid/update-difference: the difference names place 0 (`float.scalar`).",
        e.bytes(),
    )?;
    let mut e = d.clone();
    e.recs[dm].payload[1] = 4;
    bad(
        "payload-difference-inner-coding-4",
        "payload",
        &["§14.7"],
        DIFFERENCE,
        &[ROOT],
        "valid/update-difference: inner coding 4 (the quantized coding 3 and the reference \
         coding 4 are not inner codings; 3 is integer differences, §14.7.1).",
        e.bytes(),
    )?;
    let mut e = NncFile::parse(valid.get("spec-example").ok_or("no spec-example")?);
    let k = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[k].header);
    h.coding = 5;
    e.recs[k].header = h.bytes();
    bad(
        "base-difference-without-base-record",
        "base",
        &["§14.7"],
        "spec-example",
        &[],
        "valid/spec-example with tensor \"k\" of coding 5 (difference) and no BASE record.",
        e.bytes(),
    )?;
    let mut e = NncFile::parse(valid.get("dtype-string").ok_or("no dtype-string")?);
    let k = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[k].header);
    h.coding = 5;
    e.recs[k].header = h.bytes();
    bad(
        "tensor-header-difference-string",
        "tensor-header",
        &["§14.7"],
        "dtype-string",
        &[],
        "valid/dtype-string with its first tensor of coding 5: no differences of STRING data.",
        e.bytes(),
    )?;
    // Residual levels (spec §14.6).
    let r = NncFile::parse(&third);
    let rw = r.tensor(0);
    let mut e = r.clone();
    e.recs[rw].payload[0] = 1;
    bad(
        "base-residual-other-tensor",
        "base",
        &["§14.6"],
        RESIDUAL,
        &[QUANT],
        "valid/update-residual: the residual levels name place 1; the base has one place.",
        e.bytes(),
    )?;
    let mut e = NncFile::parse(valid.get(QUANT).ok_or("no quant-midtread")?);
    let w = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[w].header);
    h.params[1] |= 2;
    e.recs[w].header = h.bytes();
    bad(
        "base-residual-without-base-record",
        "base",
        &["§7.6.2", "§14.6"],
        QUANT,
        &[],
        "valid/quant-midtread with quantizer flag bit 1 (residual levels) and no BASE record.",
        e.bytes(),
    )?;
    // Low-rank terms (spec §14.6.1).
    let mut e = NncFile::parse(valid.get(QUANT).ok_or("no quant-midtread")?);
    let w = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[w].header);
    h.params[1] |= 4;
    e.recs[w].header = h.bytes();
    bad(
        "reserved-nonzero-low-rank-without-residual",
        "reserved-nonzero",
        &["§7.6.2", "§14.6.1"],
        QUANT,
        &[],
        "valid/quant-midtread with quantizer flag bit 2 (a low-rank term) without bit 1.",
        e.bytes(),
    )?;
    let l = NncFile::parse(&fifth);
    let lw = l.tensor(0);
    // The payload: place number 0 (one byte), 64 step differences (varints, flag bit 3), the
    // rank (one byte), 2·rank f32 steps, then the factor levels and the residuals; the
    // residuals must be in context classes (mode 5).
    let rank_at = 1 + varints_len(&l.recs[lw].payload[1..], 64);
    let rank = l.recs[lw].payload[rank_at] as usize;
    let header = nnc::container::tensor_header::TensorHeader::parse(
        &l.recs[lw].header,
        0,
        &Limits::default(),
    )
    .map_err(|e| format!("{LOW_RANK}: {e}"))?;
    let mode = nnc::quant::residual::stream_mode(
        &header,
        &l.recs[lw].payload,
        Some(chain(out, &[LARGE])?.as_ref()),
    )
    .map_err(|e| format!("{LOW_RANK}: {e}"))?;
    let flags = RawHeader::parse(&l.recs[lw].header).params[1];
    if l.recs[lw].payload[0] != 0 || !(1..=32).contains(&rank) || mode != 5 || flags & 14 != 14 {
        return Err(format!(
            "{LOW_RANK}: place {}, rank {rank}, residual stream mode {mode}, flags {flags} (want \
             place 0, a one-byte rank, mode 5, flag bits 1 to 3)",
            l.recs[lw].payload[0]
        ));
    }
    for (name, what, edit) in [
        (
            "payload-low-rank-rank-0",
            "valid/update-low-rank with the low-rank term's rank set to 0.".to_string(),
            (rank_at, vec![0u8]),
        ),
        (
            "payload-low-rank-rank-above-view",
            "valid/update-low-rank with the rank set to 65: the 64 x 128 view has rank at \
             most 64."
                .to_string(),
            (rank_at, vec![65]),
        ),
        (
            "payload-low-rank-step-nan",
            "valid/update-low-rank with the step of U's first column set to NaN.".to_string(),
            (rank_at + 1, f32::NAN.to_le_bytes().to_vec()),
        ),
        (
            "payload-low-rank-factor-infinite",
            "valid/update-low-rank with the step of U's first column set to 3e38: a factor \
             value (level times step, rounded to binary32) overflows to infinity."
                .to_string(),
            (rank_at + 1, 3.0e38f32.to_le_bytes().to_vec()),
        ),
    ] {
        let mut e = l.clone();
        let (at, bytes) = edit;
        e.recs[lw].payload[at..at + bytes.len()].copy_from_slice(&bytes);
        bad(
            name,
            "payload",
            &["§14.6", "§14.6.1"],
            LOW_RANK,
            &[LARGE],
            &what,
            e.bytes(),
        )?;
    }
    // Steps from the base (spec §14.6.2).
    let b = NncFile::parse(&encoded);
    let bw = b.tensor(0);
    let place_len = varints_len(&b.recs[bw].payload, 1);
    let mut e = b.clone();
    let rest = e.recs[bw].payload.split_off(place_len);
    e.recs[bw]
        .payload
        .extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    e.recs[bw]
        .payload
        .extend_from_slice(&rest[varints_len(&rest, 1)..]);
    bad(
        "payload-base-steps-negative",
        "payload",
        &["§14.6.2"],
        BASE_STEPS,
        &[QUANT],
        "valid/update-residual-base-steps with the step difference set to -2^31: the step's \
         bits would be negative.",
        e.bytes(),
    )?;
    let mut e = b.clone();
    e.recs[bw].payload.truncate(place_len);
    bad(
        "payload-base-steps-cut-off",
        "payload",
        &["§14.6.2"],
        BASE_STEPS,
        &[QUANT],
        "valid/update-residual-base-steps cut after the place number: the step difference is \
         missing.",
        e.bytes(),
    )?;
    let mut e = NncFile::parse(&third);
    let w = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[w].header);
    h.params[1] |= 8;
    e.recs[w].header = h.bytes();
    bad(
        "tensor-header-base-steps-with-step-values",
        "tensor-header",
        &["§7.6.2", "§14.6.2"],
        RESIDUAL,
        &[QUANT],
        "valid/update-residual with quantizer flag bit 3 set while the params still hold the \
         step: bytes after the step count.",
        e.bytes(),
    )?;
    let mut e = NncFile::parse(valid.get(QUANT).ok_or("no quant-midtread")?);
    let w = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[w].header);
    h.params[1] |= 8;
    e.recs[w].header = h.bytes();
    bad(
        "reserved-nonzero-base-steps-without-residual",
        "reserved-nonzero",
        &["§7.6.2", "§14.6.2"],
        QUANT,
        &[],
        "valid/quant-midtread with quantizer flag bit 3 (steps from the base) without bit 1.",
        e.bytes(),
    )?;
    // Coded steps (spec §14.6.2, flag bit 4).
    let mut e = NncFile::parse(&third);
    let w = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[w].header);
    h.params[1] |= 16;
    e.recs[w].header = h.bytes();
    bad(
        "reserved-nonzero-coded-steps-without-base-steps",
        "reserved-nonzero",
        &["§7.6.2", "§14.6.2"],
        RESIDUAL,
        &[QUANT],
        "valid/update-residual (flag bit 1, the step in the params) with quantizer flag bit 4 \
         (coded steps) set without bit 3.",
        e.bytes(),
    )?;
    // The same update with the steps as plain varints (the earlier options): its varints are
    // the bytes the coded steps code; the invalid files code them (edited) in a stored stream.
    let (plain, _) = nnc::encode_model(
        m6.clone(),
        None,
        &lopts_of(&lcase.opts, chain(out, &[LARGE])?),
        Vec::new(),
    )
    .map_err(|e| format!("encoding {CODED_STEPS} with plain steps: {e}"))?;
    let c = NncFile::parse(&plain);
    let cw = c.tensor(0);
    if RawHeader::parse(&c.recs[cw].header).params[1] & 0x1a != 0x0a {
        return Err(format!(
            "{CODED_STEPS}: the plain encode has no steps from the base"
        ));
    }
    let cp = &c.recs[cw].payload;
    let place_len = varints_len(cp, 1);
    let varints = cp[place_len..place_len + varints_len(&cp[place_len..], 64)].to_vec();
    let stored = |bytes: &[u8], count: usize| -> Vec<u8> {
        let mut v = Vec::new();
        nnc::bytes::put_varint(&mut v, count as u64);
        v.push(0);
        v.extend_from_slice(bytes);
        v
    };
    let n = varints.len();
    let mut left = varints.clone();
    left.push(0);
    let negative: Vec<u8> = [0xff, 0xff, 0xff, 0xff, 0x0f].repeat(64);
    for (name, what, steps) in [
        (
            "payload-coded-steps-count-too-large",
            format!(
                "valid/update-residual-coded-steps with its steps' {n} varint bytes coded in a \
                 stored stream whose byte count is 641: above 10 per step (64 steps)."
            ),
            {
                let mut v = stored(&varints, 641);
                v.extend(std::iter::repeat_n(0u8, 641 - n));
                v
            },
        ),
        (
            "payload-coded-steps-cut-off",
            format!(
                "valid/update-residual-coded-steps with its steps' varint bytes but the last \
                 coded in a stored stream of {}: the 64th step's varint runs past them.",
                n - 1
            ),
            stored(&varints[..n - 1], n - 1),
        ),
        (
            "payload-coded-steps-bytes-left",
            format!(
                "valid/update-residual-coded-steps with its steps' {n} varint bytes and a byte 0 \
                 coded in a stored stream of {}: a byte is left after the 64 steps.",
                n + 1
            ),
            stored(&left, n + 1),
        ),
        (
            "payload-coded-steps-negative",
            "valid/update-residual-coded-steps whose coded bytes (a stored stream of 320) are \
             64 times the varint FF FF FF FF 0F: the first step's difference is -2^31, its \
             bits negative."
                .to_string(),
            stored(&negative, negative.len()),
        ),
    ] {
        let mut e = c.clone();
        let mut h = RawHeader::parse(&e.recs[cw].header);
        h.params[1] |= 16;
        e.recs[cw].header = h.bytes();
        let rest = e.recs[cw].payload.split_off(place_len);
        e.recs[cw].payload.extend_from_slice(&steps);
        e.recs[cw].payload.extend_from_slice(&rest[n..]);
        bad(
            name,
            "payload",
            &["§14.6.2"],
            CODED_STEPS,
            &[LARGE],
            &what,
            e.bytes(),
        )?;
    }
    // Integer differences (spec §14.7.1).
    let d = NncFile::parse(&seventh);
    let dw = first_difference(&d)?;
    let inner_at = varints_len(&d.recs[dw].payload, 1);
    if d.recs[dw].payload[inner_at..inner_at + 2] != [3, 11] {
        return Err(format!(
            "{INTEGER_DIFFERENCE}: not inner coding 3 with shift 11"
        ));
    }
    let mut huge = vec![3, 11, 4, 1];
    nnc::bytes::put_varint(&mut huge, 2 * ((1 << 30) - 1));
    for (name, what, edit) in [
        (
            "payload-integer-difference-shift",
            "valid/update-integer-difference with the shift set to 31: above 30, the most for \
             32-bit values.",
            vec![3, 31],
        ),
        (
            "payload-integer-difference-key",
            "valid/update-integer-difference with its stream replaced by a constant one \
             (width 4) of difference 2^30 - 1: with shift 11 a key must stay within ±2^20.",
            huge,
        ),
    ] {
        let mut e = d.clone();
        let p = &mut e.recs[dw].payload;
        if edit.len() > 2 {
            // The whole body after the place number replaced.
            p.truncate(inner_at);
            p.extend_from_slice(&edit);
        } else {
            p[inner_at..inner_at + edit.len()].copy_from_slice(&edit);
        }
        bad(
            name,
            "payload",
            &["§14.7", "§14.7.1"],
            INTEGER_DIFFERENCE,
            &[ROOT],
            what,
            e.bytes(),
        )?;
    }

    let mut e = NncFile::parse(valid.get("quant-midrise").ok_or("no quant-midrise")?);
    let w = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[w].header);
    h.params[1] |= 2;
    e.recs[w].header = h.bytes();
    bad(
        "tensor-header-residual-midrise",
        "tensor-header",
        &["§14.6"],
        "quant-midrise",
        &[],
        "valid/quant-midrise with quantizer flag bit 1: residual levels are defined for \
         midtread and dead zone only (checked before the BASE record is looked for).",
        e.bytes(),
    )?;
    let mut e = f.clone();
    let mut h = RawHeader::parse(&e.recs[scalar].header);
    h.params = vec![0];
    e.recs[scalar].header = h.bytes();
    bad(
        "tensor-header-reference-params",
        "tensor-header",
        &["§6.3", "§14.3"],
        FIRST,
        &[ROOT],
        "valid/update-reference: `float.scalar`'s reference has one parameter byte.",
        e.bytes(),
    )?;
    // The features of an update in a file that is not one.
    let ex = NncFile::parse(valid.get("spec-example").ok_or("no spec-example")?);
    let mut e = ex.clone();
    let g = e.find(kind::GRAPH)[0];
    e.recs[g].header[0] = 2;
    bad(
        "base-graph-compression-2-without-base-record",
        "base",
        &["§5.1", "§14.4"],
        "spec-example",
        &[],
        "valid/spec-example with GRAPH compression 2 and no BASE record.",
        e.bytes(),
    )?;
    let mut e = ex.clone();
    let k = e.tensor(0);
    let mut h = RawHeader::parse(&e.recs[k].header);
    h.coding = 4;
    e.recs[k].header = h.bytes();
    bad(
        "base-reference-without-base-record",
        "base",
        &["§14.3"],
        "spec-example",
        &[],
        "valid/spec-example with tensor \"k\" of coding 4 (reference) and no BASE record.",
        e.bytes(),
    )?;
    Ok(v)
}

/// Bytes of the first `n` varints of `b`.
fn varints_len(b: &[u8], n: usize) -> usize {
    let mut at = 0;
    for _ in 0..n {
        while b[at] & 0x80 != 0 {
            at += 1;
        }
        at += 1;
    }
    at
}

/// `file` (an update with one residual record whose steps are coded against the base, flag
/// bit 3) with the steps moved back into the params: the plain residual record of §14.6.
fn without_base_steps(file: &[u8], base: &std::sync::Arc<BaseModel>) -> Result<Vec<u8>, String> {
    let mut f = NncFile::parse(file);
    let w = f.tensor(0);
    let header = nnc::container::tensor_header::TensorHeader::parse(
        &f.recs[w].header,
        0,
        &Limits::default(),
    )
    .map_err(|e| e.to_string())?;
    if header.params.get(1) != Some(&(2 | 8)) {
        return Err(format!(
            "flags {:?}, want 10 (residual, base steps)",
            header.params.get(1)
        ));
    }
    let (params, _) = nnc::quant::residual::symbols(&header, &f.recs[w].payload, Some(base))
        .map_err(|e| e.to_string())?;
    let mut h = RawHeader::parse(&f.recs[w].header);
    h.params[1] &= !8;
    for s in &params.steps {
        h.params.extend_from_slice(&s.to_le_bytes());
    }
    f.recs[w].header = h.bytes();
    let p = &f.recs[w].payload;
    let place = varints_len(p, 1);
    let steps = varints_len(&p[place..], params.steps.len());
    let mut payload = p[..place].to_vec();
    payload.extend_from_slice(&p[place + steps..]);
    f.recs[w].payload = payload;
    Ok(f.bytes())
}

/// What an update vector must show.
#[derive(PartialEq)]
enum Expect {
    /// References; lossless (the decoded model is the input).
    Reference,
    /// Residual levels (lossy).
    Residual,
    /// A difference (lossless).
    Difference,
    /// Residual levels with a low-rank term (lossy).
    LowRank,
    /// Residual levels with coded steps (lossy).
    CodedSteps,
    /// A difference with integer differences (lossless).
    IntegerDifference,
}

#[allow(clippy::too_many_arguments)]
fn valid_entry(
    out: &Path,
    name: &str,
    bytes: &[u8],
    bases: &[&str],
    model: &ModelProto,
    description: &str,
    sections: &[&str],
    expect: Expect,
) -> Result<Value, String> {
    let file = file_of(name);
    write(&out.join(&file), bytes)?;
    let base = chain(out, bases)?;
    // Lossless: the decoded model is the input.
    if !matches!(
        expect,
        Expect::Residual | Expect::LowRank | Expect::CodedSteps
    ) && decode(bytes, base.clone())?.encode_to_vec() != model.encode_to_vec()
    {
        return Err(format!("{file}: the decoded model differs from the input"));
    }
    let f = NncFile::parse(bytes);
    let headers: Vec<RawHeader> = f
        .find(kind::TENSOR)
        .iter()
        .map(|&i| RawHeader::parse(&f.recs[i].header))
        .collect();
    let codings: Vec<u8> = headers.iter().map(|h| h.coding).collect();
    let residual = headers
        .iter()
        .any(|h| h.coding == 3 && h.params.get(1).is_some_and(|f| f & 2 != 0));
    let low_rank = headers
        .iter()
        .any(|h| h.coding == 3 && h.params.get(1).is_some_and(|f| f & 6 == 6));
    let coded_steps = headers
        .iter()
        .any(|h| h.coding == 3 && h.params.get(1).is_some_and(|f| f & 0x1a == 0x1a));
    // A difference record whose inner coding (after the place number) is 3.
    let integer = f.find(kind::TENSOR).iter().any(|&i| {
        let p = &f.recs[i].payload;
        RawHeader::parse(&f.recs[i].header).coding == 5 && p.get(varints_len(p, 1)) == Some(&3)
    });
    let shows = match expect {
        Expect::Reference => codings.contains(&4),
        Expect::Residual => residual,
        Expect::Difference => codings.contains(&5),
        Expect::LowRank => low_rank,
        Expect::CodedSteps => coded_steps,
        Expect::IntegerDifference => integer,
    };
    if !shows || f.recs[f.find(kind::GRAPH)[0]].header[0] != 2 {
        return Err(format!(
            "{file}: no {} or no graph against the base",
            if residual {
                "reference"
            } else {
                "residual levels"
            }
        ));
    }
    let decoded = decoded_json(bytes, Limits::default(), Some(base.clone()))
        .map_err(|e| format!("{file}: {e}"))?;
    let mut facts = vec!["update".to_string(), "graph-compression:2".into()];
    if codings.contains(&4) {
        facts.push("coding:reference".into());
    }
    if residual {
        facts.push("residual-levels".into());
    }
    if low_rank {
        facts.push("low-rank-term".into());
    }
    if codings.contains(&5) {
        facts.push("coding:difference".into());
    }
    if coded_steps {
        facts.push("coded-steps".into());
    }
    if integer {
        facts.push("integer-differences".into());
    }
    facts.push(format!("tensors:{}", codings.len()));
    let mut entry = json!({
        "name": name,
        "file": file,
        "description": description,
        "features": sorted_sections(sections.iter().map(|s| s.to_string()).chain(["§6.1".to_string()])),
        "facts": facts,
        "base_files": bases.iter().map(|n| file_of(n)).collect::<Vec<_>>(),
        "base_identity": base.identity_hex(),
        "file_sha256": hex(&Sha256::digest(bytes)),
        "file_bytes": bytes.len(),
    });
    merge(&mut entry, decoded);
    Ok(entry)
}

/// The record of the first DIFFERENCE tensor (coding 5) of `d`.
fn first_difference(d: &NncFile) -> Result<usize, String> {
    (0..d.find(kind::TENSOR).len())
        .map(|i| d.tensor(i))
        .find(|&i| RawHeader::parse(&d.recs[i].header).coding == 5)
        .ok_or_else(|| "no difference record".to_string())
}
