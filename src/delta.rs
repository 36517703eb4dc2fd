//! Integer differences (spec §14.7, inner coding 3): a float tensor of an update kept without
//! loss, coded as the differences of its values' ordered integer keys from those of its base
//! place. A fine-tune moves a bias by a few units of its last mantissa bits kept (after
//! `--fine-bits`, by a few hundred units of 2⁻¹² of its value): the difference of the keys is a
//! small integer, where the XOR of the bytes leaves every bit below the highest changed one
//! looking random. Keys order the values: `m` for a sign bit clear and `−m − 1` for a sign
//! bit set, `m` the magnitude bits shifted right by `s` (so +0 and −0 keep their own keys, and
//! a value crossing zero moves by a small difference too).
use crate::bytes::Cursor;
use crate::error::{Error, FormatRule, Result};
use crate::onnx::dtype;
use crate::quant::{unzigzag, zigzag, MAX_LEVEL};

/// The inner coding byte of integer differences in a difference record (spec §14.7).
pub const INNER: u8 = 3;

/// Bits of an element of the types integer differences apply to (FLOAT: 32; FLOAT16 and
/// BFLOAT16: 16); `None` for the others.
pub fn bits(data_type: i32) -> Option<u32> {
    match data_type {
        dtype::FLOAT => Some(32),
        dtype::FLOAT16 | dtype::BFLOAT16 => Some(16),
        _ => None,
    }
}

/// Element `j`'s bits from little-endian canonical bytes of `b / 8` bytes per element.
fn element(data: &[u8], j: usize, b: u32) -> u32 {
    if b == 32 {
        u32::from_le_bytes([data[4 * j], data[4 * j + 1], data[4 * j + 2], data[4 * j + 3]])
    } else {
        u16::from_le_bytes([data[2 * j], data[2 * j + 1]]) as u32
    }
}

/// The ordered key of a value's bits `x` of `b` bits, its magnitude shifted right by `s`.
fn key(x: u32, b: u32, s: u32) -> i64 {
    let m = ((x & ((1u32 << (b - 1)) - 1)) >> s) as i64;
    if x >> (b - 1) != 0 {
        -m - 1
    } else {
        m
    }
}

/// The bits of key `k` (inverse of [`key`]); `None` outside the keys of `b`-bit values.
fn unkey(k: i64, b: u32, s: u32) -> Option<u32> {
    let top = 1i64 << (b - 1 - s);
    if k >= top || k < -top {
        return None;
    }
    Some(if k >= 0 {
        (k as u32) << s
    } else {
        (1u32 << (b - 1)) | (((-k - 1) as u32) << s)
    })
}

/// The payload after the inner coding byte (`s`, the symbol width, the symbol stream) of
/// `data` against the base's canonical bytes `base` (same type and length); `None` when the
/// type has no integer differences or a difference is outside the level range.
pub fn encode(data_type: i32, data: &[u8], base: &[u8], wide: bool) -> Result<Option<Vec<u8>>> {
    let Some(b) = bits(data_type) else {
        return Ok(None);
    };
    if data.len() != base.len() || data.is_empty() {
        return Ok(None);
    }
    let n = data.len() / (b as usize / 8);
    // The shift: the magnitude bits below it are 0 in every value of the tensor.
    let mask = (1u32 << (b - 1)) - 1;
    let low = (0..n).fold(0u32, |a, j| a | (element(data, j, b) & mask));
    let s = low.trailing_zeros().min(b - 2);
    let mut symbols = Vec::with_capacity(n);
    for j in 0..n {
        let d = key(element(data, j, b), b, s) - key(element(base, j, b), b, s);
        if d.abs() > MAX_LEVEL {
            return Ok(None);
        }
        symbols.push(zigzag(d));
    }
    let params = crate::quant::QuantParams {
        kind: crate::quant::Kind::Midtread,
        steps: vec![1.0],
    };
    let mut out = vec![s as u8];
    let chunk = crate::entropy::DEFAULT_CHUNK;
    out.extend(crate::quant::encode_symbols(
        &symbols, &params, chunk, 0, wide, wide, None,
    )?);
    Ok(Some(out))
}

