//! Quantized payloads (spec §7.6): integer levels from one of the thesis's quantizers, coded
//! as a symbol stream, and the exact reconstruction rules every decoder follows.
pub mod allocate;
pub mod float;
pub mod kernel;
pub mod minifloat;
pub mod mulaw;
pub mod policy;
pub mod rdo;
pub mod residual;
pub mod uniform;

use rayon::prelude::*;

use crate::bytes::{put_varint, Cursor};
use crate::container::tensor_header::TensorHeader;
use crate::entropy::{decode_stream, split, StreamOptions};
use crate::error::{Error, FormatRule, Result};
use crate::onnx::dtype;
use minifloat::Layout;

/// Quantizer kinds (spec §7.6.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Midtread,
    Midrise,
    DeadZone { delta: f32 },
    MuLaw { xmax: f32, mu: f32 },
    Minifloat { layout: Layout, scale_exp: i32 },
}

impl Kind {
    /// Whether the reference encoder rounds a convolution's kernels keeping their sums
    /// (`kernel`): the uniform quantizers with a level at zero.
    pub fn keeps_kernel_sums(&self) -> bool {
        matches!(self, Kind::Midtread | Kind::DeadZone { .. })
    }

    pub fn code(&self) -> u8 {
        match self {
            Kind::Midtread => 0,
            Kind::Midrise => 1,
            Kind::DeadZone { .. } => 2,
            Kind::MuLaw { .. } => 3,
            Kind::Minifloat { .. } => 4,
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Midtread => "midtread",
            Kind::Midrise => "midrise",
            Kind::DeadZone { .. } => "deadzone",
            Kind::MuLaw { .. } => "mulaw",
            Kind::Minifloat { .. } => "minifloat",
        }
    }
}

/// The parameters carried in a quantized tensor's header (spec §7.6.2).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantParams {
    pub kind: Kind,
    /// One step, or one per slice along axis 0 (per output channel). Empty for minifloat.
    pub steps: Vec<f32>,
}

const FLAG_PER_CHANNEL: u8 = 1;

impl QuantParams {
    pub fn per_channel(&self) -> bool {
        self.steps.len() > 1
    }

