//! Residual levels (spec §14.6): in an update, a quantized tensor's levels may be coded as
//! their differences from levels predicted from the base's tensor of the same name, type and
//! shape. The prediction of element `j` is the base's value divided by the step of `j`'s
//! channel, rounded half to even (in f64), clamped to the level range; a base value that is
//! not finite predicts 0. Encoder and decoder compute it the same way, so `q = p + r` gives the
//! levels a full encode codes, and the decoded tensor is the same.
//!
//! With quantizer flag bit 2 the record also carries a low-rank term `U·V` (bfloat16 factors
//! of the tensor's 2-D view, rows along axis 0) that is added to the base's values before
//! they are divided by the step: a fine-tune's change of a weight matrix is often close to
//! low rank (a LoRA adapter merged into its base is exactly so), and the residuals against the
//! moved base are then mostly zero.
use crate::base::BaseModel;
use crate::bytes::Cursor;
use crate::container::tensor_header::TensorHeader;
use crate::error::{Error, FormatRule, Result};
use crate::onnx::dtype;

use super::{float, reconstruct, unzigzag, Kind, QuantParams, MAX_LEVEL};

/// Quantizer flag bit 1 (spec §7.6.2, §14.6): the level stream holds residuals.
pub const FLAG_RESIDUAL: u8 = 2;

/// Quantizer flag bit 2 (spec §14.6), only with bit 1: a low-rank term is added to the base.
pub const FLAG_LOW_RANK: u8 = 4;

/// Quantizer flag bit 3 (spec §14.6.2), only with bit 1: the params end after the step count;
/// the payload codes each step as a difference from one predicted from the base's values.
pub const FLAG_BASE_STEPS: u8 = 8;

/// Quantizer flag bit 4 (spec §14.6.2), only with bit 3: the steps' varints are entropy coded
/// (their byte count, then a symbol stream of those bytes).
pub const FLAG_CODED_STEPS: u8 = 16;

/// The update flags of a quantizer's params (spec §7.6.2): each counts only with the one it
/// needs (low-rank and base steps with residual, coded steps with base steps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateFlags {
    /// Bit 1: the levels are residuals against the base.
    pub residual: bool,
    /// Bit 2: a low-rank term is added to the base.
    pub low_rank: bool,
    /// Bit 3: the steps are in the payload, as differences from the base's.
    pub base_steps: bool,
    /// Bit 4: those differences are entropy coded.
    pub coded_steps: bool,
}

/// Largest rank the reference encoder tries (a decoder accepts any rank the payload holds).
const MAX_RANK: usize = 64;

/// Fewest elements for which the encoder tries a low-rank term.
const LOW_RANK_MIN_ELEMENTS: usize = 256;

/// Block power iterations of the encoder's factorization.
const POWER_ITERATIONS: usize = 6;

/// The encoder's factor steps: a column's (or row's) RMS divided by each of these.
const FACTOR_FINENESS: [f64; 3] = [16.0, 32.0, 64.0];

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

/// Calls `f(j, p)` for every element `j < n` with its `p` (spec §14.6): its base value, plus
/// the low-rank term if any, divided by its step (binary64); channel by channel, with no
/// division per element.
fn each_ratio(
    data_type: i32,
    base: &[u8],
    steps: &[f32],
    per: usize,
    n: usize,
    low_rank: Option<&LowRank>,
    mut f: impl FnMut(usize, f64),
) {
    let per = per.max(1);
    // The low-rank term's row and column of element j, counted along (no division).
    let (mut a, mut b) = (0usize, 0usize);
    for (c, start) in (0..n).step_by(per).enumerate() {
        let step = steps[c.min(steps.len() - 1)] as f64;
        for j in start..(start + per).min(n) {
            let mut x = value(data_type, base, j);
            if let Some(t) = low_rank {
                x = t.add_at(x, a, b);
                b += 1;
                if b == t.cols {
                    (a, b) = (a + 1, 0);
                }
            }
            f(j, x / step);
        }
    }
}

/// `p` rounded to the nearest integer, ties to even (as `f64::round_ties_even`, which without
/// SSE4.1 is a library call): below 2^51 in magnitude, adding and subtracting 1.5 · 2^52 rounds
/// in the processor's default mode (to nearest, ties to even); from 2^51 on, binary64 values are
/// whole or halves, and the callers clamp far below that, so `p` itself serves.
#[inline(always)]
fn round_even(p: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    if p.abs() < (1u64 << 51) as f64 {
        (p + MAGIC) - MAGIC
    } else {
        p
    }
}