/// Decodes the payload of integer differences `c` (after the inner coding byte) against the
/// base's canonical bytes `base` (spec §14.7): the record's canonical bytes.
pub fn decode(data_type: i32, base: &[u8], c: &mut Cursor<'_>, parallel: bool) -> Result<Vec<u8>> {
    let at = c.offset();
    let Some(b) = bits(data_type) else {
        return Err(Error::format(
            FormatRule::Payload,
            at - 1,
            format!(
                "integer differences (inner coding 3) of a {} tensor (FLOAT, FLOAT16 or BFLOAT16 \
                 expected)",
                dtype::name(data_type)
            ),
        ));
    };
    let s = c.u8("shift")? as u32;
    if s > b - 2 {
        return Err(Error::format(
            FormatRule::Payload,
            at,
            format!("shift {s} of {b}-bit values (at most {})", b - 2),
        ));
    }
    let width_at = c.offset();
    let width = crate::quant::read_width(c)?;
    let w = b as usize / 8;
    let n = base.len() / w;
    let mut syms = crate::error::try_zeroed::<u32>(n, width_at)?;
    crate::entropy::split::decode_levels(
        c,
        width,
        2 * MAX_LEVEL as u64 + 1,
        |x| x,
        &mut syms,
        parallel,
    )?;
    let mut out = crate::error::try_zeroed::<u8>(base.len(), at)?;
    for (j, &x) in syms.iter().enumerate() {
        let k = key(element(base, j, b), b, s) + unzigzag(x);
        let Some(v) = unkey(k, b, s) else {
            return Err(Error::format(
                FormatRule::Payload,
                width_at,
                format!(
                    "element {j}: key {k} (the base's plus the difference) is outside the keys \
                     of {b}-bit values shifted by {s}"
                ),
            ));
        };
        if b == 32 {
            out[4 * j..4 * j + 4].copy_from_slice(&v.to_le_bytes());
        } else {
            out[2 * j..2 * j + 2].copy_from_slice(&(v as u16).to_le_bytes());
        }
    }
    if !c.is_empty() {
        return Err(c.err(format!("{} bytes after the differences", c.remaining())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_values_and_invert() {
        let xs = [-3.5f32, -1.0, -0.0, 0.0, 1e-40, 0.25, 7.0];
        let keys: Vec<i64> = xs.iter().map(|x| key(x.to_bits(), 32, 0)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for x in xs {
            assert_eq!(unkey(key(x.to_bits(), 32, 0), 32, 0), Some(x.to_bits()));
        }
        assert_eq!(unkey(1 << 31, 32, 0), None);
        assert_eq!(unkey(-(1 << 31) - 1, 32, 0), None);
        // Shifted: values whose low bits are 0 come back exactly.
        let y = f32::from_bits(0xbf80_0000);
        assert_eq!(unkey(key(y.to_bits(), 32, 11), 32, 11), Some(y.to_bits()));
    }

    #[test]
    fn round_trips_floats_and_halves() {
        let base: Vec<f32> = (0..3000).map(|i| ((i as f32) * 0.37).sin() * 0.1).collect();
        let new: Vec<f32> = base
            .iter()
            .enumerate()
            .map(|(i, x)| f32::from_bits((x * (1.0 + (i % 7) as f32 * 1e-3)).to_bits() & !0x7ff))
            .collect();
        let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (a, b) = (bytes(&new), bytes(&base));
        let p = encode(dtype::FLOAT, &a, &b, true).unwrap().unwrap();
        assert_eq!(p[0], 11, "the shift of values rounded to 12 mantissa bits");
        let mut c = Cursor::new(&p, 100, FormatRule::Payload);
        assert_eq!(decode(dtype::FLOAT, &b, &mut c, false).unwrap(), a);
        // FLOAT16 bytes, differences across zero.
        let h: Vec<u8> = (0..2000u16).flat_map(|i| (i ^ 0x8000).to_le_bytes()).collect();
        let g: Vec<u8> = (0..2000u16).flat_map(|i| (i + 3).to_le_bytes()).collect();
        let p = encode(dtype::FLOAT16, &g, &h, false).unwrap().unwrap();
        let mut c = Cursor::new(&p, 0, FormatRule::Payload);
        assert_eq!(decode(dtype::FLOAT16, &h, &mut c, true).unwrap(), g);
        assert!(encode(dtype::DOUBLE, &a, &b, true).unwrap().is_none());
    }

    #[test]
    fn rejects_bad_shift_keys_and_trailing_bytes() {
        let base = f32::MAX.to_le_bytes().repeat(4);
        let err = |p: &[u8]| {
            let mut c = Cursor::new(p, 0, FormatRule::Payload);
            decode(dtype::FLOAT, &base, &mut c, false).unwrap_err().to_string()
        };
        assert!(err(&[31, 1, 1, 0]).contains("shift 31"), "{}", err(&[31, 1, 1, 0]));
        // Every key moved up by 2^30 - 1 from the largest finite value's: past 2^31 - 1.
        let mut p = vec![0, 4, 1];
        crate::bytes::put_varint(&mut p, zigzag(MAX_LEVEL) as u64);
        assert!(err(&p).contains("outside the keys"), "{}", err(&p));
        // A constant stream of difference 0, then a stray byte.
        assert!(err(&[0, 1, 1, 0, 9]).contains("after the differences"));
    }
}
