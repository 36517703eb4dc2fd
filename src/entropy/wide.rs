//! Wide rANS (spec §7.3.5, stream mode 6): 32 interleaved lanes with 32-bit states and
//! 16-bit renormalization in one word stream per chunk. Symbol `i` of a chunk belongs to
//! lane `i mod 32`; the lanes are independent dependency chains, so a decoder keeps 32
//! symbols in flight, and eight lanes fit one AVX2 register (`wide_avx2`). The portable
//! loop here is the one the spec writes out; the AVX2 path decodes the same bits.
use super::ans::{DecodeTables, SLOT_TABLE_MIN};
use super::model::{FreqModel, PRECISION, TOTAL};
use crate::bytes::{put_varint, Cursor};
use crate::error::{Error, FormatRule, Result};

/// Lanes per chunk (spec §7.3.5).
pub const LANES: usize = 32;

/// Lower bound of a normalized state: states live in `[L, 2^32)`.
pub const L: u32 = 1 << 16;

/// Bytes of the initial states at the start of a chunk.
pub const STATE_BYTES: usize = 4 * LANES;

/// Encodes `indices` (each < model size) as one wide chunk: the 32 initial states (u32 LE,
/// lane 0 first), then the 16-bit words (LE) in the order the decoder reads them.
pub fn encode_chunk(model: &FreqModel, indices: &[u32]) -> Vec<u8> {
    let syms = enc_symbols(model);
    encode_chunk_with(indices.len(), |t| syms[indices[t] as usize])
}

/// What the encoder needs of one symbol: its frequency `f`, cumulative frequency `c`, and
/// `rcp = ⌊(2^64 − 1)/f⌋ + 1`, with which `⌊x/f⌋ = ⌊x·rcp / 2^64⌋` for every 32-bit state
/// `x` and `f ≥ 2` (the product overshoots `x/f` by less than `2^-32`, less than the `1/f`
/// that separates `x/f` from the next integer): a multiplication instead of a division.
#[derive(Debug, Clone, Copy)]
pub struct EncSym {
    f: u32,
    c: u32,
    rcp: u64,
}

impl EncSym {
    /// The symbol of frequency `f` (at most 2^16) and cumulative frequency `c`.
    pub fn new(f: u32, c: u32) -> EncSym {
        let rcp = if f > 1 { u64::MAX / f as u64 + 1 } else { 0 };
        EncSym { f, c, rcp }
    }

    /// `(x / f, x % f)`.
    #[inline(always)]
    fn div_rem(&self, x: u32) -> (u32, u32) {
        if self.f <= 1 {
            return (x, 0);
        }
        let q = ((x as u128 * self.rcp as u128) >> 64) as u32;
        (q, x - q * self.f)
    }
}

/// The encoder's view of every symbol index of `model`.
pub fn enc_symbols(model: &FreqModel) -> Vec<EncSym> {
    let mut out = Vec::with_capacity(model.freqs.len());
    let mut acc = 0u32;
    for &f in &model.freqs {
        out.push(EncSym::new(f, acc));
        acc += f;
    }
    out
}

