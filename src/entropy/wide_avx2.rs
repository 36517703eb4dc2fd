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
    // SAFETY: AVX2 was detected at run time just above, which is the only requirement of
    // calling a `#[target_feature(enable = "avx2")]` function. The slot table that `sym8`
    // selects has the length checked above; the memory accesses inside are justified where
    // they happen.
    unsafe {
        match (fused, sym8) {
            (true, true) => rounds::<T, true, true>(t, st, values, out),
            (true, false) => rounds::<T, true, false>(t, st, values, out),
            (false, true) => rounds::<T, false, true>(t, st, values, out),
            (false, false) => rounds::<T, false, false>(t, st, values, out),
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

/// With `FUSED`, the values are gathered from `t.vals` and stored straight into `out`
/// (requires `is_word::<T>()` and `t.vals.len() == t.fc.len()`); otherwise the symbol
/// indices are mapped through `values`. `SYM8` selects the slot table (`sym8`, of
/// 2^16 + 3 bytes, else `sym16`, of 2^16 + 1 entries: checked by the caller).
#[target_feature(enable = "avx2")]
fn rounds<T: Copy, const FUSED: bool, const SYM8: bool>(
    t: &WideTables,
    st: &mut WideState<'_>,
    values: &[T],
    out: &mut [T],
) -> usize {
    use std::arch::x86_64::*;
    let bytes = st.bytes;
    let mut pos = st.pos;
    let mut done = 0usize;
    let mut idx = [0u32; LANES];
    let low = _mm256_set1_epi32(0xFFFF);
    let sym_mask = _mm256_set1_epi32(if SYM8 { 0xFF } else { 0xFFFF });
    let zero = _mm256_setzero_si256();
    let mut x = [zero; 4];
    for (g, v) in x.iter_mut().enumerate() {
        // SAFETY: `st.x` has 32 u32; lanes 8g..8g+8 are in bounds for g < 4; unaligned load.
        *v = unsafe { _mm256_loadu_si256(st.x.as_ptr().add(8 * g) as *const __m256i) };
    }
    while done + LANES <= out.len() && pos + ROUND_BYTES <= bytes.len() {
        for (g, xg) in x.iter_mut().enumerate() {
            let q = _mm256_and_si256(*xg, low);
            // SAFETY: every lane of `q` is below 2^16, and the 4-byte reads at `sym8 + q`
            // (2^16 + 3 bytes) or `sym16 + 2q` (2^16 + 1 entries of 2 bytes) stay inside.
            let s = unsafe {
                if SYM8 {
                    _mm256_i32gather_epi32::<1>(t.sym8.as_ptr() as *const i32, q)
                } else {
                    _mm256_i32gather_epi32::<2>(t.sym16.as_ptr() as *const i32, q)
                }
            };
            let s = _mm256_and_si256(s, sym_mask);
            // SAFETY: every slot entry is below `fc.len()` (the invariant of `WideTables`).
            let e = unsafe { _mm256_i32gather_epi32::<4>(t.fc.as_ptr() as *const i32, s) };
            if FUSED {
                // SAFETY: `vals` is as long as `fc` (checked by the caller) and `s` is below
                // that. The round writes `out[done..done + 32]`, in bounds by the loop
                // condition; the 32 bytes at `out + done + 8g` are 8 values of `T`, a 4-byte
                // type for which every bit pattern is valid (`is_word`).
                unsafe {
                    let v = _mm256_i32gather_epi32::<4>(t.vals.as_ptr() as *const i32, s);
                    _mm256_storeu_si256(out.as_mut_ptr().add(done + 8 * g) as *mut __m256i, v);
                }
            } else {
                // SAFETY: `idx` has 32 u32 and 8g + 8 <= 32.
                unsafe { _mm256_storeu_si256(idx.as_mut_ptr().add(8 * g) as *mut __m256i, s) };
            }
            let f = _mm256_and_si256(e, low);
            let c = _mm256_srli_epi32::<16>(e);
            let xn = _mm256_add_epi32(
                _mm256_mullo_epi32(_mm256_srli_epi32::<16>(*xg), f),
                _mm256_sub_epi32(q, c),
            );
            let need = _mm256_cmpeq_epi32(_mm256_srli_epi32::<16>(xn), zero);
            let m = _mm256_movemask_ps(_mm256_castsi256_ps(need)) as usize;
            // SAFETY: at the start of the round `pos + 64 <= bytes.len()`, and each of the
            // four groups advances `pos` by at most 16, so 16 bytes at `pos` are in bounds.
            let w = unsafe { _mm_loadu_si128(bytes.as_ptr().add(pos) as *const __m128i) };
            // SAFETY: `m < 256`, and each row of PERM is 8 u32 (32 bytes); unaligned load.
            let p = unsafe { _mm256_loadu_si256(PERM[m].as_ptr() as *const __m256i) };
            let w = _mm256_permutevar8x32_epi32(_mm256_cvtepu16_epi32(w), p);
            let xr = _mm256_or_si256(_mm256_slli_epi32::<16>(xn), w);
            *xg = _mm256_blendv_epi8(xn, xr, need);
            pos += 2 * m.count_ones() as usize;
        }
        if !FUSED {
            for (o, &i) in out[done..done + LANES].iter_mut().zip(&idx) {
                *o = values[i as usize];
            }
        }
        done += LANES;
    }
    for (g, v) in x.iter().enumerate() {
        // SAFETY: as for the load above.
        unsafe { _mm256_storeu_si256(st.x.as_mut_ptr().add(8 * g) as *mut __m256i, *v) };
    }
    st.pos = pos;
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
    let zero = _mm256_setzero_si256();
    let mut x = [zero; 4];
    for (g, v) in x.iter_mut().enumerate() {
        // SAFETY: `st.x` has 32 u32; lanes 8g..8g+8 are in bounds for g < 4; unaligned load.
        *v = unsafe { _mm256_loadu_si256(st.x.as_ptr().add(8 * g) as *const __m256i) };
    }
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
            let xn = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_srli_epi32::<16>(*xg), f), bias);
            let need = _mm256_cmpeq_epi32(_mm256_srli_epi32::<16>(xn), zero);
            let m = _mm256_movemask_ps(_mm256_castsi256_ps(need)) as usize;
            // SAFETY: at the start of the round `pos + 64 <= bytes.len()`, and each of the
            // four groups advances `pos` by at most 16, so 16 bytes at `pos` are in bounds.
            let w = unsafe { _mm_loadu_si128(bytes.as_ptr().add(pos) as *const __m128i) };
            // SAFETY: `m < 256`, and each row of PERM is 8 u32 (32 bytes); unaligned load.
            let p = unsafe { _mm256_loadu_si256(PERM[m].as_ptr() as *const __m256i) };
            let w = _mm256_permutevar8x32_epi32(_mm256_cvtepu16_epi32(w), p);
            let xr = _mm256_or_si256(_mm256_slli_epi32::<16>(xn), w);
            *xg = _mm256_blendv_epi8(xn, xr, need);
            pos += 2 * m.count_ones() as usize;
        }
        done += LANES;
    }
    for (g, v) in x.iter().enumerate() {
        // SAFETY: as for the load above.
        unsafe { _mm256_storeu_si256(st.x.as_mut_ptr().add(8 * g) as *mut __m256i, *v) };
    }
    st.pos = pos;
    done
}

