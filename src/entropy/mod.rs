//! Symbol streams (spec §7): a sequence of unsigned integer symbols coded as stored values,
//! one constant, or rANS chunks under a transmitted frequency model. The coder sees integers
//! only, never tensors or ONNX.
pub mod ans;
pub mod classes;
pub mod model;
pub mod split;
pub mod wide;
#[cfg(target_arch = "x86_64")]
mod wide_avx2;

use rayon::prelude::*;

use crate::bytes::{put_varint, Cursor};
use crate::error::Result;
pub use model::{entropy_bits, FreqModel};

/// Stream modes (spec §7.1).
pub const MODE_STORED: u8 = 0;
pub const MODE_CONSTANT: u8 = 1;
pub const MODE_ANS: u8 = 2;
pub const MODE_ANS_COMPACT: u8 = 3;
pub const MODE_ANS_CLASSES: u8 = 4;
pub const MODE_ANS_CONTEXT: u8 = 5;
pub const MODE_ANS_WIDE: u8 = 6;
pub const MODE_ANS_WIDE_CLASSES: u8 = 7;

/// Symbols per chunk of the wide layout (mode 6, spec §7.3.5) for the default `chunk`: its
/// 32 lane states cost 128 bytes per chunk, so chunks are longer than in modes 2 and 3.
pub const WIDE_CHUNK: usize = 1 << 19;

/// The relative size a wide stream may cost over the estimate of modes 2 and 3 (the
/// encoder falls back to them beyond it). Chosen by measurement (tools/bench-decode.md): at
/// 0.4 % the default's files of the corpus grew 0.06–0.17 % and decoded in 6–17 % less time
/// than at 0.15 % (and from 65536 symbols), when short streams stayed in modes 2 and 3.
pub const WIDE_COST: f64 = 0.004;

/// The wide chunk for the option `chunk`: 16 times as long, at least `WIDE_MIN`.
pub fn wide_chunk(chunk: usize) -> usize {
    chunk.saturating_mul(16).clamp(WIDE_MIN, u32::MAX as usize)
}

/// Shortest wide chunk (the option `chunk` times 16 is raised to it).
pub const WIDE_MIN: usize = 1 << 16;

/// Streams of at least this many symbols may use the wide layout when rANS wins (below it
/// the lane states cost more than `WIDE_COST`).
pub const WIDE_MIN_SYMBOLS: usize = 1 << 12;

/// Default symbols per independently decodable rANS chunk (spec §7.3; chosen by measurement:
/// see tools/bench).
pub const DEFAULT_CHUNK: usize = 1 << 15;

/// Smallest chunk the encoder makes when it splits a stream for four-lane decoding.
pub const MIN_CHUNK: usize = 1 << 12;

/// Options the encoder uses for a stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// Bytes per stored symbol: 1, 2 or 4 (a property of the caller's alphabet).
    pub width: usize,
    /// Symbols per rANS chunk.
    pub chunk: usize,
    /// Segment length for channel-class contexts (spec §7.3.2); 0: none.
    pub segment: usize,
    /// Whether a long stream may use the wide rANS layout (mode 6, spec §7.3.5).
    pub wide: bool,
    /// Bytes coded beside this stream in the same payload (the raw bits of split levels,
    /// §7.3.7): the wide layout's cost is weighed against them too.
    pub extra: usize,
}

/// Bits per symbol under which [`sparse_chunk`] raises the chunk size.
const SPARSE_BITS: f64 = 0.25;

/// Symbols per chunk for a stream of `n` symbols coded in about `bits`: `chunk`, or, when the
/// symbols cost under [`SPARSE_BITS`] each, `chunk` times the factor they fall short by (at
/// most `max`), so that a chunk holds as many coded bytes as a chunk of a quarter of a bit per
/// symbol (the default chunks of 32768 and 524288 symbols: 1 KiB and 16 KiB). Symbols of a few
/// hundredths of a bit (an update's residuals, nearly all 0) would else spend more bytes on
/// chunk states than on themselves.
fn sparse_chunk(chunk: usize, n: usize, bits: f64, max: usize) -> usize {
    let floor = SPARSE_BITS * n as f64;
    if bits >= floor || chunk >= max {
        return chunk;
    }
    let raised = chunk as f64 * floor / bits.max(1.0);
    (raised.min(max as f64).min(u32::MAX as f64) as usize).max(chunk)
}

