//! Split levels (stream mode 8, spec §7.3.7): each symbol as a *token*, coded with rANS like
//! any stream, plus raw bits. Symbols below `2^k` are their own token; a larger symbol `s`
//! with its highest set bit at `n` keeps that bit and the `m` bits below it in its token and
//! sends its `n − m` low bits as they are. Fine steps spread a tensor's levels over thousands
//! of values that each occur a few times, so the frequency model of modes 2 to 7 lists
//! thousands of symbols; the tokens need a few dozen, and the low bits of a large level are
//! close to uniform, so sending them raw costs little. Only quantized levels use it (§7.6.2).
use rayon::prelude::*;

use super::{decode_stream, encode_stream, StreamOptions};
use crate::bytes::{put_varint, Cursor};
use crate::error::{Error, FormatRule, Result};

/// The stream mode of split levels.
pub const MODE_SPLIT: u8 = 8;

/// Largest `k` (direct symbols `0 .. 2^k`) a stream may declare.
pub const MAX_DIRECT_BITS: u8 = 24;

/// Tokens per block whose raw bits are decoded together (blocks run on every core).
const BLOCK: usize = 1 << 16;

/// `(token, raw bit count, raw bits)` of symbol `s`.
#[inline]
pub fn token(s: u32, k: u32, m: u32) -> (u32, u32, u32) {
    if s < 1 << k {
        return (s, 0, 0);
    }
    let n = 31 - s.leading_zeros();
    let e = n - m;
    let t = (1 << k) + ((n - k) << m) + ((s >> e) & ((1 << m) - 1));
    (t, e, s & ((1u32 << e) - 1))
}

/// The token alphabet for symbols below `alphabet` (at most 2^32): one more than the token of
/// `alphabet − 1`.
pub fn token_alphabet(alphabet: u64, k: u32, m: u32) -> u64 {
    let top = alphabet.saturating_sub(1).min(u32::MAX as u64) as u32;
    token(top, k, m).0 as u64 + 1
}

/// The width of the token stream's stored symbols: the narrowest of 1, 2, 4 bytes that holds
/// every token below `alphabet`.
pub fn token_width(alphabet: u64) -> usize {
    match alphabet {
        0..=256 => 1,
        257..=65536 => 2,
        _ => 4,
    }
}

/// Estimated bits of `symbols` split with `k` and each of `ms`, in one pass: the tokens'
/// order-0 entropy, their model (about 10 bits per distinct token, as the allocation counts)
/// and the raw bits.
pub fn estimate_bits<const M: usize>(symbols: &[u32], k: u32, ms: [u32; M]) -> [f64; M] {
    let mut counts = [(); M].map(|_| vec![0u64; 256]);
    let mut raw = [0u64; M];
    for &s in symbols {
        for ((counts, raw), &m) in counts.iter_mut().zip(&mut raw).zip(&ms) {
            let (t, e, _) = token(s, k, m);
            if t as usize >= counts.len() {
                counts.resize(t as usize + 1, 0);
            }
            counts[t as usize] += 1;
            *raw += e as u64;
        }
    }
    let n = symbols.len() as f64;
    let mut bits = raw.map(|r| r as f64);
    for (bits, counts) in bits.iter_mut().zip(&counts) {
        for &c in counts.iter().filter(|&&c| c > 0) {
            *bits += -(c as f64) * (c as f64 / n).log2() + 10.0;
        }
    }
    bits
}

/// Appends mode 8 for `symbols` (each below `alphabet`): `k`, `m`, the token stream (any of
/// modes 0 to 7, chosen as for any stream with `opt`'s chunks, segments and wide layout), the
/// raw bytes' count and the raw bits (least significant first).
pub fn encode(
    symbols: &[u32],
    alphabet: u64,
    k: u8,
    m: u8,
    opt: StreamOptions,
    out: &mut Vec<u8>,
) -> Result<()> {
    let (kk, mm) = (k as u32, m as u32);
    let mut tokens = Vec::with_capacity(symbols.len());
    let mut raw = Vec::new();
    let (mut acc, mut filled) = (0u64, 0u32);
    for &s in symbols {
        let (t, e, v) = token(s, kk, mm);
        tokens.push(t);
        acc |= (v as u64) << filled;
        filled += e;
        while filled >= 8 {
            raw.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        raw.push(acc as u8);
    }
    let width = token_width(token_alphabet(alphabet, kk, mm));
    out.push(MODE_SPLIT);
    out.push(k);
    out.push(m);
    encode_stream(
        &tokens,
        StreamOptions {
            width,
            extra: opt.extra + raw.len(),
            ..opt
        },
        out,
    )?;
    put_varint(out, raw.len() as u64);
    out.extend_from_slice(&raw);
    Ok(())
}

/// Decodes a level stream (spec §7.6.2): mode 8 here, any other mode by [`decode_stream`].
pub fn decode_levels<T: Copy + Send + Sync + 'static>(
    c: &mut Cursor<'_>,
    width: usize,
    alphabet: u64,
    map: impl Fn(u32) -> T,
    out: &mut [T],
    parallel: bool,
) -> Result<()> {
    if c.peek_u8() != Some(MODE_SPLIT) {
        return decode_stream(c, width, alphabet, map, out, parallel);
    }
    let mut symbols = crate::error::try_zeroed::<u32>(out.len(), c.offset())?;
    decode_split(c, alphabet, &mut symbols, parallel, |s| s, |&s| s)?;
    for (o, &s) in out.iter_mut().zip(&symbols) {
        *o = map(s);
    }
    Ok(())
}

