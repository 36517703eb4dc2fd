//! The AVX2 path of the wide rANS decoder (spec §7.3.5): eight lanes per register, four
//! registers per round of 32 symbols. It decodes exactly what the portable loop in `wide`
//! decodes, reading the same words in the same order, and stops (leaving the rest to the
//! portable loop) before a round could need bytes past the end of the chunk. The only
//! `unsafe` of the crate's decoder lives here.
#![allow(unsafe_code)]

use super::wide::{ClassTables, Segments, WideState, WideTables, LANES};

/// Bytes a round of 32 lanes may consume at most: one 16-bit word per lane.
const ROUND_BYTES: usize = 2 * LANES;

/// For each 8-bit mask of lanes that renormalize, the source index of each lane's word
/// among the words loaded for the group: the number of set bits below it.
static PERM: [[u32; 8]; 256] = perm_table();

const fn perm_table() -> [[u32; 8]; 256] {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let mut k = 0u32;
        let mut j = 0;
        while j < 8 {
            if m & (1 << j) != 0 {
                t[m][j] = k;
                k += 1;
            }
            j += 1;
        }
        m += 1;
    }
    t
}

/// What the gathers of a round read: the slot table (`sym8`, or `sym16` when `sym8` is
/// empty), `f | c << 16` per symbol index (`fc`) and, for a fused decoder, the values (`vals`).
#[derive(Clone, Copy)]
struct Gather<'a> {
    sym8: &'a [u8],
    sym16: &'a [u16],
    fc: &'a [u32],
    vals: &'a [u32],
}

/// The lanes' classes of a mode-7 chunk: per lane, its slot index is offset by `class · 2^16`
/// and its symbol index by `off[class]`.
#[derive(Clone, Copy)]
struct ClassLanes<'a> {
    segs: Segments<'a>,
    off: &'a [u32],
}

/// Decodes whole rounds of 32 symbols from the start of `out` while the chunk has at least
/// `ROUND_BYTES` bytes left; returns the number of symbols written (a multiple of 32, 0
/// without AVX2 or without slot tables). `st` is left where the portable loop continues.
pub fn decode_rounds<T: Copy + 'static>(
    t: &WideTables,
    st: &mut WideState<'_>,
    values: &[T],
    out: &mut [T],
) -> usize {
    let sym8 = t.sym8.len() == (1 << 16) + 3;
    if !sym8 && t.sym16.len() != (1 << 16) + 1 {
        return 0;
    }
    if !std::arch::is_x86_feature_detected!("avx2") {
        return 0;
    }
    let fused = t.vals.len() == t.fc.len() && is_word::<T>();
    if fused && t.slot.len() == 1 << 16 {
        // SAFETY: as below; `slot` has 2^16 entries (checked just above) and `T` is a
        // 4-byte type (`is_word`).
        return unsafe { rounds_packed(t, st, out) };
    }
    let g = Gather {
        sym8: &t.sym8,
        sym16: &t.sym16,
        fc: &t.fc,
        vals: &t.vals,
    };
    // SAFETY: AVX2 was detected at run time just above; the slot table has one class of
    // 2^16 entries (plus padding), checked above, and the invariant of `WideTables` holds.
    unsafe { dispatch(g, None, st, values, out, fused, sym8) }
}

/// Decodes whole rounds of 32 symbols of a mode-7 chunk (spec §7.3.6) as [`decode_rounds`]
/// does, each lane with the tables of its own segment's class. `values` holds every class's
/// values, class after class, as [`ClassTables`] indexes them.
pub fn decode_class_rounds<T: Copy + 'static>(
    t: &ClassTables,
    segs: Segments<'_>,
    st: &mut WideState<'_>,
    values: &[T],
    out: &mut [T],
) -> usize {
    let k = t.off.len();
    let sym8 = t.sym8.len() == (k << 16) + 3;
    if !sym8 && t.sym16.len() != (k << 16) + 1 {
        return 0;
    }
    if !std::arch::is_x86_feature_detected!("avx2") {
        return 0;
    }
    // The gathers rely on every class of the chunk's segments being below `k`.
    let seg = segs.segment;
    if seg == 0 {
        return 0;
    }
    let first = segs.start / seg;
    let last = (segs.start + out.len()).div_ceil(seg).min(segs.classes.len());
    if segs.classes[first.min(last)..last]
        .iter()
        .any(|&c| c as usize >= k)
    {
        return 0;
    }
    let fused = t.vals.len() == t.fc.len() && is_word::<T>();
    let g = Gather {
        sym8: &t.sym8,
        sym16: &t.sym16,
        fc: &t.fc,
        vals: &t.vals,
    };
    let lanes = ClassLanes { segs, off: &t.off };
    // SAFETY: AVX2 was detected at run time just above; the slot table holds `k` classes of
    // 2^16 entries (plus padding) and every class of the chunk is below `k` (both checked
    // above), and the invariant of `ClassTables` holds.
    unsafe { dispatch(g, Some(lanes), st, values, out, fused, sym8) }
}