/// `(symbol, count)` for every nonzero entry of a dense count table `h[symbol]`.
pub fn nonzero_counts(h: &[u64]) -> Vec<(u32, u64)> {
    h.iter()
        .enumerate()
        .filter(|c| *c.1 > 0)
        .map(|(s, &c)| (s as u32, c))
        .collect()
}

/// `histogram` of the `n` symbols `sym(0..n)`, without gathering them when they are dense.
pub fn histogram_of(n: usize, sym: impl Fn(usize) -> u32) -> Vec<(u32, u64)> {
    let max = (0..n).map(&sym).max().unwrap_or(0);
    if (max as usize) < (1 << 20) || (max as usize) < n {
        let mut h = vec![0u64; max as usize + 1];
        for i in 0..n {
            h[sym(i) as usize] += 1;
        }
        nonzero_counts(&h)
    } else {
        histogram(&(0..n).map(sym).collect::<Vec<_>>())
    }
}

/// Counts of each distinct symbol, sorted by symbol.
pub fn histogram(symbols: &[u32]) -> Vec<(u32, u64)> {
    let max = symbols.iter().copied().max().unwrap_or(0);
    if (max as usize) < (1 << 20) || (max as usize) < symbols.len() {
        let mut h = vec![0u64; max as usize + 1];
        for &s in symbols {
            h[s as usize] += 1;
        }
        nonzero_counts(&h)
    } else {
        let mut v = symbols.to_vec();
        v.sort_unstable();
        let mut out: Vec<(u32, u64)> = Vec::new();
        for s in v {
            match out.last_mut() {
                Some(l) if l.0 == s => l.1 += 1,
                _ => out.push((s, 1)),
            }
        }
        out
    }
}

/// Encodes `symbols` as the smallest of the modes and appends it to `out`.
pub fn encode_stream(symbols: &[u32], opt: StreamOptions, out: &mut Vec<u8>) -> Result<()> {
    encode_stream_ctx(symbols, opt, None, out)
}