/// Encodes a chunk of `len` symbols whose symbol `t` is coded as `sym(t)` (under its own
/// model: mode 7 changes model with the class).
pub fn encode_chunk_with(len: usize, sym: impl Fn(usize) -> EncSym) -> Vec<u8> {
    let mut x = [L; LANES];
    // At most one word per symbol, written without a branch (whether a lane renormalizes is
    // as good as random: a branch on it mispredicts about every other symbol).
    let mut words = vec![0u16; len];
    let mut n = 0;
    for i in (0..len).rev() {
        let lane = &mut x[i % LANES];
        let s = sym(i);
        // x < 2^(32-PRECISION) * f after renormalization, so the result fits 32 bits.
        let x_max = ((L >> PRECISION) << 16) as u64 * s.f as u64;
        let out = (*lane as u64 >= x_max) as u32;
        words[n] = *lane as u16;
        n += out as usize;
        *lane >>= 16 * out;
        let (q, r) = s.div_rem(*lane);
        *lane = (q << PRECISION) + r + s.c;
    }
    words.truncate(n);
    let mut out = Vec::with_capacity(STATE_BYTES + 2 * words.len());
    for s in x {
        out.extend_from_slice(&s.to_le_bytes());
    }
    for w in words.iter().rev() {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// Decoder tables of one model at 16-bit precision. Per slot `q`, the index of the symbol
/// whose interval holds `q`: in `sym8` (64 KiB) when the model has at most 256 symbols, else
/// in `sym16` (128 KiB), each with padding at the end so a 4-byte gather of the last entry
/// stays inside. Per symbol index `i`, `fc[i] = f | c << 16` and, when not empty, `vals[i]`,
/// the value of that symbol as 4 bytes, for a decoder that writes values of a 4-byte type
/// straight from the loop (reconstruction fused). The slot tables stay small enough for
/// the processor's second-level cache; the per-symbol tables for the first.
///
/// For the AVX2 path of long streams of a 4-byte type, `slot[q]` packs both per slot:
/// `f | (q − c) << 16 | value << 32` (512 KiB, one 64-bit gather per lane).
///
/// Short streams (below `SLOT_TABLE_MIN` symbols) leave the slot tables empty and look
/// symbols up in the 2 KiB coarse table of `small` instead: the result is the same.
///
/// Invariant (the AVX2 path relies on it): every entry of `sym8`/`sym16`, padding included,
/// is below `fc.len()`, and `vals` is empty or as long as `fc`. Only `for_len` builds these.
pub struct WideTables {
    pub(super) sym8: Vec<u8>,
    pub(super) sym16: Vec<u16>,
    pub(super) fc: Vec<u32>,
    pub(super) vals: Vec<u32>,
    pub(super) slot: Vec<u64>,
    small: DecodeTables,
}

/// Streams of at least this many symbols of a 4-byte type get the packed `slot` table.
const PACKED_MIN: usize = 1 << 17;

impl WideTables {
    /// Tables for decoding `symbols` symbols with this model.
    pub fn for_len<T: Copy + 'static>(model: &FreqModel, symbols: usize, values: &[T]) -> Self {
        let n = model.freqs.len();
        let mut t = WideTables {
            sym8: Vec::new(),
            sym16: Vec::new(),
            fc: packed_fc(model).collect(),
            vals: Vec::new(),
            slot: Vec::new(),
            small: DecodeTables::new(model),
        };
        if symbols < SLOT_TABLE_MIN {
            return t;
        }
        (t.sym8, t.sym16) = slot_tables(std::slice::from_ref(model));
        if let Some(bits) = value_bits(values).filter(|b| b.len() == n) {
            if symbols >= PACKED_MIN && cfg!(target_arch = "x86_64") {
                t.slot = spare_empty(|s| &mut s.slot, TOTAL as usize);
                for ((&f, &e), &v) in model.freqs.iter().zip(&t.fc).zip(&bits) {
                    let packed = f as u64 | (v as u64) << 32;
                    t.slot.extend((0..f as u64).map(|k| packed | k << 16));
                    let _ = e;
                }
            }
            t.vals = bits;
        }
        t
    }

    /// `(f, c, i)` of the symbol index `i` whose interval holds slot `q` (< 2^16).
    #[inline(always)]
    fn lookup(&self, q: usize) -> (u32, u32, usize) {
        let i = if !self.sym8.is_empty() {
            self.sym8[q] as usize
        } else if !self.sym16.is_empty() {
            self.sym16[q] as usize
        } else {
            self.small.symbol_at(q as u32)
        };
        let e = self.fc[i];
        (e & 0xFFFF, e >> 16, i)
    }
}

/// The slot tables of `models` laid end to end (model `k`'s 2^16 entries from `k · 2^16`),
/// each entry the index of the symbol whose interval holds the slot: `(sym8, [])` when every
/// model has at most 256 symbols (with 3 bytes of padding, so a 4-byte gather of the last
/// entry stays inside), else `([], sym16)` (with one entry of padding).
fn slot_tables(models: &[FreqModel]) -> (Vec<u8>, Vec<u16>) {
    let span = TOTAL as usize;
    let narrow = models.iter().all(|m| m.freqs.len() <= 256);
    let (mut sym8, mut sym16) = if narrow {
        (spare_zeroed(|s| &mut s.sym8, models.len() * span + 3), Vec::new())
    } else {
        (Vec::new(), spare_zeroed(|s| &mut s.sym16, models.len() * span + 1))
    };
    for (k, m) in models.iter().enumerate() {
        let mut c = k * span;
        for (i, &f) in m.freqs.iter().enumerate() {
            let f = f as usize;
            if narrow {
                sym8[c..c + f].fill(i as u8);
            } else {
                sym16[c..c + f].fill(i as u16);
            }
            c += f;
        }
    }
    (sym8, sym16)
}

/// The slot tables' buffers of the tables last dropped on this thread, for the next ones:
/// a tensor's tables are 64 KiB to 640 KiB, and fresh memory costs a page fault per 4 KiB
/// (building them had taken 37 % of the page faults of `nnc verify` on PP-OCRv4 det).
#[derive(Default)]
struct Spare {
    sym8: Vec<u8>,
    sym16: Vec<u16>,
    slot: Vec<u64>,
}

thread_local! {
    static SPARE: std::cell::RefCell<Spare> = std::cell::RefCell::new(Spare::default());
}

/// Buffers larger than this are not kept.
const SPARE_MAX_BYTES: usize = 4 << 20;

/// A vector of `len` zeros, in this thread's spare buffer when there is one.
fn spare_zeroed<T: Copy + Default>(pick: fn(&mut Spare) -> &mut Vec<T>, len: usize) -> Vec<T> {
    let mut v = SPARE.with(|s| std::mem::take(pick(&mut s.borrow_mut())));
    v.clear();
    v.resize(len, T::default());
    v
}

/// An empty vector with room for `len`, in this thread's spare buffer when there is one.
fn spare_empty<T>(pick: fn(&mut Spare) -> &mut Vec<T>, len: usize) -> Vec<T> {
    let mut v = SPARE.with(|s| std::mem::take(pick(&mut s.borrow_mut())));
    v.clear();
    v.reserve(len);
    v
}

/// Keeps `v` as this thread's spare buffer when it is larger than the one kept.
fn keep_spare<T>(pick: fn(&mut Spare) -> &mut Vec<T>, v: &mut Vec<T>) {
    if v.capacity() == 0 || v.capacity() * std::mem::size_of::<T>() > SPARE_MAX_BYTES {
        return;
    }
    // A thread being torn down has no spare to keep it in: the vector is simply freed.
    let _ = SPARE.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            let kept = pick(&mut s);
            if v.capacity() > kept.capacity() {
                std::mem::swap(kept, v);
            }
        }
    });
}

