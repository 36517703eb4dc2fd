//! The probability model of a symbol stream (spec §7.2): the sorted list of symbols that
//! occur and their integer frequencies at precision `PRECISION` bits, summing to
//! `2^PRECISION`, every frequency at least 1.
use crate::bytes::{put_varint, varint_len, Cursor};
use crate::error::Result;

/// Frequencies sum to `1 << PRECISION` (spec §7.2).
pub const PRECISION: u32 = 16;
pub const TOTAL: u32 = 1 << PRECISION;

/// A static model over an ordered set of symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreqModel {
    /// Distinct symbols, strictly ascending.
    pub symbols: Vec<u32>,
    /// Frequency of each symbol; each >= 1, total `TOTAL`.
    pub freqs: Vec<u32>,
}

impl FreqModel {
    /// Quantizes empirical counts (symbol, count>0), sorted by symbol, to `PRECISION` bits.
    /// Returns `None` when there are fewer than 2 or more than `TOTAL` symbols (the caller then
    /// uses a constant or stored stream). Encoder-side only: a decoder reads the frequencies.
    pub fn from_counts(counts: &[(u32, u64)]) -> Option<FreqModel> {
        let n = counts.len();
        if n < 2 || n > TOTAL as usize {
            return None;
        }
        let total: u64 = counts.iter().map(|c| c.1).sum();
        let mut freqs: Vec<u32> = counts
            .iter()
            .map(|&(_, c)| {
                ((c as u128 * TOTAL as u128 + total as u128 / 2) / total as u128).max(1) as u32
            })
            .collect();
        let mut sum: i64 = freqs.iter().map(|&f| f as i64).sum();
        // Give or take the difference where it costs least: the largest counts first.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| counts[b].1.cmp(&counts[a].1).then(a.cmp(&b)));
        while sum != TOTAL as i64 {
            let diff = TOTAL as i64 - sum;
            let mut changed = false;
            for &i in &order {
                if sum == TOTAL as i64 {
                    break;
                }
                if diff > 0 {
                    let step = ((diff as u64 * counts[i].1 / total).max(1))
                        .min((TOTAL as i64 - sum) as u64);
                    freqs[i] += step as u32;
                    sum += step as i64;
                    changed = true;
                } else if freqs[i] > 1 {
                    let want = ((-diff) as u64 * counts[i].1 / total).max(1);
                    let step = want
                        .min(freqs[i] as u64 - 1)
                        .min((sum - TOTAL as i64) as u64);
                    freqs[i] -= step as u32;
                    sum -= step as i64;
                    changed |= step > 0;
                }
            }
            if !changed {
                return None;
            }
        }
        Some(FreqModel {
            symbols: counts.iter().map(|c| c.0).collect(),
            freqs,
        })
    }

    /// Serialized form (spec §7.2): `varint n`, `varint s0`, `n-1 × varint (s[i]-s[i-1]-1)`,
    /// `n-1 × varint (f[i]-1)`; the last frequency is `TOTAL` minus the others.
    pub fn write(&self, out: &mut Vec<u8>) {
        put_varint(out, self.symbols.len() as u64);
        put_varint(out, self.symbols[0] as u64);
        for w in self.symbols.windows(2) {
            put_varint(out, (w[1] - w[0] - 1) as u64);
        }
        for &f in &self.freqs[..self.freqs.len() - 1] {
            put_varint(out, (f - 1) as u64);
        }
    }

    /// Bytes that `write` produces.
    pub fn written_len(&self) -> usize {
        let mut n = varint_len(self.symbols.len() as u64) + varint_len(self.symbols[0] as u64);
        n += self
            .symbols
            .windows(2)
            .map(|w| varint_len((w[1] - w[0] - 1) as u64))
            .sum::<usize>();
        n += self.freqs[..self.freqs.len() - 1]
            .iter()
            .map(|&f| varint_len((f - 1) as u64))
            .sum::<usize>();
        n
    }

    /// Parses and validates a model whose symbols must be below `alphabet`.
    pub fn read(c: &mut Cursor<'_>, alphabet: u64) -> Result<FreqModel> {
        let n = c.varint_max(TOTAL as u64, "model symbol count")?;
        if n < 2 {
            return Err(c.err("model needs at least 2 symbols"));
        }
        // Each symbol and frequency takes at least one byte: bound before allocating.
        if 2 * n - 1 > c.remaining() {
            return Err(c.err(format!(
                "model claims {n} symbols but only {} bytes remain",
                c.remaining()
            )));
        }
        let mut symbols = Vec::with_capacity(n);
        let mut s = c.varint("first symbol")?;
        for i in 0..n {
            if i > 0 {
                s = s.saturating_add(c.varint("symbol gap")?.saturating_add(1));
            }
            if s >= alphabet {
                return Err(c.err(format!("symbol {s} outside the alphabet of {alphabet}")));
            }
            symbols.push(s as u32);
        }
        let mut freqs = Vec::with_capacity(n);
        let mut sum: u64 = 0;
        for _ in 0..n - 1 {
            let f = c.varint_max(TOTAL as u64 - 1, "frequency")? as u64 + 1;
            sum += f;
            freqs.push(f as u32);
        }
        if sum >= TOTAL as u64 {
            return Err(c.err(format!(
                "frequencies sum to {sum}, leaving none for the last symbol"
            )));
        }
        freqs.push((TOTAL as u64 - sum) as u32);
        Ok(FreqModel { symbols, freqs })
    }

