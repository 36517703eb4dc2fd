//! Uniform scalar quantizers of the thesis (Tonin 2021, §2.5.1–2.5.2): midtread (eq. 2.21,
//! 2.22), midrise (eq. 2.23, 2.24) and the dead-zone quantizer with relative size δ (eq. 2.25,
//! 2.26). δ = 0.5 is midtread, δ = 0 is midrise. Reconstruction is spec §7.6.3.

/// s(x) of the thesis: +1 for x >= 0, −1 otherwise.
#[inline]
fn sign(x: f64) -> f64 {
    if x < 0.0 {
        -1.0
    } else {
        1.0
    }
}

/// Rounds half away from zero (the spec's rounding for midtread and μ-law levels). Same
/// result as `f64::round` for every input, without the library call for |v| < 2^52.
#[inline]
pub fn round_half_away(v: f64) -> f64 {
    if v.abs() < (1u64 << 52) as f64 {
        let t = v as i64 as f64; // exact truncation toward zero
        let f = v - t; // exact
        if f >= 0.5 {
            t + 1.0
        } else if f <= -0.5 {
            t - 1.0
        } else {
            t
        }
    } else {
        v.round()
    }
}

/// `f64::ceil` without the library call for |v| < 2^52 (same result everywhere).
#[inline]
fn ceil(v: f64) -> f64 {
    if v.abs() < (1u64 << 52) as f64 {
        let t = v as i64 as f64;
        if t < v {
            t + 1.0
        } else {
            t
        }
    } else {
        v.ceil()
    }
}

/// Midtread, eq. 2.21: `q = round(x/Δ)`, ties away from zero.
#[inline]
pub fn midtread(x: f64, step: f64) -> f64 {
    round_half_away(x / step)
}

/// Midtread reconstruction, eq. 2.22: `x̂ = Δ·q`.
#[inline]
pub fn midtread_rec(q: i64, step: f64) -> f64 {
    q as f64 * step
}

/// Midrise, eq. 2.23: `q = s(x)·ceil(|x|/Δ)`. (x = 0 gives q = 0, which spec §7.6.3
/// reconstructs as 0.)
#[inline]
pub fn midrise(x: f64, step: f64) -> f64 {
    sign(x) * ceil(x.abs() / step)
}

/// Midrise reconstruction, eq. 2.24: `x̂ = s(q)·Δ·(|q| − 1/2)`, and 0 for q = 0.
#[inline]
pub fn midrise_rec(q: i64, step: f64) -> f64 {
    if q == 0 {
        return 0.0;
    }
    sign(q as f64) * ((q.unsigned_abs() as f64 - 0.5) * step)
}

/// Dead zone, eq. 2.25: `q = 0 if |x| < δΔ, else s(x)·ceil(|x|/Δ − δ)`.
#[inline]
pub fn deadzone(x: f64, step: f64, delta: f64) -> f64 {
    if x.abs() < delta * step {
        0.0
    } else {
        sign(x) * ceil(x.abs() / step - delta)
    }
}

/// Dead-zone reconstruction, eq. 2.26: `x̂ = 0 if q = 0, else s(q)·Δ·(|q| + δ − 1/2)`,
/// evaluated in this order in binary64: `t = δ − 0.5; u = |q| + t; v = u·Δ` (spec §7.6.3).
#[inline]
pub fn deadzone_rec(q: i64, step: f64, delta: f64) -> f64 {
    if q == 0 {
        return 0.0;
    }
    let t = delta - 0.5;
    let u = q.unsigned_abs() as f64 + t;
    sign(q as f64) * (u * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_cases_of_the_dead_zone() {
        for &x in &[
            -3.7f64, -1.5, -0.5, -0.49, 0.0, 0.2, 0.5, 0.51, 1.0, 2.5, 7.25,
        ] {
            // δ = 0.5 is midtread (up to the tie rule at exact half steps).
            let s = 0.5;
            if (x / s).fract().abs() != 0.5 {
                assert_eq!(deadzone(x, s, 0.5), midtread(x, s), "x={x}");
            }
            assert_eq!(deadzone(x, s, 0.0), midrise(x, s), "x={x}");
        }
        for q in -5..=5 {
            assert_eq!(deadzone_rec(q, 0.25, 0.5), midtread_rec(q, 0.25));
            assert_eq!(deadzone_rec(q, 0.25, 0.0), midrise_rec(q, 0.25));
        }
    }
}