    /// Header params (spec §7.6.2): `u8 kind`, `u8 flags` (bit 0: steps per axis-0 slice),
    /// `u16 0`, the kind's fields, then `u32 count` and `count × f32` steps.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![
            self.kind.code(),
            if self.per_channel() {
                FLAG_PER_CHANNEL
            } else {
                0
            },
            0,
            0,
        ];
        match self.kind {
            Kind::Midtread | Kind::Midrise => {}
            Kind::DeadZone { delta } => b.extend_from_slice(&delta.to_le_bytes()),
            Kind::MuLaw { xmax, mu } => {
                b.extend_from_slice(&xmax.to_le_bytes());
                b.extend_from_slice(&mu.to_le_bytes());
            }
            Kind::Minifloat { layout, scale_exp } => {
                b.push(layout.exp_bits);
                b.push(layout.man_bits);
                b.extend_from_slice(&(scale_exp as i16).to_le_bytes());
            }
        }
        b.extend_from_slice(&(self.steps.len() as u32).to_le_bytes());
        for s in &self.steps {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    /// Parses and validates header params for a tensor with `dims`.
    pub fn parse(bytes: &[u8], base: u64, dims: &[u64]) -> Result<QuantParams> {
        Self::parse_with(bytes, base, dims, true)
    }

    /// [`QuantParams::parse`]; without `step_values` the params end after `count` (an update's
    /// steps predicted from its base, spec §14.6.2) and the steps are placeholders (1.0).
    pub fn parse_with(
        bytes: &[u8],
        base: u64,
        dims: &[u64],
        step_values: bool,
    ) -> Result<QuantParams> {
        let mut c = Cursor::new(bytes, base, FormatRule::TensorHeader);
        let at = c.offset();
        let code = c.u8("quantizer")?;
        let flags = c.u8("quantizer flags")?;
        if flags & !FLAG_PER_CHANNEL != 0 || c.u16("reserved")? != 0 {
            return Err(Error::format(
                FormatRule::Reserved,
                at + 1,
                "reserved quantizer bits set",
            ));
        }
        let finite_pos = |v: f32| v.is_finite() && v > 0.0;
        let kind = match code {
            0 => Kind::Midtread,
            1 => Kind::Midrise,
            2 => {
                let delta = c.f32("delta")?;
                if !(0.0..=1.0).contains(&delta) {
                    return Err(c.err(format!("dead-zone delta {delta} outside [0, 1]")));
                }
                Kind::DeadZone { delta }
            }
            3 => {
                let (xmax, mu) = (c.f32("xmax")?, c.f32("mu")?);
                if !finite_pos(xmax) || !finite_pos(mu) {
                    return Err(c.err(format!(
                        "mu-law xmax {xmax} and mu {mu} must be finite and positive"
                    )));
                }
                Kind::MuLaw { xmax, mu }
            }
            4 => {
                let layout = Layout {
                    exp_bits: c.u8("exponent bits")?,
                    man_bits: c.u8("mantissa bits")?,
                };
                let scale_exp = c.u16("scale exponent")? as i16 as i32;
                if layout.exp_bits > 8
                    || layout.man_bits > 23
                    || layout.exp_bits + layout.man_bits > 23
                    || layout.exp_bits + layout.man_bits == 0
                {
                    return Err(c.err(format!(
                        "minifloat layout E{} M{} not allowed",
                        layout.exp_bits, layout.man_bits
                    )));
                }
                if !(-400..=400).contains(&scale_exp) {
                    return Err(c.err(format!(
                        "minifloat scale exponent {scale_exp} outside [-400, 400]"
                    )));
                }
                Kind::Minifloat { layout, scale_exp }
            }
            k => {
                return Err(Error::format(
                    FormatRule::TensorHeader,
                    at,
                    format!("unknown quantizer {k}"),
                ))
            }
        };
        let count = c.u32("step count")? as usize;
        let per_channel = flags & FLAG_PER_CHANNEL != 0;
        let want = match (kind, per_channel) {
            (Kind::Minifloat { .. }, false) => 0,
            (Kind::Minifloat { .. }, true) | (Kind::MuLaw { .. }, true) => {
                return Err(c.err("per-channel steps are defined for the uniform quantizers only"));
            }
            (_, false) => 1,
            (_, true) => match dims.first() {
                Some(&d) if d >= 2 => d as usize,
                _ => return Err(c.err("per-channel steps need a first dimension of at least 2")),
            },
        };
        if count != want {
            return Err(c.err(format!("{count} steps, {want} expected")));
        }
        if !step_values {
            if !c.is_empty() {
                return Err(c.err("bytes after the step count (the steps are in the payload)"));
            }
            return Ok(QuantParams {
                kind,
                steps: vec![1.0; count],
            });
        }
        if count > c.remaining() / 4 {
            return Err(c.err("steps run past the params"));
        }
        let mut steps = Vec::with_capacity(count);
        for _ in 0..count {
            let s = c.f32("step")?;
            if !finite_pos(s) {
                return Err(c.err(format!("step {s} must be finite and positive")));
            }
            steps.push(s);
        }
        if !c.is_empty() {
            return Err(c.err("bytes after the quantizer params"));
        }
        Ok(QuantParams { kind, steps })
    }
}

/// Zigzag map of a signed level to a symbol: 0, −1, 1, −2, ... → 0, 1, 2, 3, ...
pub fn zigzag(q: i64) -> u32 {
    ((q << 1) ^ (q >> 63)) as u32
}

/// Inverse of `zigzag`.
pub fn unzigzag(s: u32) -> i64 {
    ((s >> 1) as i64) ^ -((s & 1) as i64)
}

/// Largest |level| a uniform or μ-law stream may use (spec §7.6.2): keeps `|q|·Δ` exact
/// enough and symbols inside u32.
pub const MAX_LEVEL: i64 = (1 << 30) - 1;

/// Reconstructs level (or minifloat code) `q` of a slice with step `step` in binary64
/// (spec §7.6.3–7.6.5). μ-law uses its table instead.
#[inline]
pub fn reconstruct(kind: &Kind, q: i64, step: f32) -> f64 {
    let s = step as f64;
    match *kind {
        Kind::Midtread => uniform::midtread_rec(q, s),
        Kind::Midrise => uniform::midrise_rec(q, s),
        Kind::DeadZone { delta } => uniform::deadzone_rec(q, s, delta as f64),
        Kind::Minifloat { layout, scale_exp } => layout.value(q as u32, scale_exp),
        Kind::MuLaw { .. } => f64::NAN,
    }
}

