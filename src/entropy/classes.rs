//! Class contexts (spec §7.3.2, §7.3.3): every symbol of a stream belongs to one of K classes,
//! each class with its own frequency model; the rANS chunks are coded as usual but every
//! symbol uses the model of its class. Two ways of assigning classes:
//! - segment classes (mode 4): the stream is cut into segments of equal length (for weights:
//!   output channels) and the class of each segment is transmitted. Real weights are not
//!   stationary across channels; grouping channels of similar spread codes them below the
//!   order-0 entropy of the whole tensor.
//! - context classes (mode 5): the class of symbol i comes from a context byte the decoder
//!   already has (for float byte planes: the sign-and-exponent byte of the same element),
//!   ranked by frequency; nothing is transmitted for it.
//!
//! Both keep static-table rANS decoding speed.
use constriction::stream::model::ContiguousCategoricalEntropyModel;
use constriction::stream::stack::AnsCoder;

use super::ans::{DecodeTables, Lane};
use super::model::{FreqModel, PRECISION};
use super::{encode_stream, histogram, Out, StreamOptions, WindowCtx};
use crate::bytes::{put_varint, Cursor};
use crate::error::{Error, FormatRule, Result};

/// A class's model and its compact frequency codes.
pub type ClassModel = (FreqModel, Vec<u8>);

/// One chunk's words and their file offset.
type ChunkWords<'a> = super::wide::Chunk<'a>;

/// Most classes a stream may use.
pub const MAX_CLASSES: usize = 16;

type Model = ContiguousCategoricalEntropyModel<u32, Vec<u32>, { PRECISION as usize }>;

/// A candidate class coding: the class of each symbol and each class's model.
pub struct Plan {
    /// Class of every symbol.
    pub class_of: Vec<u8>,
    pub models: Vec<ClassModel>,
    /// Estimated bytes of models and payload (without the class assignment).
    pub estimate: usize,
    /// Bits of the coded symbols under the class models (the payload without its chunk
    /// framing).
    pub bits: f64,
}

/// The histogram of each class's symbols: `(symbol, count)` ascending, as `histogram` gives.
fn class_histograms(symbols: &[u32], class_of: &[u8], k: usize) -> Vec<Vec<(u32, u64)>> {
    let max = symbols.iter().copied().max().unwrap_or(0) as usize;
    if max >= 1 << 16 {
        let mut per: Vec<Vec<u32>> = vec![Vec::new(); k];
        for (&s, &c) in symbols.iter().zip(class_of) {
            per[c as usize].push(s);
        }
        return per.iter().map(|p| histogram(p)).collect();
    }
    let mut counts = vec![0u64; k * (max + 1)];
    for (&s, &c) in symbols.iter().zip(class_of) {
        counts[c as usize * (max + 1) + s as usize] += 1;
    }
    counts.chunks(max + 1).map(super::nonzero_counts).collect()
}

/// Symbol counts per group (a segment, or a context value), counted once so that every
/// candidate class assignment of the groups sums them instead of passing over the symbols
/// again: `counts[g × width + s]`.
struct GroupCounts {
    counts: Vec<u64>,
    width: usize,
}

impl GroupCounts {
    /// An empty table for `groups` groups of `symbols`; `None` when it would be large (wide
    /// alphabets, many groups): the caller then counts per class directly.
    fn empty(symbols: &[u32], groups: usize) -> Option<Self> {
        let max = symbols.iter().copied().max().unwrap_or(0) as usize;
        let width = max + 1;
        if max >= 1 << 16 || groups.saturating_mul(width) > (symbols.len() / 4).max(1 << 16) {
            return None;
        }
        Some(GroupCounts {
            counts: vec![0u64; groups * width],
            width,
        })
    }

    /// Counts per segment of `segment` symbols.
    fn by_segment(symbols: &[u32], segment: usize) -> Option<Self> {
        let mut t = Self::empty(symbols, symbols.len().div_ceil(segment))?;
        for (row, seg) in t.counts.chunks_mut(t.width).zip(symbols.chunks(segment)) {
            for &s in seg {
                row[s as usize] += 1;
            }
        }
        Some(t)
    }

    /// Counts per context value.
    fn by_context(symbols: &[u32], ctx: &[u8]) -> Option<Self> {
        let mut t = Self::empty(symbols, 256)?;
        for (&s, &c) in symbols.iter().zip(ctx) {
            t.counts[c as usize * t.width + s as usize] += 1;
        }
        Some(t)
    }