impl Drop for WideTables {
    fn drop(&mut self) {
        keep_spare(|s| &mut s.sym8, &mut self.sym8);
        keep_spare(|s| &mut s.sym16, &mut self.sym16);
        keep_spare(|s| &mut s.slot, &mut self.slot);
    }
}

impl Drop for ClassTables {
    fn drop(&mut self) {
        keep_spare(|s| &mut s.sym8, &mut self.sym8);
        keep_spare(|s| &mut s.sym16, &mut self.sym16);
    }
}

/// `f | c << 16` of each symbol index of `model` (frequency and cumulative frequency).
fn packed_fc(model: &FreqModel) -> impl ExactSizeIterator<Item = u32> + '_ {
    let mut c = 0u32;
    model.freqs.iter().map(move |&f| {
        let e = f | c << 16;
        c += f;
        e
    })
}

/// The values as native-endian 4-byte patterns, for the types a fused decoder may write
/// directly (`[u8; 4]`, `u32`, `f32`); `None` for any other type.
pub fn value_bits<T: Copy + 'static>(values: &[T]) -> Option<Vec<u32>> {
    use std::any::Any;
    values
        .iter()
        .map(|v| {
            let v = v as &dyn Any;
            if let Some(a) = v.downcast_ref::<[u8; 4]>() {
                Some(u32::from_ne_bytes(*a))
            } else if let Some(u) = v.downcast_ref::<u32>() {
                Some(*u)
            } else {
                v.downcast_ref::<f32>().map(|f| f.to_bits())
            }
        })
        .collect()
}

