//! The quantizers against an independent, straightforward implementation of their equations
//! (THESIS-NOTES.md §Quantizers, Tonin 2021 eq. 2.21–2.30, and the doc comments of
//! `nnc::quant`): first the scalar functions on edge values, then whole tensors through
//! `encode_model` and the decoder, bit for bit, for every quantizer kind, per-tensor and
//! per-channel steps, and float32 / float16 / bfloat16 / double tensors. Also: which tensors
//! the encoder leaves exact, and `QuantParams::parse` on malformed headers.
//!
//! Nothing in `reference` calls nnc: it is written from the equations.
use std::collections::{BTreeMap, HashMap};

use nnc::container::tensor_header::Coding;
use nnc::encoder::EncodeReport;
use nnc::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto,
};
use nnc::quant::minifloat::{self, Layout};
use nnc::quant::policy::{Family, LossyOptions, StepRule};
use nnc::quant::{self, float, mulaw, uniform, Kind, QuantParams};
use nnc::{DecodeOptions, Decoder, EncodeOptions};
use prost::Message;

// ---------------------------------------------------------------------------------------------
// The independent reference.

mod reference {
    /// Largest |level| of a uniform or μ-law stream (spec §7.6.2, as documented in nnc).
    pub const MAX_LEVEL: i64 = (1 << 30) - 1;

    /// Exact 2^e for any e whose result is a binary64 number (normal or subnormal), by
    /// repeated doubling or halving (each step is exact).
    pub fn pow2(e: i32) -> f64 {
        let mut v = 1.0f64;
        if e >= 0 {
            for _ in 0..e {
                v *= 2.0;
            }
        } else {
            for _ in 0..(-e) {
                v *= 0.5;
            }
        }
        v
    }

    /// floor(log2 a) for a finite, positive, normal binary64 `a`.
    pub fn floor_log2(a: f64) -> i32 {
        assert!(a > 0.0 && a.is_finite() && a >= f64::MIN_POSITIVE);
        ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023
    }

    /// s(X) of the thesis: +1 for X >= 0 (so s(−0) = +1), −1 otherwise.
    pub fn s(x: f64) -> f64 {
        if x >= 0.0 {
            1.0
        } else {
            -1.0
        }
    }

    /// Round to the nearest integer, ties away from zero.
    pub fn round_half_away(v: f64) -> f64 {
        let a = v.abs();
        let f = a.floor();
        // a − floor(a) is exact for every finite a.
        let r = if a - f >= 0.5 { f + 1.0 } else { f };
        if v < 0.0 {
            -r
        } else {
            r
        }
    }

    /// Eq. 2.21: Xq = round(X/Δ).
    pub fn midtread(x: f64, d: f64) -> f64 {
        round_half_away(x / d)
    }

    /// Eq. 2.22: X̂ = Δ·Xq.
    pub fn midtread_rec(q: i64, d: f64) -> f64 {
        d * q as f64
    }

    /// Eq. 2.23: Xq = s(X)·ceil(|X|/Δ).
    pub fn midrise(x: f64, d: f64) -> f64 {
        s(x) * (x.abs() / d).ceil()
    }

    /// Eq. 2.24: X̂ = s(Xq)·Δ·(|Xq| − 1/2); Xq = 0 (only from X = ±0) reconstructs to 0.
    pub fn midrise_rec(q: i64, d: f64) -> f64 {
        if q == 0 {
            return 0.0;
        }
        let sq = if q < 0 { -1.0 } else { 1.0 };
        sq * (d * (q.unsigned_abs() as f64 - 0.5))
    }

    /// Eq. 2.25: Xq = 0 if |X| < δΔ, else s(X)·ceil(|X|/Δ − δ).
    pub fn deadzone(x: f64, d: f64, delta: f64) -> f64 {
        if x.abs() < delta * d {
            0.0
        } else {
            s(x) * (x.abs() / d - delta).ceil()
        }
    }

    /// Eq. 2.26 in binary64 in the order the spec fixes: t = δ − 0.5; u = |q| + t; v = u·Δ.
    pub fn deadzone_rec(q: i64, d: f64, delta: f64) -> f64 {
        if q == 0 {
            return 0.0;
        }
        let t = delta - 0.5;
        let u = q.unsigned_abs() as f64 + t;
        let v = u * d;
        if q < 0 {
            -v
        } else {
            v
        }
    }

    /// μ-law level (eq. 2.27): |X| clamped to Xmax, Y = Xmax·ln(1 + μ|X|/Xmax)/ln(1 + μ),
    /// then a midtread level of Y with step Δ, with the sign of X.
    pub fn mulaw(x: f64, d: f64, xmax: f64, mu: f64) -> f64 {
        let a = x.abs().min(xmax);
        let y = xmax * (mu * a / xmax).ln_1p() / mu.ln_1p();
        let q = round_half_away(y / d);
        if x < 0.0 {
            -q
        } else {
            q
        }
    }

    /// μ-law expansion (eq. 2.28) of level magnitude k: (Xmax/μ)·((1 + μ)^(kΔ/Xmax) − 1).
    pub fn mulaw_expand(k: u64, d: f64, xmax: f64, mu: f64) -> f64 {
        let y = k as f64 * d;
        (xmax / mu) * ((1.0 + mu).powf(y / xmax) - 1.0)
    }

    /// A level as the stream carries it: clamped to ±MAX_LEVEL, then to ±limit.
    pub fn clamp_level(v: f64, limit: Option<i64>) -> i64 {
        let m = MAX_LEVEL as f64;
        let q = v.clamp(-m, m) as i64;
        match limit {
            Some(l) => q.clamp(-l, l),
            None => q,
        }
    }

    /// A minifloat: sign bit, E exponent bits, M mantissa bits, scale 2^scale.
    #[derive(Clone, Debug)]
    pub struct Mini {
        pub e: u32,
        pub m: u32,
        /// Magnitudes of codes 0 .. 2^(E+M), ascending.
        pub table: Vec<f64>,
    }

    impl Mini {
        pub fn new(e: u32, m: u32, scale: i32) -> Mini {
            let bias = if e == 0 { 0 } else { (1i32 << (e - 1)) - 1 };
            let n = 1u32 << (e + m);
            let table = (0..n)
                .map(|c| {
                    let ef = (c >> m) as i32;
                    let mf = (c & ((1 << m) - 1)) as f64;
                    if ef == 0 {
                        // Subnormal: m·2^(1 − bias − M); code 0 is zero.
                        mf * pow2(1 - bias - m as i32 + scale)
                    } else {
                        // 2^(e − bias)·(1 + m/2^M).
                        ((1u64 << m) as f64 + mf) * pow2(ef - bias - m as i32 + scale)
                    }
                })
                .collect::<Vec<f64>>();
            for w in table.windows(2) {
                assert!(w[0] < w[1], "minifloat magnitudes must ascend");
            }
            Mini { e, m, table }
        }
        pub fn sign_bit(&self) -> u32 {
            1 << (self.e + self.m)
        }
        pub fn value(&self, code: u32) -> f64 {
            let v = self.table[(code & (self.sign_bit() - 1)) as usize];
            if code & self.sign_bit() != 0 {
                -v
            } else {
                v
            }
        }
        /// Nearest representable magnitude, ties to the even code, clamped to the largest;
        /// the sign bit only on a nonzero code of a negative X.
        pub fn quantize(&self, x: f64) -> u32 {
            let a = x.abs();
            let t = &self.table;
            let top = t.len() - 1;
            let code = if a >= t[top] {
                top
            } else {
                // Largest lo with t[lo] <= a (t[0] = 0 <= a).
                let (mut lo, mut hi) = (0usize, top);
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if t[mid] <= a {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                let (dl, dh) = (a - t[lo], t[hi] - a);
                if dl < dh {
                    lo
                } else if dh < dl {
                    hi
                } else if lo % 2 == 0 {
                    lo
                } else {
                    hi
                }
            } as u32;
            if x < 0.0 && code != 0 {
                code | self.sign_bit()
            } else {
                code
            }
        }
    }

    /// Round a binary32 to a binary format with `man` fraction bits, smallest normal
    /// exponent `emin`, largest finite `max`: returns the rounded value (±inf on overflow).
    fn round_value(x: f32, man: i32, emin: i32, max: f64) -> f64 {
        let a = (x as f64).abs();
        let sign = if x.is_sign_negative() { -1.0 } else { 1.0 };
        if a == 0.0 {
            return sign * 0.0;
        }
        if a.is_infinite() {
            return sign * f64::INFINITY;
        }
        let e = floor_log2(a).max(emin);
        let quantum = pow2(e - man);
        let r = (a / quantum).round_ties_even();
        let v = r * quantum;
        if v > max {
            sign * f64::INFINITY
        } else {
            sign * v
        }
    }

    fn encode16(v: f64, man: i32, bias: i32, emin: i32) -> u16 {
        let sign = if v.is_sign_negative() { 0x8000u16 } else { 0 };
        let a = v.abs();
        let exp_all = ((1u32 << (15 - man)) - 1) as u16;
        if a.is_infinite() {
            return sign | (exp_all << man);
        }
        if a < pow2(emin) {
            // Subnormal (or zero): a / 2^(emin − man) is the fraction field.
            return sign | (a / pow2(emin - man)) as u16;
        }
        let e = floor_log2(a);
        let frac = a / pow2(e - man) - pow2(man);
        sign | (((e + bias) as u16) << man) | frac as u16
    }

    /// binary32 → IEEE binary16 bits, round to nearest, ties to even; NaN → a NaN.
    pub fn f32_to_f16(x: f32) -> u16 {
        if x.is_nan() {
            return 0x7e00;
        }
        let v = round_value(x, 10, -14, 65504.0);
        encode16(v, 10, 15, -14)
    }

    /// binary32 → bfloat16 bits, round to nearest, ties to even; NaN → a NaN.
    pub fn f32_to_bf16(x: f32) -> u16 {
        if x.is_nan() {
            return 0x7fc0;
        }
        let max = (2.0 - pow2(-7)) * pow2(127);
        let v = round_value(x, 7, -126, max);
        encode16(v, 7, 127, -126)
    }

    fn decode16(h: u16, man: u32, bias: i32) -> f64 {
        let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let e = ((h & 0x7fff) >> man) as i32;
        let f = (h & ((1 << man) - 1)) as f64;
        let exp_all = (1i32 << (15 - man)) - 1;
        if e == exp_all {
            return if f == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            };
        }
        if e == 0 {
            sign * f * pow2(1 - bias - man as i32)
        } else {
            sign * (pow2(man as i32) + f) * pow2(e - bias - man as i32)
        }
    }

    /// IEEE binary16 bits → value.
    pub fn f16_value(h: u16) -> f64 {
        decode16(h, 10, 15)
    }

    /// bfloat16 bits → value.
    pub fn bf16_value(h: u16) -> f64 {
        decode16(h, 7, 127)
    }

