//! Channel-class contexts (spec §7.3.2): a stream cut into segments of equal length (for
//! weights: output channels), each segment assigned one of K classes, each class with its own
//! frequency model. The rANS chunks are coded as usual, but every symbol uses the model of its
//! segment's class. Real weights are not stationary across channels: grouping channels of
//! similar spread codes them below the order-0 entropy of the whole tensor while keeping the
//! static-table rANS decoding speed.
use constriction::stream::model::ContiguousCategoricalEntropyModel;
use constriction::stream::stack::AnsCoder;

use super::ans::DecodeTables;
use super::model::{FreqModel, PRECISION};
use super::{encode_stream, histogram, StreamOptions};
use crate::bytes::{put_varint, Cursor};
use crate::error::{Error, FormatRule, Result};

/// One chunk's words and their file offset.
type ChunkWords<'a> = (&'a [u8], u64);

/// Most classes a stream may use.
pub const MAX_CLASSES: usize = 16;

type Model = ContiguousCategoricalEntropyModel<u32, Vec<u32>, { PRECISION as usize }>;

/// A candidate class coding of a stream: the class of each segment and each class's model.
pub struct Plan {
    pub segment: usize,
    pub classes: Vec<u8>,
    pub models: Vec<(FreqModel, Vec<u8>)>,
    pub estimate: usize,
}

fn model_bytes(m: &FreqModel, codes: &[u8]) -> Vec<u8> {
    let mut d = vec![super::MODE_ANS_COMPACT];
    m.write_compact(codes, &mut d);
    d
}

/// Finds the best class plan with 2, 4 or 8 classes (segments ranked by mean symbol and cut
/// into equal-count groups); `None` when no plan beats `single_estimate` bytes.
pub fn plan(symbols: &[u32], segment: usize, single_estimate: usize) -> Option<Plan> {
    if segment == 0 || symbols.len() < 2 * segment || symbols.len() < 4096 {
        return None;
    }
    let segs: Vec<&[u32]> = symbols.chunks(segment).collect();
    let mut order: Vec<usize> = (0..segs.len()).collect();
    let mean: Vec<f64> = segs
        .iter()
        .map(|s| s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64)
        .collect();
    order.sort_by(|&a, &b| mean[a].total_cmp(&mean[b]).then(a.cmp(&b)));
    let mut best: Option<Plan> = None;
    for k in [2usize, 4, 8, 16] {
        if segs.len() < 2 * k {
            break;
        }
        let mut classes = vec![0u8; segs.len()];
        for (rank, &s) in order.iter().enumerate() {
            classes[s] = (rank * k / segs.len()) as u8;
        }
        let mut est = 8 + segs.len() * (k.trailing_zeros() as usize).max(1) / 8;
        let mut models = Vec::with_capacity(k);
        let mut ok = true;
        for class in 0..k as u8 {
            let syms: Vec<u32> = segs
                .iter()
                .zip(&classes)
                .filter(|(_, &c)| c == class)
                .flat_map(|(s, _)| s.iter().copied())
                .collect();
            let h = histogram(&syms);
            let m = if h.len() == 1 {
                // A class with one symbol still needs two for a categorical model.
                let other = if h[0].0 == 0 { 1 } else { h[0].0 - 1 };
                let mut h2 = vec![(other, 1u64), h[0]];
                h2.sort();
                FreqModel::compact_from_counts(&h2)
            } else {
                FreqModel::compact_from_counts(&h)
            };
            let Some((m, codes)) = m else {
                ok = false;
                break;
            };
            let hh = histogram(&syms);
            let cost: f64 = hh
                .iter()
                .map(|&(s, c)| {
                    let i = m.symbols.binary_search(&s).unwrap_or(0);
                    c as f64 * (PRECISION as f64 - (m.freqs[i] as f64).log2())
                })
                .sum();
            est += m.compact_len() + 1 + (cost / 8.0) as usize;
            models.push((m, codes));
        }
        if ok && est < best.as_ref().map_or(single_estimate, |b| b.estimate) {
            best = Some(Plan {
                segment,
                classes,
                models,
                estimate: est,
            });
        }
    }
    best
}