/// Calls [`rounds`] with the constants `FUSED` and `SYM8` of `fused` and `sym8`.
///
/// # Safety
/// As [`rounds`].
unsafe fn dispatch<T: Copy>(
    g: Gather<'_>,
    lanes: Option<ClassLanes<'_>>,
    st: &mut WideState<'_>,
    values: &[T],
    out: &mut [T],
    fused: bool,
    sym8: bool,
) -> usize {
    // SAFETY: the caller's contract.
    unsafe {
        match (fused, sym8) {
            (true, true) => rounds::<T, true, true>(g, lanes, st, values, out),
            (true, false) => rounds::<T, true, false>(g, lanes, st, values, out),
            (false, true) => rounds::<T, false, true>(g, lanes, st, values, out),
            (false, false) => rounds::<T, false, false>(g, lanes, st, values, out),
        }
    }
}

/// Whether `T` is one of the 4-byte types whose values `wide::value_bits` gives: any 4-byte
/// pattern is a valid value of each, so a gathered pattern may be stored as a `T`.
fn is_word<T: 'static>() -> bool {
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    t == TypeId::of::<[u8; 4]>() || t == TypeId::of::<u32>() || t == TypeId::of::<f32>()
}

/// The 32 lane states of `st` as four registers of eight.
#[target_feature(enable = "avx2")]
fn load_states(st: &WideState<'_>) -> [std::arch::x86_64::__m256i; 4] {
    use std::arch::x86_64::*;
    let mut x = [_mm256_setzero_si256(); 4];
    for (g, v) in x.iter_mut().enumerate() {
        // SAFETY: `st.x` has 32 u32; lanes 8g..8g+8 are in bounds for g < 4; unaligned load.
        *v = unsafe { _mm256_loadu_si256(st.x.as_ptr().add(8 * g) as *const __m256i) };
    }
    x
}

/// Stores the four registers of lane states back into `st`, with the read position `pos`.
#[target_feature(enable = "avx2")]
fn store_states(st: &mut WideState<'_>, x: &[std::arch::x86_64::__m256i; 4], pos: usize) {
    use std::arch::x86_64::*;
    for (g, v) in x.iter().enumerate() {
        // SAFETY: as in `load_states`.
        unsafe { _mm256_storeu_si256(st.x.as_mut_ptr().add(8 * g) as *mut __m256i, *v) };
    }
    st.pos = pos;
}

/// The update of eight lanes after their lookup, `x ← (x >> 16)·f + bias` (`bias = q − c`),
/// then the renormalization: the lanes that fall below 2^16 take the next 16-bit words at
/// `pos`, in lane order; `pos` advances past them.
///
/// # Safety
/// 16 bytes at `pos` must be inside `bytes`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn advance(
    x: std::arch::x86_64::__m256i,
    f: std::arch::x86_64::__m256i,
    bias: std::arch::x86_64::__m256i,
    bytes: &[u8],
    pos: &mut usize,
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let xn = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_srli_epi32::<16>(x), f), bias);
    let need = _mm256_cmpeq_epi32(_mm256_srli_epi32::<16>(xn), _mm256_setzero_si256());
    let m = _mm256_movemask_ps(_mm256_castsi256_ps(need)) as usize;
    // SAFETY: 16 bytes at `pos` are in bounds (the caller's contract).
    let w = unsafe { _mm_loadu_si128(bytes.as_ptr().add(*pos) as *const __m128i) };
    // SAFETY: `m < 256`, and each row of PERM is 8 u32 (32 bytes); unaligned load.
    let p = unsafe { _mm256_loadu_si256(PERM[m].as_ptr() as *const __m256i) };
    let w = _mm256_permutevar8x32_epi32(_mm256_cvtepu16_epi32(w), p);
    let xr = _mm256_or_si256(_mm256_slli_epi32::<16>(xn), w);
    *pos += 2 * m.count_ones() as usize;
    _mm256_blendv_epi8(xn, xr, need)
}