/// Quantizes `x` to a level (or minifloat code).
pub fn quantize_value(kind: &Kind, x: f64, step: f32) -> i64 {
    let s = step as f64;
    let q = match *kind {
        Kind::Midtread => uniform::midtread(x, s),
        Kind::Midrise => uniform::midrise(x, s),
        Kind::DeadZone { delta } => uniform::deadzone(x, s, delta as f64),
        Kind::MuLaw { xmax, mu } => mulaw::quantize(x, s, xmax as f64, mu as f64),
        Kind::Minifloat { layout, scale_exp } => {
            return minifloat::quantize(x, layout, scale_exp) as i64
        }
    };
    q.clamp(-(MAX_LEVEL as f64), MAX_LEVEL as f64) as i64
}

/// Quantizes a tensor's values (as f64, row-major) into levels.
pub fn quantize(values: &[f64], params: &QuantParams, limit: Option<i64>) -> Vec<i64> {
    quantize_map(values.len(), |i| values[i], params, limit, |q| q)
}

/// [`quantize`] of the `n` values `value(0) .. value(n − 1)`, read as they are quantized
/// (the encoder reads them from the tensor's bytes instead of holding them widened), keeping
/// `f(level)` of each level (e.g. its [`symbol`]).
pub fn quantize_map<O>(
    n: usize,
    value: impl Fn(usize) -> f64,
    params: &QuantParams,
    limit: Option<i64>,
    f: impl Fn(i64) -> O,
) -> Vec<O> {
    let per = if params.steps.len() > 1 {
        (n / params.steps.len()).max(1)
    } else {
        n.max(1)
    };
    let lim = match limit {
        Some(l) if !matches!(params.kind, Kind::Minifloat { .. }) => l.min(MAX_LEVEL),
        _ => MAX_LEVEL,
    };
    let mut out = Vec::with_capacity(n);
    // The quantizer is chosen once per run of one step, so each loop is monomorphic.
    fn run<O>(
        out: &mut Vec<O>,
        xs: impl Iterator<Item = f64>,
        lim: i64,
        q: impl Fn(f64) -> f64,
        f: impl Fn(i64) -> O,
    ) {
        let m = MAX_LEVEL as f64;
        out.extend(xs.map(|x| f((q(x).clamp(-m, m) as i64).clamp(-lim, lim))));
    }
    for (i, start) in (0..n).step_by(per).enumerate() {
        let xs = (start..(start + per).min(n)).map(&value);
        let s = params.steps.get(i).copied().unwrap_or(1.0) as f64;
        match params.kind {
            Kind::Midtread => run(&mut out, xs, lim, |x| uniform::midtread(x, s), &f),
            Kind::Midrise => run(&mut out, xs, lim, |x| uniform::midrise(x, s), &f),
            Kind::DeadZone { delta } => {
                let d = delta as f64;
                run(&mut out, xs, lim, |x| uniform::deadzone(x, s, d), &f)
            }
            Kind::MuLaw { xmax, mu } => run(
                &mut out,
                xs,
                lim,
                |x| mulaw::quantize(x, s, xmax as f64, mu as f64),
                &f,
            ),
            Kind::Minifloat { layout, scale_exp } => {
                out.extend(xs.map(|x| f(minifloat::quantize(x, layout, scale_exp) as i64)))
            }
        }
    }
    out
}

/// Builds the payload of a quantized tensor (spec §7.6.2): for μ-law, `varint K` and
/// `(K+1) × f32` reconstructed magnitudes of levels 0..=K; then the symbol stream of
/// `zigzag(level)` (or the minifloat codes). Long streams may use the wide rANS layout.
pub fn encode_payload(
    levels: &[i64],
    params: &QuantParams,
    chunk: usize,
    segment: usize,
) -> Result<Vec<u8>> {
    encode_payload_with(levels, params, chunk, segment, true)
}

/// `encode_payload`, with `wide` saying whether the stream may use the wide rANS layout
/// (mode 6, spec §7.3.5).
pub fn encode_payload_with(
    levels: &[i64],
    params: &QuantParams,
    chunk: usize,
    segment: usize,
    wide: bool,
) -> Result<Vec<u8>> {
    let symbols: Vec<u32> = levels.iter().map(|&q| symbol(&params.kind, q)).collect();
    encode_symbols(&symbols, params, chunk, segment, wide, wide, None)
}