    /// Zigzag of the spec: 0, −1, 1, −2, ... → 0, 1, 2, 3, ...
    pub fn zigzag(q: i64) -> u64 {
        if q >= 0 {
            2 * q as u64
        } else {
            2 * q.unsigned_abs() - 1
        }
    }
}

use reference as r;

// ---------------------------------------------------------------------------------------------
// Small helpers.

fn next_up_f32(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let b = x.to_bits();
    f32::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

fn next_down_f32(x: f32) -> f32 {
    -next_up_f32(-x)
}

fn next_up_f64(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

fn next_down_f64(x: f64) -> f64 {
    -next_up_f64(-x)
}

/// `a` and `b` are the same level value (−0 and +0 are the same level; NaN only equals NaN).
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Steps exercised by the scalar tests: ordinary, awkward, tiny (down to the smallest
/// subnormal binary32) and huge (up to f32::MAX).
fn steps() -> Vec<f32> {
    vec![
        1.0,
        0.5,
        0.1,
        0.3,
        1.0 / 3.0,
        0.0078125,
        2f32.powi(-20),
        1e-7,
        f32::MIN_POSITIVE,
        1e-40,
        f32::from_bits(1),
        1e20,
        3e38,
        f32::MAX,
    ]
}

/// Inputs for a step `d`: zero, signed zero, k·Δ, (k ± 0.5)·Δ and δΔ for the given deltas,
/// each as computed in binary64, rounded to binary32, and one ulp either side of both; plus
/// binary32 subnormals, ±f32::MAX, ±huge binary64.
fn inputs(d: f32, deltas: &[f32]) -> Vec<f64> {
    let d = d as f64;
    let mut c: Vec<f64> = Vec::new();
    for k in -6i32..=6 {
        c.push(k as f64 * d);
        c.push((k as f64 + 0.5) * d);
        c.push((k as f64 - 0.5) * d);
        for &delta in deltas {
            let delta = delta as f64;
            c.push((k as f64 + delta) * d);
            c.push((k as f64 - delta) * d);
        }
    }
    for &delta in deltas {
        c.push(delta as f64 * d);
        c.push(-(delta as f64 * d));
    }
    c.extend_from_slice(&[1e3 * d, 123456.75 * d, 1e9 * d, 2e9 * d, 1e12 * d]);
    let mut out = Vec::new();
    for v in c {
        if !v.is_finite() {
            continue;
        }
        let f = v as f32 as f64;
        for w in [v, f] {
            out.extend_from_slice(&[w, next_up_f64(w), next_down_f64(w)]);
            if w.is_finite() && (w as f32).is_finite() {
                let w32 = w as f32;
                out.push(next_up_f32(w32) as f64);
                out.push(next_down_f32(w32) as f64);
            }
        }
    }
    for x in [
        0.0f64,
        -0.0,
        f32::from_bits(1) as f64,
        -(f32::from_bits(1) as f64),
        f32::from_bits(0x7f_ffff) as f64,
        -(f32::from_bits(0x7f_ffff) as f64),
        f32::MIN_POSITIVE as f64,
        -(f32::MIN_POSITIVE as f64),
        f32::MAX as f64,
        -(f32::MAX as f64),
        f64::MAX,
        -f64::MAX,
        f64::from_bits(1),
        1.0,
        -1.0,
        0.5,
        -0.5,
    ] {
        out.push(x);
    }
    out.retain(|v| v.is_finite());
    out
}

const DELTAS: [f32; 9] = [0.0, 0.1, 0.25, 0.3, 0.4, 0.5, 0.7, 0.9, 1.0];

// ---------------------------------------------------------------------------------------------
// Scalar quantizers on edge values.

#[test]
fn the_reference_agrees_with_hand_computed_levels() {
    // Midtread: ties away from zero.
    assert_eq!(r::midtread(2.5, 1.0), 3.0);
    assert_eq!(r::midtread(-2.5, 1.0), -3.0);
    assert_eq!(r::midtread(0.5, 1.0), 1.0);
    assert_eq!(r::midtread(next_down_f64(0.5), 1.0), 0.0);
    assert_eq!(r::midtread(-0.49, 1.0), 0.0);
    assert_eq!(r::midtread_rec(-3, 0.25), -0.75);
    // Midrise: no zero level; X = 0 is level 0 and reconstructs to 0.
    assert_eq!(r::midrise(1.0, 1.0), 1.0);
    assert_eq!(r::midrise(next_up_f64(1.0), 1.0), 2.0);
    assert_eq!(r::midrise(1e-300, 1.0), 1.0);
    assert_eq!(r::midrise(-1e-300, 1.0), -1.0);
    assert_eq!(r::midrise(0.0, 1.0), 0.0);
    assert_eq!(r::midrise_rec(0, 1.0), 0.0);
    assert_eq!(r::midrise_rec(1, 0.5), 0.25);
    assert_eq!(r::midrise_rec(-2, 0.5), -0.75);
    // Dead zone δ = 0.25, Δ = 1: zero for |X| <= 0.25 (ceil(0) = 0 at exactly δΔ), level 1
    // on (0.25, 1.25], reconstructed at 1 + 0.25 − 0.5 = 0.75.
    assert_eq!(r::deadzone(0.25, 1.0, 0.25), 0.0);
    assert_eq!(r::deadzone(next_down_f64(0.25), 1.0, 0.25), 0.0);
    assert_eq!(r::deadzone(next_up_f64(0.25), 1.0, 0.25), 1.0);
    assert_eq!(r::deadzone(1.25, 1.0, 0.25), 1.0);
    assert_eq!(r::deadzone(next_up_f64(1.25), 1.0, 0.25), 2.0);
    assert_eq!(r::deadzone(-1.3, 1.0, 0.25), -2.0);
    assert_eq!(r::deadzone_rec(1, 1.0, 0.25), 0.75);
    assert_eq!(r::deadzone_rec(-2, 1.0, 0.25), -1.75);
    // δ = 0.5 is midtread away from ties, δ = 0 is midrise.
    for x in [-3.7, -1.2, -0.3, 0.2, 0.7, 1.49, 2.6] {
        assert_eq!(r::deadzone(x, 1.0, 0.5), r::midtread(x, 1.0));
        assert_eq!(r::deadzone(x, 1.0, 0.0), r::midrise(x, 1.0));
    }
    // Minifloat E2M1 (bias 1): 0, 0.5, 1, 1.5, 2, 3, 4, 6.
    let m = r::Mini::new(2, 1, 0);
    assert_eq!(m.table, vec![0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]);
    assert_eq!(m.quantize(0.25), 0); // tie 0 / 0.5 → even code 0
    assert_eq!(m.quantize(0.75), 2); // tie 0.5 / 1 → even code 2
    assert_eq!(m.quantize(2.5), 4); // tie 2 / 3 → even code 4
    assert_eq!(m.quantize(5.0), 6); // tie 4 / 6 → even code 6
    assert_eq!(m.quantize(100.0), 7); // clamp
    assert_eq!(m.quantize(-0.2), 0); // rounds to zero: no sign
    assert_eq!(m.quantize(-3.2), 8 | 5);
    assert_eq!(m.value(8 | 5), -3.0);
    // f16 / bf16.
    assert_eq!(r::f32_to_f16(1.0), 0x3c00);
    assert_eq!(r::f32_to_f16(65504.0), 0x7bff);
    assert_eq!(r::f32_to_f16(65519.996), 0x7bff);
    assert_eq!(r::f32_to_f16(65520.0), 0x7c00);
    assert_eq!(r::f32_to_f16(2f32.powi(-24)), 1);
    assert_eq!(r::f32_to_f16(2f32.powi(-25)), 0);
    assert_eq!(r::f32_to_f16(3.0 * 2f32.powi(-25)), 2);
    assert_eq!(r::f32_to_f16(-0.0), 0x8000);
    assert_eq!(r::f32_to_f16(2f32.powi(-14)), 0x0400);
    assert_eq!(r::f32_to_f16(2f32.powi(-14) - 2f32.powi(-25)), 0x0400); // tie → even (0x400)
    assert_eq!(r::f32_to_bf16(1.0), 0x3f80);
    assert_eq!(r::f32_to_bf16(f32::MAX), 0x7f80);
    assert_eq!(r::f32_to_bf16(f32::from_bits(0x7f7f_7fff)), 0x7f7f);
    assert_eq!(r::f32_to_bf16(f32::from_bits(0x0000_8000)), 0x0000); // tie → even
    assert_eq!(r::f32_to_bf16(f32::from_bits(0x0001_8000)), 0x0002); // tie → even
    assert_eq!(r::f16_value(0x7bff), 65504.0);
    assert_eq!(r::bf16_value(0x3f80), 1.0);
    assert_eq!(r::zigzag(-1), 1);
    assert_eq!(r::zigzag(1), 2);
}

#[test]
fn uniform_quantizers_match_the_equations_on_edge_values() {
    let mut checked = 0usize;
    for d in steps() {
        let d64 = d as f64;
        for x in inputs(d, &DELTAS) {
            // Levels before clamping.
            let (a, b) = (uniform::midtread(x, d64), r::midtread(x, d64));
            assert!(same(a, b), "midtread x={x:e} Δ={d:e}: nnc {a} ref {b}");
            let (a, b) = (uniform::midrise(x, d64), r::midrise(x, d64));
            assert!(same(a, b), "midrise x={x:e} Δ={d:e}: nnc {a} ref {b}");
            for &delta in &DELTAS {
                let dl = delta as f64;
                let (a, b) = (uniform::deadzone(x, d64, dl), r::deadzone(x, d64, dl));
                assert!(
                    same(a, b),
                    "deadzone δ={delta} x={x:e} Δ={d:e}: nnc {a} ref {b}"
                );
            }
            // Levels as streamed (clamped to ±MAX_LEVEL) through quantize_value.
            let kinds = std::iter::once(Kind::Midtread)
                .chain(std::iter::once(Kind::Midrise))
                .chain(DELTAS.iter().map(|&delta| Kind::DeadZone { delta }));
            for kind in kinds {
                let want = r::clamp_level(
                    match kind {
                        Kind::Midtread => r::midtread(x, d64),
                        Kind::Midrise => r::midrise(x, d64),
                        Kind::DeadZone { delta } => r::deadzone(x, d64, delta as f64),
                        _ => unreachable!(),
                    },
                    None,
                );
                let got = quant::quantize_value(&kind, x, d);
                assert_eq!(got, want, "{kind:?} x={x:e} Δ={d:e}");
                checked += 1;
            }
        }
        // Reconstruction of every level near zero, near the clamp and in between.
        let mut levels: Vec<i64> = (-40..=40).collect();
        levels.extend_from_slice(&[
            r::MAX_LEVEL,
            -r::MAX_LEVEL,
            r::MAX_LEVEL - 1,
            -(r::MAX_LEVEL - 1),
            12345,
            -99999,
            1 << 24,
            (1 << 24) + 1,
        ]);
        for q in levels {
            let pairs = [
                (Kind::Midtread, r::midtread_rec(q, d64)),
                (Kind::Midrise, r::midrise_rec(q, d64)),
            ];
            for (kind, want) in pairs {
                let got = quant::reconstruct(&kind, q, d);
                assert_eq!(got.to_bits(), want.to_bits(), "{kind:?} q={q} Δ={d:e}");
            }
            assert_eq!(
                uniform::midtread_rec(q, d64).to_bits(),
                r::midtread_rec(q, d64).to_bits()
            );
            assert_eq!(
                uniform::midrise_rec(q, d64).to_bits(),
                r::midrise_rec(q, d64).to_bits()
            );
            for &delta in &DELTAS {
                let want = r::deadzone_rec(q, d64, delta as f64);
                let got = quant::reconstruct(&Kind::DeadZone { delta }, q, d);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "deadzone δ={delta} q={q} Δ={d:e}"
                );
                let got = uniform::deadzone_rec(q, d64, delta as f64);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "deadzone δ={delta} q={q} Δ={d:e}"
                );
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn uniform_quantizers_keep_their_error_bounds() {
    // Properties of the equations themselves (not a comparison): guards the reference.
    for d in [1.0f32, 0.1, 0.3, 2f32.powi(-20)] {
        let d64 = d as f64;
        for x in inputs(d, &DELTAS) {
            if (x / d64).abs() > 1e6 {
                continue;
            }
            let q = r::midtread(x, d64) as i64;
            assert!((x - r::midtread_rec(q, d64)).abs() <= 0.5 * d64 * (1.0 + 1e-12));
            let q = r::midrise(x, d64) as i64;
            let e = (x - r::midrise_rec(q, d64)).abs();
            if x != 0.0 {
                assert!(
                    q != 0 && e <= 0.5 * d64 * (1.0 + 1e-12),
                    "midrise x={x} Δ={d}"
                );
            }
            for delta in [0.1f64, 0.25, 0.4, 0.7] {
                let q = r::deadzone(x, d64, delta) as i64;
                let e = (x - r::deadzone_rec(q, d64, delta)).abs();
                if q == 0 {
                    assert!(
                        x.abs() <= delta * d64 * (1.0 + 1e-12),
                        "dz x={x} Δ={d} δ={delta}"
                    );
                } else {
                    // Level q covers (q−1+δ, q+δ]·Δ and is reconstructed at (q+δ−0.5)·Δ.
                    assert!(
                        e <= 0.5 * d64 * (1.0 + 1e-9),
                        "dz x={x} Δ={d} δ={delta} e={e}"
                    );
                }
            }
        }
    }
}

#[test]
fn quantize_applies_steps_per_channel_and_limits() {
    // quant::quantize over a tensor: per-tensor step, per-channel steps, a level limit.
    let values: Vec<f64> = (0..48).map(|i| (i as f64 - 23.5) * 0.173).collect();
    let steps = vec![0.1f32, 0.25, 0.7, 1e-3];
    for kind in [
        Kind::Midtread,
        Kind::Midrise,
        Kind::DeadZone { delta: 0.3 },
        Kind::DeadZone { delta: 1.0 },
    ] {
        for (st, limit) in [
            (vec![0.2f32], None),
            (steps.clone(), None),
            (vec![0.05f32], Some(7i64)),
            (steps.clone(), Some(3)),
        ] {
            let p = QuantParams {
                kind,
                steps: st.clone(),
            };
            let got = quant::quantize(&values, &p, limit);
            let per = values.len() / st.len();
            for (i, (&x, &g)) in values.iter().zip(&got).enumerate() {
                let d = st[if st.len() > 1 { i / per } else { 0 }] as f64;
                let v = match kind {
                    Kind::Midtread => r::midtread(x, d),
                    Kind::Midrise => r::midrise(x, d),
                    Kind::DeadZone { delta } => r::deadzone(x, d, delta as f64),
                    _ => unreachable!(),
                };
                assert_eq!(g, r::clamp_level(v, limit), "{kind:?} i={i} x={x} {st:?}");
            }
        }
    }
    // Huge ratios clamp to ±MAX_LEVEL.
    let p = QuantParams {
        kind: Kind::Midtread,
        steps: vec![f32::from_bits(1)],
    };
    let got = quant::quantize(&[f32::MAX as f64, -(f32::MAX as f64), 1.0, 0.0], &p, None);
    assert_eq!(got, vec![r::MAX_LEVEL, -r::MAX_LEVEL, r::MAX_LEVEL, 0]);
    assert_eq!(quant::MAX_LEVEL, r::MAX_LEVEL);
}

#[test]
fn mulaw_matches_the_equations() {
    let mut n = 0;
    for xmax in [1.0f32, 0.37, 3.5, 1e-30, 1e30] {
        for mu in [255.0f32, 1.0, 0.5, 87.6, 1e6] {
            for bits in [2u32, 4, 8, 12, 16] {
                let d = 2.0 * xmax / (1u64 << bits) as f32;
                let (d64, x64, m64) = (d as f64, xmax as f64, mu as f64);
                let mut xs = inputs(d, &[0.5]);
                for k in [0.0f64, 0.1, 0.5, 0.999, 1.0, 1.0001, 2.0, 1e10] {
                    xs.push(k * x64);
                    xs.push(-k * x64);
                }
                // Level boundaries of the compressed domain, mapped back to X.
                for k in 0..(1u64 << bits.min(8)) {
                    let b = r::mulaw_expand(k, d64, x64, m64) + 0.0;
                    let h = (x64 / m64) * ((1.0 + m64).powf((k as f64 + 0.5) * d64 / x64) - 1.0);
                    for v in [b, h] {
                        xs.extend_from_slice(&[v, next_up_f64(v), next_down_f64(v), -v]);
                    }
                }
                for x in xs {
                    let want = r::mulaw(x, d64, x64, m64);
                    let got = mulaw::quantize(x, d64, x64, m64);
                    assert!(
                        same(got, want),
                        "mulaw x={x:e} Δ={d:e} xmax={xmax} μ={mu}: nnc {got} ref {want}"
                    );
                    let kind = Kind::MuLaw { xmax, mu };
                    assert_eq!(
                        quant::quantize_value(&kind, x, d),
                        r::clamp_level(want, None)
                    );
                    n += 1;
                }
                for k in (0..=(1u64 << (bits - 1))).chain([1 << 20]) {
                    let (a, b) = (
                        mulaw::expand(k, d64, x64, m64),
                        r::mulaw_expand(k, d64, x64, m64),
                    );
                    assert_eq!(a.to_bits(), b.to_bits(), "expand k={k} xmax={xmax} μ={mu}");
                }
            }
        }
    }
    assert!(n > 10_000);
    // Sanity of the pair: expand(level(x)) is close to x inside the range.
    let (xmax, mu, d) = (1.0f64, 255.0f64, 2.0 / 256.0);
    for i in 0..=1000 {
        let x = i as f64 / 1000.0;
        let q = r::mulaw(x, d, xmax, mu);
        let back = r::mulaw_expand(q as u64, d, xmax, mu);
        let y = xmax * (mu * x / xmax).ln_1p() / mu.ln_1p();
        let y_back = xmax * (mu * back / xmax).ln_1p() / mu.ln_1p();
        assert!((y - y_back).abs() <= 0.5 * d + 1e-12, "x={x}");
    }
}

fn layouts() -> Vec<(u32, u32)> {
    vec![
        (5, 10),
        (4, 7),
        (3, 6),
        (3, 4),
        (4, 3),
        (3, 3),
        (2, 4),
        (2, 3),
        (1, 4),
        (2, 2),
        (1, 3),
        (1, 2),
        (0, 3),
        (5, 2),
        (8, 7),
        (6, 0),
        (1, 0),
        (0, 1),
        (0, 12),
    ]
}

#[test]
fn minifloat_matches_its_definition() {
    for (e, m) in layouts() {
        let l = Layout {
            exp_bits: e as u8,
            man_bits: m as u8,
        };
        for scale in [0i32, -3, 5, -20, 17, -149, 100, -400, 400] {
            let mf = r::Mini::new(e, m, scale);
            let table = l.table(scale);
            assert_eq!(table.len(), mf.table.len(), "E{e}M{m}");
            for (c, (a, b)) in table.iter().zip(&mf.table).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "E{e}M{m} scale {scale} code {c}");
            }
            let sign_bit = l.magnitudes();
            assert_eq!(sign_bit, mf.sign_bit());
            for c in (0..2 * sign_bit).step_by(1 + (2 * sign_bit as usize / 4096)) {
                let (a, b) = (l.value(c, scale), mf.value(c));
                assert_eq!(a.to_bits(), b.to_bits(), "E{e}M{m} value({c:#x})");
                assert_eq!(
                    quant::reconstruct(
                        &Kind::Minifloat {
                            layout: l,
                            scale_exp: scale
                        },
                        c as i64,
                        1.0
                    )
                    .to_bits(),
                    b.to_bits()
                );
            }
            // Inputs: every representable magnitude (or a sample of them), the midpoints
            // between neighbours (exact ties), one ulp either side, beyond the top, zero.
            let stride = 1 + mf.table.len() / 2048;
            let mut xs: Vec<f64> = vec![0.0, -0.0, f64::MAX, f32::MAX as f64, 1e-320];
            for i in (0..mf.table.len()).step_by(stride) {
                let v = mf.table[i];
                xs.extend_from_slice(&[v, next_up_f64(v), next_down_f64(v)]);
                if i + 1 < mf.table.len() {
                    let mid = (v + mf.table[i + 1]) / 2.0;
                    xs.extend_from_slice(&[mid, next_up_f64(mid), next_down_f64(mid)]);
                    xs.push(mid as f32 as f64);
                }
            }
            let top = *mf.table.last().unwrap();
            xs.extend_from_slice(&[top * 1.5, top * 1.0000001, top * 4.0]);
            for x in xs.clone() {
                xs.push(-x);
            }
            let mut wants = Vec::with_capacity(xs.len());
            for &x in &xs {
                let want = mf.quantize(x);
                wants.push(want as i64);
                let got = minifloat::quantize(x, l, scale);
                assert_eq!(
                    got,
                    want,
                    "E{e}M{m} scale {scale}: x={x:e}: nnc code {got:#x} ({}) ref {want:#x} ({})",
                    mf.value(got.min(2 * sign_bit - 1)),
                    mf.value(want)
                );
            }
            // Through the tensor-level entry point as well (a level limit does not apply to
            // minifloat codes).
            let p = QuantParams {
                kind: Kind::Minifloat {
                    layout: l,
                    scale_exp: scale,
                },
                steps: Vec::new(),
            };
            assert_eq!(
                quant::quantize(&xs, &p, Some(1)),
                wants,
                "E{e}M{m} scale {scale}"
            );
        }
    }
}

#[test]
fn minifloat_ieee_half_layout_matches_ieee_half_for_finite_values() {
    let mf = r::Mini::new(5, 10, 0);
    let l = Layout {
        exp_bits: 5,
        man_bits: 10,
    };
    let mut n = 0;
    for x in f16_probe_inputs() {
        let h = r::f32_to_f16(x);
        let hv = r::f16_value(h);
        if !hv.is_finite() {
            continue;
        }
        let code = minifloat::quantize(x as f64, l, 0);
        assert_eq!(code, mf.quantize(x as f64));
        let v = l.value(code, 0);
        assert!(
            v == hv,
            "x={x:e} ({:#010x}): minifloat E5M10 {v:e} (code {code:#06x}) but IEEE half {hv:e} ({h:#06x})",
            x.to_bits()
        );
        // The codes agree too, except that the minifloat has no negative zero.
        if hv != 0.0 {
            assert_eq!(code, h as u32, "x={x:e}");
        }
        n += 1;
    }
    assert!(n > 500_000, "{n}");
}

/// binary32 inputs around every binary16 value and every midpoint between neighbours (±3
/// ulps of binary32), both signs, plus a stride over all binary32 patterns and specials.
fn f16_probe_inputs() -> Vec<f32> {
    let mut xs = Vec::new();
    for h in 0u16..0x7c00 {
        let v = r::f16_value(h);
        let next = r::f16_value(h + 1);
        for c in [v, (v + next) / 2.0] {
            let c32 = c as f32;
            assert_eq!(
                c32 as f64, c,
                "binary16 values and midpoints are binary32 numbers"
            );
            let mut lo = c32;
            for _ in 0..3 {
                lo = next_down_f32(lo);
            }
            let mut x = lo;
            for _ in 0..7 {
                xs.push(x);
                xs.push(-x);
                x = next_up_f32(x);
            }
        }
    }
    let mut b = 0u64;
    while b <= u32::MAX as u64 {
        xs.push(f32::from_bits(b as u32));
        b += 7919;
    }
    xs.extend_from_slice(&[
        0.0,
        -0.0,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        65519.996,
        65520.0,
        131008.0,
        131072.0,
    ]);
    xs
}

fn bf16_probe_inputs() -> Vec<f32> {
    let mut xs = Vec::new();
    for h in 0u16..0x7f80 {
        let v = r::bf16_value(h);
        let next = r::bf16_value(h + 1);
        for c in [v, (v + next) / 2.0] {
            let c32 = c as f32;
            assert_eq!(c32 as f64, c);
            let mut lo = c32;
            for _ in 0..2 {
                lo = next_down_f32(lo);
            }
            let mut x = lo;
            for _ in 0..5 {
                xs.push(x);
                xs.push(-x);
                x = next_up_f32(x);
            }
        }
    }
    let mut b = 0u64;
    while b <= u32::MAX as u64 {
        xs.push(f32::from_bits(b as u32));
        b += 7919;
    }
    xs.extend_from_slice(&[
        0.0,
        -0.0,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ]);
    xs
}

#[test]
fn f32_to_f16_rounds_to_nearest_even() {
    let mut n = 0;
    for x in f16_probe_inputs() {
        let (got, want) = (float::f32_to_f16(x), r::f32_to_f16(x));
        if x.is_nan() {
            assert!(got & 0x7c00 == 0x7c00 && got & 0x3ff != 0, "NaN → {got:#x}");
            continue;
        }
        assert_eq!(
            got,
            want,
            "f32_to_f16({x:e} = {:#010x}): nnc {got:#06x} ref {want:#06x}",
            x.to_bits()
        );
        n += 1;
    }
    assert!(n > 1_000_000, "{n}");
    for h in 0..=u16::MAX {
        let (got, want) = (float::f16_to_f32(h), r::f16_value(h));
        if want.is_nan() {
            assert!(got.is_nan(), "{h:#x}");
        } else {
            assert_eq!(
                got.to_bits(),
                (want as f32).to_bits(),
                "f16_to_f32({h:#06x})"
            );
        }
    }
}

#[test]
fn f32_to_bf16_rounds_to_nearest_even() {
    let mut n = 0;
    for x in bf16_probe_inputs() {
        let (got, want) = (float::f32_to_bf16(x), r::f32_to_bf16(x));
        if x.is_nan() {
            assert!(got & 0x7f80 == 0x7f80 && got & 0x7f != 0, "NaN → {got:#x}");
            continue;
        }
        assert_eq!(
            got,
            want,
            "f32_to_bf16({x:e} = {:#010x}): nnc {got:#06x} ref {want:#06x}",
            x.to_bits()
        );
        n += 1;
    }
    assert!(n > 1_000_000, "{n}");
    for h in 0..=u16::MAX {
        let (got, want) = (float::bf16_to_f32(h), r::bf16_value(h));
        if want.is_nan() {
            assert!(got.is_nan(), "{h:#x}");
        } else {
            assert_eq!(
                got.to_bits(),
                (want as f32).to_bits(),
                "bf16_to_f32({h:#06x})"
            );
        }
    }
}

#[test]
fn zigzag_maps_levels_to_symbols_and_back() {
    let mut qs: Vec<i64> = (-1000..=1000).collect();
    qs.extend_from_slice(&[
        r::MAX_LEVEL,
        -r::MAX_LEVEL,
        1 << 29,
        -(1 << 29),
        i32::MAX as i64,
        i32::MIN as i64,
    ]);
    for q in qs {
        let z = r::zigzag(q);
        assert_eq!(quant::zigzag(q) as u64, z, "zigzag({q})");
        assert_eq!(quant::unzigzag(z as u32), q, "unzigzag({z})");
    }
    for s in [
        0u32,
        1,
        2,
        3,
        254,
        255,
        65535,
        65536,
        u32::MAX - 1,
        u32::MAX,
    ] {
        let want = if s % 2 == 0 {
            (s / 2) as i64
        } else {
            -((s as i64 + 1) / 2)
        };
        assert_eq!(quant::unzigzag(s), want, "unzigzag({s})");
        assert_eq!(quant::zigzag(want), s);
    }
}

// ---------------------------------------------------------------------------------------------
// QuantParams::parse.

fn params_bytes(kind: u8, flags: u8, reserved: u16, fields: &[u8], steps: &[f32]) -> Vec<u8> {
    params_bytes_n(kind, flags, reserved, fields, steps.len() as u32, steps)
}

fn params_bytes_n(
    kind: u8,
    flags: u8,
    reserved: u16,
    fields: &[u8],
    count: u32,
    steps: &[f32],
) -> Vec<u8> {
    let mut b = vec![kind, flags];
    b.extend_from_slice(&reserved.to_le_bytes());
    b.extend_from_slice(fields);
    b.extend_from_slice(&count.to_le_bytes());
    for s in steps {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn mini_fields(e: u8, m: u8, scale: i16) -> Vec<u8> {
    let mut b = vec![e, m];
    b.extend_from_slice(&scale.to_le_bytes());
    b
}

#[test]
fn params_parse_accepts_valid_headers_and_round_trips() {
    let dims = [4u64, 3, 3];
    let good: Vec<(Vec<u8>, QuantParams)> = vec![
        (
            params_bytes(0, 0, 0, &[], &[0.5]),
            QuantParams {
                kind: Kind::Midtread,
                steps: vec![0.5],
            },
        ),
        (
            params_bytes(1, 1, 0, &[], &[0.5, 1.0, 2.0, f32::from_bits(1)]),
            QuantParams {
                kind: Kind::Midrise,
                steps: vec![0.5, 1.0, 2.0, f32::from_bits(1)],
            },
        ),
        (
            params_bytes(2, 0, 0, &f32s(&[0.0]), &[f32::MAX]),
            QuantParams {
                kind: Kind::DeadZone { delta: 0.0 },
                steps: vec![f32::MAX],
            },
        ),
        (
            params_bytes(2, 1, 0, &f32s(&[1.0]), &[1.0, 1.0, 1.0, 1.0]),
            QuantParams {
                kind: Kind::DeadZone { delta: 1.0 },
                steps: vec![1.0; 4],
            },
        ),
        (
            params_bytes(3, 0, 0, &f32s(&[1.0, 255.0]), &[0.0078125]),
            QuantParams {
                kind: Kind::MuLaw {
                    xmax: 1.0,
                    mu: 255.0,
                },
                steps: vec![0.0078125],
            },
        ),
        (
            params_bytes(4, 0, 0, &mini_fields(5, 10, -400), &[]),
            QuantParams {
                kind: Kind::Minifloat {
                    layout: Layout {
                        exp_bits: 5,
                        man_bits: 10,
                    },
                    scale_exp: -400,
                },
                steps: vec![],
            },
        ),
        (
            params_bytes(4, 0, 0, &mini_fields(0, 23, 400), &[]),
            QuantParams {
                kind: Kind::Minifloat {
                    layout: Layout {
                        exp_bits: 0,
                        man_bits: 23,
                    },
                    scale_exp: 400,
                },
                steps: vec![],
            },
        ),
        (
            params_bytes(4, 0, 0, &mini_fields(8, 15, 0), &[]),
            QuantParams {
                kind: Kind::Minifloat {
                    layout: Layout {
                        exp_bits: 8,
                        man_bits: 15,
                    },
                    scale_exp: 0,
                },
                steps: vec![],
            },
        ),
    ];
    for (bytes, want) in good {
        let got = QuantParams::parse(&bytes, 0, &dims)
            .unwrap_or_else(|e| panic!("{bytes:?} rejected: {e}"));
        assert_eq!(got, want);
        assert_eq!(want.to_bytes(), bytes, "to_bytes of {want:?}");
    }
}

#[test]
fn params_parse_rejects_malformed_headers() {
    let dims = [4u64, 3, 3];
    let mut bad: Vec<(&str, Vec<u8>, Vec<u64>)> = Vec::new();
    let d = dims.to_vec();
    for s in [
        0.0f32,
        -0.0,
        -1.0,
        -f32::MIN_POSITIVE,
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ] {
        for kind in [0u8, 1] {
            bad.push(("bad step", params_bytes(kind, 0, 0, &[], &[s]), d.clone()));
            bad.push((
                "bad per-channel step",
                params_bytes(kind, 1, 0, &[], &[1.0, 1.0, s, 1.0]),
                d.clone(),
            ));
        }
        bad.push((
            "bad dead-zone step",
            params_bytes(2, 0, 0, &f32s(&[0.5]), &[s]),
            d.clone(),
        ));
        bad.push((
            "bad mu-law step",
            params_bytes(3, 0, 0, &f32s(&[1.0, 255.0]), &[s]),
            d.clone(),
        ));
        bad.push((
            "bad mu-law xmax",
            params_bytes(3, 0, 0, &f32s(&[s, 255.0]), &[0.1]),
            d.clone(),
        ));
        bad.push((
            "bad mu-law mu",
            params_bytes(3, 0, 0, &f32s(&[1.0, s]), &[0.1]),
            d.clone(),
        ));
    }
    for delta in [
        -0.1f32,
        -f32::from_bits(1),
        next_up_f32(1.0),
        1.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ] {
        bad.push((
            "delta outside [0, 1]",
            params_bytes(2, 0, 0, &f32s(&[delta]), &[0.5]),
            d.clone(),
        ));
    }
    for (e, m) in [
        (9u8, 0u8),
        (0, 24),
        (8, 16),
        (9, 14),
        (0, 0),
        (255, 255),
        (12, 1),
    ] {
        bad.push((
            "minifloat layout",
            params_bytes(4, 0, 0, &mini_fields(e, m, 0), &[]),
            d.clone(),
        ));
    }
    for scale in [401i16, -401, i16::MAX, i16::MIN] {
        bad.push((
            "minifloat scale",
            params_bytes(4, 0, 0, &mini_fields(5, 10, scale), &[]),
            d.clone(),
        ));
    }
    // Step counts.
    bad.push((
        "minifloat with a step",
        params_bytes(4, 0, 0, &mini_fields(5, 10, 0), &[1.0]),
        d.clone(),
    ));
    bad.push((
        "minifloat per channel",
        params_bytes(4, 1, 0, &mini_fields(5, 10, 0), &[1.0; 4]),
        d.clone(),
    ));
    bad.push((
        "mu-law per channel",
        params_bytes(3, 1, 0, &f32s(&[1.0, 255.0]), &[1.0; 4]),
        d.clone(),
    ));
    for n in [0usize, 2, 3, 5, 12] {
        bad.push((
            "per-channel count",
            params_bytes(0, 1, 0, &[], &vec![1.0; n]),
            d.clone(),
        ));
    }
    for n in [0usize, 2, 4] {
        bad.push((
            "per-tensor count",
            params_bytes(1, 0, 0, &[], &vec![1.0; n]),
            d.clone(),
        ));
    }
    bad.push((
        "per channel, dim 1",
        params_bytes(0, 1, 0, &[], &[1.0]),
        vec![1, 7],
    ));
    bad.push((
        "per channel, scalar",
        params_bytes(0, 1, 0, &[], &[1.0]),
        vec![],
    ));
    bad.push((
        "per channel, no dims",
        params_bytes(0, 1, 0, &[], &[]),
        vec![],
    ));
    // A count far beyond the bytes (must not allocate it).
    bad.push((
        "huge count",
        params_bytes_n(0, 1, 0, &[], u32::MAX, &[1.0]),
        vec![u32::MAX as u64, 1],
    ));
    bad.push((
        "huge count per tensor",
        params_bytes_n(0, 0, 0, &[], u32::MAX, &[1.0]),
        d.clone(),
    ));
    // Reserved bits.
    for flags in [2u8, 4, 0x80, 0xff, 3] {
        bad.push((
            "reserved flag",
            params_bytes(0, flags, 0, &[], &[1.0]),
            d.clone(),
        ));
    }
    for res in [1u16, 0x100, 0xffff] {
        bad.push((
            "reserved u16",
            params_bytes(0, 0, res, &[], &[1.0]),
            d.clone(),
        ));
        bad.push((
            "reserved u16 (minifloat)",
            params_bytes(4, 0, res, &mini_fields(5, 10, 0), &[]),
            d.clone(),
        ));
    }
    // Unknown kinds, truncation, trailing bytes.
    for k in [5u8, 6, 0x7f, 0xff] {
        bad.push((
            "unknown kind",
            params_bytes(k, 0, 0, &[], &[1.0]),
            d.clone(),
        ));
    }
    let full = params_bytes(3, 0, 0, &f32s(&[1.0, 255.0]), &[0.1]);
    for cut in 0..full.len() {
        bad.push(("truncated", full[..cut].to_vec(), d.clone()));
    }
    let full = params_bytes(0, 1, 0, &[], &[1.0; 4]);
    for cut in 0..full.len() {
        bad.push(("truncated per-channel", full[..cut].to_vec(), d.clone()));
    }
    let mut t = params_bytes(0, 0, 0, &[], &[1.0]);
    t.push(0);
    bad.push(("trailing byte", t, d.clone()));
    let mut t = params_bytes(4, 0, 0, &mini_fields(5, 10, 0), &[]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    bad.push(("trailing step bytes", t, d.clone()));

    for (what, bytes, dims) in &bad {
        let res = std::panic::catch_unwind(|| QuantParams::parse(bytes, 100, dims));
        match res {
            Err(_) => panic!("{what}: QuantParams::parse panicked on {bytes:?} dims {dims:?}"),
            Ok(Ok(p)) => panic!("{what}: {bytes:?} dims {dims:?} accepted as {p:?}"),
            Ok(Err(_)) => {}
        }
    }
    assert!(bad.len() > 100);
}

// ---------------------------------------------------------------------------------------------
// Whole tensors through the encoder and the decoder.

const FLOAT: i32 = 1;
const INT32: i32 = 6;
const INT64: i32 = 7;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;
const BFLOAT16: i32 = 16;

/// A deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn laplace(&mut self, b: f64) -> f64 {
        let u = self.unit();
        let mag = -b * self.unit().ln();
        if u < 0.5 {
            -mag
        } else {
            mag
        }
    }
}

/// Weights of `channels` × `per` elements, Laplacian with a different scale per channel, some
/// exact zeros, negative zeros, binary32 subnormals, and exact multiples and half-multiples of
/// the fixed steps the tests use.
fn weights(channels: usize, per: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed | 1);
    let mut v = Vec::with_capacity(channels * per);
    for c in 0..channels {
        let b = 0.01 * (1 + c % 7) as f64 * if c % 11 == 3 { 12.0 } else { 1.0 };
        for _ in 0..per {
            v.push(rng.laplace(b));
        }
    }
    let n = v.len();
    let mut specials = vec![0.0, -0.0, 1e-45, -1e-45, 1.2e-38, -3e-39];
    for &s in &FIXED_STEPS {
        let s = s as f64;
        for k in -4..=4 {
            specials.push(k as f64 * s);
            specials.push((k as f64 + 0.5) * s);
            specials.push((k as f64 + 0.25) * s);
            specials.push((k as f64 - 0.7) * s);
        }
    }
    for (i, s) in specials.into_iter().enumerate() {
        v[(i * 37 + 5) % n] = s;
    }
    v
}

const FIXED_STEPS: [f32; 2] = [0.0078125, 0.003];

/// Canonical bytes of `values` stored as `dt` (binary16/bfloat16 with the reference rounding;
/// double values get extra low bits so they are not binary32 numbers).
fn store(values: &[f64], dt: i32) -> Vec<u8> {
    match dt {
        FLOAT => values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        DOUBLE => values
            .iter()
            .enumerate()
            .flat_map(|(i, &v)| {
                let w = if v != 0.0 && i % 3 != 0 {
                    v * (1.0 + 1e-12 * (i % 5) as f64)
                } else {
                    v
                };
                w.to_le_bytes()
            })
            .collect(),
        FLOAT16 => values
            .iter()
            .flat_map(|&v| r::f32_to_f16(v as f32).to_le_bytes())
            .collect(),
        BFLOAT16 => values
            .iter()
            .flat_map(|&v| r::f32_to_bf16(v as f32).to_le_bytes())
            .collect(),
        _ => unreachable!(),
    }
}

/// Values of canonical bytes of a float type, read with the reference decoders.
fn load(bytes: &[u8], dt: i32) -> Vec<f64> {
    match dt {
        FLOAT => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        DOUBLE => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        FLOAT16 => bytes
            .chunks_exact(2)
            .map(|b| r::f16_value(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        BFLOAT16 => bytes
            .chunks_exact(2)
            .map(|b| r::bf16_value(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        _ => unreachable!(),
    }
}

/// The reconstruction `v` (binary64) written as `dt`: binary32 by rounding; binary16 and
/// bfloat16 from that binary32 (spec §7.6.6 rounds binary32 to the 16-bit types).
fn put(v: f64, dt: i32, out: &mut Vec<u8>) {
    match dt {
        FLOAT => out.extend_from_slice(&(v as f32).to_le_bytes()),
        DOUBLE => out.extend_from_slice(&v.to_le_bytes()),
        FLOAT16 => out.extend_from_slice(&r::f32_to_f16(v as f32).to_le_bytes()),
        BFLOAT16 => out.extend_from_slice(&r::f32_to_bf16(v as f32).to_le_bytes()),
        _ => unreachable!(),
    }
}

fn vi(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(format!("{op}_{}", outputs.first().copied().unwrap_or(""))),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn raw_tensor(name: &str, dt: i32, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(dt),
        dims: dims.to_vec(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: &[&str],
    outputs: &[&str],
) -> ModelProto {
    ModelProto {
        ir_version: Some(9),
        producer_name: Some("nnc tests/quantizers.rs".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(19),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: nodes,
            initializer: inits,
            input: inputs.iter().map(|n| vi(n)).collect(),
            output: outputs.iter().map(|n| vi(n)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Every tensor in a record of its own, so the records can be compared with the report.
fn encode(m: &ModelProto, lossy: Option<LossyOptions>) -> (Vec<u8>, EncodeReport) {
    let opts = EncodeOptions {
        lossy,
        records_only: true,
        ..Default::default()
    };
    nnc::encode_model(m.clone(), None, &opts, Vec::new()).unwrap_or_else(|e| panic!("encode: {e}"))
}

fn decode_tensors(bytes: &[u8]) -> Vec<nnc::Tensor> {
    let mut d = Decoder::new(bytes, DecodeOptions::default()).expect("decoder");
    let mut out = Vec::new();
    while let Some(t) = d.next_tensor().expect("next tensor") {
        out.push(t);
    }
    out
}

fn decode_model(bytes: &[u8]) -> ModelProto {
    let b = nnc::decode_to_bytes(bytes, DecodeOptions::default()).expect("decode");
    ModelProto::decode(b.as_slice()).expect("decoded model parses")
}

fn initializers(m: &ModelProto) -> HashMap<String, TensorProto> {
    m.graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .map(|t| (t.name.clone().unwrap(), t.clone()))
        .collect()
}

/// Canonical bytes of a TensorProto of a float type, from whichever field holds them.
fn tensor_bytes(t: &TensorProto) -> Vec<u8> {
    if let Some(raw) = &t.raw_data {
        return raw.clone();
    }
    match t.data_type.unwrap() {
        FLOAT => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DOUBLE => t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        FLOAT16 | BFLOAT16 => t
            .int32_data
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect(),
        INT32 => t.int32_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        INT64 => t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        dt => panic!("data type {dt}"),
    }
}

/// Population standard deviation, two passes in binary64.
fn std_dev(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
}

/// What the reference expects the decoder to produce for a quantized tensor, given the
/// parameters the encoder chose (checked separately against the policy) and the options.
struct Expected {
    bytes: Vec<u8>,
    levels: Vec<i64>,
}

fn reference_tensor(values: &[f64], dt: i32, p: &QuantParams, l: &LossyOptions) -> Expected {
    let mut xs = values.to_vec();
    let mut limit = None;
    if let StepRule::Thesis {
        min,
        max,
        levels_bits,
    } = l.step
    {
        for x in &mut xs {
            *x = x.clamp(min as f64, max as f64);
        }
        limit = Some(1i64 << (levels_bits - 1));
    }
    let n = xs.len();
    let per = if p.steps.len() > 1 {
        n / p.steps.len()
    } else {
        n
    };
    let step = |i: usize| p.steps[if p.steps.len() > 1 { i / per } else { 0 }] as f64;
    let mut bytes = Vec::new();
    let mut levels = Vec::with_capacity(n);
    match p.kind {
        Kind::Minifloat { layout, scale_exp } => {
            let mf = r::Mini::new(layout.exp_bits as u32, layout.man_bits as u32, scale_exp);
            for &x in &xs {
                let c = mf.quantize(x);
                levels.push(c as i64);
                put(mf.value(c), dt, &mut bytes);
            }
        }
        Kind::MuLaw { xmax, mu } => {
            let (d, xm, m) = (p.steps[0] as f64, xmax as f64, mu as f64);
            for &x in &xs {
                let q = r::clamp_level(r::mulaw(x, d, xm, m), limit);
                levels.push(q);
                let mag = r::mulaw_expand(q.unsigned_abs(), d, xm, m) as f32 as f64;
                put(if q < 0 { -mag } else { mag }, dt, &mut bytes);
            }
        }
        kind => {
            for (i, &x) in xs.iter().enumerate() {
                let d = step(i);
                let (v, rec): (f64, fn(i64, f64) -> f64) = match kind {
                    Kind::Midtread => (r::midtread(x, d), r::midtread_rec),
                    Kind::Midrise => (r::midrise(x, d), r::midrise_rec),
                    _ => (0.0, r::midtread_rec),
                };
                let q;
                let y = if let Kind::DeadZone { delta } = kind {
                    q = r::clamp_level(r::deadzone(x, d, delta as f64), limit);
                    r::deadzone_rec(q, d, delta as f64)
                } else {
                    q = r::clamp_level(v, limit);
                    rec(q, d)
                };
                levels.push(q);
                put(y, dt, &mut bytes);
            }
        }
    }
    Expected { bytes, levels }
}

fn entropy_bits_of<T: Ord + Copy>(items: impl Iterator<Item = T>) -> (f64, usize) {
    let mut h: BTreeMap<T, u64> = BTreeMap::new();
    let mut n = 0u64;
    for s in items {
        *h.entry(s).or_default() += 1;
        n += 1;
    }
    let nf = n as f64;
    let bits = h
        .values()
        .map(|&c| -(c as f64) * (c as f64 / nf).log2())
        .sum();
    (bits, h.len())
}

/// Checks that the parameters the encoder chose follow the documented policy.
fn check_policy_params(
    name: &str,
    values: &[f64],
    dims: &[u64],
    p: &QuantParams,
    l: &LossyOptions,
) {
    let max_abs = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    match (l.family, p.kind) {
        (Family::Midtread, Kind::Midtread) | (Family::Midrise, Kind::Midrise) => {}
        (Family::DeadZone { delta: a }, Kind::DeadZone { delta: b }) => assert_eq!(a, b),
        (Family::MuLaw { mu: a }, Kind::MuLaw { xmax, mu: b }) => {
            assert_eq!(a, b);
            let want_xmax = match l.step {
                StepRule::Thesis { min, max, .. } => min.abs().max(max.abs()),
                _ => max_abs as f32,
            };
            assert_eq!(xmax, want_xmax, "{name}: μ-law xmax");
            let bits = match l.step {
                StepRule::Thesis { levels_bits, .. } => levels_bits,
                _ => l.mulaw_levels_bits,
            };
            assert_eq!(
                p.steps,
                vec![2.0 * xmax / (1u64 << bits) as f32],
                "{name}: μ-law step"
            );
            return;
        }
        (
            Family::Minifloat { layout },
            Kind::Minifloat {
                layout: got,
                scale_exp,
            },
        ) => {
            assert_eq!(layout, got);
            assert!(p.steps.is_empty());
            if let StepRule::Thesis { .. } = l.step {
                assert_eq!(scale_exp, 0, "{name}: thesis-mode minifloats are unscaled");
            } else {
                // "The scale that maps max_abs to the largest magnitude or just below it".
                let top = *r::Mini::new(layout.exp_bits as u32, layout.man_bits as u32, 0)
                    .table
                    .last()
                    .unwrap();
                assert!(
                    top * r::pow2(scale_exp) >= max_abs,
                    "{name}: scale {scale_exp} too small"
                );
                assert!(
                    top * r::pow2(scale_exp - 1) < max_abs,
                    "{name}: scale {scale_exp} larger than needed"
                );
            }
            return;
        }
        (f, k) => panic!("{name}: family {f:?} gave kind {k:?}"),
    }
    match l.step {
        StepRule::Fixed(s) => assert_eq!(p.steps, vec![s], "{name}"),
        StepRule::Thesis {
            min,
            max,
            levels_bits,
        } => assert_eq!(
            p.steps,
            vec![(max - min) / (1u64 << levels_bits) as f32],
            "{name}"
        ),
        StepRule::StdFraction(f) => {
            // Per channel only for rank >= 2 and at least 8 elements per channel.
            let channels = if l.per_channel
                && dims.len() >= 2
                && dims[0] >= 2
                && values.len() as u64 / dims[0] >= 8
            {
                dims[0] as usize
            } else {
                1
            };
            if channels >= 2 {
                assert_eq!(p.steps.len(), channels, "{name}: one step per channel");
            } else {
                assert_eq!(p.steps.len(), 1, "{name}");
            }
            let per = values.len() / p.steps.len();
            // "A constant channel has σ = 0: give it the tensor's step."
            // σ·f, floored at max|x|·2^-24.
            let sigma_step = |v: &[f64]| {
                let max_abs = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                (std_dev(v) * f as f64).max(max_abs / (1u64 << 24) as f64)
            };
            let tensor_step = sigma_step(values);
            for (c, &s) in p.steps.iter().enumerate() {
                let mut want = sigma_step(&values[c * per..(c + 1) * per]);
                if (want as f32).partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                    want = tensor_step;
                }
                assert!(
                    ((s as f64 - want) / want).abs() < 1e-6,
                    "{name}: channel {c} step {s} but σ·f = {want}"
                );
            }
        }
        r => panic!("{name}: step rule {r:?} has no reference"),
    }
}

/// Encodes `m` with `l`, decodes, and compares every tensor with the reference: quantized
/// ones bit for bit with the reference reconstruction (and the report's levels and entropy),
/// the others with their original bytes. Returns the names of the quantized tensors.
fn check_round_trip(m: &ModelProto, l: &LossyOptions, what: &str) -> Vec<String> {
    let (bytes, report) = encode(m, Some(*l));
    let originals = initializers(m);
    let decoded_model = decode_model(&bytes);
    let decoded_inits = initializers(&decoded_model);
    let tensors = decode_tensors(&bytes);
    assert_eq!(tensors.len(), report.tensors.len());
    let mut quantized = Vec::new();
    for (t, rep) in tensors.iter().zip(&report.tensors) {
        assert_eq!(t.name, rep.name);
        let Some(orig) = originals.get(&t.name) else {
            continue;
        };
        let dt = orig.data_type.unwrap();
        let dec = &decoded_inits[&t.name];
        assert_eq!(
            dec.data_type,
            Some(dt),
            "{what}: {} decoded with another type",
            t.name
        );
        assert_eq!(t.data_type, dt);
        assert_eq!(
            dec.raw_data.is_some(),
            orig.raw_data.is_some(),
            "{what}: {} storage",
            t.name
        );
        let orig_bytes = tensor_bytes(orig);
        assert_eq!(
            tensor_bytes(dec),
            t.data,
            "{what}: {}: model and decoder disagree",
            t.name
        );
        if t.coding != Coding::Quantized {
            assert!(rep.quant.is_none());
            assert_eq!(t.data, orig_bytes, "{what}: {} should be exact", t.name);
            continue;
        }
        let q = rep.quant.as_ref().expect("quant report");
        let p = QuantParams::parse(&t.params, 0, &t.dims).expect("params parse");
        assert_eq!(p, q.params, "{what}: {}: header and report params", t.name);
        let values = load(&orig_bytes, dt);
        check_policy_params(&format!("{what}: {}", t.name), &values, &t.dims, &p, l);
        let want = reference_tensor(&values, dt, &p, l);
        assert_eq!(want.bytes.len(), t.data.len());
        let w = t.data.len() / values.len();
        let mut bad = 0;
        let mut first = String::new();
        for (i, (a, b)) in t.data.chunks(w).zip(want.bytes.chunks(w)).enumerate() {
            if a != b {
                if bad == 0 {
                    first = format!(
                        "element {i}: x = {:e}, level {}, decoded {:e} ({a:02x?}) but the reference gives {:e} ({b:02x?})",
                        values[i],
                        want.levels[i],
                        load(a, dt)[0],
                        load(b, dt)[0]
                    );
                }
                bad += 1;
            }
        }
        assert!(
            bad == 0,
            "{what}: {} ({} elements, params {p:?}): {bad} elements differ; first: {first}",
            t.name,
            values.len()
        );
        // The report: distinct levels and their order-0 entropy.
        let (bits, distinct) = entropy_bits_of(want.levels.iter().copied());
        assert_eq!(q.levels, distinct, "{what}: {}: levels", t.name);
        assert!(
            (q.entropy_bits - bits).abs() <= 1e-9 * bits.max(1.0),
            "{what}: {}: report entropy {} bits, reference {bits}",
            t.name,
            q.entropy_bits
        );
        let rec = load(&want.bytes, dt);
        let mse = values
            .iter()
            .zip(&rec)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            / values.len() as f64;
        assert!(
            (q.mse - mse).abs() <= 1e-9 * mse.max(1e-300),
            "{what}: {}: report mse {} reference {mse}",
            t.name,
            q.mse
        );
        quantized.push(t.name.clone());
    }
    quantized
}

/// A Conv weight [64, 8, 3, 3] (4608 elements), a MatMul weight [48, 32] (1536), a small
/// Conv bias, all of type `dt`.
fn weight_model(dt: i32) -> ModelProto {
    let w = weights(64, 72, 0x5eed_0001);
    let b = weights(48, 32, 0x5eed_0002);
    let bias: Vec<f64> = (0..64).map(|i| i as f64 * 0.01 - 0.3).collect();
    model(
        vec![
            node("Conv", &["X", "W", "Bias"], &["Y"]),
            node("MatMul", &["Z", "B"], &["Y2"]),
        ],
        vec![
            raw_tensor("W", dt, &[64, 8, 3, 3], store(&w, dt)),
            raw_tensor("B", dt, &[48, 32], store(&b, dt)),
            raw_tensor("Bias", dt, &[64], store(&bias, dt)),
        ],
        &["X", "Z"],
        &["Y", "Y2"],
    )
}

fn families() -> Vec<Family> {
    let mut f = vec![Family::Midtread, Family::Midrise];
    for delta in [0.0f32, 0.1, 0.25, 0.4, 0.5, 0.7, 1.0] {
        f.push(Family::DeadZone { delta });
    }
    f.push(Family::MuLaw { mu: 255.0 });
    f.push(Family::MuLaw { mu: 3.0 });
    for (e, m) in [
        (5u8, 10u8),
        (4, 3),
        (3, 4),
        (2, 3),
        (1, 2),
        (0, 3),
        (8, 7),
        (4, 7),
    ] {
        f.push(Family::Minifloat {
            layout: Layout {
                exp_bits: e,
                man_bits: m,
            },
        });
    }
    f
}

fn step_rules() -> Vec<(StepRule, bool)> {
    vec![
        (StepRule::StdFraction(1.0 / 16.0), true),
        (StepRule::StdFraction(1.0 / 16.0), false),
        (StepRule::StdFraction(0.7), true),
        (StepRule::Fixed(FIXED_STEPS[0]), false),
        (StepRule::Fixed(FIXED_STEPS[1]), false),
        (
            StepRule::Thesis {
                min: -1.0,
                max: 1.0,
                levels_bits: 6,
            },
            false,
        ),
        (
            StepRule::Thesis {
                min: -0.5,
                max: 0.5,
                levels_bits: 3,
            },
            false,
        ),
    ]
}

#[test]
fn decoded_weights_equal_the_reference_bit_for_bit() {
    let mut runs = 0;
    for dt in [FLOAT, FLOAT16, BFLOAT16, DOUBLE] {
        let m = weight_model(dt);
        for family in families() {
            for (step, per_channel) in step_rules() {
                let l = LossyOptions {
                    family,
                    step,
                    per_channel,
                    mulaw_levels_bits: 7,
                    ..LossyOptions::default()
                };
                let what = format!("dtype {dt}, {family:?}, {step:?}, per_channel {per_channel}");
                let q = check_round_trip(&m, &l, &what);
                // W and B feed weight inputs and are large: quantized; Bias stays exact. The
                // encoder keeps a tensor exact instead when its quantized payload would not be
                // smaller than the raw data (check_round_trip checked that exact tensors decode
                // bit-identical); verify that this is the reason whenever W or B is exact.
                assert!(q.iter().all(|n| n == "W" || n == "B"), "{what}: {q:?}");
                for name in ["W", "B"] {
                    if !q.iter().any(|n| n == name) {
                        let mut lq = l;
                        lq.all_tensors = true;
                        let raw = weight_bytes(&m, name);
                        assert!(
                            quantized_payload_len(&m, name, lq) >= raw,
                            "{what}: {name} kept exact below raw size"
                        );
                    }
                }
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 4 * families().len() * step_rules().len());
}

#[test]
fn per_channel_steps_differ_per_channel_and_are_used() {
    let m = weight_model(FLOAT);
    let l = LossyOptions::default();
    let (bytes, report) = encode(&m, Some(l));
    let w = report.tensors.iter().find(|t| t.name == "W").unwrap();
    let p = &w.quant.as_ref().unwrap().params;
    assert_eq!(p.steps.len(), 64);
    let distinct: std::collections::BTreeSet<u32> = p.steps.iter().map(|s| s.to_bits()).collect();
    assert!(
        distinct.len() > 10,
        "channels with different spreads get different steps"
    );
    check_round_trip(&m, &l, "default options");
    drop(bytes);
}

#[test]
fn typed_fields_round_trip_through_quantization() {
    // float_data / double_data / int32_data (for float16) instead of raw_data.
    let w = weights(32, 64, 0x7e57);
    let mut f = raw_tensor("W", FLOAT, &[32, 8, 2, 4], Vec::new());
    f.raw_data = None;
    f.float_data = w.iter().map(|&v| v as f32).collect();
    let mut d = raw_tensor("W2", DOUBLE, &[32, 64], Vec::new());
    d.raw_data = None;
    d.double_data = w.iter().map(|&v| v * (1.0 + 1e-13)).collect();
    let mut h = raw_tensor("W3", FLOAT16, &[32, 64], Vec::new());
    h.raw_data = None;
    h.int32_data = w.iter().map(|&v| r::f32_to_f16(v as f32) as i32).collect();
    let m = model(
        vec![
            node("Conv", &["X", "W"], &["Y"]),
            node("MatMul", &["Z", "W2"], &["Y2"]),
            node("MatMul", &["Z2", "W3"], &["Y3"]),
        ],
        vec![f, d, h],
        &["X", "Z", "Z2"],
        &["Y", "Y2", "Y3"],
    );
    for family in [
        Family::DeadZone { delta: 0.5 },
        Family::Midrise,
        Family::MuLaw { mu: 255.0 },
        Family::Minifloat {
            layout: Layout {
                exp_bits: 4,
                man_bits: 3,
            },
        },
    ] {
        let l = LossyOptions {
            family,
            ..LossyOptions::default()
        };
        let q = check_round_trip(&m, &l, &format!("typed {family:?}"));
        assert_eq!(q.len(), 3, "{family:?}: {q:?}");
        let (bytes, _) = encode(&m, Some(l));
        let dm = decode_model(&bytes);
        let inits = initializers(&dm);
        assert_eq!(inits["W"].float_data.len(), 2048);
        assert_eq!(inits["W2"].double_data.len(), 2048);
        assert_eq!(inits["W3"].int32_data.len(), 2048);
        assert_eq!(inits["W3"].data_type, Some(FLOAT16));
    }
}

#[test]
fn tensors_with_nan_or_infinity_stay_exact() {
    let base = weights(64, 72, 0xbad);
    let mut inits = Vec::new();
    let mut nodes = Vec::new();
    let specials = [
        ("nan", f64::NAN),
        ("pinf", f64::INFINITY),
        ("ninf", f64::NEG_INFINITY),
    ];
    for dt in [FLOAT, FLOAT16, BFLOAT16, DOUBLE] {
        for (i, (tag, s)) in specials.iter().enumerate() {
            let mut w = base.clone();
            w[100 + i * 7] = *s;
            let name = format!("W_{tag}_{dt}");
            let out = format!("Y_{tag}_{dt}");
            inits.push(raw_tensor(&name, dt, &[64, 8, 3, 3], store(&w, dt)));
            nodes.push(node("Conv", &["X", &name], &[&out]));
        }
        // A NaN payload with a sign and a quiet/signalling pattern must survive bit for bit.
        if dt == FLOAT {
            let mut raw = store(&base, FLOAT);
            raw[40..44].copy_from_slice(&0xffa0_0001u32.to_le_bytes());
            inits.push(raw_tensor("W_snan", FLOAT, &[64, 8, 3, 3], raw));
            nodes.push(node("Conv", &["X", "W_snan"], &["Y_snan"]));
        }
    }
    // A control tensor without specials, quantized.
    inits.push(raw_tensor(
        "W_ok",
        FLOAT,
        &[64, 8, 3, 3],
        store(&base, FLOAT),
    ));
    nodes.push(node("Conv", &["X", "W_ok"], &["Y_ok"]));
    let outs: Vec<String> = nodes.iter().map(|n| n.output[0].clone()).collect();
    let outs: Vec<&str> = outs.iter().map(|s| s.as_str()).collect();
    let m = model(nodes, inits, &["X"], &outs);
    for all_tensors in [false, true] {
        for family in families() {
            let l = LossyOptions {
                family,
                all_tensors,
                ..LossyOptions::default()
            };
            let q = check_round_trip(&m, &l, &format!("non-finite {family:?} all {all_tensors}"));
            assert_eq!(q, vec!["W_ok".to_string()], "{family:?}");
        }
    }
}

/// A graph with weights and with float tensors that feed non-weight inputs.
fn policy_model() -> (ModelProto, Vec<(&'static str, bool, bool)>) {
    let f = |n: usize, seed: u64| weights(1, n, seed);
    let pos = |n: usize| {
        (0..n)
            .map(|i| 0.5 + (i % 17) as f64 * 0.1)
            .collect::<Vec<f64>>()
    };
    let ints32: Vec<u8> = (0..2048i32)
        .flat_map(|i| (i * 7 - 300).to_le_bytes())
        .collect();
    let shape: Vec<u8> = [1i64, -1, 4, 4]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut constant = node("Constant", &[], &["Cw"]);
    constant.attribute.push(AttributeProto {
        name: Some("value".into()),
        r#type: Some(4), // TENSOR
        t: Some(Box::new(raw_tensor(
            "",
            FLOAT,
            &[64, 32],
            store(&f(2048, 9), FLOAT),
        ))),
        ..Default::default()
    });
    let nodes = vec![
        node("Conv", &["X", "W", "Cb"], &["Y"]),
        node("Conv", &["X", "Wsmall"], &["Y1"]),
        node(
            "BatchNormalization",
            &["Y", "Bs", "Bb", "Bm", "Bv"],
            &["Y2"],
        ),
        node("Add", &["Y2", "Addc"], &["Y3"]),
        node("Resize", &["Y3", "", "Scales"], &["Y4"]),
        node("Reshape", &["Y4", "Shape"], &["Y5"]),
        node("Gather", &["Ints", "Idx"], &["Y6"]),
        node("Conv", &["X", "Shared"], &["Y7"]),
        node("Add", &["Y7", "Shared"], &["Y8"]),
        node("Transpose", &["Wt"], &["WtT"]),
        node("MatMul", &["Z", "WtT"], &["Y9"]),
        constant,
        node("MatMul", &["Z", "Cw"], &["Y10"]),
        node("Gemm", &["Z", "Gw", "Gc"], &["Y11"]),
        node("LayerNormalization", &["Z", "Ln"], &["Y12"]),
    ];
    let inits = vec![
        raw_tensor("W", FLOAT, &[64, 8, 3, 3], store(&f(4608, 1), FLOAT)),
        raw_tensor("Cb", FLOAT, &[2048], store(&f(2048, 2), FLOAT)),
        raw_tensor("Wsmall", FLOAT, &[4, 2, 3, 3], store(&f(72, 3), FLOAT)),
        raw_tensor("Bs", FLOAT, &[2048], store(&pos(2048), FLOAT)),
        raw_tensor("Bb", FLOAT, &[2048], store(&f(2048, 4), FLOAT)),
        raw_tensor("Bm", FLOAT, &[2048], store(&f(2048, 5), FLOAT)),
        raw_tensor("Bv", FLOAT, &[2048], store(&pos(2048), FLOAT)),
        raw_tensor("Addc", FLOAT, &[2048], store(&f(2048, 6), FLOAT)),
        raw_tensor("Scales", FLOAT, &[4], store(&[1.0, 1.0, 2.0, 2.0], FLOAT)),
        raw_tensor("Shape", INT64, &[4], shape),
        raw_tensor("Ints", INT32, &[2048], ints32),
        raw_tensor("Shared", FLOAT, &[32, 64], store(&f(2048, 7), FLOAT)),
        raw_tensor("Wt", FLOAT, &[32, 64], store(&f(2048, 8), FLOAT)),
        raw_tensor("Gw", FLOAT, &[64, 32], store(&f(2048, 10), FLOAT)),
        raw_tensor("Gc", FLOAT, &[2048], store(&f(2048, 11), FLOAT)),
        raw_tensor("Ln", DOUBLE, &[2048], store(&pos(2048), DOUBLE)),
    ];
    // (name, quantized by default, quantized with all_tensors)
    let expect = vec![
        ("W", true, true),
        ("Cb", false, true),
        ("Wsmall", false, true),
        ("Bs", false, true),
        ("Bb", false, true),
        ("Bm", false, true),
        ("Bv", false, true),
        ("Addc", false, true),
        ("Scales", false, true),
        ("Shape", false, false),
        ("Ints", false, false),
        ("Shared", false, true),
        ("Wt", true, true),
        ("Cw", true, true),
        ("Gw", true, true),
        ("Gc", false, true),
        ("Ln", false, true),
    ];
    let m = model(
        nodes,
        inits,
        &["X", "Z", "Idx"],
        &["Y1", "Y5", "Y6", "Y8", "Y9", "Y10", "Y11", "Y12"],
    );
    (m, expect)
}

#[test]
fn only_weights_are_quantized_by_default_and_everything_float_with_all_tensors() {
    let (m, expect) = policy_model();
    for all_tensors in [false, true] {
        for family in [
            Family::DeadZone { delta: 0.5 },
            Family::Midtread,
            Family::MuLaw { mu: 255.0 },
            Family::Minifloat {
                layout: Layout {
                    exp_bits: 3,
                    man_bits: 4,
                },
            },
        ] {
            let l = LossyOptions {
                family,
                all_tensors,
                ..LossyOptions::default()
            };
            let (bytes, _) = encode(&m, Some(l));
            let tensors = decode_tensors(&bytes);
            let coding: HashMap<&str, Coding> = tensors
                .iter()
                .map(|t| (t.name.as_str(), t.coding))
                .collect();
            for &(name, default, all) in &expect {
                let want = if all_tensors { all } else { default };
                let got = coding
                    .get(name)
                    .unwrap_or_else(|| panic!("no tensor {name}: {:?}", coding.keys()));
                // The encoder keeps a tensor exact when its quantized payload would not be
                // smaller than the raw data (e.g. a μ-law table longer than a small tensor).
                let raw = tensors
                    .iter()
                    .find(|t| t.name == name)
                    .map_or(0, |t| t.data.len() as u64);
                let fell_back = want && *got != Coding::Quantized && {
                    let mut lq = l;
                    lq.all_tensors = true;
                    quantized_payload_len(&m, name, lq) >= raw
                };
                assert_eq!(
                    *got == Coding::Quantized || fell_back,
                    want,
                    "{name}: quantized = {} with all_tensors = {all_tensors} ({family:?})",
                    *got == Coding::Quantized
                );
            }
            // And every tensor is bit-exact or equals the reference reconstruction.
            check_round_trip(&m, &l, &format!("policy {family:?} all {all_tensors}"));
        }
    }
    // Lossless options leave everything exact.
    let (bytes, _) = encode(&m, None);
    for t in decode_tensors(&bytes) {
        assert_ne!(t.coding, Coding::Quantized, "{}", t.name);
    }
    let dm = decode_model(&bytes);
    assert_eq!(dm.encode_to_vec(), m.encode_to_vec());
}

#[test]
fn min_elements_is_the_threshold() {
    let w = weights(8, 128, 42); // 1024 elements
    let m = model(
        vec![
            node("MatMul", &["Z", "A"], &["Y"]),
            node("MatMul", &["Z", "B"], &["Y2"]),
        ],
        vec![
            raw_tensor("A", FLOAT, &[8, 128], store(&w, FLOAT)),
            raw_tensor("B", FLOAT, &[1023], store(&w[..1023], FLOAT)),
        ],
        &["Z"],
        &["Y", "Y2"],
    );
    let q = check_round_trip(&m, &LossyOptions::default(), "min_elements 1024");
    assert_eq!(q, vec!["A".to_string()]);
    let l = LossyOptions {
        min_elements: 1025,
        ..LossyOptions::default()
    };
    assert!(check_round_trip(&m, &l, "min_elements 1025").is_empty());
    let l = LossyOptions {
        min_elements: 0,
        ..LossyOptions::default()
    };
    assert_eq!(check_round_trip(&m, &l, "min_elements 0").len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Limits of the level range.

/// A tensor whose levels do not fit the stream's ±MAX_LEVEL (2^30 − 1) must not come back
/// with clamped, wildly wrong values: the encoder has to keep it exact (or choose a step that
/// fits). Here: a nearly constant Conv weight far from zero (σ tiny, so the default step
/// σ/16 is tiny relative to the values), and a fixed step far below the weights' magnitude.
#[test]
fn levels_beyond_the_stream_range_are_not_silently_clamped() {
    let mut nearly_constant = vec![1000.0f64; 4096];
    nearly_constant[17] = 1000.0 + 2f64.powi(-13); // one binary32 ulp above 1000
    let w = weights(64, 64, 77);
    let m = model(
        vec![
            node("Conv", &["X", "Wc"], &["Y"]),
            node("MatMul", &["Z", "Wd"], &["Y2"]),
        ],
        vec![
            raw_tensor("Wc", FLOAT, &[64, 64], store(&nearly_constant, FLOAT)),
            raw_tensor("Wd", DOUBLE, &[64, 64], {
                let v: Vec<f64> = w.iter().map(|x| 5.0 + x * 1e-9).collect();
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }),
        ],
        &["X", "Z"],
        &["Y", "Y2"],
    );
    let mut failures = Vec::new();
    for (label, l) in [
        ("default options", LossyOptions::default()),
        (
            "per-tensor σ/16",
            LossyOptions {
                per_channel: false,
                ..LossyOptions::default()
            },
        ),
        (
            "fixed step 1e-9",
            LossyOptions {
                step: StepRule::Fixed(1e-9),
                ..LossyOptions::default()
            },
        ),
    ] {
        let (bytes, report) = encode(&m, Some(l));
        let orig = initializers(&m);
        for t in decode_tensors(&bytes) {
            let dt = t.data_type;
            let x = load(&tensor_bytes(&orig[&t.name]), dt);
            let y = load(&t.data, dt);
            let rep = report.tensors.iter().find(|r| r.name == t.name).unwrap();
            let max_err = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            let bound = match &rep.quant {
                // Dead zone δ = 0.5: |x − x̂| <= Δ/2 (plus the rounding to the tensor's type).
                Some(q) => {
                    q.params.steps.iter().cloned().fold(0.0f32, f32::max) as f64 * 0.5
                        + x.iter().fold(0.0f64, |m, v| m.max(v.abs())) * 1e-7
                }
                None => 0.0,
            };
            if max_err > bound {
                failures.push(format!(
                    "{label}: {} ({}): max |x − x̂| = {max_err:e} > {bound:e}; e.g. x = {} decoded as {} (params {:?})",
                    t.name,
                    nnc::onnx::dtype::name(dt),
                    x[0],
                    y[0],
                    rep.quant.as_ref().map(|q| &q.params.steps[..q.params.steps.len().min(2)])
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Thesis mode promises 2^k levels over [MIN, MAX]: a value at MAX must come back within a
/// step of MAX, also when the range is not symmetric about zero.
#[test]
fn thesis_mode_levels_cover_an_asymmetric_range() {
    let w: Vec<f64> = (0..4096).map(|i| -1.0 + 4.0 * i as f64 / 4095.0).collect();
    let m = model(
        vec![node("MatMul", &["Z", "W"], &["Y"])],
        vec![raw_tensor("W", FLOAT, &[64, 64], store(&w, FLOAT))],
        &["Z"],
        &["Y"],
    );
    for levels_bits in [4u32, 8] {
        let l = LossyOptions {
            family: Family::Midtread,
            step: StepRule::Thesis {
                min: -1.0,
                max: 3.0,
                levels_bits,
            },
            ..LossyOptions::default()
        };
        let (bytes, _) = encode(&m, Some(l));
        let t = decode_tensors(&bytes).remove(0);
        assert_eq!(t.coding, Coding::Quantized);
        let y = load(&t.data, FLOAT);
        let d = 4.0 / (1u64 << levels_bits) as f64;
        let worst = w
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= d,
            "range [-1, 3], 2^{levels_bits} levels (Δ = {d}): max |x − x̂| = {worst}; x = 3 decodes as {}",
            y[4095]
        );
    }
}

/// Bytes of the quantized payload `name` would get (a direct call of the quantizer and the
/// payload coder, the same steps the encoder takes), for checking the raw-size fallback.
fn quantized_payload_len(m: &ModelProto, name: &str, l: LossyOptions) -> u64 {
    let mut model = m.clone();
    let lifted = nnc::onnx::lift::lift(&mut model, None, 64).unwrap();
    let t = lifted.iter().find(|t| t.name == name).unwrap();
    let values = nnc::encoder::float_values(t.data_type, &t.data).unwrap();
    let Some((params, limit)) = l.params_for(&values, &t.dims) else {
        return u64::MAX;
    };
    let levels = nnc::quant::quantize(&values, &params, limit);
    let segment = match t.dims.first() {
        Some(&d) if d >= 2 => (t.elements / d) as usize,
        _ => 0,
    };
    nnc::quant::encode_payload(&levels, &params, nnc::entropy::DEFAULT_CHUNK, segment)
        .map_or(u64::MAX, |p| p.len() as u64)
}

/// Canonical byte size of tensor `name` of `m`.
fn weight_bytes(m: &ModelProto, name: &str) -> u64 {
    let mut model = m.clone();
    let lifted = nnc::onnx::lift::lift(&mut model, None, 64).unwrap();
    lifted
        .iter()
        .find(|t| t.name == name)
        .map_or(0, |t| t.data.len() as u64)
}
