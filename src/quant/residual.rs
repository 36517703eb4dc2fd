//! Residual levels (spec §14.6): in an update, a quantized tensor's levels may be coded as
//! their differences from levels predicted from the base's tensor of the same name, type and
//! shape. The prediction of element `j` is the base's value divided by the step of `j`'s
//! channel, rounded half to even (in f64), clamped to the level range; a base value that is
//! not finite predicts 0. Encoder and decoder compute it the same way, so `q = p + r` gives the
//! levels a full encode codes, and the decoded tensor is the same.
use crate::base::BaseModel;
use crate::bytes::Cursor;
use crate::container::tensor_header::TensorHeader;
use crate::error::{Error, FormatRule, Result};
use crate::onnx::dtype;

use super::{float, reconstruct, unzigzag, Kind, QuantParams, MAX_LEVEL};

/// Quantizer flag bit 1 (spec §7.6.2, §14.6): the level stream holds residuals.
pub const FLAG_RESIDUAL: u8 = 2;

/// Whether residual levels may be used with this quantizer kind (the uniform kinds with a zero
/// level: midtread and dead zone).
pub fn kind_allows(kind: &Kind) -> bool {
    matches!(kind, Kind::Midtread | Kind::DeadZone { .. })
}

/// The base value of element `i` of canonical bytes `data` of a float type, as f64.
fn value(data_type: i32, data: &[u8], i: usize) -> f64 {
    match data_type {
        dtype::DOUBLE => f64::from_le_bytes(data[8 * i..8 * i + 8].try_into().unwrap_or([0; 8])),
        dtype::FLOAT16 => float::f16_to_f32(u16::from_le_bytes([data[2 * i], data[2 * i + 1]])) as f64,
        dtype::BFLOAT16 => {
            float::bf16_to_f32(u16::from_le_bytes([data[2 * i], data[2 * i + 1]])) as f64
        }
        _ => f32::from_le_bytes(data[4 * i..4 * i + 4].try_into().unwrap_or([0; 4])) as f64,
    }
}

/// The predicted level of element `i` (spec §14.6).
pub fn predict(data_type: i32, base: &[u8], steps: &[f32], per: usize, i: usize) -> i64 {
    let x = value(data_type, base, i);
    let step = steps[(i / per.max(1)).min(steps.len() - 1)] as f64;
    let p = x / step;
    if p.is_finite() {
        p.round_ties_even().clamp(-(MAX_LEVEL as f64), MAX_LEVEL as f64) as i64
    } else {
        0
    }
}

/// Elements per step of a tensor of `n` elements.
pub fn per(n: usize, params: &QuantParams) -> usize {
    (n / params.steps.len().max(1)).max(1)
}

/// Decodes a coding-3 payload whose params have the residual flag (spec §14.6).
pub fn decode(
    h: &TensorHeader,
    payload: &[u8],
    at: u64,
    parallel: bool,
    model: Option<&BaseModel>,
) -> Result<Vec<u8>> {
    let mut params_bytes = h.params.clone();
    params_bytes[1] &= !FLAG_RESIDUAL;
    let params = QuantParams::parse(&params_bytes, at, &h.dims)?;
    if !dtype::is_float(h.data_type) {
        return Err(Error::format(
            FormatRule::TensorHeader,
            at,
            format!("quantized coding of a {} tensor", dtype::name(h.data_type)),
        ));
    }
    if !kind_allows(&params.kind) {
        return Err(Error::format(
            FormatRule::TensorHeader,
            at,
            "residual levels with a quantizer other than midtread or dead zone",
        ));
    }
    let model = crate::base::required(model, "residual levels", at)?;
    let n = usize::try_from(h.elements)
        .map_err(|_| Error::format(FormatRule::TensorHeader, at, "too many elements"))?;
    let mut c = Cursor::new(payload, at, FormatRule::Base);
    let place_at = c.offset();
    let i = c.varint("base tensor number")?;
    let place = crate::decoder::base_place(model, i, h, place_at)?;
    let mut c = Cursor::new(&payload[(c.offset() - at) as usize..], c.offset(), FormatRule::Payload);
    let width_at = c.offset();
    let width = c.u8("symbol width")? as usize;
    if !matches!(width, 1 | 2 | 4) {
        return Err(Error::format(
            FormatRule::Payload,
            width_at,
            format!("symbol width {width}"),
        ));
    }
    let mut syms = crate::error::try_zeroed::<u32>(n, at)?;
    crate::entropy::decode_stream(
        &mut c,
        width,
        2 * MAX_LEVEL as u64 + 1,
        |s| s,
        &mut syms,
        parallel,
    )?;
    let w = dtype::unit_bytes(h.data_type);
    let mut out = crate::error::try_zeroed(n * w, at)?;
    let per = per(n, &params);
    for (j, (o, &s)) in out.chunks_exact_mut(w).zip(&syms).enumerate() {
        let q = predict(h.data_type, &place.data, &params.steps, per, j) + unzigzag(s);
        if q.abs() > MAX_LEVEL {
            return Err(Error::format(
                FormatRule::Payload,
                width_at,
                format!("element {j}: predicted level plus residual {q} is out of range"),
            ));
        }
        let v = reconstruct(&params.kind, q, params.steps[(j / per).min(params.steps.len() - 1)]);
        super::put_value(h.data_type, o, v);
    }
    if !c.is_empty() {
        return Err(c.err(format!("{} bytes after the level stream", c.remaining())));
    }
    Ok(out)
}

/// The residual payload of `levels` against the base's tensor `i` (varint `i`, then the level
/// stream of the residuals), for an encoder; `None` when the prediction cannot be used.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    model: &BaseModel,
    i: u32,
    data_type: i32,
    levels: &[i64],
    params: &QuantParams,
    chunk: usize,
    segment: usize,
    wide: bool,
) -> Result<Option<Vec<u8>>> {
    let place = &model.places()[i as usize];
    if !kind_allows(&params.kind) || place.data.len() != levels.len() * dtype::unit_bytes(data_type)
    {
        return Ok(None);
    }
    let per = per(levels.len(), params);
    let r: Vec<i64> = levels
        .iter()
        .enumerate()
        .map(|(j, &q)| q - predict(data_type, &place.data, &params.steps, per, j))
        .collect();
    if r.iter().any(|v| v.abs() > MAX_LEVEL) {
        return Ok(None);
    }
    let mut out = Vec::new();
    crate::bytes::put_varint(&mut out, i as u64);
    out.extend(super::encode_payload_with(&r, params, chunk, segment, wide)?);
    Ok(Some(out))
}