/// The symbol that codes level `q` (spec §7.6.2): `zigzag(q)`, or a minifloat's code as is.
#[inline(always)]
pub fn symbol(kind: &Kind, q: i64) -> u32 {
    match kind {
        Kind::Minifloat { .. } => q as u32,
        _ => zigzag(q),
    }
}

/// [`encode_payload_with`] of the levels' symbols ([`symbol`]); `split`: the stream may be
/// split levels (mode 8, spec §7.3.7) where that is smaller.
pub fn encode_symbols(
    symbols: &[u32],
    params: &QuantParams,
    chunk: usize,
    segment: usize,
    wide: bool,
    split: bool,
    ctx: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut mulaw_k = 0;
    if let Kind::MuLaw { xmax, mu } = params.kind {
        let k = symbols
            .iter()
            .map(|&s| unzigzag(s).unsigned_abs())
            .max()
            .unwrap_or(0);
        if k > 1 << 20 {
            return Err(Error::Unsupported {
                detail: format!("mu-law with {k} level magnitudes (at most 2^20)"),
            });
        }
        put_varint(&mut out, k);
        mulaw_k = k;
        for i in 0..=k {
            let v = mulaw::expand(i, params.steps[0] as f64, xmax as f64, mu as f64) as f32;
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let width = width_for(symbols);
    out.push(width as u8);
    let opt = StreamOptions {
        width,
        chunk,
        segment,
        wide,
        extra: 0,
    };
    let start = out.len();
    crate::entropy::encode_stream_ctx(symbols, opt, ctx, &mut out)?;
    if split && ctx.is_none() {
        if let Some((k, m)) = split_choice(symbols, 8.0 * (out.len() - start) as f64) {
            let alphabet = level_alphabet(&params.kind, mulaw_k);
            let mut alt = Vec::new();
            split::encode(symbols, alphabet, k, m, opt, &mut alt)?;
            if alt.len() < out.len() - start {
                out.truncate(start);
                out.extend_from_slice(&alt);
            }
        }
    }
    Ok(out)
}

/// The alphabet of a level stream (spec §7.6.2): minifloat codes, μ-law levels up to
/// `mulaw_k` (the table's largest magnitude), or the uniform kinds' levels.
fn level_alphabet(kind: &Kind, mulaw_k: u64) -> u64 {
    match kind {
        Kind::Minifloat { layout, .. } => 2 * layout.magnitudes() as u64,
        Kind::MuLaw { .. } => 2 * mulaw_k + 1,
        _ => 2 * MAX_LEVEL as u64 + 1,
    }
}

/// The split (`k`, `m`) to try for `symbols` coded in `bits` otherwise: `k` = 4 and the `m` of
/// 1, 2, 3 with the least estimated bits, when that estimate is at least 1 % under `bits`
/// (spec §7.3.7, informative). `None` when no symbol reaches 64: then few symbols are in use
/// and their model costs little.
fn split_choice(symbols: &[u32], bits: f64) -> Option<(u8, u8)> {
    if symbols.iter().all(|&s| s < 64) {
        return None;
    }
    let (m, est) = (1u8..)
        .zip(split::estimate_bits(symbols, SPLIT_K as u32, [1, 2, 3]))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    (est < 0.99 * bits).then_some((SPLIT_K, m))
}

/// The encoder's `k` of split levels: symbols below 16 (levels −8 to 7) are their own token.
const SPLIT_K: u8 = 4;

/// Reads the symbol width byte of a quantized payload (spec §7.6.2): 1, 2 or 4.
pub(crate) fn read_width(c: &mut Cursor<'_>) -> Result<usize> {
    let at = c.offset();
    let width = c.u8("symbol width")? as usize;
    if !matches!(width, 1 | 2 | 4) {
        return Err(Error::format(
            FormatRule::Payload,
            at,
            format!("symbol width {width}"),
        ));
    }
    Ok(width)
}

/// The narrowest symbol width, 1, 2 or 4 bytes, that holds every symbol.
pub(crate) fn width_for(symbols: &[u32]) -> usize {
    match symbols.iter().max() {
        Some(&m) if m >= 65536 => 4,
        Some(&m) if m >= 256 => 2,
        _ => 1,
    }
}

/// Decodes a quantized payload to canonical bytes of the header's data type.
pub fn decode(
    h: &TensorHeader,
    payload: &[u8],
    base: u64,
    parallel: bool,
    model: Option<&crate::base::BaseModel>,
) -> Result<Vec<u8>> {
    if h
        .params
        .get(1)
        .is_some_and(|f| f & residual::FLAG_RESIDUAL != 0)
    {
        return residual::decode(h, payload, base, parallel, model);
    }
    let params = QuantParams::parse(&h.params, base, &h.dims)?;
    if !dtype::is_float(h.data_type) {
        return Err(Error::format(
            FormatRule::TensorHeader,
            base,
            format!("quantized coding of a {} tensor", dtype::name(h.data_type)),
        ));
    }
    let n = usize::try_from(h.elements)
        .map_err(|_| Error::format(FormatRule::TensorHeader, base, "too many elements"))?;
    let mut c = Cursor::new(payload, base, FormatRule::Payload);
    let mut table: Vec<f32> = Vec::new();
    if let Kind::MuLaw { .. } = params.kind {
        let k = c.varint_max((c.remaining() / 4) as u64, "mu-law table size")?;
        for _ in 0..=k {
            let at = c.offset();
            let m = c.f32("mu-law magnitude")?;
            if !(m.is_finite() && m >= 0.0) {
                return Err(Error::format(
                    FormatRule::Payload,
                    at,
                    format!("mu-law magnitude {m} is not finite and non-negative"),
                ));
            }
            table.push(m);
        }
    }
    let is_code = matches!(params.kind, Kind::Minifloat { .. });
    let alphabet = level_alphabet(&params.kind, (table.len() as u64).saturating_sub(1));
    let width = read_width(&mut c)?;
    let value = |s: u32, step: f32| -> f64 {
        let q = if is_code { s as i64 } else { unzigzag(s) };
        match params.kind {
            Kind::MuLaw { .. } => {
                let m = table[q.unsigned_abs() as usize] as f64;
                if q < 0 {
                    -m
                } else {
                    m
                }
            }
            _ => reconstruct(&params.kind, q, step),
        }
    };
    let w = dtype::unit_bytes(h.data_type);
    let mut out = crate::error::try_zeroed(n * w, base)?;
    let put = |o: &mut [u8], v: f64| put_value(h.data_type, o, v);
    if params.per_channel() && w >= 4 {
        // FLOAT and DOUBLE: each element's bytes hold its symbol (u32, little-endian, first
        // 4 bytes) until it is reconstructed in place: no buffer of symbols beside the output.
        let steps = &params.steps;
        let per = (n / steps.len()).max(1);
        // Every symbol written passes through the map (a model's symbols, a stored symbol,
        // the constant): the largest of them bounds the table below without a pass over
        // the output.
        let top = std::cell::Cell::new(0u32);
        let seen = |s: u32| {
            top.set(top.get().max(s));
            s
        };
        if split::is_split(&c) {
            // Split levels: tokens, then symbols, in the output's slots.
            let first = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let t = match w {
                4 => split::decode_split(
                    &mut c,
                    alphabet,
                    out.as_chunks_mut::<4>().0,
                    parallel,
                    u32::to_le_bytes,
                    |b| first(b),
                )?,
                _ => split::decode_split(
                    &mut c,
                    alphabet,
                    out.as_chunks_mut::<8>().0,
                    parallel,
                    slot8,
                    |b| first(b),
                )?,
            };
            top.set(t);
        } else {
            match w {
                4 => decode_into::<4>(&mut c, width, alphabet, &mut out, parallel, |s| {
                    seen(s).to_le_bytes()
                })?,
                _ => decode_into::<8>(&mut c, width, alphabet, &mut out, parallel, |s| {
                    slot8(seen(s))
                })?,
            }
        }
        let max_sym = top.get() as usize;
        let rec = |k: u32, ch: usize, t: &mut [u8]| put(t, value(k, steps[ch]));
        if let (4, Some(t)) = (w, uniform_offset(&params.kind)) {
            // FLOAT with a uniform quantizer: computed in vector registers, which is cheaper
            // than a table even where the table is smaller than the channel (building an
            // entry costs more than mapping an element).
            map_uniform_f32(&mut out, per, steps, parallel, t);
        } else if (max_sym + 1) * w <= per * 4 {
            // A table of each channel's reconstructions, when smaller than the channel.
            match w {
                4 => map_channels_in_place::<4>(&mut out, per, max_sym, parallel, rec),
                _ => map_channels_in_place::<8>(&mut out, per, max_sym, parallel, rec),
            }
        } else {
            map_each_in_place(&mut out, w, per, rec);
        }
    } else if params.per_channel() {
        let mut syms = crate::error::try_zeroed(n, base)?;
        split::decode_levels(&mut c, width, alphabet, |s| s, &mut syms, parallel)?;
        let per = (n / params.steps.len()).max(1);
        let max_sym = syms.iter().copied().max().unwrap_or(0) as usize;
        if (max_sym + 1) * w <= per * 4 {
            // A table of each channel's reconstructions, when smaller than the channel.
            let steps = &params.steps;
            let rec = |k: u32, ch: usize, t: &mut [u8]| put(t, value(k, steps[ch]));
            map_channels::<2>(&mut out, &syms, per, max_sym, parallel, rec);
        } else {
            for (i, (o, &s)) in out.chunks_exact_mut(w).zip(&syms).enumerate() {
                put(o, value(s, params.steps[i / per]));
            }
        }
    } else {
        let step = params.steps.first().copied().unwrap_or(1.0);
        match w {
            2 => decode_into::<2>(&mut c, width, alphabet, &mut out, parallel, |s| {
                let mut b = [0u8; 2];
                put(&mut b, value(s, step));
                b
            })?,
            4 => decode_into::<4>(&mut c, width, alphabet, &mut out, parallel, |s| {
                let mut b = [0u8; 4];
                put(&mut b, value(s, step));
                b
            })?,
            _ => decode_into::<8>(&mut c, width, alphabet, &mut out, parallel, |s| {
                let mut b = [0u8; 8];
                put(&mut b, value(s, step));
                b
            })?,
        }
    }
    if !c.is_empty() {
        return Err(c.err(format!("{} bytes after the level stream", c.remaining())));
    }
    Ok(out)
}

/// An 8-byte element slot holding symbol `s` in its first 4 bytes (little-endian) until it
/// is reconstructed in place.
fn slot8(s: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&s.to_le_bytes());
    b
}

/// Writes a reconstructed value as one element of a float type (spec §7.6.6).
pub(crate) fn put_value(data_type: i32, o: &mut [u8], v: f64) {
    match data_type {
        dtype::DOUBLE => o.copy_from_slice(&v.to_le_bytes()),
        dtype::FLOAT16 => o.copy_from_slice(&float::f32_to_f16(v as f32).to_le_bytes()),
        dtype::BFLOAT16 => o.copy_from_slice(&float::f32_to_bf16(v as f32).to_le_bytes()),
        _ => o.copy_from_slice(&(v as f32).to_le_bytes()),
    }
}

/// Reconstructs f32 output element by element (small channels) from the symbols it holds
/// (u32 little-endian, in place) with the uniform formula of spec §7.6.3 written without
/// branches: `|q| = 0` gives +0, any other level `±(|q| + t)·Δ` rounded to f32, where t is 0
/// (midtread), −0.5 (midrise) or δ − 0.5 (dead zone). Bit for bit what
/// [`reconstruct`] gives for a finite positive step (negation commutes with the products
/// and the rounding). Channels in parallel when `parallel`.
fn map_uniform_f32(out: &mut [u8], per: usize, steps: &[f32], parallel: bool, t: f64) {
    let (groups, _) = out.as_chunks_mut::<4>();
    let work = |(o, &step): (&mut [[u8; 4]], &f32)| uniform_f32(o, step as f64, t);
    if parallel && groups.len() >= PARALLEL_MIN {
        groups.par_chunks_mut(per).zip(steps.par_iter()).for_each(work);
    } else {
        groups.chunks_mut(per).zip(steps).for_each(work);
    }
}

/// The t of [`map_uniform_f32`] for a uniform quantizer; `None` for the others.
pub(crate) fn uniform_offset(kind: &Kind) -> Option<f64> {
    match *kind {
        Kind::Midtread => Some(0.0),
        Kind::Midrise => Some(-0.5),
        Kind::DeadZone { delta } => Some(delta as f64 - 0.5),
        _ => None,
    }
}

/// One channel of [`map_uniform_f32`]; the AVX2 build of the same loop where the processor
/// has it (same operations, so the same bits).
fn uniform_f32(o: &mut [[u8; 4]], step: f64, t: f64) {
    #[cfg(target_arch = "x86_64")]
    if o.len() >= 8 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked above).
        #[allow(unsafe_code)]
        unsafe {
            uniform_f32_avx2(o, step, t)
        };
        return;
    }
    uniform_f32_loop(o, step, t);
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn uniform_f32_avx2(o: &mut [[u8; 4]], step: f64, t: f64) {
    uniform_f32_loop(o, step, t);
}