    /// The histogram of each of `k` classes, group g being in class `class_of_group[g]`:
    /// the same as `class_histograms` of the symbols.
    fn classes(&self, class_of_group: &[u8], k: usize) -> Vec<Vec<(u32, u64)>> {
        let mut sums = vec![0u64; k * self.width];
        for (g, row) in self.counts.chunks(self.width).enumerate() {
            let c = class_of_group[g] as usize;
            for (a, &b) in sums[c * self.width..(c + 1) * self.width].iter_mut().zip(row) {
                *a += b;
            }
        }
        sums.chunks(self.width).map(super::nonzero_counts).collect()
    }
}

/// A histogram: `(symbol, count)` ascending, as `histogram` gives.
type Histogram = Vec<(u32, u64)>;

/// The class histograms of the assignment `group_class` (group g in class
/// `group_class[g]`, K classes): summed from the group counts when there are some, else
/// counted over the symbols, whose classes (`class_of_symbol`) are then returned too.
fn assignment_histograms(
    counts: Option<&GroupCounts>,
    symbols: &[u32],
    group_class: &[u8],
    k: usize,
    class_of_symbol: impl Fn(&[u8]) -> Vec<u8>,
) -> (Vec<Histogram>, Option<Vec<u8>>) {
    match counts {
        Some(c) => (c.classes(group_class, k), None),
        None => {
            let class_of = class_of_symbol(group_class);
            (class_histograms(symbols, &class_of, k), Some(class_of))
        }
    }
}

/// Models for the class histograms `hists`; `None` if a model cannot be built.
fn models_for(hists: &[Vec<(u32, u64)>]) -> Option<(Vec<ClassModel>, usize, f64)> {
    let mut est = 0usize;
    let mut bits = 0.0;
    let mut models = Vec::with_capacity(hists.len());
    for real in hists {
        let mut h = real.clone();
        if h.len() < 2 {
            // A class with fewer than two symbols still needs a two-symbol model: the other
            // symbol gets the least frequency, so the class's own symbol costs almost nothing.
            let (a, n) = h.first().copied().unwrap_or((0, 1));
            let b = if a == 0 { 1 } else { a - 1 };
            h = if a < b {
                vec![(a, n), (b, 1)]
            } else {
                vec![(b, 1), (a, n)]
            };
        }
        let (m, codes) = FreqModel::compact_from_counts(&h)?;
        let cost: f64 = real
            .iter()
            .map(|&(s, c)| {
                let i = m.symbols.binary_search(&s).unwrap_or(0);
                c as f64 * (PRECISION as f64 - (m.freqs[i] as f64).log2())
            })
            .sum();
        est += m.compact_len() + 1 + (cost / 8.0) as usize;
        bits += cost;
        models.push((m, codes));
    }
    Some((models, est, bits))
}

/// Each segment's symbols as (symbol, count) without the zero counts, and the alphabet width
/// of [`GroupCounts`]: what [`refine`] reads, built once for every class count it refines.
struct SparseRows {
    rows: Vec<Vec<(usize, f64)>>,
    width: usize,
}

impl SparseRows {
    fn of(counts: &GroupCounts) -> SparseRows {
        let rows = counts
            .counts
            .chunks(counts.width)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .filter(|x| *x.1 > 0)
                    .map(|(s, &n)| (s, n as f64))
                    .collect()
            })
            .collect();
        SparseRows {
            rows,
            width: counts.width,
        }
    }
}

/// Rounds of [`refine`] at most.
const REFINE_ROUNDS: usize = 4;