/// `encode_stream` with context bytes (one per symbol) that the decoder will also have: the
/// encoder may then use context classes (spec §7.3.3).
pub fn encode_stream_ctx(
    symbols: &[u32],
    opt: StreamOptions,
    ctx: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let hist = histogram(symbols);
    if hist.len() == 1 {
        out.push(MODE_CONSTANT);
        put_varint(out, hist[0].0 as u64);
        return Ok(());
    }
    let stored_len = symbols.len() * opt.width;
    // Candidate models: exact frequencies (§7.2.1) and compact 1-byte codes (§7.2.2).
    let mut best: Option<(usize, Vec<u8>, FreqModel)> = None;
    if let Some(m) = FreqModel::from_counts(&hist) {
        let mut d = vec![MODE_ANS];
        m.write(&mut d);
        best = Some((d.len() + (m.cost_bits(&hist) / 8.0) as usize, d, m));
    }
    if let Some((m, codes)) = FreqModel::compact_from_counts(&hist) {
        let mut d = vec![MODE_ANS_COMPACT];
        m.write_compact(&codes, &mut d);
        let est = d.len() + (m.cost_bits(&hist) / 8.0) as usize;
        if best.as_ref().is_none_or(|b| est < b.0) {
            best = Some((est, d, m));
        }
    }
    let single = best.as_ref().map_or(usize::MAX, |b| b.0);
    // At least four chunks when the stream is long enough, so a decoder can interleave four
    // lanes (spec §7.3); never below MIN_CHUNK symbols; longer when the symbols cost so few
    // bits that chunk states would weigh ([`sparse_chunk`]).
    let quarter = symbols.len().div_ceil(4).max(MIN_CHUNK);
    let chunk = opt.chunk.min(quarter).max(1);
    let n = symbols.len();
    if let Some((p, _)) =
        ctx.and_then(|c| classes::plan_context(symbols, c, single.min(stored_len)))
    {
        out.push(MODE_ANS_CONTEXT);
        let chunk = sparse_chunk(chunk, n, p.bits, quarter);
        return classes::encode_context(symbols, &p, chunk, out);
    }
    if let Some((p, seg_class)) =
        classes::plan_segments(symbols, opt.segment, single.min(stored_len))
    {
        let chunk = sparse_chunk(chunk, n, p.bits, quarter);
        let mut head = Vec::new();
        classes::write_segment_head(&p, &seg_class, opt.segment, &mut head)?;
        if opt.wide && symbols.len() >= WIDE_MIN_SYMBOLS {
            // Mode 7 under the same rule as mode 6: at most WIDE_COST over the estimate of
            // mode 4 (its head, its coded bits, and per chunk 8 bytes of state and a count).
            let mut w = Vec::new();
            let wide = sparse_chunk(wide_chunk(opt.chunk), n, p.bits, usize::MAX);
            classes::write_wide_chunks(symbols, &p, wide, &mut w);
            let narrow = (head.len() + 10 * symbols.len().div_ceil(chunk)) as f64 + p.bits / 8.0;
            if (head.len() + w.len()) as f64 <= narrow + (narrow + opt.extra as f64) * WIDE_COST {
                out.push(MODE_ANS_WIDE_CLASSES);
                out.extend_from_slice(&head);
                out.extend_from_slice(&w);
                return Ok(());
            }
        }
        out.push(MODE_ANS_CLASSES);
        out.extend_from_slice(&head);
        return classes::write_chunks(symbols, &p, chunk, out);
    }
    if let Some((estimate, mut buf, model)) = best {
        let bits = model.cost_bits(&hist);
        let chunk = sparse_chunk(chunk, n, bits, quarter);
        if estimate < stored_len && opt.wide && symbols.len() >= WIDE_MIN_SYMBOLS {
            // Mode 6: the model's kind byte, then the model, as in modes 2 and 3. Kept only
            // when it costs at most WIDE_COST more than the estimate of modes 2/3 (the model,
            // its coded bits, and per chunk 8 bytes of final state and a 2-byte word count).
            let wide_chunk = sparse_chunk(wide_chunk(opt.chunk), n, bits, usize::MAX);
            let index = symbol_index(&model.symbols);
            let idx: Vec<u32> = symbols.iter().map(|&s| index(s)).collect();
            let chunks: Vec<Vec<u8>> = idx
                .par_chunks(wide_chunk)
                .map(|c| wide::encode_chunk(&model, c))
                .collect();
            let mut w = Vec::new();
            w.push(MODE_ANS_WIDE);
            w.extend_from_slice(&buf);
            put_varint(&mut w, wide_chunk as u64);
            wide::write_chunks(&chunks, &mut w);
            let narrow = estimate + 10 * symbols.len().div_ceil(chunk);
            let budget = narrow as f64 + (narrow + opt.extra) as f64 * WIDE_COST;
            if (w.len() as f64) <= budget && w.len() < stored_len + 1
            {
                out.extend_from_slice(&w);
                return Ok(());
            }
        }
        if estimate < stored_len {
            put_varint(&mut buf, chunk as u64);
            let index = symbol_index(&model.symbols);
            let idx: Vec<u32> = symbols.iter().map(|&s| index(s)).collect();
            let words: Vec<Result<Vec<u32>>> = idx
                .par_chunks(chunk)
                .map(|c| ans::encode_chunk(&model, c))
                .collect();
            let words: Vec<Vec<u32>> = words.into_iter().collect::<Result<_>>()?;
            for w in &words {
                put_varint(&mut buf, w.len() as u64);
            }
            for w in &words {
                for x in w {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
            }
            if buf.len() < stored_len + 1 {
                out.extend_from_slice(&buf);
                return Ok(());
            }
        }
    }
    out.push(MODE_STORED);
    for &s in symbols {
        out.extend_from_slice(&s.to_le_bytes()[..opt.width]);
    }
    Ok(())
}

/// Maps a symbol of a model to its index (dense table for small alphabets).
fn symbol_index(symbols: &[u32]) -> impl Fn(u32) -> u32 + '_ {
    let max = *symbols.last().unwrap_or(&0) as usize;
    let dense: Option<Vec<u32>> = (max < (1 << 22)).then(|| {
        let mut t = vec![0u32; max + 1];
        for (i, &s) in symbols.iter().enumerate() {
            t[s as usize] = i as u32;
        }
        t
    });
    move |s| match &dense {
        Some(t) => t[s as usize],
        None => symbols.binary_search(&s).unwrap_or(0) as u32,
    }
}