/// Whether the level stream at `c` is split levels (mode 8).
pub fn is_split(c: &Cursor<'_>) -> bool {
    c.peek_u8() == Some(MODE_SPLIT)
}

/// Decodes a mode-8 stream into `slots`, each holding its symbol as `to(symbol)` (`from`
/// reads it back): the tokens go into the slots first, then each block of them turns into
/// symbols in place, from its own bit offset, on every core when `parallel`. Returns the
/// largest symbol.
pub fn decode_split<T: Copy + Send + Sync + 'static>(
    c: &mut Cursor<'_>,
    alphabet: u64,
    slots: &mut [T],
    parallel: bool,
    to: impl Fn(u32) -> T + Sync,
    from: impl Fn(&T) -> u32 + Sync,
) -> Result<u32> {
    let at = c.offset();
    c.u8("stream mode")?;
    let k = c.u8("split direct bits k")?;
    let m = c.u8("split token mantissa bits m")?;
    if !(1..=MAX_DIRECT_BITS).contains(&k) || m > k {
        return Err(Error::format(
            FormatRule::Payload,
            at + 1,
            format!("split levels with k = {k}, m = {m} (1 <= k <= 24, m <= k)"),
        ));
    }
    let (k, m) = (k as u32, m as u32);
    let tokens_alphabet = token_alphabet(alphabet, k, m);
    decode_stream(
        c,
        token_width(tokens_alphabet),
        tokens_alphabet,
        &to,
        slots,
        parallel,
    )?;
    let raws = Raws {
        alphabet,
        parallel,
    };
    // Each token's raw bit count and the high bits of its symbol: from a table indexed
    // without bounds checks when the tokens are below 256 (the encoder's k and m), else
    // computed.
    if tokens_alphabet <= 256 {
        let mut table = [(0u32, 0u64); 256];
        for (t, x) in table.iter_mut().enumerate().take(tokens_alphabet as usize) {
            *x = split_of(t as u32, k, m);
        }
        raws.resolve(k, m, c, slots, &to, &from, |t| table[t as usize & 255])
    } else {
        raws.resolve(k, m, c, slots, &to, &from, |t| split_of(t, k, m))
    }
}

/// The raw-bit half of [`decode_split`].
struct Raws {
    alphabet: u64,
    parallel: bool,
}