/// Decodes whole rounds of 32 symbols of a mode-7 chunk (spec §7.3.6) from the start of
/// `out` while the chunk has at least `ROUND_BYTES` bytes left, each lane with the tables of
/// its own segment's class; returns the number of symbols written (a multiple of 32, 0
/// without AVX2 or without slot tables). `values` holds every class's values, class after
/// class, as [`ClassTables`] indexes them.
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
    let first = segs.start / seg;
    let last = (segs.start + out.len()).div_ceil(seg).min(segs.classes.len());
    if seg == 0 || segs.classes[first.min(last)..last].iter().any(|&c| c as usize >= k) {
        return 0;
    }
    let fused = t.vals.len() == t.fc.len() && is_word::<T>();
    // SAFETY: AVX2 was detected at run time just above; the slot table that `sym8` selects
    // holds `k` classes and every class of the chunk is below `k` (both checked above). The memory accesses inside are justified where they
    // happen.
    unsafe {
        match (fused, sym8) {
            (true, true) => class_rounds::<T, true, true>(t, segs, st, values, out),
            (true, false) => class_rounds::<T, true, false>(t, segs, st, values, out),
            (false, true) => class_rounds::<T, false, true>(t, segs, st, values, out),
            (false, false) => class_rounds::<T, false, false>(t, segs, st, values, out),
        }
    }
}