/// Where a stream's symbols go: all into one slice, or a window at a time to a [`Sink`]
/// (lossless planes: the decoded plane is never whole in memory).
pub(crate) enum Out<'a, T> {
    All(&'a mut [T]),
    Windows {
        count: usize,
        /// Initial value of the window buffer's elements (overwritten before use).
        zero: T,
        sink: &'a mut dyn Sink<T>,
    },
}

impl<T> Out<'_, T> {
    /// Symbols in the stream.
    fn count(&self) -> usize {
        match self {
            Out::All(o) => o.len(),
            Out::Windows { count, .. } => *count,
        }
    }
}

/// Receives a stream's symbols a window at a time, in order, and gives the context bytes of a
/// context-class stream (spec §7.3.3) window by window.
pub(crate) trait Sink<T> {
    /// The decoded symbols `start .. start + symbols.len()`.
    fn put(&mut self, start: usize, symbols: &[T]);
    /// How often each context byte occurs over the whole stream; `None`: no context.
    fn ctx_counts(&self) -> Option<[u64; 256]>;
    /// The context bytes of symbols `start .. start + out.len()`.
    fn ctx(&self, start: usize, out: &mut [u8]);
}

/// The context bytes of the symbols of one window: `bytes[i − start]` is symbol `i`'s.
#[derive(Clone, Copy)]
pub(crate) struct WindowCtx<'a> {
    pub bytes: &'a [u8],
    pub start: usize,
}

/// Most symbols a window of an [`Out::Windows`] stream holds (beyond one unit).
const WINDOW_SYMBOLS: usize = 4 << 20;

/// Decodes independent units (one chunk, or a group of chunks decoded together; unit `i`
/// holds symbols `i·per ..`, the last one shorter) in windows of about `mapped::WINDOW`
/// payload bytes: a window's units run on every core when `parallel`, then its bytes are
/// released (`container::mapped::release`, for payloads read in place) and, with
/// [`Out::Windows`], its symbols go to the sink. `ctx` (with [`Out::All`]) or the sink's
/// context (when `wants_ctx`) gives each unit its window's context bytes. The first error in
/// file order is the one reported, as when decoding one unit after the other; the result
/// does not depend on `parallel`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_units<T: Copy + Send, C: Sync>(
    mut out: Out<'_, T>,
    ctx: Option<&[u8]>,
    wants_ctx: bool,
    per: usize,
    units: &[C],
    unit_bytes: impl Fn(&C) -> (&[u8], &[u8]) + Sync,
    parallel: bool,
    work: impl Fn(usize, &mut [T], &C, WindowCtx<'_>) -> Result<()> + Sync,
) -> Result<()> {
    use crate::container::mapped::{release_span, WINDOW};
    let per = per.max(1);
    let count = out.count();
    let whole = matches!(out, Out::All(_));
    let (mut scratch, mut wctx) = (Vec::new(), Vec::new());
    let n = units.len().min(count.div_ceil(per));
    let mut u0 = 0;
    while u0 < n {
        let mut u1 = u0;
        let mut bytes = 0usize;
        while u1 < n && bytes < WINDOW && (whole || (u1 - u0) * per < WINDOW_SYMBOLS) {
            let (a, b) = unit_bytes(&units[u1]);
            bytes += (b.as_ptr() as usize + b.len()).saturating_sub(a.as_ptr() as usize);
            u1 += 1;
        }
        let range = u0 * per..(u1 * per).min(count);
        let (buf, window_ctx): (&mut [T], WindowCtx<'_>) = match &mut out {
            Out::All(o) => (
                &mut o[range.clone()],
                WindowCtx {
                    bytes: ctx.unwrap_or(&[]),
                    start: 0,
                },
            ),
            Out::Windows { zero, sink, .. } => {
                scratch.clear();
                scratch.resize(range.len(), *zero);
                if wants_ctx {
                    wctx.clear();
                    wctx.resize(range.len(), 0u8);
                    sink.ctx(range.start, &mut wctx);
                }
                (
                    &mut scratch[..],
                    WindowCtx {
                        bytes: &wctx,
                        start: range.start,
                    },
                )
            }
        };
        let parts: Vec<(usize, &mut [T], &C)> = buf
            .chunks_mut(per)
            .zip(&units[u0..u1])
            .enumerate()
            .map(|(j, (o, u))| (u0 + j, o, u))
            .collect();
        let results: Vec<Result<()>> = if parallel && parts.len() > 1 {
            parts
                .into_par_iter()
                .map(|(i, o, u)| work(i, o, u, window_ctx))
                .collect()
        } else {
            let mut r = Vec::with_capacity(parts.len());
            for (i, o, u) in parts {
                let e = work(i, o, u, window_ctx);
                let stop = e.is_err();
                r.push(e);
                if stop {
                    break;
                }
            }
            r
        };
        results.into_iter().collect::<Result<()>>()?;
        if let Out::Windows { sink, .. } = &mut out {
            sink.put(range.start, &scratch);
        }
        release_span(unit_bytes(&units[u0]).0, unit_bytes(&units[u1 - 1]).1);
        u0 = u1;
    }
    Ok(())
}