    /// Ideal code length in bits of `counts` under this model (for the encoder's choices).
    pub fn cost_bits(&self, counts: &[(u32, u64)]) -> f64 {
        counts
            .iter()
            .zip(&self.freqs)
            .map(|(&(_, c), &f)| c as f64 * (PRECISION as f64 - (f as f64).log2()))
            .sum()
    }
}

/// Order-0 entropy in bits (total, not per symbol) of the given counts.
pub fn entropy_bits(counts: &[(u32, u64)]) -> f64 {
    let n: u64 = counts.iter().map(|c| c.1).sum();
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    counts
        .iter()
        .filter(|c| c.1 > 0)
        .map(|&(_, c)| -(c as f64) * (c as f64 / nf).log2())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FormatRule;

    #[test]
    fn quantized_frequencies_sum_and_round_trip() {
        let cases: Vec<Vec<(u32, u64)>> = vec![
            vec![(0, 1), (5, 1_000_000)],
            (0..300)
                .map(|i| (i * 3, 1 + (i as u64 % 7) * 1000))
                .collect(),
            (0..5000).map(|i| (i, 1)).collect(),
            vec![(7, 3), (8, 3), (1000, 3)],
        ];
        for counts in cases {
            let m = FreqModel::from_counts(&counts).unwrap();
            assert_eq!(m.freqs.iter().map(|&f| f as u64).sum::<u64>(), TOTAL as u64);
            assert!(m.freqs.iter().all(|&f| f >= 1));
            let mut b = Vec::new();
            m.write(&mut b);
            assert_eq!(b.len(), m.written_len());
            let mut c = Cursor::new(&b, 0, FormatRule::Payload);
            assert_eq!(FreqModel::read(&mut c, u32::MAX as u64 + 1).unwrap(), m);
            assert!(c.is_empty());
        }
        assert!(FreqModel::from_counts(&[(1, 5)]).is_none());
    }
}

/// Approximate count of a compact frequency code `v` in 1..=255 (spec §7.2.2): `v` itself
/// below 16, else `(8 + (v & 7)) << ((v >> 3) - 1)`; relative spacing 1/8.
pub fn code_value(v: u8) -> u64 {
    if v < 16 {
        v as u64
    } else {
        (8 + (v & 7) as u64) << ((v >> 3) - 1)
    }
}

/// The code whose value is nearest to `count` (count >= 1), saturating at 255.
pub fn nearest_code(count: u64) -> u8 {
    if count < 16 {
        return count.max(1) as u8;
    }
    let mut best = (u64::MAX, 255u8);
    // Codes are monotonic: search around the exponent of `count`.
    let e = 63 - count.leading_zeros() as i32 - 3;
    for v in [(e + 1) * 8, (e + 1) * 8 + 8]
        .into_iter()
        .flat_map(|b| b.max(16)..(b + 8).min(256))
    {
        let d = code_value(v as u8).abs_diff(count);
        if d < best.0 {
            best = (d, v as u8);
        }
    }
    best.1
}

