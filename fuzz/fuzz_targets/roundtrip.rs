//! Structured round trip: an arbitrary model and arbitrary encoder settings (see
//! `nnc_fuzz::arb_model`) → encode → decode.
//!
//! - Encoding may fail only with `Error::Unsupported` (a valid request this version cannot
//!   carry out; the entropy coder reports its own failures so) or `Error::Input` (a model
//!   the encoder refuses, e.g. dims whose product overflows), or `Error::Limit` (a file the
//!   decoder's default limits would refuse, e.g. zeros beyond the expansion rule: the encoder
//!   writes only what decodes). The generated models are valid and need no files, so in
//!   practice the first two do not occur. Any other error (a `Format` error from
//!   the encoder's own decode of a quantized tensor, an I/O error) is a bug.
//! - Encoding is deterministic: the same model and settings give the same bytes twice.
//! - The file decodes, and the report lists one tensor per slot of the walk.
//! - Lossless: the decoded model is bit-identical (serialized bytes) to the original.
//! - Lossy: the model without tensor data is identical; every slot the report does not mark
//!   as changed is bit-identical; `fine_bits` slots hold exactly the mantissa-rounded
//!   values; quantized slots keep their type and element count, hold finite values, and for
//!   the uniform quantizers with a fixed or σ-derived step lie within the quantizer's error
//!   bound (Δ, or 3Δ with RDO, plus the rounding of the element type).
#![no_main]
use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use nnc::container::tensor_header::Coding;
use nnc::encoder::{float_values, EncodeReport};
use nnc::onnx::dtype;
use nnc::onnx::proto::{ModelProto, TensorProto};
use nnc::onnx::walk::{walk, SlotMut};
use nnc::quant::float::{bf16_to_f32, f16_to_f32};
use nnc::quant::policy::{round_mantissa, LossyOptions, StepRule};
use nnc::quant::{Kind, MAX_LEVEL};
use nnc::{DecodeOptions, EncodeOptions, Error};
use prost::Message;

/// One slot of the walk: name, serialized content, float values (if a float slot), data type.
struct Slot {
    name: String,
    bytes: Vec<u8>,
    values: Option<Vec<f64>>,
    data_type: i32,
}

fn tensor_values(t: &TensorProto) -> Option<Vec<f64>> {
    let dt = t.data_type.unwrap_or(0);
    if let Some(raw) = &t.raw_data {
        return float_values(dt, raw);
    }
    Some(match dt {
        dtype::FLOAT => t.float_data.iter().map(|&x| x as f64).collect(),
        dtype::DOUBLE => t.double_data.clone(),
        dtype::FLOAT16 => t
            .int32_data
            .iter()
            .map(|&h| f16_to_f32(h as u16) as f64)
            .collect(),
        dtype::BFLOAT16 => t
            .int32_data
            .iter()
            .map(|&h| bf16_to_f32(h as u16) as f64)
            .collect(),
        _ => return None,
    })
}

fn slots(m: &ModelProto) -> Vec<Slot> {
    let mut m = m.clone();
    let mut out = Vec::new();
    walk(&mut m, 64, &mut |name, slot| {
        out.push(match slot {
            SlotMut::Tensor(t) => Slot {
                name: name.to_string(),
                bytes: t.encode_to_vec(),
                values: tensor_values(t),
                data_type: t.data_type.unwrap_or(0),
            },
            SlotMut::Floats(v) => Slot {
                name: name.to_string(),
                bytes: v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                values: Some(v.iter().map(|&x| x as f64).collect()),
                data_type: dtype::FLOAT,
            },
            SlotMut::Ints(v) => Slot {
                name: name.to_string(),
                bytes: v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                values: None,
                data_type: dtype::INT64,
            },
        });
        Ok(())
    })
    .expect("walk of a model the encoder accepted");
    out
}

/// The model with every tensor's data removed (what lossy coding must leave unchanged).
fn without_data(m: &ModelProto) -> Vec<u8> {
    let mut m = m.clone();
    walk(&mut m, 64, &mut |_, slot| {
        match slot {
            SlotMut::Tensor(t) => {
                t.raw_data = t.raw_data.as_ref().map(|_| Vec::new());
                t.float_data.clear();
                t.double_data.clear();
                t.int32_data.clear();
                t.int64_data.clear();
                t.uint64_data.clear();
                t.string_data.clear();
            }
            SlotMut::Floats(v) => v.clear(),
            SlotMut::Ints(v) => v.clear(),
        }
        Ok(())
    })
    .expect("walk");
    m.encode_to_vec()
}

/// Relative rounding of the element type when the decoder stores a reconstruction.
fn type_rounding(dt: i32) -> f64 {
    match dt {
        dtype::FLOAT16 => 2f64.powi(-11),
        dtype::BFLOAT16 => 2f64.powi(-8),
        dtype::FLOAT => 2f64.powi(-24),
        _ => 0.0,
    }
}

/// Smallest positive subnormal of the element type (absolute rounding near zero).
fn type_tiny(dt: i32) -> f64 {
    match dt {
        dtype::FLOAT16 => 2f64.powi(-24),
        dtype::BFLOAT16 => 2f64.powi(-133),
        dtype::FLOAT => 2f64.powi(-149),
        _ => 0.0,
    }
}