impl Raws {
    /// Reads the raw bytes after the tokens in `slots` and turns each token into its symbol;
    /// `of(token)` is its raw bit count and high bits. Returns the largest symbol.
    ///
    /// Several blocks decoded in parallel each need the offset of their first raw bit, so
    /// their raw bits are counted first; otherwise the slots are turned into symbols in one
    /// pass that counts them as it goes. Either way the errors come in the same order: the
    /// raw byte count against the tokens', the raw bytes present, their padding, a symbol
    /// over the alphabet.
    #[allow(clippy::too_many_arguments)]
    fn resolve<T: Copy + Send + Sync>(
        &self,
        k: u32,
        m: u32,
        c: &mut Cursor<'_>,
        slots: &mut [T],
        to: &(impl Fn(u32) -> T + Sync),
        from: &(impl Fn(&T) -> u32 + Sync),
        of: impl Fn(u32) -> (u32, u64) + Sync,
    ) -> Result<u32> {
        let alphabet = self.alphabet;
        let count_at = c.offset();
        let len = c.varint("split raw byte count")?;
        let count_error = |total: u64| {
            Error::format(
                FormatRule::Payload,
                count_at,
                format!(
                    "split raw byte count {len}, but the tokens carry {total} bits ({} bytes)",
                    total.div_ceil(8)
                ),
            )
        };
        // Symbols from the tokens of `block`, its raw bits from bit `start` of `raw` (bits
        // past its end read as 0): the bit after its last, and its largest symbol.
        let turn = |raw: &[u8], block: &mut [T], start: u64| -> (u64, u64) {
            let (mut pos, mut top) = (start, 0u64);
            for slot in block.iter_mut() {
                let (e, high) = of(from(slot));
                let s = high | bits_at(raw, pos, e) as u64;
                pos += e as u64;
                top = top.max(s);
                *slot = to(s as u32);
            }
            (pos, top)
        };
        let blocks = slots.len().div_ceil(BLOCK);
        let (raw, raw_at, total, top) = if self.parallel && blocks > 1 {
            let count_bits = |b: &[T]| -> u64 { b.iter().map(|t| of(from(t)).0 as u64).sum() };
            let per_block: Vec<u64> = slots.par_chunks(BLOCK).map(count_bits).collect();
            let total: u64 = per_block.iter().sum();
            if len != total.div_ceil(8) {
                return Err(count_error(total));
            }
            let raw_at = c.offset();
            let raw = c.take(len as usize, "split raw bits")?;
            let mut starts = Vec::with_capacity(blocks);
            let mut pos = 0u64;
            for b in &per_block {
                starts.push(pos);
                pos += b;
            }
            let tops: Vec<u64> = slots
                .chunks_mut(BLOCK)
                .zip(&starts)
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|(block, &start)| turn(raw, block, start).1)
                .collect();
            (raw, raw_at, total, tops.into_iter().max().unwrap_or(0))
        } else {
            // The raw bits as far as they are there, read before the count is checked.
            let raw_at = c.offset();
            let present = c.clone().take(c.remaining().min(len as usize), "split raw bits")?;
            let (total, top) = turn(present, slots, 0);
            if len != total.div_ceil(8) {
                return Err(count_error(total));
            }
            let raw = c.take(len as usize, "split raw bits")?;
            (raw, raw_at, total, top)
        };
        if !total.is_multiple_of(8) && raw.last().is_some_and(|&b| b >> (total % 8) != 0) {
            return Err(Error::format(
                FormatRule::Payload,
                raw_at + len - 1,
                "split raw bits: padding bits after the last symbol's are not 0",
            ));
        }
        if top >= alphabet {
            // The first symbol over the alphabet, in stream order, and where its raw bits are.
            let mut pos = 0u64;
            for slot in slots.iter() {
                let s = from(slot) as u64;
                if s >= alphabet {
                    return Err(Error::format(
                        FormatRule::Payload,
                        raw_at + pos / 8,
                        format!("split level: symbol {s} outside the alphabet of {alphabet}"),
                    ));
                }
                pos += raw_bit_count(s as u32, k, m) as u64;
            }
        }
        Ok(top as u32)
    }
}

/// How many raw bits symbol `s` takes.
fn raw_bit_count(s: u32, k: u32, m: u32) -> u32 {
    if s < 1 << k {
        0
    } else {
        31 - s.leading_zeros() - m
    }
}

/// Token `t`'s raw bit count and its symbol's bits above them (`t` itself, and 0 raw bits,
/// for a direct token).
fn split_of(t: u32, k: u32, m: u32) -> (u32, u64) {
    if t < 1 << k {
        return (0, t as u64);
    }
    let j = t - (1 << k);
    let e = k + (j >> m) - m;
    (e, (((1u64 << m) | (j & ((1 << m) - 1)) as u64) << e))
}