/// A chunk being decoded: the lane states and the read position in its bytes.
pub struct WideState<'a> {
    pub x: [u32; LANES],
    pub bytes: &'a [u8],
    pub pos: usize,
    pub base: u64,
}

impl<'a> WideState<'a> {
    /// Reads the 32 initial states; each MUST be at least `L` (spec §7.3.5).
    pub fn new(bytes: &'a [u8], base: u64) -> Result<Self> {
        if bytes.len() < STATE_BYTES || !(bytes.len() - STATE_BYTES).is_multiple_of(2) {
            return Err(Error::format(
                FormatRule::Payload,
                base,
                format!("wide rANS chunk of {} bytes", bytes.len()),
            ));
        }
        let mut x = [0u32; LANES];
        for (j, s) in x.iter_mut().enumerate() {
            let b = &bytes[4 * j..4 * j + 4];
            *s = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if *s < L {
                return Err(Error::format(
                    FormatRule::Payload,
                    base + 4 * j as u64,
                    format!("wide rANS lane {j} starts in state {s}, below 2^16"),
                ));
            }
        }
        Ok(WideState {
            x,
            bytes,
            pos: STATE_BYTES,
            base,
        })
    }

    /// Decodes one symbol with lane `j` (spec §7.3.5 loop body); returns its index.
    #[inline(always)]
    pub fn step(&mut self, t: &WideTables, j: usize) -> Result<usize> {
        self.step_by(j, |q| t.lookup(q))
    }

    /// [`Self::step`] with the model given by `lookup(q) = (f, c, i)` of slot `q`.
    #[inline(always)]
    pub fn step_by(
        &mut self,
        j: usize,
        lookup: impl Fn(usize) -> (u32, u32, usize),
    ) -> Result<usize> {
        let x = self.x[j];
        let q = (x & (TOTAL - 1)) as usize;
        let (f, c, i) = lookup(q);
        let mut x = (x >> PRECISION) * f + (q as u32 - c);
        if x < L {
            let Some(w) = self.bytes.get(self.pos..self.pos + 2) else {
                return Err(Error::format(
                    FormatRule::Payload,
                    self.base + self.pos as u64,
                    format!("wide rANS lane {j} needs a word past the end of its chunk"),
                ));
            };
            x = (x << 16) | u16::from_le_bytes([w[0], w[1]]) as u32;
            self.pos += 2;
        }
        self.x[j] = x;
        Ok(i)
    }

    /// The end condition: every word consumed and every lane back at `L`.
    pub fn finish(&self) -> Result<()> {
        if self.pos != self.bytes.len() || self.x.iter().any(|&x| x != L) {
            return Err(Error::format(
                FormatRule::Payload,
                self.base,
                "wide rANS chunk not fully consumed (corrupt payload or wrong symbol count)",
            ));
        }
        Ok(())
    }
}

/// A chunk's bytes and their offset in the file.
pub type Chunk<'a> = (&'a [u8], u64);