/// Writes a class-mode stream (spec §7.3.2) after the mode byte: `varint K`, K compact models
/// (each with its mode byte 3), `varint segment`, the class of each segment as a nested symbol
/// stream, `varint chunk`, the chunk table and the words.
pub fn encode(symbols: &[u32], p: &Plan, chunk: usize, out: &mut Vec<u8>) -> Result<()> {
    put_varint(out, p.models.len() as u64);
    let mut cms = Vec::with_capacity(p.models.len());
    let mut index = Vec::with_capacity(p.models.len());
    for (m, codes) in &p.models {
        out.extend_from_slice(&model_bytes(m, codes));
        cms.push(
            Model::from_nonzero_fixed_point_probabilities(&m.freqs, false).map_err(|()| {
                Error::Unsupported {
                    detail: "class model rejected by the ANS coder".into(),
                }
            })?,
        );
        let max = *m.symbols.last().unwrap_or(&0) as usize;
        let mut t = vec![u32::MAX; max + 1];
        for (i, &s) in m.symbols.iter().enumerate() {
            t[s as usize] = i as u32;
        }
        index.push(t);
    }
    put_varint(out, p.segment as u64);
    let cls: Vec<u32> = p.classes.iter().map(|&c| c as u32).collect();
    encode_stream(
        &cls,
        StreamOptions {
            width: 1,
            chunk: 1 << 20,
            segment: 0,
        },
        out,
    )?;
    put_varint(out, chunk as u64);
    let mut all_words = Vec::new();
    for (ci, c) in symbols.chunks(chunk).enumerate() {
        let start = ci * chunk;
        let mut coder = AnsCoder::<u32, u64>::new();
        let items = c.iter().enumerate().map(|(k, &s)| {
            let class = p.classes[(start + k) / p.segment] as usize;
            (
                index[class].get(s as usize).copied().unwrap_or(0) as usize,
                &cms[class],
            )
        });
        coder
            .encode_symbols_reverse(items)
            .map_err(|e| Error::Unsupported {
                detail: format!("ANS encoding failed: {e:?}"),
            })?;
        all_words.push(coder.into_compressed().map_err(|e| Error::Unsupported {
            detail: format!("ANS flush failed: {e:?}"),
        })?);
    }
    for w in &all_words {
        put_varint(out, w.len() as u64);
    }
    for w in &all_words {
        for x in w {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    Ok(())
}

/// Decodes a class-mode stream body (after the mode byte) into `out`.
pub fn decode<T: Copy + Send + Sync>(
    c: &mut Cursor<'_>,
    alphabet: u64,
    map: &impl Fn(u32) -> T,
    out: &mut [T],
    parallel: bool,
) -> Result<()> {
    use rayon::prelude::*;
    let k = c.varint_max(MAX_CLASSES as u64, "class count")?;
    if k < 2 {
        return Err(c.err("class mode needs at least 2 classes"));
    }
    let mut tables = Vec::with_capacity(k);
    let mut values: Vec<Vec<T>> = Vec::with_capacity(k);
    for _ in 0..k {
        let at = c.offset();
        let m = match c.u8("class model kind")? {
            super::MODE_ANS => FreqModel::read(c, alphabet)?,
            super::MODE_ANS_COMPACT => FreqModel::read_compact(c, alphabet)?,
            x => {
                return Err(Error::format(
                    FormatRule::Payload,
                    at,
                    format!("class model kind {x}"),
                ))
            }
        };
        values.push(m.symbols.iter().map(|&s| map(s)).collect());
        tables.push(DecodeTables::for_len(&m, out.len()));
    }
    let segment = c.varint_max(u32::MAX as u64, "segment length")?;
    if segment == 0 {
        return Err(c.err("segment length 0"));
    }
    let mut classes = vec![0u8; out.len().div_ceil(segment)];
    // The class stream may not itself use classes (bounded nesting).
    let mut peek = c.clone();
    if peek.u8("class stream mode")? == super::MODE_ANS_CLASSES {
        return Err(c.err("the class stream of a class-mode stream uses classes"));
    }
    let to_u8: fn(u32) -> u8 = |s| s as u8;
    super::decode_stream(c, 1, k as u64, to_u8, &mut classes, false)?;
    let chunk = c.varint_max(u32::MAX as u64, "chunk length")?;
    if chunk == 0 {
        return Err(c.err("chunk length 0"));
    }
    let chunks = super::ans::read_chunks(c, out.len().div_ceil(chunk))?;
    let work = |(ci, (o, chunk_words)): (usize, (&mut [T], &ChunkWords))| {
        let (w, base) = chunk_words;
        let start = ci * chunk;
        let mut lane = super::ans::Lane::new(w, *base)?;
        let mut pos = 0;
        while pos < o.len() {
            let g = start + pos;
            let class = classes[g / segment] as usize;
            let run = (segment - g % segment).min(o.len() - pos);
            let (t, v) = (&tables[class], &values[class]);
            for x in &mut o[pos..pos + run] {
                *x = v[t.step(&mut lane)];
            }
            pos += run;
        }
        lane.finish()
    };
    if parallel && chunks.len() > 1 {
        out.par_chunks_mut(chunk)
            .zip(chunks.par_iter())
            .enumerate()
            .try_for_each(work)
    } else {
        out.chunks_mut(chunk)
            .zip(chunks.iter())
            .enumerate()
            .try_for_each(work)
    }
}