/// The `e` (at most 31) bits of `raw` from bit `pos` on, least significant first; bits past
/// the end read as 0.
#[inline]
fn bits_at(raw: &[u8], pos: u64, e: u32) -> u32 {
    let byte = (pos >> 3) as usize;
    let word = match raw.get(byte..byte + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        Some(b) => u64::from_le_bytes(b),
        None => {
            let mut w = [0u8; 8];
            if let Some(b) = raw.get(byte..) {
                let n = b.len().min(8);
                w[..n].copy_from_slice(&b[..n]);
            }
            u64::from_le_bytes(w)
        }
    };
    ((word >> (pos & 7)) & ((1u64 << e) - 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> StreamOptions {
        StreamOptions {
            width: 4,
            chunk: 4096,
            segment: 0,
            wide: true,
            extra: 0,
        }
    }

    #[test]
    fn tokens_round_trip_every_boundary() {
        for (k, m) in [(1, 0), (1, 1), (4, 2), (4, 0), (8, 3), (24, 24)] {
            for s in (0..70_000u32).chain([u32::MAX / 2 - 1, (1 << 31) - 2, u32::MAX]) {
                let (t, e, v) = token(s, k, m);
                assert_eq!(split_of(t, k, m), (e, (s as u64) & !((1u64 << e) - 1)));
                assert!((t as u64) < token_alphabet(u32::MAX as u64 + 1, k, m));
                if t >= 1 << k {
                    let j = t - (1 << k);
                    let top = (1 << m) | (j & ((1 << m) - 1));
                    assert_eq!(((top as u64) << e) | v as u64, s as u64, "k {k} m {m} s {s}");
                } else {
                    assert_eq!(t, s);
                }
            }
        }
    }

    fn laplace(n: usize, scale: f64) -> Vec<u32> {
        let mut x = 0x1234_5678_9abc_def0u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                let q = (-scale * u.signum() * (1.0 - 2.0 * u.abs()).max(1e-300).ln()).round();
                let q = q as i64;
                if q >= 0 {
                    2 * q as u32
                } else {
                    (-2 * q - 1) as u32
                }
            })
            .collect()
    }

    #[test]
    fn split_streams_round_trip() {
        for (n, scale) in [(0usize, 1.0), (1, 5.0), (1000, 300.0), (200_000, 3000.0)] {
            let s = laplace(n, scale);
            for (k, m) in [(4u8, 2u8), (1, 0), (8, 8)] {
                let mut buf = Vec::new();
                encode(&s, (1 << 31) - 1, k, m, opts(), &mut buf).unwrap();
                for parallel in [false, true] {
                    let mut out = vec![0u32; n];
                    let mut c = Cursor::new(&buf, 0, FormatRule::Payload);
                    decode_levels(&mut c, 4, (1 << 31) - 1, |x| x, &mut out, parallel).unwrap();
                    assert_eq!(out, s);
                    assert!(c.is_empty());
                }
            }
        }
    }

    #[test]
    fn split_streams_are_smaller_on_wide_levels() {
        let s = laplace(100_000, 2000.0);
        let (mut plain, mut split) = (Vec::new(), Vec::new());
        encode_stream(&s, opts(), &mut plain).unwrap();
        encode(&s, (1 << 31) - 1, 4, 2, opts(), &mut split).unwrap();
        assert!(split.len() < plain.len() * 99 / 100, "{} vs {}", split.len(), plain.len());
    }

    /// Blocks decoded in parallel (their raw bits counted first) and one pass over them all
    /// accept the same streams and reject the others with the same error.
    #[test]
    fn both_ways_of_resolving_agree_on_errors() {
        let s = laplace(200_000, 3000.0);
        let max = *s.iter().max().unwrap() as u64;
        let mut buf = Vec::new();
        encode(&s, max + 1, 4, 2, opts(), &mut buf).unwrap();
        let decode = |b: &[u8], alphabet: u64, parallel: bool| {
            let mut out = vec![0u32; s.len()];
            let mut c = Cursor::new(b, 0, FormatRule::Payload);
            decode_levels(&mut c, 4, alphabet, |x| x, &mut out, parallel)
                .map(|_| out)
                .map_err(|e| e.to_string())
        };
        let mut cases: Vec<(Vec<u8>, u64)> = vec![(buf.clone(), max + 1), (buf.clone(), max)];
        cases.push((buf.clone(), s[150_000] as u64));
        for cut in [1, 7, buf.len() / 3] {
            cases.push((buf[..buf.len() - cut].to_vec(), max + 1));
        }
        let mut b = buf.clone();
        let last = b.len() - 1;
        b[last] |= 0x80;
        cases.push((b, max + 1));
        for (b, alphabet) in &cases {
            assert_eq!(decode(b, *alphabet, true), decode(b, *alphabet, false));
        }
        assert_eq!(decode(&buf, max + 1, true).unwrap(), s);
        assert!(decode(&buf, max, false).is_err());
    }

    #[test]
    fn bad_split_streams_are_rejected() {
        let s = laplace(5000, 500.0);
        let mut buf = Vec::new();
        encode(&s, (1 << 31) - 1, 4, 2, opts(), &mut buf).unwrap();
        let decode = |b: &[u8], alphabet: u64| {
            let mut out = vec![0u32; s.len()];
            let mut c = Cursor::new(b, 0, FormatRule::Payload);
            decode_levels(&mut c, 4, alphabet, |x| x, &mut out, true)
        };
        assert!(decode(&buf, (1 << 31) - 1).is_ok());
        // k, m out of range.
        for (k, m) in [(0u8, 0u8), (25, 2), (4, 5)] {
            let mut b = buf.clone();
            b[1] = k;
            b[2] = m;
            assert!(decode(&b, (1 << 31) - 1).is_err());
        }
        // A symbol over a smaller alphabet.
        assert!(decode(&buf, 64).is_err());
        // Cut anywhere.
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut], (1 << 31) - 1).is_err());
        }
        // A nonzero padding bit, or a wrong byte count, when the last byte is partial.
        let mut b = buf.clone();
        let last = b.len() - 1;
        b[last] |= 0x80;
        let r = decode(&b, (1 << 31) - 1);
        let total_bits: u64 = s.iter().map(|&x| token(x, 4, 2).1 as u64).sum();
        if !total_bits.is_multiple_of(8) {
            assert!(r.is_err());
        }
    }
}