#[inline(always)]
fn uniform_f32_loop(o: &mut [[u8; 4]], step: f64, t: f64) {
    for o in o.iter_mut() {
        let s = u32::from_le_bytes(*o);
        // |q| of the zigzag symbol (< 2^30 by spec §7.6.2, so exact as i32 and f64).
        let m = (s >> 1) + (s & 1);
        let v = ((m as i32 as f64 + t) * step) as f32;
        let bits = if m == 0 { 0 } else { v.to_bits() ^ (s << 31) };
        *o = bits.to_le_bytes();
    }
}

/// Reconstructs each element of `w` bytes from the symbol it holds (u32, first 4 bytes), on
/// one thread (the general case: μ-law, minifloat with large tables).
fn map_each_in_place(out: &mut [u8], w: usize, per: usize, rec: impl Fn(u32, usize, &mut [u8])) {
    for (i, o) in out.chunks_exact_mut(w).enumerate() {
        let s = u32::from_le_bytes([o[0], o[1], o[2], o[3]]);
        rec(s, i / per, o);
    }
}

/// As `map_channels`, from the symbols the output holds (u32, first 4 bytes of each group).
fn map_channels_in_place<const N: usize>(
    out: &mut [u8],
    per: usize,
    max_sym: usize,
    parallel: bool,
    rec: impl Fn(u32, usize, &mut [u8]) + Sync,
) {
    let (groups, _) = out.as_chunks_mut::<N>();
    let work = |table: &mut Vec<[u8; N]>, (ch, o): (usize, &mut [[u8; N]])| {
        for (k, t) in table.iter_mut().enumerate() {
            rec(k as u32, ch, t);
        }
        for o in o.iter_mut() {
            let s = u32::from_le_bytes([o[0], o[1], o[2], o[3]]);
            *o = table[s as usize];
        }
    };
    if parallel && groups.len() >= PARALLEL_MIN {
        groups
            .par_chunks_mut(per)
            .enumerate()
            .for_each_init(|| vec![[0u8; N]; max_sym + 1], work);
    } else {
        let mut table = vec![[0u8; N]; max_sym + 1];
        groups
            .chunks_mut(per)
            .enumerate()
            .for_each(|x| work(&mut table, x));
    }
}

