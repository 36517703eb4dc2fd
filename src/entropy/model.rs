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