/// Reads `varint chunk` (not 0) and the chunk table of a wide stream of `count` symbols
/// (modes 6 and 7, spec §7.3.5, §7.3.6); returns `chunk` and each chunk's bytes and offset.
pub fn read_layout<'a>(c: &mut Cursor<'a>, count: usize) -> Result<(usize, Vec<Chunk<'a>>)> {
    let chunk = c.varint_max(u32::MAX as u64, "chunk length")?;
    if chunk == 0 {
        return Err(c.err("chunk length 0"));
    }
    Ok((chunk, read_chunks(c, count.div_ceil(chunk))?))
}

/// Reads the chunk table of mode 6 (spec §7.3.5): for each chunk `varint h` (its 16-bit
/// words after the states); returns each chunk's bytes (`128 + 2h`) and offset.
fn read_chunks<'a>(c: &mut Cursor<'a>, chunks: usize) -> Result<Vec<Chunk<'a>>> {
    if chunks > c.remaining() / (1 + STATE_BYTES) {
        return Err(c.err(format!(
            "{chunks} wide chunks claimed, {} bytes remain",
            c.remaining()
        )));
    }
    let mut lens = Vec::with_capacity(chunks);
    for _ in 0..chunks {
        let h = c.varint_max(c.remaining() as u64 / 2, "chunk word count")?;
        lens.push(STATE_BYTES + 2 * h);
    }
    let mut out = Vec::with_capacity(chunks);
    for n in lens {
        let at = c.offset();
        out.push((c.take(n, "wide chunk")?, at));
    }
    Ok(out)
}

/// Writes the chunk table and the chunks of mode 6 (spec §7.3.5).
pub fn write_chunks(chunks: &[Vec<u8>], out: &mut Vec<u8>) {
    for ch in chunks {
        put_varint(out, ((ch.len() - STATE_BYTES) / 2) as u64);
    }
    for ch in chunks {
        out.extend_from_slice(ch);
    }
}

/// Decodes one wide chunk of `out.len()` symbols, writing `values[index]`.
pub fn decode_chunk<T: Copy + 'static>(
    t: &WideTables,
    bytes: &[u8],
    base: u64,
    values: &[T],
    out: &mut [T],
) -> Result<()> {
    let mut st = WideState::new(bytes, base)?;
    #[cfg(target_arch = "x86_64")]
    let done = super::wide_avx2::decode_rounds(t, &mut st, values, out);
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (i, o) in out.iter_mut().enumerate().skip(done) {
        *o = values[st.step(t, i % LANES)?];
    }
    st.finish()
}

/// Decoder tables of the `Kc` class models of a mode-7 stream (spec §7.3.6), laid out for a
/// decoder whose 32 lanes may each use another class: per class `k` a slot table of 2^16
/// entries at `k · 2^16` in `sym8` (every class with at most 256 symbols) or `sym16`, each
/// entry the symbol's index within its class; the classes' `f | c << 16` (`fc`) and 4-byte
/// values (`vals`, when the type allows fusing) one after the other, class `k`'s from
/// `off[k]`. Short streams (below `SLOT_TABLE_MIN` symbols) leave the slot tables empty and
/// look symbols up in each class's coarse table (`small`).
///
/// Not the packed table of mode 6: a lookup is a random access into its slot table, and a
/// stream switches class every segment, so the classes' tables must stay in the
/// second-level cache together (at 512 KiB per class they did not: five classes in
/// segments of 16384 symbols decoded at 1480 MB/s of f32 with packed tables per class,
/// 2480 with these).
///
/// Invariant (the AVX2 path relies on it): every entry of `sym8`/`sym16`, padding included,
/// plus the `off` of its class is below `fc.len()`; `vals` is empty or as long as `fc`.
pub struct ClassTables {
    pub(super) sym8: Vec<u8>,
    pub(super) sym16: Vec<u16>,
    pub(super) fc: Vec<u32>,
    pub(super) vals: Vec<u32>,
    pub(super) off: Vec<u32>,
    small: Vec<DecodeTables>,
}