fn check_quantized(i: usize, a: &Slot, b: &Slot, report: &EncodeReport, lossy: &LossyOptions) {
    let t = &report.tensors[i];
    let (Some(x), Some(y)) = (&a.values, &b.values) else {
        panic!("quantized slot {i} {:?} is not a float slot", a.name);
    };
    assert_eq!(
        x.len(),
        y.len(),
        "quantized slot {i} {:?}: element count",
        a.name
    );
    if let Some(k) = y.iter().position(|v| !v.is_finite()) {
        panic!(
            "quantized slot {i} {:?} ({}): element {k} reconstructs to {} from the finite {} \
             ({:?}, {:?})",
            a.name,
            dtype::name(a.data_type),
            y[k],
            x[k],
            lossy.family,
            t.quant.as_ref().map(|q| &q.params)
        );
    }
    let Some(q) = &t.quant else { return };
    let uniform = matches!(
        q.params.kind,
        Kind::Midtread | Kind::Midrise | Kind::DeadZone { .. }
    );
    if !uniform || matches!(lossy.step, StepRule::Thesis { .. }) || q.params.steps.is_empty() {
        return;
    }
    let per = (x.len() / q.params.steps.len()).max(1);
    let k = if lossy.rdo > 0.0 { 3.0 } else { 1.0 };
    for (j, (&xv, &yv)) in x.iter().zip(y).enumerate() {
        let step = q.params.steps[(j / per).min(q.params.steps.len() - 1)] as f64;
        if xv.abs() / step >= (MAX_LEVEL - 4) as f64 {
            continue; // clamped to the largest level
        }
        let bound = k * step * (1.0 + 1e-9)
            + yv.abs() * type_rounding(a.data_type) * 2.0
            + type_tiny(a.data_type);
        assert!(
            (xv - yv).abs() <= bound,
            "quantized slot {i} {:?} ({}): element {j}: {xv} reconstructs to {yv}, error \
             above {bound} (step {step}, {:?})",
            a.name,
            dtype::name(a.data_type),
            q.params.kind
        );
    }
}

fn encode(model: &ModelProto, opts: &EncodeOptions) -> Option<(Vec<u8>, EncodeReport)> {
    match nnc::encode_model(model.clone(), None, opts, Vec::new()) {
        Ok(r) => Some(r),
        Err(Error::Unsupported { .. } | Error::Input { .. } | Error::Limit { .. }) => None,
        Err(e) => panic!("encoding failed: {e} ({opts:?})"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(case) = nnc_fuzz::arb_model::case(&mut u) else {
        return;
    };
    let Some((file, report)) = encode(&case.model, &case.opts) else {
        return;
    };
    let (again, _) = encode(&case.model, &case.opts).expect("second encoding failed");
    assert!(file == again, "encoding twice gave different bytes");
    let onnx = nnc::decode_to_bytes(file.as_slice(), DecodeOptions::default())
        .unwrap_or_else(|e| panic!("decoding what the encoder wrote failed: {e}"));
    let decoded = ModelProto::decode(onnx.as_slice()).expect("decoded bytes parse");
    let (a, b) = (slots(&case.model), slots(&decoded));
    assert_eq!(a.len(), b.len(), "slot count");
    assert_eq!(
        report.tensors.len(),
        a.len(),
        "report lists one tensor per slot"
    );
    let Some(lossy) = &case.opts.lossy else {
        assert!(
            decoded.encode_to_vec() == case.model.encode_to_vec(),
            "lossless round trip changed the model (first differing slot: {:?})",
            a.iter()
                .zip(&b)
                .position(|(x, y)| x.bytes != y.bytes)
                .map(|i| &a[i].name)
        );
        return;
    };
    assert!(
        without_data(&decoded) == without_data(&case.model),
        "lossy round trip changed the graph"
    );
    for (i, ((x, y), t)) in a.iter().zip(&b).zip(&report.tensors).enumerate() {
        match (&t.quant, t.coding) {
            (None, _) => assert!(
                x.bytes == y.bytes,
                "slot {i} {:?} ({}) not quantized but changed",
                x.name,
                dtype::name(x.data_type)
            ),
            (Some(_), Coding::Quantized) => check_quantized(i, x, y, &report, lossy),
            (Some(_), _) => {
                // fine_bits: mantissas rounded, then coded losslessly.
                let bits = lossy
                    .fine_bits
                    .expect("changed lossless slot without fine_bits");
                let (Some(xv), Some(yv)) = (&x.values, &y.values) else {
                    panic!("fine_bits slot {i} {:?} is not a float slot", x.name);
                };
                assert_eq!(x.data_type, dtype::FLOAT);
                assert_eq!(xv.len(), yv.len());
                for (j, (&p, &q)) in xv.iter().zip(yv).enumerate() {
                    let want = round_mantissa(p as f32, bits);
                    assert!(
                        want.to_bits() == (q as f32).to_bits(),
                        "fine_bits slot {i} {:?} element {j}: {p} → {q}, want {want}",
                        x.name
                    );
                }
            }
        }
    }
});
