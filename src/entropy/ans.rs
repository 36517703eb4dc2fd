//! rANS coding of symbol indices (spec §7.3). Encoding uses `constriction`'s `AnsCoder<u32,
//! u64>` with a 16-bit categorical model; decoding is the loop the spec writes out word for
//! word (the symbol lookup uses a small coarse table; any lookup with the same result will do).
use constriction::stream::model::ContiguousCategoricalEntropyModel;
use constriction::stream::stack::AnsCoder;

use super::model::{FreqModel, PRECISION, TOTAL};
use crate::bytes::Cursor;
use crate::error::{Error, Result};

type Model = ContiguousCategoricalEntropyModel<u32, Vec<u32>, { PRECISION as usize }>;

fn constriction_model(m: &FreqModel) -> Result<Model> {
    Model::from_nonzero_fixed_point_probabilities(&m.freqs, false).map_err(|()| {
        Error::Unsupported {
            detail: "frequency table rejected by the ANS coder".into(),
        }
    })
}

/// Encodes `indices` (each < model size) as one chunk; returns the words in file order.
pub fn encode_chunk(model: &FreqModel, indices: &[u32]) -> Result<Vec<u32>> {
    let cm = constriction_model(model)?;
    let mut coder = AnsCoder::<u32, u64>::new();
    coder
        .encode_iid_symbols_reverse(indices.iter().map(|&i| i as usize), &cm)
        .map_err(|e| Error::Unsupported {
            detail: format!("ANS encoding failed: {e:?}"),
        })?;
    coder.into_compressed().map_err(|e| Error::Unsupported {
        detail: format!("ANS flush failed: {e:?}"),
    })
}

/// Decoder tables built once per model (spec §7.3): `cdf[i]` the left cumulative frequency
/// of symbol i (with `cdf[n] = 2^16` after the last) and `freq[i]`; then either `slot[q]`,
/// the symbol whose interval holds quantile `q` (128 KiB: one lookup, for a long stream with
/// one model), or `coarse[b]`, the symbol whose interval holds quantile `b · 2^6`, from which
/// the lookup steps forward past intervals that end at or before `q` (2 KiB: for short
/// streams, and for class modes whose many models must share the processor's caches).
pub struct DecodeTables {
    slot: Vec<u16>,
    coarse: Vec<u16>,
    cdf: Vec<u32>,
    freq: Vec<u32>,
}

/// Streams shorter than this many symbols decode without a slot table.
pub(crate) const SLOT_TABLE_MIN: usize = 1 << 14;

/// Quantiles per entry of the coarse table.
const COARSE_SHIFT: u32 = 6;

impl DecodeTables {
    /// Tables with the coarse lookup.
    pub fn new(model: &FreqModel) -> Self {
        let n = model.freqs.len();
        let mut cdf = Vec::with_capacity(n + 1);
        let mut acc = 0u32;
        for &f in &model.freqs {
            cdf.push(acc);
            acc += f;
        }
        cdf.push(acc);
        let mut coarse = Vec::with_capacity((TOTAL >> COARSE_SHIFT) as usize);
        let mut i = 0usize;
        for b in 0..TOTAL >> COARSE_SHIFT {
            let q = b << COARSE_SHIFT;
            while i + 1 < n && cdf[i + 1] <= q {
                i += 1;
            }
            coarse.push(i as u16);
        }
        DecodeTables {
            slot: Vec::new(),
            coarse,
            cdf,
            freq: model.freqs.clone(),
        }
    }

    /// Tables for decoding `symbols` symbols with this one model: a slot table when the
    /// stream is long enough to pay for filling it.
    pub fn for_len(model: &FreqModel, symbols: usize) -> Self {
        let mut t = Self::new(model);
        if symbols >= SLOT_TABLE_MIN {
            let mut slot = vec![0u16; TOTAL as usize];
            for i in 0..model.freqs.len() {
                slot[t.cdf[i] as usize..t.cdf[i + 1] as usize].fill(i as u16);
            }
            t.slot = slot;
        }
        t
    }

    /// Index of the symbol whose cumulative interval holds quantile `q` (< 2^16).
    #[inline(always)]
    pub(crate) fn symbol_at(&self, q: u32) -> usize {
        if !self.slot.is_empty() {
            return self.slot[q as usize] as usize;
        }
        self.coarse_symbol(q)
    }

    /// [`Self::symbol_at`] through the coarse table.
    #[inline(always)]
    fn coarse_symbol(&self, q: u32) -> usize {
        let mut i = self.coarse[(q >> COARSE_SHIFT) as usize] as usize;
        while self.cdf[i + 1] <= q {
            i += 1;
        }
        i
    }

