//! rANS coding of symbol indices (spec §7.3). Encoding uses `constriction`'s `AnsCoder<u32,
//! u64>` with a 16-bit categorical model; decoding is the loop the spec writes out, over a
//! 2^16-entry slot table, so that any implementation can follow it word for word.
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

/// Decoder tables built once per model (spec §7.3): `slot[q]` is the index of the symbol
/// whose cumulative interval holds `q`; `cdf[i]` the left cumulative frequency of symbol i.
pub struct DecodeTables {
    slot: Vec<u16>,
    cdf: Vec<u32>,
    freq: Vec<u32>,
}

impl DecodeTables {
    pub fn new(model: &FreqModel) -> Self {
        let mut slot = vec![0u16; TOTAL as usize];
        let mut cdf = Vec::with_capacity(model.freqs.len());
        let mut acc = 0u32;
        for (i, &f) in model.freqs.iter().enumerate() {
            cdf.push(acc);
            slot[acc as usize..(acc + f) as usize].fill(i as u16);
            acc += f;
        }
        DecodeTables {
            slot,
            cdf,
            freq: model.freqs.clone(),
        }
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
            let i = self.slot[q as usize] as usize;
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