impl ClassTables {
    /// Tables for a stream of `symbols` symbols over the class models `models`, whose
    /// values (`values`, class after class, `Σ m_k` of them) a decoder writes.
    pub fn new<T: Copy + 'static>(models: &[FreqModel], symbols: usize, values: &[T]) -> Self {
        let mut t = ClassTables {
            sym8: Vec::new(),
            sym16: Vec::new(),
            fc: Vec::new(),
            vals: Vec::new(),
            off: Vec::with_capacity(models.len()),
            small: models.iter().map(DecodeTables::new).collect(),
        };
        for m in models {
            t.off.push(t.fc.len() as u32);
            t.fc.extend(packed_fc(m));
        }
        if let Some(bits) = value_bits(values).filter(|b| b.len() == t.fc.len()) {
            t.vals = bits;
        }
        if symbols < SLOT_TABLE_MIN {
            return t;
        }
        (t.sym8, t.sym16) = slot_tables(models);
        t
    }

    /// `(f, c, i)` of slot `q` (< 2^16) in class `k`, `i` counted over all classes (an index
    /// into the values).
    #[inline(always)]
    fn lookup(&self, k: usize, q: usize) -> (u32, u32, usize) {
        let local = if !self.sym8.is_empty() {
            self.sym8[(k << PRECISION) + q] as usize
        } else if !self.sym16.is_empty() {
            self.sym16[(k << PRECISION) + q] as usize
        } else {
            self.small[k].symbol_at(q as u32)
        };
        let i = self.off[k] as usize + local;
        let e = self.fc[i];
        (e & 0xFFFF, e >> 16, i)
    }
}

/// The segment classes of a mode-7 chunk: symbol `t` of the chunk is symbol `start + t` of
/// the stream and uses class `classes[(start + t) / segment]` (each below the number of
/// classes: the caller checks).
#[derive(Clone, Copy)]
pub struct Segments<'a> {
    pub classes: &'a [u8],
    pub segment: usize,
    pub start: usize,
}

/// Decodes one wide chunk of mode 7 (spec §7.3.6) into `out`, writing `values[i]` for the
/// index `i` over all classes that [`ClassTables`] gives. Whole rounds of 32 symbols take
/// the AVX2 path, each lane with its own class; the rest the portable loop of the spec.
pub fn decode_chunk_classes<T: Copy + 'static>(
    t: &ClassTables,
    segs: Segments<'_>,
    bytes: &[u8],
    base: u64,
    values: &[T],
    out: &mut [T],
) -> Result<()> {
    class_chunk(t, segs, bytes, base, values, out, true)
}