/// The loop of [`decode_rounds`] and [`decode_class_rounds`]. With `FUSED`, the values are
/// gathered from `g.vals` and stored straight into `out`; otherwise the symbol indices are
/// mapped through `values`. `SYM8` selects the slot table. With `lanes` (mode 7), each lane's
/// slot index is offset by its class times 2^16 and its symbol index by its class's `off`:
/// one class for all 32 when the round lies in one segment (the common case: segments are
/// output channels of dozens to thousands of weights), else lane by lane.
///
/// # Safety
/// AVX2 is available. With `FUSED`, `T` is a 4-byte type for which every bit pattern is
/// valid (`is_word`) and `g.vals` is as long as `g.fc`. The slot table that `SYM8` selects
/// holds `K` classes of 2^16 entries plus padding (3 bytes for `sym8`, one entry for `sym16`),
/// `K = 1` without `lanes`, else `lanes.off.len()`, and every class of the segments the
/// chunk covers is below `K`; every slot entry plus its class's offset is below `g.fc.len()`.
#[target_feature(enable = "avx2")]
unsafe fn rounds<T: Copy, const FUSED: bool, const SYM8: bool>(
    g: Gather<'_>,
    lanes: Option<ClassLanes<'_>>,
    st: &mut WideState<'_>,
    values: &[T],
    out: &mut [T],
) -> usize {
    use std::arch::x86_64::*;
    let bytes = st.bytes;
    let mut pos = st.pos;
    let mut done = 0usize;
    let mut idx = [0u32; LANES];
    let (mut slot_off, mut sym_off) = ([0u32; LANES], [0u32; LANES]);
    let low = _mm256_set1_epi32(0xFFFF);
    let sym_mask = _mm256_set1_epi32(if SYM8 { 0xFF } else { 0xFFFF });
    let zero = _mm256_setzero_si256();
    let mut x = load_states(st);
    // Per group of eight lanes, the slot and symbol-index offsets of their classes.
    let (mut so, mut yo) = ([zero; 4], [zero; 4]);
    // With classes: the segment of the round's first symbol and where it ends.
    let (mut s, mut end) = lanes.map_or((0, usize::MAX), |l| {
        let s = l.segs.start / l.segs.segment;
        (s, (s + 1) * l.segs.segment)
    });
    while done + LANES <= out.len() && pos + ROUND_BYTES <= bytes.len() {
        if let Some(l) = lanes {
            let (seg, g0) = (l.segs.segment, l.segs.start + done);
            while g0 >= end {
                s += 1;
                end += seg;
            }
            if g0 + LANES <= end {
                let k = l.segs.classes[s] as usize;
                so = [_mm256_set1_epi32((k << 16) as i32); 4];
                yo = [_mm256_set1_epi32(l.off[k] as i32); 4];
            } else {
                let (mut s1, mut e1) = (s, end);
                for j in 0..LANES {
                    while g0 + j >= e1 {
                        s1 += 1;
                        e1 += seg;
                    }
                    let k = l.segs.classes[s1] as usize;
                    slot_off[j] = (k << 16) as u32;
                    sym_off[j] = l.off[k];
                }
                for q in 0..4 {
                    // SAFETY: both arrays hold 32 u32 and 8q + 8 <= 32; unaligned loads.
                    unsafe {
                        so[q] = _mm256_loadu_si256(slot_off.as_ptr().add(8 * q) as *const __m256i);
                        yo[q] = _mm256_loadu_si256(sym_off.as_ptr().add(8 * q) as *const __m256i);
                    }
                }
            }
        }
        for (j, xg) in x.iter_mut().enumerate() {
            let q = _mm256_and_si256(*xg, low);
            let qk = _mm256_add_epi32(q, so[j]);
            // SAFETY: every lane of `qk` is `class · 2^16 + q` with the class below `K` and
            // `q < 2^16` (the contract), so the 4-byte reads at `sym8 + qk` (K · 2^16 + 3
            // bytes) or `sym16 + 2qk` (K · 2^16 + 1 entries of 2 bytes) stay inside.
            let sym = unsafe {
                if SYM8 {
                    _mm256_i32gather_epi32::<1>(g.sym8.as_ptr() as *const i32, qk)
                } else {
                    _mm256_i32gather_epi32::<2>(g.sym16.as_ptr() as *const i32, qk)
                }
            };
            let sym = _mm256_add_epi32(_mm256_and_si256(sym, sym_mask), yo[j]);
            // SAFETY: every slot entry plus its class's offset is below `fc.len()` (the
            // contract).
            let e = unsafe { _mm256_i32gather_epi32::<4>(g.fc.as_ptr() as *const i32, sym) };
            if FUSED {
                // SAFETY: `vals` is as long as `fc` and `sym` is below that. The round writes
                // `out[done..done + 32]`, in bounds by the loop condition; the 32 bytes at
                // `out + done + 8j` are 8 values of `T`, a 4-byte type for which every bit
                // pattern is valid (the contract).
                unsafe {
                    let v = _mm256_i32gather_epi32::<4>(g.vals.as_ptr() as *const i32, sym);
                    _mm256_storeu_si256(out.as_mut_ptr().add(done + 8 * j) as *mut __m256i, v);
                }
            } else {
                // SAFETY: `idx` has 32 u32 and 8j + 8 <= 32.
                unsafe { _mm256_storeu_si256(idx.as_mut_ptr().add(8 * j) as *mut __m256i, sym) };
            }
            let f = _mm256_and_si256(e, low);
            let bias = _mm256_sub_epi32(q, _mm256_srli_epi32::<16>(e));
            // SAFETY: at the start of the round `pos + 64 <= bytes.len()`, and each of the
            // four groups advances `pos` by at most 16, so 16 bytes at `pos` are in bounds.
            *xg = unsafe { advance(*xg, f, bias, bytes, &mut pos) };
        }
        if !FUSED {
            for (o, &i) in out[done..done + LANES].iter_mut().zip(&idx) {
                *o = values[i as usize];
            }
        }
        done += LANES;
    }
    store_states(st, &x, pos);
    done
}