/// Tensors with fewer elements reconstruct on one thread.
const PARALLEL_MIN: usize = 1 << 16;

/// Writes `table_ch[sym]` for every element, channel by channel (`per` elements each);
/// channels in parallel when `parallel`.
fn map_channels<const N: usize>(
    out: &mut [u8],
    syms: &[u32],
    per: usize,
    max_sym: usize,
    parallel: bool,
    rec: impl Fn(u32, usize, &mut [u8]) + Sync,
) {
    let (groups, _) = out.as_chunks_mut::<N>();
    let work = |table: &mut Vec<[u8; N]>, (ch, (o, s)): (usize, (&mut [[u8; N]], &[u32]))| {
        for (k, t) in table.iter_mut().enumerate() {
            rec(k as u32, ch, t);
        }
        for (o, &s) in o.iter_mut().zip(s) {
            *o = table[s as usize];
        }
    };
    if parallel && syms.len() >= PARALLEL_MIN {
        groups
            .par_chunks_mut(per)
            .zip(syms.par_chunks(per))
            .enumerate()
            .for_each_init(|| vec![[0u8; N]; max_sym + 1], work);
    } else {
        let mut table = vec![[0u8; N]; max_sym + 1];
        groups
            .chunks_mut(per)
            .zip(syms.chunks(per))
            .enumerate()
            .for_each(|x| work(&mut table, x));
    }
}