/// Decodes the wide chunks of a stream (modes 6 and 7) with [`decode_units`]: `work(start,
/// bytes, offset, out)` decodes the chunk whose first symbol is symbol `start` of the stream.
pub(crate) fn decode_wide<T: Copy + Send>(
    out: Out<'_, T>,
    chunk: usize,
    chunks: &[wide::Chunk<'_>],
    parallel: bool,
    work: impl Fn(usize, &[u8], u64, &mut [T]) -> Result<()> + Sync,
) -> Result<()> {
    decode_units(
        out,
        None,
        false,
        chunk,
        chunks,
        |&(w, _)| (w, w),
        parallel,
        |u, o, &(w, base), _| work(u * chunk, w, base, o),
    )
}

/// Decodes a stream of `out.len()` symbols below `alphabet`, writing `map(symbol)`.
/// Chunks are decoded in parallel when `parallel` is set; the result does not depend on it.
pub fn decode_stream<T: Copy + Send + Sync + 'static>(
    c: &mut Cursor<'_>,
    width: usize,
    alphabet: u64,
    map: impl Fn(u32) -> T,
    out: &mut [T],
    parallel: bool,
) -> Result<()> {
    decode_stream_ctx(c, width, alphabet, map, None, out, parallel)
}

/// `decode_stream` with the context bytes of a context-class stream (spec §7.3.3).
pub fn decode_stream_ctx<T: Copy + Send + Sync + 'static>(
    c: &mut Cursor<'_>,
    width: usize,
    alphabet: u64,
    map: impl Fn(u32) -> T,
    ctx: Option<&[u8]>,
    out: &mut [T],
    parallel: bool,
) -> Result<()> {
    decode_stream_out(c, width, alphabet, map, ctx, Out::All(out), parallel)
}