    /// Decodes one chunk whose words (u32 LE) are `words`, writing `values[index]` for each
    /// symbol into `out`. The chunk must end with every word consumed and the state at 0.
    pub fn decode_chunk<T: Copy>(
        &self,
        words: &[u8],
        base: u64,
        values: &[T],
        out: &mut [T],
    ) -> Result<()> {
        let err = |d: &str| Error::format(crate::error::FormatRule::Payload, base, d.to_string());
        let word = |i: usize| {
            u32::from_le_bytes([
                words[4 * i],
                words[4 * i + 1],
                words[4 * i + 2],
                words[4 * i + 3],
            ])
        };
        let mut pos = words.len() / 4;
        let mut state: u64 = 0;
        if pos > 0 {
            pos -= 1;
            let w = word(pos);
            if w == 0 {
                return Err(err("ANS chunk ends in a zero word"));
            }
            state = w as u64;
            if pos > 0 {
                pos -= 1;
                state = (state << 32) | word(pos) as u64;
            }
        }
        let mask = (TOTAL - 1) as u64;
        for o in out.iter_mut() {
            let q = (state & mask) as u32;
            let i = self.symbol_at(q);
            state = (state >> PRECISION) * self.freq[i] as u64 + (q - self.cdf[i]) as u64;
            if state < (1u64 << 32) && pos > 0 {
                pos -= 1;
                state = (state << 32) | word(pos) as u64;
            }
            *o = values[i];
        }
        if pos != 0 || state != 0 {
            return Err(err(
                "ANS chunk not fully consumed (corrupt payload or wrong symbol count)",
            ));
        }
        Ok(())
    }
}

/// One rANS lane: its words, read position and state (spec §7.3).
pub struct Lane<'a> {
    words: &'a [[u8; 4]],
    pos: usize,
    state: u64,
    base: u64,
}

impl<'a> Lane<'a> {
    /// Sets the state to `x`, reading the next word when `x` fell below 2^32 and words
    /// remain (spec §7.3). Without a branch (taken every few symbols, unpredictably): the
    /// word at the new position is read either way (a word already consumed, or none when
    /// the chunk has no words) and kept only when needed.
    #[inline(always)]
    fn renormalize(&mut self, x: u64) {
        let need = (x < (1u64 << 32)) & (self.pos > 0);
        let p = self.pos - need as usize;
        let w = self.words.get(p).map_or(0, |w| u32::from_le_bytes(*w)) as u64;
        self.pos = p;
        self.state = if need { (x << 32) | w } else { x };
    }

    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        u32::from_le_bytes(self.words[i]) as u64
    }

    pub fn new(words: &'a [u8], base: u64) -> Result<Self> {
        let (words, _) = words.as_chunks::<4>();
        let mut l = Lane {
            words,
            pos: words.len(),
            state: 0,
            base,
        };
        if l.pos > 0 {
            l.pos -= 1;
            let w = l.word(l.pos);
            if w == 0 {
                return Err(Error::format(
                    crate::error::FormatRule::Payload,
                    base,
                    "ANS chunk ends in a zero word",
                ));
            }
            l.state = w;
            if l.pos > 0 {
                l.pos -= 1;
                l.state = (l.state << 32) | l.word(l.pos);
            }
        }
        Ok(l)
    }

    pub fn finish(&self) -> Result<()> {
        if self.pos != 0 || self.state != 0 {
            return Err(Error::format(
                crate::error::FormatRule::Payload,
                self.base,
                "ANS chunk not fully consumed (corrupt payload or wrong symbol count)",
            ));
        }
        Ok(())
    }
}

impl DecodeTables {
    /// [`Self::step`] for tables built by [`Self::new`] (coarse lookup only).
    #[inline(always)]
    pub fn step_coarse(&self, l: &mut Lane<'_>) -> usize {
        self.step_by(l, Self::coarse_symbol)
    }

    #[inline(always)]
    pub fn step(&self, l: &mut Lane<'_>) -> usize {
        self.step_by(l, Self::symbol_at)
    }

    /// One symbol of lane `l` (spec §7.3): its index by `lookup` of the state's low 16 bits,
    /// then the state update and renormalization.
    #[inline(always)]
    fn step_by(&self, l: &mut Lane<'_>, lookup: impl Fn(&Self, u32) -> usize) -> usize {
        let q = (l.state & (TOTAL as u64 - 1)) as u32;
        let i = lookup(self, q);
        let x = (l.state >> PRECISION) * self.freq[i] as u64 + (q - self.cdf[i]) as u64;
        l.renormalize(x);
        i
    }