/// Decodes a stream straight into byte groups of N (reconstruction fused into the table).
fn decode_into<const N: usize>(
    c: &mut Cursor<'_>,
    width: usize,
    alphabet: u64,
    out: &mut [u8],
    parallel: bool,
    map: impl Fn(u32) -> [u8; N],
) -> Result<()> {
    let (groups, _) = out.as_chunks_mut::<N>();
    split::decode_levels(c, width, alphabet, map, groups, parallel)
}

/// Histogram of the symbols (zigzag levels or minifloat codes) of a quantized payload, for
/// reports: `(symbol, count)` sorted by symbol.
pub fn level_histogram(
    params: &[u8],
    dims: &[u64],
    elements: u64,
    payload: &[u8],
) -> Result<Vec<(u32, u64)>> {
    // Residual levels (spec §14.6): the histogram of the residuals, after the base tensor's
    // number.
    let (params, flags) = residual::strip_flags(params);
    let residual = flags.residual;
    if flags.low_rank || flags.base_steps {
        return Err(Error::Unsupported {
            detail: "the level histogram of residuals with a low-rank term or steps from the \
                     base needs the base (residual::symbols)"
                .into(),
        });
    }
    let p = QuantParams::parse(&params, 0, dims)?;
    let mut c = Cursor::new(payload, 0, FormatRule::Payload);
    if residual {
        c.varint("base tensor number")?;
    }
    if let Kind::MuLaw { .. } = p.kind {
        let k = c.varint_max((c.remaining() / 4) as u64, "mu-law table size")?;
        c.take(4 * (k + 1), "mu-law table")?;
    }
    let width = c.u8("symbol width")? as usize;
    if !matches!(width, 1 | 2 | 4) {
        return Err(c.err(format!("symbol width {width}")));
    }
    let n = usize::try_from(elements).map_err(|_| c.err("too many elements"))?;
    let mut syms = vec![0u32; n];
    if residual {
        decode_stream(&mut c, width, u32::MAX as u64 + 1, |s| s, &mut syms, false)?;
    } else {
        split::decode_levels(&mut c, width, u32::MAX as u64 + 1, |s| s, &mut syms, false)?;
    }
    Ok(crate::entropy::histogram(&syms))
}