/// `decode_stream_ctx` into an [`Out`]: with [`Out::Windows`], the context (if any) comes from
/// the sink and `ctx` is not used.
pub(crate) fn decode_stream_out<T: Copy + Send + Sync + 'static>(
    c: &mut Cursor<'_>,
    width: usize,
    alphabet: u64,
    map: impl Fn(u32) -> T,
    ctx: Option<&[u8]>,
    out: Out<'_, T>,
    parallel: bool,
) -> Result<()> {
    let at = c.offset();
    let count = out.count();
    match c.u8("stream mode")? {
        MODE_STORED => {
            let bytes = c.take(count.saturating_mul(width), "stored symbols")?;
            let symbol = |b: &[u8]| {
                let mut a = [0u8; 4];
                a[..width].copy_from_slice(b);
                let s = u32::from_le_bytes(a);
                if s as u64 >= alphabet {
                    return Err(c.err(format!(
                        "stored symbol {s} outside the alphabet of {alphabet}"
                    )));
                }
                Ok(map(s))
            };
            match out {
                Out::All(out) => {
                    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(width)) {
                        *o = symbol(b)?;
                    }
                }
                Out::Windows { sink, .. } => {
                    let mut buf = Vec::new();
                    for (k, w) in bytes.chunks(WINDOW_SYMBOLS * width).enumerate() {
                        buf.clear();
                        for b in w.chunks_exact(width) {
                            buf.push(symbol(b)?);
                        }
                        sink.put(k * WINDOW_SYMBOLS, &buf);
                        crate::container::mapped::release(w);
                    }
                }
            }
            Ok(())
        }
        MODE_CONSTANT => {
            let s = c.varint("constant symbol")?;
            if s >= alphabet {
                return Err(c.err(format!(
                    "constant symbol {s} outside the alphabet of {alphabet}"
                )));
            }
            let v = map(s as u32);
            let units = vec![(); count.div_ceil(WINDOW_SYMBOLS)];
            decode_units(
                out,
                None,
                false,
                WINDOW_SYMBOLS,
                &units,
                |_| (&[], &[]),
                false,
                |_, o, _, _| {
                    o.fill(v);
                    Ok(())
                },
            )
        }
        m @ (MODE_ANS | MODE_ANS_COMPACT) => {
            let model = if m == MODE_ANS {
                FreqModel::read(c, alphabet)?
            } else {
                FreqModel::read_compact(c, alphabet)?
            };
            let chunk = c.varint_max(u32::MAX as u64, "chunk length")?;
            if chunk == 0 {
                return Err(c.err("chunk length 0"));
            }
            let n_chunks = count.div_ceil(chunk);
            let chunks = ans::read_chunks(c, n_chunks)?;
            let values: Vec<T> = model.symbols.iter().map(|&s| map(s)).collect();
            let tables = ans::DecodeTables::for_len(&model, count);
            // Groups of four chunks decode interleaved (same result as one at a time).
            let groups: Vec<&[(&[u8], u64)]> = chunks.chunks(4).collect();
            decode_units(
                out,
                None,
                false,
                4 * chunk,
                &groups,
                |g| (g[0].0, g[g.len() - 1].0),
                parallel,
                |_, o, g, _| tables.decode_group(g, &values, o.chunks_mut(chunk).collect()),
            )
        }
        MODE_ANS_WIDE => {
            let at = c.offset();
            let model = match c.u8("wide model kind")? {
                MODE_ANS => FreqModel::read(c, alphabet)?,
                MODE_ANS_COMPACT => FreqModel::read_compact(c, alphabet)?,
                k => {
                    return Err(crate::error::Error::format(
                        crate::error::FormatRule::Payload,
                        at,
                        format!("wide model kind {k} (2 or 3 allowed)"),
                    ))
                }
            };
            let (chunk, chunks) = wide::read_layout(c, count)?;
            if count == 0 {
                return Ok(());
            }
            let values: Vec<T> = model.symbols.iter().map(|&s| map(s)).collect();
            let tables = wide::WideTables::for_len(&model, count, &values);
            decode_wide(out, chunk, &chunks, parallel, |_, w, base, o| {
                wide::decode_chunk(&tables, w, base, &values, o)
            })
        }
        MODE_ANS_CLASSES => classes::decode_segments(c, alphabet, &map, out, parallel, false),
        MODE_ANS_WIDE_CLASSES => classes::decode_segments(c, alphabet, &map, out, parallel, true),
        MODE_ANS_CONTEXT => classes::decode_context(c, alphabet, &map, ctx, out, parallel),
        m => Err(crate::error::Error::format(
            crate::error::FormatRule::Payload,
            at,
            format!("unknown stream mode {m}"),
        )),
    }
}