    /// Decodes up to four chunks at once, interleaving their symbols in one loop so the
    /// processor overlaps the four dependency chains. The result is that of `decode_chunk` on
    /// each chunk.
    pub fn decode_group<T: Copy>(
        &self,
        chunks: &[(&[u8], u64)],
        values: &[T],
        outs: Vec<&mut [T]>,
    ) -> Result<()> {
        if chunks.len() != 4 || outs.len() != 4 {
            for (o, (w, base)) in outs.into_iter().zip(chunks) {
                self.decode_chunk(w, *base, values, o)?;
            }
            return Ok(());
        }
        let mut lanes = [
            Lane::new(chunks[0].0, chunks[0].1)?,
            Lane::new(chunks[1].0, chunks[1].1)?,
            Lane::new(chunks[2].0, chunks[2].1)?,
            Lane::new(chunks[3].0, chunks[3].1)?,
        ];
        let mut outs = outs.into_iter();
        let (Some(o0), Some(o1), Some(o2), Some(o3)) =
            (outs.next(), outs.next(), outs.next(), outs.next())
        else {
            return Ok(());
        };
        let common = o0.len().min(o1.len()).min(o2.len()).min(o3.len());
        let [l0, l1, l2, l3] = &mut lanes;
        for k in 0..common {
            o0[k] = values[self.step(l0)];
            o1[k] = values[self.step(l1)];
            o2[k] = values[self.step(l2)];
            o3[k] = values[self.step(l3)];
        }
        for (o, l) in [(o0, l0), (o1, l1), (o2, l2), (o3, l3)] {
            for x in o[common..].iter_mut() {
                *x = values[self.step(l)];
            }
            l.finish()?;
        }
        Ok(())
    }
}

/// Reference decoder using constriction itself, for tests that check the spec's loop.
#[cfg(test)]
pub fn decode_chunk_constriction(model: &FreqModel, words: Vec<u32>, n: usize) -> Vec<usize> {
    use constriction::stream::Decode;
    let cm = constriction_model(model).unwrap();
    let mut coder = AnsCoder::<u32, u64>::from_compressed(words).unwrap();
    let v: Vec<usize> = coder
        .decode_iid_symbols(n, &cm)
        .map(|r| r.unwrap())
        .collect();
    assert!(coder.is_empty());
    v
}

/// Reads a chunk table (spec §7.3): for each chunk, `varint word_count`; returns byte slices.
pub fn read_chunks<'a>(c: &mut Cursor<'a>, chunks: usize) -> Result<Vec<(&'a [u8], u64)>> {
    if chunks > c.remaining() {
        return Err(c.err(format!(
            "{chunks} chunks claimed, {} bytes remain",
            c.remaining()
        )));
    }
    let mut lens = Vec::with_capacity(chunks);
    for _ in 0..chunks {
        lens.push(c.varint_max(c.remaining() as u64 / 4, "chunk word count")?);
    }
    let mut out = Vec::with_capacity(chunks);
    for n in lens {
        let at = c.offset();
        out.push((c.take(4 * n, "chunk words")?, at));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_loop_matches_constriction() {
        let counts: Vec<(u32, u64)> = (0..40)
            .map(|i| (i, 1 + 5000 / (1 + (i as u64) * (i as u64))))
            .collect();
        let m = FreqModel::from_counts(&counts).unwrap();
        let mut x = 12345u64;
        let idx: Vec<u32> = (0..20000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (x >> 33) % 100;
                (r * r / 300) as u32 % 40
            })
            .collect();
        let words = encode_chunk(&m, &idx).unwrap();
        let ref_dec = decode_chunk_constriction(&m, words.clone(), idx.len());
        assert_eq!(ref_dec, idx.iter().map(|&i| i as usize).collect::<Vec<_>>());
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let t = DecodeTables::new(&m);
        let values: Vec<u32> = (0..40).collect();
        let mut out = vec![0u32; idx.len()];
        t.decode_chunk(&bytes, 0, &values, &mut out).unwrap();
        assert_eq!(out, idx);
        // Stopping a symbol early leaves state behind and is detected. (Decoding past the end
        // from state 0 is not detectable: the count comes from the CRC-checked header.)
        let mut short = vec![0u32; idx.len() - 1];
        assert!(t.decode_chunk(&bytes, 0, &values, &mut short).is_err());
    }
}