/// Spec §7.2.2 normalization: frequencies summing to `TOTAL`, each >= 1, from approximate
/// counts `a` (n >= 2). `f_i = max(1, floor(a_i·TOTAL/A))`; a shortfall goes to the first
/// symbol with the largest `a_i`; an excess is taken one unit at a time from symbols with
/// `f_i > 1`, visiting them by decreasing `a_i` (ties: lower index first), in repeated passes.
pub fn normalize(a: &[u64]) -> Vec<u32> {
    let total: u128 = a.iter().map(|&x| x as u128).sum();
    let mut f: Vec<u32> = match u64::try_from(total) {
        // The same quotients in 64 bits when x·TOTAL cannot overflow (every x <= total).
        Ok(t) if t < 1 << (64 - PRECISION) => a
            .iter()
            .map(|&x| (((x << PRECISION) / t) as u32).max(1))
            .collect(),
        _ => a
            .iter()
            .map(|&x| ((x as u128 * TOTAL as u128 / total) as u32).max(1))
            .collect(),
    };
    let sum: u64 = f.iter().map(|&x| x as u64).sum();
    if sum < TOTAL as u64 {
        // The first of `order` below: the largest count, the lowest index among equals.
        let mut top = 0;
        for (i, &x) in a.iter().enumerate() {
            if x > a[top] {
                top = i;
            }
        }
        f[top] += (TOTAL as u64 - sum) as u32;
    } else {
        let mut order: Vec<usize> = (0..a.len()).collect();
        order.sort_by(|&i, &j| a[j].cmp(&a[i]).then(i.cmp(&j)));
        // The same result as repeated passes taking one unit each, in O(m log m): apply the
        // largest number p of full passes with Σ min(p, f_i − 1) <= excess, then one partial
        // pass in `order` (spec §7.2.2, informative note).
        let mut excess = sum - TOTAL as u64;
        let taken = |p: u64| f.iter().map(|&x| (x as u64 - 1).min(p)).sum::<u64>();
        let (mut lo, mut hi) = (0u64, TOTAL as u64);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if taken(mid) <= excess {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        excess -= taken(lo);
        for x in f.iter_mut() {
            *x -= (*x - 1).min(lo as u32);
        }
        for &i in &order {
            if excess == 0 {
                break;
            }
            if f[i] > 1 {
                f[i] -= 1;
                excess -= 1;
            }
        }
    }
    f
}

impl FreqModel {
    /// The compact model (spec §7.2.2) for counts: 1-byte approximate counts, normalized by
    /// the decoder's rule. `None` outside 2..=TOTAL symbols.
    pub fn compact_from_counts(counts: &[(u32, u64)]) -> Option<(FreqModel, Vec<u8>)> {
        let n = counts.len();
        if n < 2 || n > TOTAL as usize {
            return None;
        }
        let max = counts.iter().map(|c| c.1).max().unwrap_or(1);
        let top = code_value(255);
        let shift = if max > top {
            64 - (max / top).leading_zeros()
        } else {
            0
        };
        let codes: Vec<u8> = counts
            .iter()
            .map(|c| nearest_code((c.1 >> shift).max(1)))
            .collect();
        let approx: Vec<u64> = codes.iter().map(|&v| code_value(v)).collect();
        let freqs = normalize(&approx);
        Some((
            FreqModel {
                symbols: counts.iter().map(|c| c.0).collect(),
                freqs,
            },
            codes,
        ))
    }

    /// Compact serialized form (spec §7.2.2): `varint r`, then per run of consecutive symbols
    /// `varint skip` and `varint length − 1` (the first run starts at `skip`; a later run at
    /// the previous run's end + 1 + `skip`), then one frequency code byte per symbol.
    pub fn write_compact(&self, codes: &[u8], out: &mut Vec<u8>) {
        let runs = runs(&self.symbols);
        put_varint(out, runs.len() as u64);
        let mut next = 0u64;
        for &(start, len) in &runs {
            put_varint(out, start as u64 - next);
            put_varint(out, len as u64 - 1);
            next = start as u64 + len as u64 + 1;
        }
        out.extend_from_slice(codes);
    }

    pub fn compact_len(&self) -> usize {
        let runs = runs(&self.symbols);
        let mut n = varint_len(runs.len() as u64) + self.symbols.len();
        let mut next = 0u64;
        for &(start, len) in &runs {
            n += varint_len(start as u64 - next) + varint_len(len as u64 - 1);
            next = start as u64 + len as u64 + 1;
        }
        n
    }

    /// Parses a compact model with symbols below `alphabet`.
    pub fn read_compact(c: &mut Cursor<'_>, alphabet: u64) -> Result<FreqModel> {
        let nruns = c.varint_max(TOTAL as u64, "run count")?;
        if 2 * nruns > c.remaining() {
            return Err(c.err(format!(
                "{nruns} runs claimed, {} bytes remain",
                c.remaining()
            )));
        }
        let mut symbols: Vec<u32> = Vec::new();
        let mut next = 0u64;
        for _ in 0..nruns {
            let start = next.saturating_add(c.varint("run gap")?);
            let len = c.varint_max(TOTAL as u64 - 1, "run length")? as u64 + 1;
            let end = start.saturating_add(len);
            if end > alphabet || symbols.len() as u64 + len > TOTAL as u64 {
                return Err(c.err(format!(
                    "run {start}..{end} outside the alphabet of {alphabet} or over {TOTAL} symbols"
                )));
            }
            symbols.extend((start..end).map(|s| s as u32));
            next = end + 1;
        }
        if symbols.len() < 2 {
            return Err(c.err("compact model needs at least 2 symbols"));
        }
        let codes = c.take(symbols.len(), "frequency codes")?;
        if let Some(p) = codes.iter().position(|&v| v == 0) {
            return Err(c.err(format!("frequency code 0 for symbol {}", symbols[p])));
        }
        let approx: Vec<u64> = codes.iter().map(|&v| code_value(v)).collect();
        Ok(FreqModel {
            symbols,
            freqs: normalize(&approx),
        })
    }
}

/// Maximal runs of consecutive values: (start, length).
fn runs(symbols: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &s in symbols {
        match out.last_mut() {
            Some((start, len)) if *start + *len == s => *len += 1,
            _ => out.push((s, 1)),
        }
    }
    out
}

#[cfg(test)]
mod compact_tests {
    use super::*;
    use crate::error::FormatRule;

    #[test]
    fn codes_are_monotonic_and_nearest() {
        let mut prev = 0;
        for v in 1..=255u8 {
            assert!(code_value(v) > prev);
            prev = code_value(v);
        }
        for c in [1u64, 15, 16, 17, 31, 1000, 65535, 1 << 40] {
            let v = nearest_code(c);
            let best = (1..=255u8)
                .min_by_key(|&w| code_value(w).abs_diff(c))
                .unwrap();
            assert_eq!(
                code_value(v).abs_diff(c),
                code_value(best).abs_diff(c),
                "count {c}"
            );
        }
    }

    /// The naive normalization of spec §7.2.2, step 4 as written.
    fn normalize_naive(a: &[u64]) -> Vec<u32> {
        let total: u128 = a.iter().map(|&x| x as u128).sum();
        let mut f: Vec<u32> = a
            .iter()
            .map(|&x| ((x as u128 * TOTAL as u128 / total) as u32).max(1))
            .collect();
        let sum: u64 = f.iter().map(|&x| x as u64).sum();
        let mut order: Vec<usize> = (0..a.len()).collect();
        order.sort_by(|&i, &j| a[j].cmp(&a[i]).then(i.cmp(&j)));
        if sum < TOTAL as u64 {
            f[order[0]] += (TOTAL as u64 - sum) as u32;
        } else {
            let mut excess = sum - TOTAL as u64;
            while excess > 0 {
                for &i in &order {
                    if excess > 0 && f[i] > 1 {
                        f[i] -= 1;
                        excess -= 1;
                    }
                }
            }
        }
        f
    }

    #[test]
    fn fast_normalization_equals_the_spec_loop() {
        let mut x = 5u64;
        for m in [2usize, 3, 17, 300, 5000, 40000] {
            for _ in 0..3 {
                let a: Vec<u64> = (0..m)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        code_value(1 + ((x >> 33) % 255) as u8) >> ((x >> 20) % 30)
                    })
                    .map(|v| v.max(1))
                    .collect();
                assert_eq!(normalize(&a), normalize_naive(&a), "m={m}");
            }
        }
        // Ties for the largest count (the lowest index takes the remainder), and counts too
        // large for the 64-bit quotients.
        for a in [
            vec![7u64, 9, 3, 9, 9, 1],
            vec![1 << 50, 3 << 49, 1 << 50, 12345],
            vec![u64::MAX / 3, u64::MAX / 3, 1, u64::MAX / 5],
        ] {
            assert_eq!(normalize(&a), normalize_naive(&a), "{a:?}");
        }
        // The worst case of the review: one huge count and 65535 ones.
        let mut a = vec![1u64; 65536];
        a[0] = code_value(255);
        let t = std::time::Instant::now();
        let f = normalize(&a);
        assert_eq!(f.iter().map(|&v| v as u64).sum::<u64>(), TOTAL as u64);
        assert!(t.elapsed().as_secs_f64() < 0.5);
    }

    #[test]
    fn compact_round_trip() {
        let counts: Vec<(u32, u64)> = (0..300)
            .filter(|i| i % 37 != 5)
            .map(|i| (i, 1 + 100_000 / (1 + i as u64 * i as u64)))
            .collect();
        let (m, codes) = FreqModel::compact_from_counts(&counts).unwrap();
        assert_eq!(m.freqs.iter().map(|&f| f as u64).sum::<u64>(), TOTAL as u64);
        let mut b = Vec::new();
        m.write_compact(&codes, &mut b);
        assert_eq!(b.len(), m.compact_len());
        let mut c = Cursor::new(&b, 0, FormatRule::Payload);
        assert_eq!(FreqModel::read_compact(&mut c, 1 << 32).unwrap(), m);
        assert!(c.is_empty());
        // Near-optimal: the coding loss against exact frequencies is small.
        let exact = FreqModel::from_counts(&counts).unwrap();
        assert!(m.cost_bits(&counts) < exact.cost_bits(&counts) * 1.003);
    }
}