/// The levels of a coding-3 payload of a uniform quantizer (no μ-law table, no residual
/// flag): what an encoder needs to code them again as residuals (spec §14.6).
pub fn decode_levels(n: usize, payload: &[u8]) -> Result<Vec<i64>> {
    let mut c = Cursor::new(payload, 0, FormatRule::Payload);
    let width = c.u8("symbol width")? as usize;
    if !matches!(width, 1 | 2 | 4) {
        return Err(c.err(format!("symbol width {width}")));
    }
    let mut syms = crate::error::try_zeroed::<u32>(n, 0)?;
    split::decode_levels(&mut c, width, 2 * MAX_LEVEL as u64 + 1, |s| s, &mut syms, true)?;
    Ok(syms.into_iter().map(unzigzag).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branch-free per-channel kernel gives the bits of [`reconstruct`] for every uniform
    /// kind, both signs, level 0, the largest level, tiny and huge steps (overflow to ±inf),
    /// channels shorter and longer than a vector.
    #[test]
    fn uniform_kernel_matches_reconstruct() {
        let kinds = [
            Kind::Midtread,
            Kind::Midrise,
            Kind::DeadZone { delta: 0.5 },
            Kind::DeadZone { delta: 0.7 },
            Kind::DeadZone { delta: 0.0 },
        ];
        let steps = [1e-3f32, 0.37, f32::MIN_POSITIVE / 8.0, 3e38, 1.0];
        let mut syms: Vec<u32> = (0..300).collect();
        syms.extend([2 * MAX_LEVEL as u32, 2 * MAX_LEVEL as u32 - 1, 12345, 1 << 20]);
        for per in [1, 3, 9, 17, syms.len()] {
            let n = per * steps.len().min(syms.len().div_ceil(per));
            for kind in &kinds {
                let t = uniform_offset(kind).expect("a uniform kind");
                let mut out: Vec<u8> = (0..n)
                    .flat_map(|i| syms[i % syms.len()].to_le_bytes())
                    .collect();
                let st = &steps[..n / per];
                map_uniform_f32(&mut out, per, st, false, t);
                for (i, o) in out.chunks_exact(4).enumerate() {
                    let s = syms[i % syms.len()];
                    let want = reconstruct(kind, unzigzag(s), st[i / per]) as f32;
                    let got = f32::from_le_bytes([o[0], o[1], o[2], o[3]]);
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{kind:?} symbol {s} step {} per {per}: {got} vs {want}",
                        st[i / per]
                    );
                }
            }
        }
    }
}