/// The fused loop over the packed table: one 64-bit gather of `f | (q − c) << 16 | value
/// << 32` per lane. Requires `t.slot.len() == 2^16` and `is_word::<T>()` (the caller checks).
#[target_feature(enable = "avx2")]
fn rounds_packed<T: Copy>(t: &WideTables, st: &mut WideState<'_>, out: &mut [T]) -> usize {
    use std::arch::x86_64::*;
    let bytes = st.bytes;
    let mut pos = st.pos;
    let mut done = 0usize;
    let low = _mm256_set1_epi32(0xFFFF);
    let mut x = load_states(st);
    let slot = t.slot.as_ptr() as *const i64;
    while done + LANES <= out.len() && pos + ROUND_BYTES <= bytes.len() {
        for (g, xg) in x.iter_mut().enumerate() {
            let q = _mm256_and_si256(*xg, low);
            // SAFETY: every lane of `q` is below 2^16 and `slot` has 2^16 entries of 8 bytes.
            let (a, b) = unsafe {
                (
                    _mm256_i32gather_epi64::<8>(slot, _mm256_castsi256_si128(q)),
                    _mm256_i32gather_epi64::<8>(slot, _mm256_extracti128_si256::<1>(q)),
                )
            };
            // Low halves (f | bias << 16) and high halves (values), back in lane order.
            let e = _mm256_castps_si256(_mm256_shuffle_ps::<0b10_00_10_00>(
                _mm256_castsi256_ps(a),
                _mm256_castsi256_ps(b),
            ));
            let v = _mm256_castps_si256(_mm256_shuffle_ps::<0b11_01_11_01>(
                _mm256_castsi256_ps(a),
                _mm256_castsi256_ps(b),
            ));
            let e = _mm256_permute4x64_epi64::<0b11_01_10_00>(e);
            let v = _mm256_permute4x64_epi64::<0b11_01_10_00>(v);
            // SAFETY: the round writes `out[done..done + 32]`, in bounds by the loop
            // condition; the 32 bytes at `out + done + 8g` are 8 values of `T`, a 4-byte type
            // for which every bit pattern is valid (`is_word`).
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(done + 8 * g) as *mut __m256i, v) };
            let f = _mm256_and_si256(e, low);
            let bias = _mm256_srli_epi32::<16>(e);
            // SAFETY: at the start of the round `pos + 64 <= bytes.len()`, and each of the
            // four groups advances `pos` by at most 16, so 16 bytes at `pos` are in bounds.
            *xg = unsafe { advance(*xg, f, bias, bytes, &mut pos) };
        }
        done += LANES;
    }
    store_states(st, &x, pos);
    done
}