/// The loop of [`decode_class_rounds`]. Per round, the class of each lane: one class for all
/// 32 when the round lies in one segment (the common case: segments are output channels of
/// dozens to thousands of weights), else lane by lane. Each lane's slot index is offset by
/// `class · 2^16` and its symbol index by `off[class]`.
#[target_feature(enable = "avx2")]
fn class_rounds<T: Copy, const FUSED: bool, const SYM8: bool>(
    t: &ClassTables,
    segs: Segments<'_>,
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
    let mut x = [zero; 4];
    for (g, v) in x.iter_mut().enumerate() {
        // SAFETY: `st.x` has 32 u32; lanes 8g..8g+8 are in bounds for g < 4; unaligned load.
        *v = unsafe { _mm256_loadu_si256(st.x.as_ptr().add(8 * g) as *const __m256i) };
    }
    let seg = segs.segment;
    // The segment of the round's first symbol and where it ends (stream positions).
    let mut s = segs.start / seg;
    let mut end = (s + 1) * seg;
    let mut so = [zero; 4];
    let mut yo = [zero; 4];
    while done + LANES <= out.len() && pos + ROUND_BYTES <= bytes.len() {
        let g0 = segs.start + done;
        while g0 >= end {
            s += 1;
            end += seg;
        }
        if g0 + LANES <= end {
            let k = segs.classes[s] as usize;
            let a = _mm256_set1_epi32((k << 16) as i32);
            let b = _mm256_set1_epi32(t.off[k] as i32);
            so = [a; 4];
            yo = [b; 4];
        } else {
            let (mut s1, mut e1) = (s, end);
            for l in 0..LANES {
                while g0 + l >= e1 {
                    s1 += 1;
                    e1 += seg;
                }
                let k = segs.classes[s1] as usize;
                slot_off[l] = (k << 16) as u32;
                sym_off[l] = t.off[k];
            }
            for g in 0..4 {
                // SAFETY: both arrays hold 32 u32 and 8g + 8 <= 32; unaligned loads.
                unsafe {
                    so[g] = _mm256_loadu_si256(slot_off.as_ptr().add(8 * g) as *const __m256i);
                    yo[g] = _mm256_loadu_si256(sym_off.as_ptr().add(8 * g) as *const __m256i);
                }
            }
        }
        for (g, xg) in x.iter_mut().enumerate() {
            let q = _mm256_and_si256(*xg, low);
            let qk = _mm256_add_epi32(q, so[g]);
            // SAFETY: every lane of `qk` is `class · 2^16 + q` with the class below the number
            // of classes `k` (checked by the caller) and `q < 2^16`, so the 4-byte
            // reads at `sym8 + qk` (k · 2^16 + 3 bytes) or `sym16 + 2qk` (k · 2^16 + 1 entries)
            // stay inside.
            let s = unsafe {
                if SYM8 {
                    _mm256_i32gather_epi32::<1>(t.sym8.as_ptr() as *const i32, qk)
                } else {
                    _mm256_i32gather_epi32::<2>(t.sym16.as_ptr() as *const i32, qk)
                }
            };
            let s = _mm256_add_epi32(_mm256_and_si256(s, sym_mask), yo[g]);
            // SAFETY: every slot entry plus its class's `off` is below `fc.len()` (the
            // invariant of `ClassTables`).
            let e = unsafe { _mm256_i32gather_epi32::<4>(t.fc.as_ptr() as *const i32, s) };
            if FUSED {
                // SAFETY: `vals` is as long as `fc` (checked by the caller) and `s` is below
                // that. The round writes `out[done..done + 32]`, in bounds by the loop
                // condition; the 32 bytes at `out + done + 8g` are 8 values of `T`, a 4-byte
                // type for which every bit pattern is valid (`is_word`).
                unsafe {
                    let v = _mm256_i32gather_epi32::<4>(t.vals.as_ptr() as *const i32, s);
                    _mm256_storeu_si256(out.as_mut_ptr().add(done + 8 * g) as *mut __m256i, v);
                }
            } else {
                // SAFETY: `idx` has 32 u32 and 8g + 8 <= 32.
                unsafe { _mm256_storeu_si256(idx.as_mut_ptr().add(8 * g) as *mut __m256i, s) };
            }
            let f = _mm256_and_si256(e, low);
            let c = _mm256_srli_epi32::<16>(e);
            let xn = _mm256_add_epi32(
                _mm256_mullo_epi32(_mm256_srli_epi32::<16>(*xg), f),
                _mm256_sub_epi32(q, c),
            );
            let need = _mm256_cmpeq_epi32(_mm256_srli_epi32::<16>(xn), zero);
            let m = _mm256_movemask_ps(_mm256_castsi256_ps(need)) as usize;
            // SAFETY: at the start of the round `pos + 64 <= bytes.len()`, and each of the
            // four groups advances `pos` by at most 16, so 16 bytes at `pos` are in bounds.
            let w = unsafe { _mm_loadu_si128(bytes.as_ptr().add(pos) as *const __m128i) };
            // SAFETY: `m < 256`, and each row of PERM is 8 u32 (32 bytes); unaligned load.
            let p = unsafe { _mm256_loadu_si256(PERM[m].as_ptr() as *const __m256i) };
            let w = _mm256_permutevar8x32_epi32(_mm256_cvtepu16_epi32(w), p);
            let xr = _mm256_or_si256(_mm256_slli_epi32::<16>(xn), w);
            *xg = _mm256_blendv_epi8(xn, xr, need);
            pos += 2 * m.count_ones() as usize;
        }
        if !FUSED {
            for (o, &i) in out[done..done + LANES].iter_mut().zip(&idx) {
                *o = values[i as usize];
            }
        }
        done += LANES;
    }
    for (g, v) in x.iter().enumerate() {
        // SAFETY: as for the load above.
        unsafe { _mm256_storeu_si256(st.x.as_mut_ptr().add(8 * g) as *mut __m256i, *v) };
    }
    st.pos = pos;
    done
}