/// The predicted level from `p`: rounded half to even and clamped; 0 when not finite.
#[inline(always)]
fn rounded(p: f64) -> i64 {
    if p.is_finite() {
        round_even(p).clamp(-(MAX_LEVEL as f64), MAX_LEVEL as f64) as i64
    } else {
        0
    }
}

/// The context byte of an element with a low-rank term (spec §14.6): which sixteenth of the
/// unit interval `f + 1/2` falls in, `f = p − round(p)` the part of `p` the prediction rounded
/// away (the residual is +1 or −1 more often the nearer `f` is to ±1/2); 0 when `p` is not
/// finite.
#[inline(always)]
fn context(p: f64) -> u8 {
    if !p.is_finite() {
        return 0;
    }
    let f = p - round_even(p);
    // (f + 0.5) × 16 is in 0..=16 (f in −½..=½ below 2^51; 0 above): truncation is its floor.
    (((f + 0.5) * 16.0) as i64).clamp(0, 15) as u8
}

/// The context bytes of every element of a record with a low-rank term.
fn contexts(
    data_type: i32,
    base: &[u8],
    steps: &[f32],
    per: usize,
    n: usize,
    term: &LowRank,
) -> Vec<u8> {
    let mut out = vec![0u8; n];
    each_ratio(data_type, base, steps, per, n, Some(term), |j, p| {
        out[j] = context(p)
    });
    out
}

/// A low-rank term (spec §14.6.1): `rank` columns of `U` (one row per slice along axis 0) and
/// `rank` rows of `V` (one column per element of a slice), binary32 values (each an integer
/// level times its column's or row's step) held as f64.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRank {
    rank: usize,
    cols: usize,
    /// `U[a][r]` at `a * rank + r`.
    u: Vec<f64>,
    /// `V[r][b]` at `r * cols + b`.
    v: Vec<f64>,
}

/// Largest |level| of a factor value: levels and steps are both exact in binary32, their
/// product exact in binary64.
const FACTOR_MAX_LEVEL: i64 = (1 << 23) - 1;

/// A factor value: level `q` times step `s`, the binary64 product rounded to binary32.
fn factor_value(q: i64, s: f32) -> f32 {
    (q as f64 * s as f64) as f32
}

impl LowRank {
    /// [`Self::add_at`] for element `j` (tests).
    #[cfg(test)]
    fn add(&self, x: f64, j: usize) -> f64 {
        self.add_at(x, j / self.cols, j % self.cols)
    }