/// Refines segment classes (a few rounds of Lloyd's algorithm): each segment moves to the
/// class whose symbol frequencies (and share of segments) code it in the fewest bits, the
/// frequencies recounted after every round. Equal-count groups of segments ranked by mean
/// suit spreads that change smoothly across channels, not a few outlying ones (the rows an
/// update changed among many it did not: one class of a few hundred rows, one of all the
/// others). Classes left empty stay empty (their models cost a few bytes). Ties go to the
/// lower class: deterministic. True when some segment moved.
fn refine(rows: &SparseRows, seg_class: &mut [u8], k: usize) -> bool {
    let (w, rows) = (rows.width, &rows.rows);
    let groups = seg_class.len();
    let mut moved = false;
    for _ in 0..REFINE_ROUNDS {
        let mut sums = vec![0f64; k * w];
        let mut members = vec![0usize; k];
        for (row, &c) in rows.iter().zip(seg_class.iter()) {
            members[c as usize] += 1;
            for &(s, n) in row {
                sums[c as usize * w + s] += n;
            }
        }
        // Bits of each symbol in each class, counts smoothed by a half.
        let mut cost = vec![f64::INFINITY; k * w];
        let mut side = vec![f64::INFINITY; k];
        for c in (0..k).filter(|&c| members[c] > 0) {
            let row = &sums[c * w..(c + 1) * w];
            let total: f64 = row.iter().sum::<f64>() + 0.5 * w as f64;
            for (x, &n) in cost[c * w..(c + 1) * w].iter_mut().zip(row) {
                *x = -((n + 0.5) / total).log2();
            }
            side[c] = -(members[c] as f64 / groups as f64).log2();
        }
        let mut changed = false;
        for (row, class) in rows.iter().zip(seg_class.iter_mut()) {
            let mut best = (f64::INFINITY, *class);
            for c in (0..k).filter(|&c| members[c] > 0) {
                let bits = side[c] + row.iter().map(|&(s, n)| n * cost[c * w + s]).sum::<f64>();
                if bits < best.0 {
                    best = (bits, c as u8);
                }
            }
            if best.1 != *class {
                *class = best.1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        moved = true;
    }
    moved
}

/// Estimated bytes of the class stream of a segment-class plan: the order-0 entropy of the
/// classes and a byte per class for its model.
fn class_stream_estimate(seg_class: &[u8], k: usize) -> usize {
    let mut n = vec![0u64; k];
    for &c in seg_class {
        n[c as usize] += 1;
    }
    let total = seg_class.len() as f64;
    let bits: f64 = n
        .iter()
        .filter(|&&x| x > 0)
        .map(|&x| -(x as f64) * (x as f64 / total).log2())
        .sum();
    (bits / 8.0) as usize + k
}

/// Segment classes: segments ranked by mean symbol and cut into 2, 4, 8 or 16 equal-count
/// groups, each also refined (Lloyd rounds); returns the plan and the segment classes when one
/// beats `single_estimate` bytes.
pub fn plan_segments(
    symbols: &[u32],
    segment: usize,
    single_estimate: usize,
) -> Option<(Plan, Vec<u8>)> {
    if segment == 0 || symbols.len() < 2 * segment || symbols.len() < 4096 {
        return None;
    }
    let segs: Vec<&[u32]> = symbols.chunks(segment).collect();
    let mean: Vec<f64> = segs
        .iter()
        .map(|s| s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64)
        .collect();
    let mut order: Vec<usize> = (0..segs.len()).collect();
    order.sort_by(|&a, &b| mean[a].total_cmp(&mean[b]).then(a.cmp(&b)));
    let counts = GroupCounts::by_segment(symbols, segment);
    let sparse = counts.as_ref().map(SparseRows::of);
    // The class of every symbol, built only for the assignment finally chosen.
    let class_of_symbol = |seg_class: &[u8]| -> Vec<u8> {
        let mut v = Vec::with_capacity(symbols.len());
        for (seg, &c) in segs.iter().zip(seg_class) {
            v.resize(v.len() + seg.len(), c);
        }
        v
    };
    // (models, estimate, segment classes, symbol classes if already built)
    type Best = (Vec<ClassModel>, usize, Vec<u8>, Option<Vec<u8>>, f64);
    let mut best: Option<Best> = None;
    for k in [2usize, 4, 8, 16] {
        if segs.len() < 2 * k {
            break;
        }
        let mut seg_class = vec![0u8; segs.len()];
        for (rank, &s) in order.iter().enumerate() {
            seg_class[s] = (rank * k / segs.len()) as u8;
        }
        let mut candidates = vec![seg_class];
        if let Some(rows) = sparse.as_ref() {
            let mut refined = candidates[0].clone();
            if refine(rows, &mut refined, k) {
                candidates.push(refined);
            }
        }
        for seg_class in candidates {
            let (hists, class_of) =
                assignment_histograms(counts.as_ref(), symbols, &seg_class, k, class_of_symbol);
            let Some((models, est, bits)) = models_for(&hists) else {
                continue;
            };
            let est = est + 8 + class_stream_estimate(&seg_class, k);
            if est < best.as_ref().map_or(single_estimate, |b| b.1) {
                best = Some((models, est, seg_class, class_of, bits));
            }
        }
    }
    best.map(|(models, estimate, seg_class, class_of, bits)| {
        let class_of = class_of.unwrap_or_else(|| class_of_symbol(&seg_class));
        (
            Plan {
                class_of,
                models,
                estimate,
                bits,
            },
            seg_class,
        )
    })
}

/// Spec §7.3.3: the class of context value v when the stream uses K context classes: the
/// K − 1 most frequent context values (ties: smaller value first) get classes 0..K−2 in that
/// order; every other value gets class K − 1.
pub fn context_classes(ctx: &[u8], k: usize) -> [u8; 256] {
    context_classes_of(&byte_counts(ctx.iter().copied()), k)
}

/// How often each byte value occurs among `bytes` (context bytes, §7.3.3).
pub(crate) fn byte_counts(bytes: impl IntoIterator<Item = u8>) -> [u64; 256] {
    let mut counts = [0u64; 256];
    for b in bytes {
        counts[b as usize] += 1;
    }
    counts
}

/// [`context_classes`] from the counts of each context byte.
pub fn context_classes_of(counts: &[u64; 256], k: usize) -> [u8; 256] {
    let mut order: Vec<usize> = (0..256).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let mut map = [(k - 1) as u8; 256];
    for (rank, &v) in order.iter().take(k - 1).enumerate() {
        map[v] = rank as u8;
    }
    map
}

/// Context classes with K = 4, 8 or 16; `None` unless one beats `single_estimate`.
pub fn plan_context(symbols: &[u32], ctx: &[u8], single_estimate: usize) -> Option<(Plan, usize)> {
    if symbols.len() < 4096 || ctx.len() != symbols.len() {
        return None;
    }
    let counts = GroupCounts::by_context(symbols, ctx);
    let class_of_symbol =
        |map: &[u8]| -> Vec<u8> { ctx.iter().map(|&c| map[c as usize]).collect() };
    // (models, estimate, context map, symbol classes if already built, K)
    type Best = (Vec<ClassModel>, usize, [u8; 256], Option<Vec<u8>>, usize, f64);
    let mut best: Option<Best> = None;
    for k in [4usize, 8, 16] {
        let map = context_classes(ctx, k);
        let (hists, class_of) =
            assignment_histograms(counts.as_ref(), symbols, &map, k, class_of_symbol);
        let Some((models, est, bits)) = models_for(&hists) else {
            continue;
        };
        if est + 4 < best.as_ref().map_or(single_estimate, |b| b.1) {
            best = Some((models, est + 4, map, class_of, k, bits));
        }
    }
    best.map(|(models, estimate, map, class_of, k, bits)| {
        let class_of = class_of.unwrap_or_else(|| class_of_symbol(&map));
        (
            Plan {
                class_of,
                models,
                estimate,
                bits,
            },
            k,
        )
    })
}

/// Writes `varint K` and the K models (each with its kind byte, 3 = compact).
fn write_models(p: &Plan, out: &mut Vec<u8>) {
    put_varint(out, p.models.len() as u64);
    for (m, codes) in &p.models {
        out.push(super::MODE_ANS_COMPACT);
        m.write_compact(codes, out);
    }
}

/// Writes `varint chunk`, the chunk table and the words, each symbol coded with the model of
/// its class.
pub fn write_chunks(symbols: &[u32], p: &Plan, chunk: usize, out: &mut Vec<u8>) -> Result<()> {
    let mut cms = Vec::with_capacity(p.models.len());
    let mut index = Vec::with_capacity(p.models.len());
    for (m, _) in &p.models {
        cms.push(
            Model::from_nonzero_fixed_point_probabilities(&m.freqs, false).map_err(|()| {
                Error::Unsupported {
                    detail: "class model rejected by the ANS coder".into(),
                }
            })?,
        );
        index.push(super::symbol_index(&m.symbols));
    }
    put_varint(out, chunk as u64);
    let mut all_words = Vec::new();
    for (c, cls) in symbols.chunks(chunk).zip(p.class_of.chunks(chunk)) {
        let mut coder = AnsCoder::<u32, u64>::new();
        let items = c.iter().zip(cls).map(|(&s, &k)| {
            let k = k as usize;
            (index[k](s) as usize, &cms[k])
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

/// The head of a segment-class stream body (after mode byte 4 or 7): `varint K`, K models,
/// `varint segment`, the class of each segment as a nested symbol stream (not itself in a
/// class mode). The chunks follow: [`write_chunks`] (mode 4) or [`write_wide_chunks`]
/// (mode 7).
pub fn write_segment_head(
    p: &Plan,
    seg_class: &[u8],
    segment: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    write_models(p, out);
    put_varint(out, segment as u64);
    let cls: Vec<u32> = seg_class.iter().map(|&c| c as u32).collect();
    encode_stream(
        &cls,
        StreamOptions {
            width: 1,
            chunk: 1 << 20,
            segment: 0,
            wide: false,
            extra: 0,
        },
        out,
    )
}

/// Writes `varint chunk`, the wide chunk table and the wide chunks of mode 7 (spec §7.3.6):
/// every symbol coded with the model of its class, 32 lanes per chunk as in mode 6.
pub fn write_wide_chunks(symbols: &[u32], p: &Plan, chunk: usize, out: &mut Vec<u8>) {
    use rayon::prelude::*;
    let enc: Vec<_> = p.models.iter().map(|m| super::wide::enc_symbols(&m.0)).collect();
    let index: Vec<_> = p.models.iter().map(|m| super::symbol_index(&m.0.symbols)).collect();
    let chunks: Vec<Vec<u8>> = symbols
        .par_chunks(chunk)
        .zip(p.class_of.par_chunks(chunk))
        .map(|(c, cls)| {
            super::wide::encode_chunk_with(c.len(), |t| {
                let k = cls[t] as usize;
                enc[k][index[k](c[t]) as usize]
            })
        })
        .collect();
    put_varint(out, chunk as u64);
    super::wide::write_chunks(&chunks, out);
}

/// Context-class stream body (after mode byte 5): `varint K`, K models, then the chunks.
pub fn encode_context(symbols: &[u32], p: &Plan, chunk: usize, out: &mut Vec<u8>) -> Result<()> {
    write_models(p, out);
    write_chunks(symbols, p, chunk, out)
}

/// Reads `varint K` and K models; returns the models and mapped values per class.
fn read_models<T: Copy>(
    c: &mut Cursor<'_>,
    alphabet: u64,
    map: &impl Fn(u32) -> T,
) -> Result<(Vec<FreqModel>, Vec<Vec<T>>)> {
    let k = c.varint_max(MAX_CLASSES as u64, "class count")?;
    if k < 2 {
        return Err(c.err("class modes need at least 2 classes"));
    }
    let mut models = Vec::with_capacity(k);
    let mut values = Vec::with_capacity(k);
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
        models.push(m);
    }
    Ok((models, values))
}

/// Coarse decode tables of the class models (modes 4 and 5): the tables of every class stay
/// in the first-level cache.
fn coarse_tables(models: &[FreqModel]) -> Vec<DecodeTables> {
    models.iter().map(DecodeTables::new).collect()
}

/// Decodes the chunks: symbol i uses the model of class `run(i).0` (already checked < K),
/// and every symbol from i up to `run(i).1` (exclusive) uses the same class. Four chunks are
/// decoded at once, interleaved in one loop, so the processor overlaps their dependency
/// chains (the result is the same as one chunk after the other).
///
/// `run` also gets the context bytes of the window being decoded (`wants_ctx`, §7.3.3).
#[allow(clippy::too_many_arguments)]
fn read_chunks_into<T: Copy + Send + Sync>(
    c: &mut Cursor<'_>,
    tables: &[DecodeTables],
    values: &[Vec<T>],
    run: &(impl Fn(usize, WindowCtx<'_>) -> (usize, usize) + Sync),
    out: Out<'_, T>,
    ctx: Option<&[u8]>,
    wants_ctx: bool,
    parallel: bool,
) -> Result<()> {
    let chunk = c.varint_max(u32::MAX as u64, "chunk length")?;
    if chunk == 0 {
        return Err(c.err("chunk length 0"));
    }
    let chunks = super::ans::read_chunks(c, out.count().div_ceil(chunk))?;
    let group = 4 * chunk;
    let work = |gi: usize, o: &mut [T], cws: &&[ChunkWords], w: WindowCtx<'_>| -> Result<()> {
        let mut lanes = Vec::with_capacity(4);
        for cw in cws.iter() {
            lanes.push(Lane::new(cw.0, cw.1)?);
        }
        let outs: Vec<&mut [T]> = o.chunks_mut(chunk).collect();
        let starts: Vec<usize> = (0..outs.len()).map(|j| gi * group + j * chunk).collect();
        decode_runs(tables, values, &|i| run(i, w), &starts, &mut lanes, outs);
        lanes.iter().try_for_each(|l| l.finish())
    };
    let groups: Vec<&[ChunkWords]> = chunks.chunks(4).collect();
    super::decode_units(
        out,
        ctx,
        wants_ctx,
        group,
        &groups,
        |g| (g[0].0, g[g.len() - 1].0),
        parallel,
        work,
    )
}

/// Per lane: the current class and the end of its run, both refreshed when a run ends.
struct RunState {
    start: usize,
    class: usize,
    end: usize,
}

impl RunState {
    #[inline(always)]
    fn at(&mut self, k: usize, run: &impl Fn(usize) -> (usize, usize)) -> usize {
        if k >= self.end {
            let (class, end) = run(self.start + k);
            self.class = class;
            self.end = end.saturating_sub(self.start).max(k + 1);
        }
        self.class
    }
}

#[inline(always)]
fn decode_runs<T: Copy>(
    tables: &[DecodeTables],
    values: &[Vec<T>],
    run: &impl Fn(usize) -> (usize, usize),
    starts: &[usize],
    lanes: &mut [Lane<'_>],
    mut outs: Vec<&mut [T]>,
) {
    let mut st: Vec<RunState> = starts
        .iter()
        .map(|&start| RunState {
            start,
            class: 0,
            end: 0,
        })
        .collect();
    // Four lanes in lockstep up to the shortest; every lane then finishes on its own.
    let common = outs.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut done = 0;
    if let ([o0, o1, o2, o3], [l0, l1, l2, l3], [s0, s1, s2, s3]) =
        (&mut outs[..], &mut *lanes, &mut st[..])
    {
        // In spans where no lane changes class (segment classes: whole output channels),
        // each lane's table and values are fixed.
        let mut k = 0;
        while k < common {
            let (c0, c1, c2, c3) = (s0.at(k, run), s1.at(k, run), s2.at(k, run), s3.at(k, run));
            let stop = s0.end.min(s1.end).min(s2.end).min(s3.end).min(common);
            let (t0, v0) = (&tables[c0], &values[c0][..]);
            let (t1, v1) = (&tables[c1], &values[c1][..]);
            let (t2, v2) = (&tables[c2], &values[c2][..]);
            let (t3, v3) = (&tables[c3], &values[c3][..]);
            for j in k..stop {
                o0[j] = v0[t0.step_coarse(l0)];
                o1[j] = v1[t1.step_coarse(l1)];
                o2[j] = v2[t2.step_coarse(l2)];
                o3[j] = v3[t3.step_coarse(l3)];
            }
            k = stop;
        }
        done = common;
    }
    for ((o, l), s) in outs.iter_mut().zip(lanes.iter_mut()).zip(st.iter_mut()) {
        for k in done..o.len() {
            let c = s.at(k, run);
            o[k] = values[c][tables[c].step_coarse(l)];
        }
    }
}

/// Decodes a segment-class stream body (after mode byte 4, or 7 with `wide`) into `out`.
pub(crate) fn decode_segments<T: Copy + Send + Sync + 'static>(
    c: &mut Cursor<'_>,
    alphabet: u64,
    map: &impl Fn(u32) -> T,
    out: Out<'_, T>,
    parallel: bool,
    wide: bool,
) -> Result<()> {
    let (models, values) = read_models(c, alphabet, map)?;
    let segment = c.varint_max(u32::MAX as u64, "segment length")?;
    if segment == 0 {
        return Err(c.err("segment length 0"));
    }
    let mut classes = vec![0u8; out.count().div_ceil(segment)];
    // The class stream may not itself use classes (bounded nesting).
    let mut peek = c.clone();
    if matches!(
        peek.u8("class stream mode")?,
        super::MODE_ANS_CLASSES
            | super::MODE_ANS_CONTEXT
            | super::MODE_ANS_WIDE
            | super::MODE_ANS_WIDE_CLASSES
    ) {
        return Err(c.err(
            "the class stream of a class-mode stream uses classes or the wide layout",
        ));
    }
    let to_u8: fn(u32) -> u8 = |s| s as u8;
    super::decode_stream(c, 1, models.len() as u64, to_u8, &mut classes, false)?;
    if wide {
        return read_wide_chunks_into(c, &models, &values, &classes, segment, out, parallel);
    }
    let tables = coarse_tables(&models);
    read_chunks_into(
        c,
        &tables,
        &values,
        &|i, _| {
            let s = i / segment;
            (classes[s] as usize, (s + 1) * segment)
        },
        out,
        None,
        false,
        parallel,
    )
}

/// Decodes the wide chunks of mode 7 (spec §7.3.6): `varint chunk`, the wide chunk table,
/// the chunks; symbol `g` of the stream uses the model of class `classes[g / segment]`.
fn read_wide_chunks_into<T: Copy + Send + Sync + 'static>(
    c: &mut Cursor<'_>,
    models: &[FreqModel],
    values: &[Vec<T>],
    classes: &[u8],
    segment: usize,
    out: Out<'_, T>,
    parallel: bool,
) -> Result<()> {
    let count = out.count();
    let (chunk, chunks) = super::wide::read_layout(c, count)?;
    if count == 0 {
        return Ok(());
    }
    let all: Vec<T> = values.iter().flatten().copied().collect();
    let tables = super::wide::ClassTables::new(models, count, &all);
    super::decode_wide(out, chunk, &chunks, parallel, |start, w, base, o| {
        let segs = super::wide::Segments {
            classes,
            segment,
            start,
        };
        super::wide::decode_chunk_classes(&tables, segs, w, base, &all, o)
    })
}

/// Decodes a context-class stream body (after mode byte 5) with context bytes `ctx`.
pub(crate) fn decode_context<T: Copy + Send + Sync>(
    c: &mut Cursor<'_>,
    alphabet: u64,
    map: &impl Fn(u32) -> T,
    ctx: Option<&[u8]>,
    out: Out<'_, T>,
    parallel: bool,
) -> Result<()> {
    // The context: the given bytes for the whole stream, or the sink's window by window.
    let counts = match &out {
        Out::All(o) => ctx
            .filter(|x| x.len() == o.len())
            .map(|x| byte_counts(x.iter().copied())),
        Out::Windows { sink, .. } => sink.ctx_counts(),
    };
    let Some(counts) = counts else {
        return Err(c.err("context-class stream where no context exists"));
    };
    let (models, values) = read_models(c, alphabet, map)?;
    let tables = coarse_tables(&models);
    let map_ctx = context_classes_of(&counts, tables.len());
    read_chunks_into(
        c,
        &tables,
        &values,
        &|i, w: WindowCtx<'_>| (map_ctx[w.bytes[i - w.start] as usize] as usize, i + 1),
        out,
        ctx,
        true,
        parallel,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The class histograms summed from per-group counts are those counted per symbol, for
    /// segment and context groupings, on skewed symbols whose groups differ in spread.
    #[test]
    fn group_counts_sum_to_class_histograms() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let segment = 300;
        let symbols: Vec<u32> = (0..segment * 57)
            .map(|i| (next() % (1 + (i / segment) as u64 % 40)) as u32)
            .collect();
        let ctx: Vec<u8> = symbols.iter().map(|_| (next() % 23) as u8).collect();
        let segs = symbols.len().div_ceil(segment);
        let by_seg = GroupCounts::by_segment(&symbols, segment).unwrap();
        let by_ctx = GroupCounts::by_context(&symbols, &ctx).unwrap();
        for k in [2usize, 4, 8, 16] {
            let seg_class: Vec<u8> = (0..segs).map(|s| ((s * 7) % k) as u8).collect();
            let class_of: Vec<u8> = (0..symbols.len())
                .map(|i| seg_class[i / segment])
                .collect();
            assert_eq!(
                by_seg.classes(&seg_class, k),
                class_histograms(&symbols, &class_of, k)
            );
            let map = context_classes(&ctx, k);
            let class_of: Vec<u8> = ctx.iter().map(|&c| map[c as usize]).collect();
            assert_eq!(
                by_ctx.classes(&map, k),
                class_histograms(&symbols, &class_of, k)
            );
        }
        // Wide alphabets fall back to counting per class.
        let wide: Vec<u32> = (0..5000).map(|i| i * 20).collect();
        assert!(GroupCounts::by_segment(&wide, 100).is_none());
    }
}