/// [`decode_chunk_classes`], with the AVX2 path only when `fast` (tests compare the two).
fn class_chunk<T: Copy + 'static>(
    t: &ClassTables,
    segs: Segments<'_>,
    bytes: &[u8],
    base: u64,
    values: &[T],
    out: &mut [T],
    fast: bool,
) -> Result<()> {
    let mut st = WideState::new(bytes, base)?;
    #[cfg(target_arch = "x86_64")]
    let done = if fast {
        super::wide_avx2::decode_class_rounds(t, segs, &mut st, values, out)
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = {
        let _ = fast;
        0
    };
    let seg = segs.segment;
    let mut s = (segs.start + done) / seg;
    let mut end = (s + 1) * seg;
    for (i, o) in out.iter_mut().enumerate().skip(done) {
        while segs.start + i >= end {
            s += 1;
            end += seg;
        }
        let k = segs.classes[s] as usize;
        *o = values[st.step_by(i % LANES, |q| t.lookup(k, q))?];
    }
    st.finish()
}

/// The portable loop alone (for tests that compare it with the AVX2 path).
#[cfg(test)]
pub fn decode_chunk_portable<T: Copy>(
    t: &WideTables,
    bytes: &[u8],
    base: u64,
    values: &[T],
    out: &mut [T],
) -> Result<()> {
    let mut st = WideState::new(bytes, base)?;
    for (i, o) in out.iter_mut().enumerate() {
        *o = values[st.step(t, i % LANES)?];
    }
    st.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_division_is_exact() {
        let mut x = 0x1234_5678u32;
        for f in [1u32, 2, 3, 5, 7, 255, 256, 257, 4095, 4096, 40503, 65535, 65536] {
            let s = EncSym::new(f, 0);
            let mut probe = vec![0, 1, f - 1, f, f + 1, u32::MAX, u32::MAX - 1, u32::MAX / f * f];
            probe.extend((1..200u32).map(|k| k.wrapping_mul(f).wrapping_sub(1)));
            for _ in 0..20000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                probe.push(x);
            }
            for &x in &probe {
                assert_eq!(s.div_rem(x), (x / f, x % f), "x={x} f={f}");
            }
        }
    }

    /// Mode 7 chunks: the AVX2 path (lanes of one round in different classes included) and
    /// the portable loop decode the same symbols, and fail or succeed alike on broken bytes.
    #[test]
    fn class_chunks_fast_and_portable_agree() {
        let spreads = [0.7, 3.0, 12.0, 40.0];
        for (segment, classes_n) in [(9usize, 4usize), (50, 3), (64, 2), (1000, 4)] {
            let n: usize = 70_001;
            let nseg = n.div_ceil(segment);
            let classes: Vec<u8> = (0..nseg).map(|s| ((s * 7 + s / 3) % classes_n) as u8).collect();
            let syms: Vec<u32> = (0..n)
                .map(|i| {
                    let k = classes[i / segment] as usize;
                    laplace(1, spreads[k], i as u64 * 31 + 5)[0]
                })
                .collect();
            let models: Vec<FreqModel> = (0..classes_n)
                .map(|k| {
                    let mine: Vec<u32> = syms
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| classes[i / segment] as usize == k)
                        .map(|(_, &s)| s)
                        .chain([0, 1])
                        .collect();
                    FreqModel::from_counts(&crate::entropy::histogram(&mine)).unwrap()
                })
                .collect();
            let index = |k: usize, s: u32| models[k].symbols.binary_search(&s).unwrap();
            let enc: Vec<Vec<EncSym>> = models.iter().map(enc_symbols).collect();
            let bytes = encode_chunk_with(n, |t| {
                let k = classes[t / segment] as usize;
                enc[k][index(k, syms[t])]
            });
            let values: Vec<u32> = models.iter().flat_map(|m| m.symbols.clone()).collect();
            let t = ClassTables::new(&models, n, &values);
            let segs = Segments {
                classes: &classes,
                segment,
                start: 0,
            };
            let decode = |b: &[u8], fast: bool| {
                let mut out = vec![0u32; n];
                let r = class_chunk(&t, segs, b, 0, &values, &mut out, fast);
                (format!("{r:?}"), r.is_ok().then_some(out))
            };
            let fast = decode(&bytes, true);
            assert_eq!(fast.1.as_deref(), Some(&syms[..]), "segment {segment}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // The vector path did the work (it stops only near the end of the chunk).
                let mut st = WideState::new(&bytes, 0).unwrap();
                let mut out = vec![0u32; n];
                let done =
                    super::super::wide_avx2::decode_class_rounds(&t, segs, &mut st, &values, &mut out);
                assert!(done > n * 9 / 10, "{done} of {n}");
            }
            assert_eq!(decode(&bytes, false), fast);
            // Not fused (8-byte values): the symbol indices mapped through the values.
            let wide_values: Vec<u64> = values.iter().map(|&v| (v as u64) << 33).collect();
            let tw = ClassTables::new(&models, n, &wide_values);
            let mut out = vec![0u64; n];
            decode_chunk_classes(&tw, segs, &bytes, 0, &wide_values, &mut out).unwrap();
            assert!(out.iter().zip(&syms).all(|(&a, &b)| a == (b as u64) << 33));
            for bad in crate::entropy::hostile_variants(&bytes, segment as u64, 30, 3) {
                assert_eq!(decode(&bad, true), decode(&bad, false));
            }
        }
    }

    fn laplace(n: usize, b: f64, seed: u64) -> Vec<u32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                let v = if u < 0.5 {
                    b * (2.0 * u).ln()
                } else {
                    -b * (2.0 * (1.0 - u)).ln()
                };
                let q = v.round() as i64;
                ((q << 1) ^ (q >> 63)) as u32
            })
            .collect()
    }

    #[test]
    fn round_trip_and_size() {
        for (b, n) in [
            (0.5, 1 << 18),
            (4.0, 1 << 18),
            (20.0, 1 << 18),
            (20.0, 1 << 16),
            (4.0, 1 << 15),
            (4.0, 1001),
        ] {
            let syms = laplace(n, b, 3);
            let hist = crate::entropy::histogram(&syms);
            let m = FreqModel::from_counts(&hist).unwrap();
            let index: Vec<u32> = {
                let mut t = vec![0u32; *m.symbols.last().unwrap() as usize + 1];
                for (i, &s) in m.symbols.iter().enumerate() {
                    t[s as usize] = i as u32;
                }
                syms.iter().map(|&s| t[s as usize]).collect()
            };
            let bytes = encode_chunk(&m, &index);
            let narrow = 4 * super::super::ans::encode_chunk(&m, &index).unwrap().len();
            let ideal = m.cost_bits(&hist) / 8.0;
            eprintln!(
                "b={b} n={n}: wide {} narrow {narrow} model-ideal {ideal:.0} ({:+.3}% vs narrow)",
                bytes.len(),
                100.0 * (bytes.len() as f64 / narrow as f64 - 1.0)
            );
            let values: Vec<u32> = (0..m.freqs.len() as u32).collect();
            let t = WideTables::for_len(&m, n, &values);
            let values: Vec<u32> = (0..m.freqs.len() as u32).collect();
            let mut out = vec![0u32; n];
            decode_chunk(&t, &bytes, 0, &values, &mut out).unwrap();
            assert_eq!(out, index);
            let mut out2 = vec![0u32; n];
            decode_chunk_portable(&t, &bytes, 0, &values, &mut out2).unwrap();
            assert_eq!(out2, index);
            // A type that is not fused (indices mapped through the values).
            let wide_values: Vec<u64> = (0..m.freqs.len() as u64).map(|v| v << 40).collect();
            let tw = WideTables::for_len(&m, n, &wide_values);
            let mut out3 = vec![0u64; n];
            decode_chunk(&tw, &bytes, 0, &wide_values, &mut out3).unwrap();
            assert!(out3.iter().zip(&index).all(|(&a, &b)| a == (b as u64) << 40));
            // One symbol short leaves state behind.
            let mut short = vec![0u32; n - 1];
            assert!(decode_chunk(&t, &bytes, 0, &values, &mut short).is_err());
            // Every truncation and a flipped byte are errors or decode, never panic, and
            // both paths agree.
            for cut in [0, 1, 127, 128, 130, bytes.len() / 2, bytes.len() - 2] {
                let a = decode_chunk(&t, &bytes[..cut], 0, &values, &mut out).is_ok();
                let b = decode_chunk_portable(&t, &bytes[..cut], 0, &values, &mut out2).is_ok();
                assert_eq!(a, b);
                assert!(!a);
            }
            let mut bad = bytes.clone();
            let k = bad.len() * 2 / 3;
            bad[k] ^= 0x5a;
            let a = decode_chunk(&t, &bad, 0, &values, &mut out);
            let b = decode_chunk_portable(&t, &bad, 0, &values, &mut out2);
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            assert_eq!(out, out2);
        }
    }
}