    /// `x + U[a][0]·V[0][b] + … + U[a][R−1]·V[R−1][b]` for the element at row `a`, column `b`
    /// (`j = a·cols + b`), added left to right in binary64. Each product of two binary32
    /// values is exact in binary64, so a fused multiply-add gives the same sums.
    #[inline(always)]
    fn add_at(&self, x: f64, a: usize, b: usize) -> f64 {
        let u = &self.u[a * self.rank..(a + 1) * self.rank];
        let mut y = x;
        for (r, &ur) in u.iter().enumerate() {
            y += ur * self.v[r * self.cols + b];
        }
        y
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Reads the term of a `rows × cols` view (spec §14.6.1): varint `R`, `R` steps of `U`'s
    /// columns and `R` of `V`'s rows (f32), then a symbol stream of the `R·(rows + cols)`
    /// levels (`U` row by row, then `V` row by row).
    fn read(c: &mut Cursor<'_>, rows: usize, cols: usize) -> Result<LowRank> {
        let at = c.offset();
        let rank = c.varint("low-rank term's rank")?;
        if rank == 0 || rank > rows.min(cols) as u64 || rank > (c.remaining() / 8) as u64 {
            return Err(Error::format(
                FormatRule::Payload,
                at,
                format!(
                    "low-rank term of rank {rank} for a {rows} x {cols} view with {} bytes left",
                    c.remaining()
                ),
            ));
        }
        let rank = rank as usize;
        let mut steps = Vec::with_capacity(2 * rank);
        for _ in 0..2 * rank {
            let s = c.f32("low-rank factor step")?;
            if !(s.is_finite() && s > 0.0) {
                return Err(c.err(format!("low-rank factor step {s} is not finite and positive")));
            }
            steps.push(s);
        }
        let width_at = c.offset();
        let width = super::read_width(c)?;
        let n = rank * (rows + cols);
        let mut syms = crate::error::try_zeroed::<u32>(n, at)?;
        crate::entropy::decode_stream(
            c,
            width,
            2 * FACTOR_MAX_LEVEL as u64 + 1,
            |s| s,
            &mut syms,
            false,
        )?;
        let mut values = Vec::with_capacity(n);
        for (k, &sym) in syms.iter().enumerate() {
            let step = if k < rows * rank {
                steps[k % rank]
            } else {
                steps[rank + (k - rows * rank) / cols]
            };
            let x = factor_value(unzigzag(sym), step);
            if !x.is_finite() {
                return Err(Error::format(
                    FormatRule::Payload,
                    width_at,
                    format!("low-rank factor value {k} is {x}, not finite"),
                ));
            }
            values.push(x as f64);
        }
        let v = values.split_off(rows * rank);
        Ok(LowRank {
            rank,
            cols,
            u: values,
            v,
        })
    }

    /// The term for factors `u` (rows × rank) and `v` (rank × cols), each column of `u` and
    /// row of `v` quantized with a step of its RMS / `fineness`, and its bytes (what
    /// [`LowRank::read`] reads); `None` when a value cannot be represented.
    fn quantized(
        rank: usize,
        cols: usize,
        u: &[f64],
        v: &[f64],
        fineness: f64,
        chunk: usize,
    ) -> Result<Option<(LowRank, Vec<u8>)>> {
        let rows = u.len() / rank;
        let rms = |xs: &mut dyn Iterator<Item = f64>| {
            let (mut s, mut n) = (0.0, 0usize);
            for x in xs {
                s += x * x;
                n += 1;
            }
            (s / n.max(1) as f64).sqrt()
        };
        let mut steps = Vec::with_capacity(2 * rank);
        for r in 0..rank {
            steps.push(rms(&mut (0..rows).map(|a| u[a * rank + r])));
        }
        for r in 0..rank {
            steps.push(rms(&mut v[r * cols..(r + 1) * cols].iter().copied()));
        }
        let steps: Vec<f32> = steps
            .iter()
            .map(|&x| {
                let s = (x / fineness) as f32;
                if s.is_finite() && s > 0.0 {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        let mut syms = Vec::with_capacity(u.len() + v.len());
        let mut values = Vec::with_capacity(u.len() + v.len());
        for (k, &x) in u.iter().chain(v).enumerate() {
            let step = if k < rows * rank {
                steps[k % rank]
            } else {
                steps[rank + (k - rows * rank) / cols]
            };
            let q = (x / step as f64).round_ties_even();
            if q.is_nan() || q.abs() > FACTOR_MAX_LEVEL as f64 {
                return Ok(None);
            }
            let q = q as i64;
            syms.push(super::zigzag(q));
            values.push(factor_value(q, step) as f64);
        }
        let mut out = Vec::new();
        crate::bytes::put_varint(&mut out, rank as u64);
        for s in &steps {
            out.extend_from_slice(&s.to_le_bytes());
        }
        let width = super::width_for(&syms);
        out.push(width as u8);
        crate::entropy::encode_stream(
            &syms,
            crate::entropy::StreamOptions {
                width,
                chunk,
                segment: 0,
                wide: false,
                extra: 0,
            },
            &mut out,
        )?;
        let v = values.split_off(rows * rank);
        Ok(Some((
            LowRank {
                rank,
                cols,
                u: values,
                v,
            },
            out,
        )))
    }
}

/// The rows and columns of a tensor's 2-D view for a low-rank term: `dims[0]` and the rest.
pub fn view(dims: &[u64], elements: u64) -> Option<(usize, usize)> {
    let rows = usize::try_from(*dims.first()?).ok()?;
    let n = usize::try_from(elements).ok()?;
    if rows == 0 || n == 0 {
        return None;
    }
    Some((rows, n / rows))
}

/// The params without the update flags, and which were set. A flag without the one it needs
/// is left in the params, whose parser rejects it as a reserved bit.
pub fn strip_flags(params: &[u8]) -> (Vec<u8>, UpdateFlags) {
    let mut p = params.to_vec();
    let f = p.get(1).copied().unwrap_or(0);
    let residual = f & FLAG_RESIDUAL != 0;
    let base_steps = residual && f & FLAG_BASE_STEPS != 0;
    let flags = UpdateFlags {
        residual,
        low_rank: residual && f & FLAG_LOW_RANK != 0,
        base_steps,
        coded_steps: base_steps && f & FLAG_CODED_STEPS != 0,
    };
    if residual {
        p[1] &= !(FLAG_RESIDUAL | FLAG_LOW_RANK | FLAG_BASE_STEPS);
        if base_steps {
            p[1] &= !FLAG_CODED_STEPS;
        }
    }
    (p, flags)
}

/// The steps predicted from a base place (spec §14.6.2): per slice of `per` elements (the
/// whole tensor for one step), the smallest nonzero finite magnitude of the base's values
/// divided by `1 + t` (`t` of the uniform kind), rounded to binary32; 0 for a slice with none.
fn predicted_steps(data_type: i32, base: &[u8], kind: &Kind, count: usize, n: usize) -> Vec<f32> {
    let per = (n / count.max(1)).max(1);
    let t = super::uniform_offset(kind).unwrap_or(0.0);
    (0..count)
        .map(|c| {
            let m = (c * per..((c + 1) * per).min(n))
                .map(|j| value(data_type, base, j).abs())
                .filter(|x| x.is_finite() && *x > 0.0)
                .fold(f64::INFINITY, f64::min);
            if m.is_finite() {
                (m / (1.0 + t)) as f32
            } else {
                0.0
            }
        })
        .collect()
}

/// Bits of a finite positive binary32 step: valid step bit patterns are 1 ..= 0x7f7f_ffff.
const MAX_STEP_BITS: i64 = 0x7f7f_ffff;

/// The differences of `steps` from their predictions (spec §14.6.2), as zigzag varints.
fn step_differences(steps: &[f32], predicted: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for (s, p) in steps.iter().zip(predicted) {
        let d = s.to_bits() as i64 - p.to_bits() as i64;
        crate::bytes::put_varint(&mut out, ((d << 1) ^ (d >> 63)) as u64);
    }
    out
}

/// The steps' differences (spec §14.6.2) from `c`, one zigzag varint per predicted step.
fn read_steps(c: &mut Cursor<'_>, predicted: &[f32], steps: &mut [f32]) -> Result<()> {
    for (k, (p, s)) in predicted.iter().zip(steps.iter_mut()).enumerate() {
        let d_at = c.offset();
        let z = c.varint("step difference")?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        match (p.to_bits() as i64).checked_add(d) {
            Some(b) if (1..=MAX_STEP_BITS).contains(&b) => *s = f32::from_bits(b as u32),
            _ => {
                return Err(Error::format(
                    FormatRule::Payload,
                    d_at,
                    format!(
                        "step {k}: predicted {p} plus difference {d} is not a finite positive \
                         binary32 number"
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The decoded bytes of coded steps (quantizer flag bit 4) and the offset of their stream
/// (where errors in them are reported).
struct StepBytes {
    data: Vec<u8>,
    at: u64,
}

/// Most bytes of `count` step varints: 10 each.
const MAX_STEP_VARINT: u64 = 10;

/// Reads coded steps (spec §14.6.2, bit 4): the byte count `L` (at most 10 per step), then a
/// symbol stream of `L` symbols of alphabet 256, width 1.
fn coded_step_bytes(c: &mut Cursor<'_>, count: usize) -> Result<StepBytes> {
    let len = c.varint_max(MAX_STEP_VARINT * count as u64, "coded step byte count")?;
    let at = c.offset();
    let mut data = crate::error::try_zeroed::<u8>(len, at)?;
    crate::entropy::decode_stream(c, 1, 256, |s| s as u8, &mut data, false)?;
    Ok(StepBytes { data, at })
}

/// The steps' varint bytes entropy coded (spec §14.6.2, bit 4): their count, then the stream.
fn code_step_bytes(varints: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    crate::bytes::put_varint(&mut out, varints.len() as u64);
    let symbols: Vec<u32> = varints.iter().map(|&b| b as u32).collect();
    let opt = crate::entropy::StreamOptions {
        width: 1,
        chunk: crate::entropy::DEFAULT_CHUNK,
        segment: 0,
        wide: false,
        extra: 0,
    };
    crate::entropy::encode_stream(&symbols, opt, &mut out)?;
    Ok(out)
}

/// Elements per step of a tensor of `n` elements.
pub fn per(n: usize, params: &QuantParams) -> usize {
    (n / params.steps.len().max(1)).max(1)
}

/// A residual record read up to its level stream: what reconstructs its levels.
struct Read<'a, 'b> {
    params: QuantParams,
    place: &'b crate::base::Place,
    term: Option<LowRank>,
    syms: Vec<u32>,
    per: usize,
    width_at: u64,
    /// The residual stream's mode byte (spec §7.1).
    mode: u8,
    /// The cursor after the symbol stream (bytes left there are an error, checked last).
    rest: Cursor<'a>,
}

/// Reads a residual record (spec §14.6) through its symbol stream, in the spec's check order.
fn read<'a, 'b>(
    h: &TensorHeader,
    payload: &'a [u8],
    at: u64,
    parallel: bool,
    model: Option<&'b BaseModel>,
) -> Result<Read<'a, 'b>> {
    let (params_bytes, flags) = strip_flags(&h.params);
    let low_rank = flags.low_rank;
    let mut params = QuantParams::parse_with(&params_bytes, at, &h.dims, !flags.base_steps)?;
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
    let shape = view(&h.dims, h.elements);
    if low_rank && shape.is_none() {
        return Err(Error::format(
            FormatRule::TensorHeader,
            at,
            "a low-rank term (quantizer flag bit 2) needs a tensor of rank 1 or more with elements",
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
    if flags.base_steps {
        let predicted =
            predicted_steps(h.data_type, &place.data, &params.kind, params.steps.len(), n);
        if flags.coded_steps {
            // The varints' bytes, entropy coded (bit 4): read as if they were in the payload.
            let bytes = coded_step_bytes(&mut c, predicted.len())?;
            // Errors name the coded stream's offset and the byte among the decoded ones.
            let mut v = Cursor::new(&bytes.data, 0, FormatRule::Payload);
            read_steps(&mut v, &predicted, &mut params.steps).map_err(|e| match e {
                Error::Format { offset, detail, .. } => Error::format(
                    FormatRule::Payload,
                    bytes.at,
                    format!("coded step bytes, at byte {offset} of {}: {detail}", bytes.data.len()),
                ),
                e => e,
            })?;
            if !v.is_empty() {
                return Err(Error::format(
                    FormatRule::Payload,
                    bytes.at,
                    format!(
                        "{} of the {} coded step bytes left after the {} steps",
                        v.remaining(),
                        bytes.data.len(),
                        predicted.len()
                    ),
                ));
            }
        } else {
            read_steps(&mut c, &predicted, &mut params.steps)?;
        }
    }
    let term = match shape {
        Some((rows, cols)) if low_rank => Some(LowRank::read(&mut c, rows, cols)?),
        _ => None,
    };
    let width_at = c.offset();
    let width = super::read_width(&mut c)?;
    let mode = c.peek_u8().unwrap_or(0);
    let mut syms = crate::error::try_zeroed::<u32>(n, at)?;
    let per = per(n, &params);
    let ctx = term
        .as_ref()
        .map(|t| contexts(h.data_type, &place.data, &params.steps, per, n, t));
    crate::entropy::decode_stream_ctx(
        &mut c,
        width,
        2 * MAX_LEVEL as u64 + 1,
        |s| s,
        ctx.as_deref(),
        &mut syms,
        parallel,
    )?;
    Ok(Read {
        params,
        place,
        term,
        syms,
        per,
        width_at,
        mode,
        rest: c,
    })
}

/// The quantizer params (steps included, wherever they are coded) and the residual symbols of
/// a record with the residual flag (spec §14.6), for `inspect`: both need the base.
pub fn symbols(
    h: &TensorHeader,
    payload: &[u8],
    model: Option<&BaseModel>,
) -> Result<(QuantParams, Vec<u32>)> {
    let r = read(h, payload, 0, false, model)?;
    Ok((r.params, r.syms))
}

/// [`symbols`] of a decoded tensor kept with its payload (`DecodeOptions::keep_payload`).
pub fn tensor_symbols(
    t: &crate::decoder::Tensor,
    model: Option<&BaseModel>,
) -> Result<(QuantParams, Vec<u32>)> {
    let h = TensorHeader {
        data_type: t.data_type,
        storage: t.storage,
        coding: t.coding,
        name: t.name.clone(),
        dims: t.dims.clone(),
        elements: t.dims.iter().product(),
        data_bytes: t.data.len() as u64,
        params: t.params.clone(),
    };
    symbols(&h, &t.payload, model)
}

/// The mode (spec §7.1) of a residual record's level stream.
pub fn stream_mode(h: &TensorHeader, payload: &[u8], model: Option<&BaseModel>) -> Result<u8> {
    Ok(read(h, payload, 0, false, model)?.mode)
}

/// Decodes a coding-3 payload whose params have the residual flag (spec §14.6).
pub fn decode(
    h: &TensorHeader,
    payload: &[u8],
    at: u64,
    parallel: bool,
    model: Option<&BaseModel>,
) -> Result<Vec<u8>> {
    let r = read(h, payload, at, parallel, model)?;
    let (params, per) = (&r.params, r.per);
    let w = dtype::unit_bytes(h.data_type);
    let n = r.syms.len();
    let mut out = crate::error::try_zeroed(n * w, at)?;
    let mut bad = None;
    each_ratio(h.data_type, &r.place.data, &params.steps, per, n, r.term.as_ref(), |j, p| {
        if bad.is_some() {
            return;
        }
        let q = rounded(p) + unzigzag(r.syms[j]);
        if q.abs() > MAX_LEVEL {
            bad = Some((j, q));
            return;
        }
        let v = reconstruct(&params.kind, q, params.steps[(j / per).min(params.steps.len() - 1)]);
        super::put_value(h.data_type, &mut out[j * w..(j + 1) * w], v);
    });
    if let Some((j, q)) = bad {
        return Err(Error::format(
            FormatRule::Payload,
            r.width_at,
            format!("element {j}: predicted level plus residual {q} is out of range"),
        ));
    }
    if !r.rest.is_empty() {
        return Err(r.rest.err(format!("{} bytes after the level stream", r.rest.remaining())));
    }
    Ok(out)
}

/// The residual payload of `levels` against the base's tensor `i` (varint `i`, the steps as
/// differences from the base's when that is smaller, the low-rank term when one pays, then the
/// level stream of the residuals), for an encoder, and the quantizer flags to add besides bit
/// 1 ([`FLAG_LOW_RANK`], [`FLAG_BASE_STEPS`]: the params then end after the step count);
/// `None` when the prediction cannot be used. Ranks 1, 2, 4, … are tried while the payload
/// shrinks; the smallest payload is kept.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    model: &BaseModel,
    i: u32,
    data_type: i32,
    dims: &[u64],
    levels: &[i64],
    params: &QuantParams,
    chunk: usize,
    segment: usize,
    wide: bool,
) -> Result<Option<(Vec<u8>, u8)>> {
    let place = &model.places()[i as usize];
    if !kind_allows(&params.kind) || place.data.len() != levels.len() * dtype::unit_bytes(data_type)
    {
        return Ok(None);
    }
    let per = per(levels.len(), params);
    // The steps as differences from the base's prediction, when shorter than the params' f32s.
    let predicted = predicted_steps(
        data_type,
        &place.data,
        &params.kind,
        params.steps.len(),
        levels.len(),
    );
    let differences = step_differences(&params.steps, &predicted);
    // Coded steps (bit 4) came after the first updates: with the later modes (`wide`) only.
    let coded = if wide {
        Some(code_step_bytes(&differences)?)
    } else {
        None
    };
    let (steps_prefix, steps_flag): (&[u8], u8) = match &coded {
        Some(c) if c.len() < differences.len() => (c, FLAG_BASE_STEPS | FLAG_CODED_STEPS),
        _ => (&differences, FLAG_BASE_STEPS),
    };
    let (steps_prefix, steps_flag) = if steps_prefix.len() < 4 * params.steps.len() {
        (steps_prefix, steps_flag)
    } else {
        (&[][..], 0)
    };
    // The payload with the steps' and the term's bytes (if any) after the place number.
    let payload = |term: Option<(&LowRank, &[u8])>| -> Result<Option<Vec<u8>>> {
        let t = term.map(|t| t.0);
        let mut r = vec![0i64; levels.len()];
        let mut out_of_range = false;
        each_ratio(data_type, &place.data, &params.steps, per, levels.len(), t, |j, p| {
            let v = levels[j] - rounded(p);
            out_of_range |= v.abs() > MAX_LEVEL;
            r[j] = v;
        });
        if out_of_range {
            return Ok(None);
        }
        let mut out = Vec::new();
        crate::bytes::put_varint(&mut out, i as u64);
        out.extend_from_slice(steps_prefix);
        if let Some((_, bytes)) = term {
            out.extend_from_slice(bytes);
        }
        let symbols: Vec<u32> = r.iter().map(|&q| super::symbol(&params.kind, q)).collect();
        let mut stream = super::encode_symbols(&symbols, params, chunk, segment, wide, false, None)?;
        if let Some(t) = t {
            // The decoder has the context bytes either way; the stream uses them (mode 5)
            // only when that is smaller than channel classes.
            let ctx = contexts(data_type, &place.data, &params.steps, per, levels.len(), t);
            let with = super::encode_symbols(&symbols, params, chunk, segment, wide, false, Some(&ctx))?;
            if with.len() < stream.len() {
                stream = with;
            }
        }
        out.extend(stream);
        Ok(Some(out))
    };
    let Some(mut best) = payload(None)? else {
        return Ok(None);
    };
    let mut best_low_rank = false;
    let Some((rows, cols)) = view(dims, levels.len() as u64) else {
        return Ok(Some((best, steps_flag)));
    };
    if levels.len() < LOW_RANK_MIN_ELEMENTS || rows < 2 || cols < 2 {
        return Ok(Some((best, steps_flag)));
    }
    // The change since the base, as this record reconstructs it: the quantization error is
    // spread over every direction, the fine-tune's change over few.
    let d: Vec<f64> = levels
        .iter()
        .enumerate()
        .map(|(j, &q)| {
            let x = value(data_type, &place.data, j);
            let step = params.steps[(j / per).min(params.steps.len() - 1)];
            let y = reconstruct(&params.kind, q, step) - x;
            if y.is_finite() {
                y
            } else {
                0.0
            }
        })
        .collect();
    let mut rank = 1;
    // At least a byte per factor value.
    while rank <= MAX_RANK && 2 * rank <= rows.min(cols) && rank * (rows + cols) < best.len() {
        let (u, v) = top_factors(&d, rows, cols, rank);
        let mut improved = false;
        for fineness in FACTOR_FINENESS {
            let Some((term, bytes)) = LowRank::quantized(rank, cols, &u, &v, fineness, chunk)?
            else {
                continue;
            };
            if let Some(p) = payload(Some((&term, &bytes)))? {
                if p.len() < best.len() {
                    best = p;
                    best_low_rank = true;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
        rank *= 2;
    }
    let low_rank_flag = if best_low_rank { FLAG_LOW_RANK } else { 0 };
    Ok(Some((best, steps_flag | low_rank_flag)))
}

/// Factors `U` (rows × rank, row-major) and `V` (rank × cols, row-major) with `U·V` close to the
/// best rank-`rank` approximation of the rows × cols matrix `d`: block power iteration from a
/// fixed pseudo-random start (deterministic), `V` with orthonormal rows.
fn top_factors(d: &[f64], rows: usize, cols: usize, rank: usize) -> (Vec<f64>, Vec<f64>) {
    // q[k]: column k of the right basis (length cols).
    let mut q: Vec<Vec<f64>> = (0..rank)
        .map(|k| {
            (0..cols)
                .map(|b| {
                    let mut z = ((k * cols + b) as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    z ^= z >> 31;
                    (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                })
                .collect()
        })
        .collect();
    orthonormalize(&mut q);
    let times = |q: &[Vec<f64>]| -> Vec<Vec<f64>> {
        // y[k][a] = Σ_b d[a][b]·q[k][b]
        let mut y = vec![vec![0.0; rows]; rank];
        for (a, row) in d.chunks_exact(cols).enumerate() {
            for (yk, qk) in y.iter_mut().zip(q) {
                yk[a] = row.iter().zip(qk).map(|(x, w)| x * w).sum();
            }
        }
        y
    };
    for _ in 0..POWER_ITERATIONS {
        let mut y = times(&q);
        orthonormalize(&mut y);
        // z[k][b] = Σ_a d[a][b]·y[k][a]
        let mut z = vec![vec![0.0; cols]; rank];
        for (a, row) in d.chunks_exact(cols).enumerate() {
            for (zk, yk) in z.iter_mut().zip(&y) {
                let w = yk[a];
                if w != 0.0 {
                    for (o, x) in zk.iter_mut().zip(row) {
                        *o += w * x;
                    }
                }
            }
        }
        orthonormalize(&mut z);
        q = z;
    }
    // U = D·Q (rows × rank), V = Qᵀ.
    let y = times(&q);
    let mut u = vec![0.0; rows * rank];
    for (k, yk) in y.iter().enumerate() {
        for (a, &x) in yk.iter().enumerate() {
            u[a * rank + k] = x;
        }
    }
    (u, q.concat())
}

/// Modified Gram–Schmidt over the vectors in order; a vector left with (almost) no norm
/// becomes zero.
fn orthonormalize(vs: &mut [Vec<f64>]) {
    for k in 0..vs.len() {
        let (done, rest) = vs.split_at_mut(k);
        let v = &mut rest[0];
        for p in done.iter() {
            let dot: f64 = v.iter().zip(p).map(|(a, b)| a * b).sum();
            for (x, y) in v.iter_mut().zip(p) {
                *x -= dot * y;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-300 && norm.is_finite() {
            v.iter_mut().for_each(|x| *x /= norm);
        } else {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_even_and_context_match_the_library() {
        let two51 = (1u64 << 51) as f64;
        let mut xs = vec![
            0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994,
            1e-300, -1e-300, 123456.5, -123456.5, two51 - 0.5, -(two51 - 0.5), two51, -two51,
            two51 + 1.0, 2.0 * two51 + 1.0, 1e300, -1e300, f64::MAX, f64::MIN,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            xs.push(m * f64::powi(2.0, (x % 64) as i32 - 8));
        }
        for p in xs {
            assert_eq!(round_even(p), p.round_ties_even(), "{p}");
            let f = p - p.round_ties_even();
            let floor = ((f + 0.5) * 16.0).floor().clamp(0.0, 15.0) as u8;
            assert_eq!(context(p), floor, "{p}");
        }
    }

    #[test]
    fn factors_recover_a_low_rank_matrix() {
        let (rows, cols) = (40, 30);
        let d: Vec<f64> = (0..rows * cols)
            .map(|j| {
                let (a, b) = ((j / cols) as f64, (j % cols) as f64);
                (a * 0.1).sin() * (b * 0.2).cos() + 0.5 * (a * 0.05 + 1.0) * (b * 0.3).sin()
            })
            .collect();
        let energy: f64 = d.iter().map(|x| x * x).sum();
        for (rank, max_rel) in [(1, 0.5), (2, 1e-12)] {
            let (u, v) = top_factors(&d, rows, cols, rank);
            let err: f64 = (0..rows * cols)
                .map(|j| {
                    let (a, b) = (j / cols, j % cols);
                    let p: f64 = (0..rank).map(|r| u[a * rank + r] * v[r * cols + b]).sum();
                    (d[j] - p).powi(2)
                })
                .sum();
            assert!(err / energy < max_rel, "rank {rank}: {}", err / energy);
        }
    }

    #[test]
    fn low_rank_term_round_trips_and_adds_in_order() {
        // Factor values on their steps' grids come back exactly.
        let u = [1.0, 2.0, 3.0, 4.0];
        let v = [0.5, 0.25, 1.0, 1.0, 2.0, 3.0];
        let (t, b) = LowRank::quantized(2, 3, &u, &v, 64.0, 1 << 16).unwrap().unwrap();
        let mut c = Cursor::new(&b, 0, FormatRule::Payload);
        let back = LowRank::read(&mut c, 2, 3).unwrap();
        assert!(c.is_empty());
        assert_eq!(back, t);
        // Element (1, 2): 10 + U[1][0]·V[0][2] + U[1][1]·V[1][2], added in that order.
        let want = 10.0 + t.u[2] * t.v[2] + t.u[3] * t.v[5];
        assert_eq!(t.add(10.0, 5), want);
        assert!((want - 25.0).abs() < 0.2, "{want}");
        // Rank 0, a rank above the view's smaller side, a rank the bytes cannot hold, and a
        // step that is not finite are refused.
        let mut nan_step = b.clone();
        nan_step[1..5].copy_from_slice(&f32::NAN.to_le_bytes());
        for bad in [vec![0u8], vec![3u8; 40], {
            let mut x = b.clone();
            x[0] = 2;
            x.truncate(10);
            x
        }, nan_step] {
            let mut c = Cursor::new(&bad, 0, FormatRule::Payload);
            assert!(LowRank::read(&mut c, 2, 3).is_err());
        }
    }
}