/// `n` broken copies of `bytes` for tests: every `cut`-th one cut off at a position, the
/// others with one bit flipped, positions and bits drawn from `seed`.
#[cfg(test)]
pub(crate) fn hostile_variants(bytes: &[u8], seed: u64, n: usize, cut: usize) -> Vec<Vec<u8>> {
    let mut x = seed;
    (0..n)
        .map(|k| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut bad = bytes.to_vec();
            let at = (x >> 33) as usize % bad.len();
            if k % cut == 0 {
                bad.truncate(at);
            } else {
                bad[at] ^= 1 << ((x >> 60) % 8);
            }
            bad
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FormatRule;

    /// Decodes `bad` (a stream of `n` symbols, `width` and `alphabet`) serial and parallel:
    /// the same error, or the same symbols (the output of a failed decode is unspecified).
    fn same_serial_and_parallel(bad: &[u8], n: usize, width: usize, alphabet: u64) {
        let mut outs = Vec::new();
        for parallel in [false, true] {
            let mut c = Cursor::new(bad, 0, FormatRule::Payload);
            let mut out = vec![0u32; n];
            let r = decode_stream(&mut c, width, alphabet, |s| s, &mut out, parallel);
            outs.push((format!("{r:?}"), r.is_ok().then_some(out)));
        }
        assert!(outs[0] == outs[1], "{} vs {}", outs[0].0, outs[1].0);
    }

    /// A few busy segments among many constant ones (an update's changed rows among unchanged
    /// ones): the refined classes give them a class of their own, and the long chunks of a
    /// stream of so few bits keep the chunk states from outweighing the symbols.
    #[test]
    fn a_few_busy_segments_get_a_class_and_long_chunks() {
        let (segment, rows) = (384, 4000);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut symbols = vec![0u32; segment * rows];
        for row in (0..rows).step_by(97) {
            for s in &mut symbols[row * segment..(row + 1) * segment] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *s = [0, 0, 0, 1, 2, 0, 1, 0][(x >> 61) as usize];
            }
        }
        let busy = 4000usize.div_ceil(97) * segment;
        let hist = histogram(&symbols[..]);
        let model = FreqModel::from_counts(&hist).unwrap();
        let order0 = model.cost_bits(&hist) / 8.0;
        let coded = round_trip_seg(&symbols, 1, DEFAULT_CHUNK, segment);
        // The busy rows' own entropy: about 1.3 bits per symbol.
        let own = busy as f64 * 1.3 / 8.0;
        assert!(
            (coded as f64) < own * 1.1 && (coded as f64) < 0.6 * order0,
            "{coded} bytes: busy rows' entropy {own:.0}, order 0 {order0:.0}"
        );
        // Equal-count classes alone (no refinement) could not do that: with 16 classes of
        // 250 rows, the busy rows' class is mostly constant rows.
        let plan = classes::plan_segments(&symbols, segment, usize::MAX).unwrap();
        assert!(plan.1.iter().filter(|&&c| c == plan.1[1]).count() >= rows - 50);
        // A sparse stream's chunks are raised: an average chunk then codes 1 KiB or more.
        assert_eq!(sparse_chunk(32768, 1 << 20, 2e5, 1 << 18), 42949);
        assert_eq!(sparse_chunk(32768, 1 << 20, 1e6, 1 << 18), 32768);
        assert_eq!(sparse_chunk(32768, 1 << 20, 1.0, 1 << 18), 1 << 18);
    }

    fn round_trip(symbols: &[u32], width: usize, chunk: usize) -> usize {
        round_trip_seg(symbols, width, chunk, 0)
    }

    fn round_trip_seg(symbols: &[u32], width: usize, chunk: usize, segment: usize) -> usize {
        let mut buf = Vec::new();
        encode_stream(
            symbols,
            StreamOptions {
                width,
                chunk,
                segment,
                wide: true,
                extra: 0,
            },
            &mut buf,
        )
        .unwrap();
        for parallel in [false, true] {
            let mut c = Cursor::new(&buf, 0, FormatRule::Payload);
            let mut out = vec![0u32; symbols.len()];
            decode_stream(
                &mut c,
                width,
                1 << (8 * width as u64),
                |s| s,
                &mut out,
                parallel,
            )
            .unwrap();
            assert!(c.is_empty());
            assert_eq!(out, symbols);
        }
        buf.len()
    }

    #[test]
    fn modes_round_trip() {
        assert_eq!(round_trip(&[7; 1000], 1, 100), 2);
        assert_eq!(round_trip(&[], 1, 100), 1);
        let skewed: Vec<u32> = (0..100_000u32)
            .map(|i| if i % 10 == 0 { i % 7 } else { 3 })
            .collect();
        let n = round_trip(&skewed, 1, 4096);
        assert!(n < 20_000, "{n}");
        let uniform: Vec<u32> = (0..1000u32).map(|i| (i * 2654435761u32) >> 24).collect();
        assert!(round_trip(&uniform, 1, 1 << 18) <= 1001);
        let wide: Vec<u32> = (0..5000u32).map(|i| (i % 300) * 1000).collect();
        round_trip(&wide, 4, 777);
        // Long streams take the wide layout (mode 6), with a last chunk that is short and
        // not a multiple of 32 lanes.
        let long: Vec<u32> = (0..(WIDE_CHUNK + 12345) as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 20) % (40 + i % 7))
            .collect();
        let mut buf = Vec::new();
        let opt = StreamOptions {
            width: 1,
            chunk: 1 << 15,
            segment: 0,
            wide: true,
            extra: 0,
        };
        encode_stream(&long, opt, &mut buf).unwrap();
        assert_eq!(buf[0], MODE_ANS_WIDE);
        round_trip(&long, 1, 1 << 15);
        // Hostile bytes: flipped bytes and truncations anywhere give an error or some
        // symbols, never a panic, and the same result serial and parallel (the output of a
        // failed decode is unspecified).
        for bad in hostile_variants(&buf, 77, 300, 3) {
            same_serial_and_parallel(&bad, long.len(), 1, 256);
        }
    }

    #[test]
    fn channel_classes_round_trip_and_beat_one_model() {
        // 64 channels of 1000 symbols whose spread depends on the channel.
        let mut x = 99u64;
        let syms: Vec<u32> = (0..64_000u32)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let spread = 1 + (i / 1000) % 8 * 6;
                ((x >> 40) % spread as u64) as u32
            })
            .collect();
        let plain = round_trip_seg(&syms, 1, 1 << 15, 0);
        let classed = round_trip_seg(&syms, 1, 5000, 1000);
        let mut buf = Vec::new();
        encode_stream(
            &syms,
            StreamOptions {
                width: 1,
                chunk: 5000,
                segment: 1000,
                wide: true,
                extra: 0,
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(buf[0], MODE_ANS_WIDE_CLASSES);
        assert!(classed < plain * 95 / 100, "{classed} vs {plain}");
        let mut narrow = Vec::new();
        let opt = StreamOptions {
            width: 1,
            chunk: 5000,
            segment: 1000,
            wide: false,
            extra: 0,
        };
        encode_stream(&syms, opt, &mut narrow).unwrap();
        assert_eq!(narrow[0], MODE_ANS_CLASSES);
        // The rule compares with mode 4's estimate, not its bytes: within 1 % here (the lane
        // states of one chunk are 0.4 % of this short stream).
        assert!(
            buf.len() as f64 <= narrow.len() as f64 * 1.01,
            "{} vs {}",
            buf.len(),
            narrow.len()
        );
    }

    /// Symbols whose spread depends on their segment (of `segment` symbols).
    fn segmented(n: usize, segment: usize, seed: u64) -> Vec<u32> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let spread = 1 + (i / segment) as u64 % 8 * 40;
                ((x >> 40) % spread) as u32
            })
            .collect()
    }

    /// Mode 7 (spec §7.3.6) decodes what it codes whatever the segment length (segments that
    /// start and end inside rounds of 32, shorter than a round, longer than a chunk), with
    /// wide tables and without (short classes), serial and parallel, as integers and as f32
    /// (fused); and hostile bytes give the same result serial and parallel.
    #[test]
    fn wide_channel_classes_decode_any_segment_length() {
        for (n, segment, chunk) in [
            (300_000, 1000, 1 << 16),
            (200_003, 37, 1 << 16),
            (150_000, 5, 70_000),
            (450_000, 100_000, 1 << 16),
            (9_000, 300, 4096),
        ] {
            let syms = segmented(n, segment, n as u64);
            let (p, seg_class) = classes::plan_segments(&syms, segment, usize::MAX)
                .unwrap_or_else(|| panic!("no plan for segment {segment}"));
            let mut buf = vec![MODE_ANS_WIDE_CLASSES];
            classes::write_segment_head(&p, &seg_class, segment, &mut buf).unwrap();
            classes::write_wide_chunks(&syms, &p, chunk, &mut buf);
            for parallel in [false, true] {
                let mut c = Cursor::new(&buf, 0, FormatRule::Payload);
                let mut out = vec![0u32; n];
                decode_stream(&mut c, 2, 1 << 16, |s| s, &mut out, parallel).unwrap();
                assert!(c.is_empty());
                assert_eq!(out, syms, "segment {segment}");
                // Mapped to f32: the fused path of 4-byte values.
                let mut c = Cursor::new(&buf, 0, FormatRule::Payload);
                let mut outf = vec![0f32; n];
                decode_stream(&mut c, 2, 1 << 16, |s| s as f32 - 3.5, &mut outf, parallel)
                    .unwrap();
                assert!(outf.iter().zip(&syms).all(|(&a, &b)| a == b as f32 - 3.5));
            }
            for bad in hostile_variants(&buf, segment as u64, 40, 4) {
                same_serial_and_parallel(&bad, n, 2, 1 << 16);
            }
        }
    }
}
