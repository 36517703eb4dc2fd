//! The symmetric Lévy α-stable law, for the thesis's "alpha" candidate (Tables 3.2/3.3).
//!
//! Stable laws have no closed-form density. Here the standard symmetric law S(α, 0, 1), with
//! characteristic function φ(t) = exp(−|t|^α), is evaluated by numerical Fourier inversion
//! (Gil-Pelaez):
//!
//! `G(z) = 1/2 + (1/π) ∫₀^∞ sin(uz) e^(−u^α) / u du`,  `g(z) = (1/π) ∫₀^∞ cos(uz) e^(−u^α) du`,
//!
//! with composite Simpson's rule on [0, U], U = 40^(1/α) (the integrand is below e^−40 past
//! it), and enough nodes to resolve the oscillation up to the largest |z| asked for.
//!
//! Fitting is McCulloch's (1986) quantile method, simplified to the symmetric case (β = 0,
//! skewness is not fitted): α solves ν(α) = (x₀.₉₅ − x₀.₀₅)/(x₀.₇₅ − x₀.₂₅) of the sample, with
//! ν(α) computed from the numerical quantiles above rather than interpolated from McCulloch's
//! printed tables; α is clamped to [0.5, 2] as in his tables (ν below 2.439, the Gaussian's
//! value, gives α = 2). The scale is γ = (x₀.₇₅ − x₀.₂₅)/(z₀.₇₅ − z₀.₂₅) and the location the
//! sample median.
use std::f64::consts::PI;

use super::special::{ln_gamma, norm_cdf, norm_pdf};

/// Smallest and largest α of the fit (McCulloch's table range).
pub const ALPHA_MIN: f64 = 0.5;
pub const ALPHA_MAX: f64 = 2.0;

/// Standard symmetric α-stable S(α, 0, 1), with quadrature set up for |z| ≤ `zmax`.
#[derive(Debug, Clone)]
pub struct StandardStable {
    pub alpha: f64,
    zmax: f64,
    h: f64,
    /// Simpson weight × e^(−u^α) / u (index 0: the weight alone, sin(uz)/u → z).
    w_cdf: Vec<f64>,
    /// Simpson weight × e^(−u^α).
    w_pdf: Vec<f64>,
}

impl StandardStable {
    pub fn new(alpha: f64, zmax: f64) -> StandardStable {
        let alpha = alpha.clamp(ALPHA_MIN, ALPHA_MAX);
        let zmax = zmax.abs().max(1.0);
        let upper = 40f64.powf(1.0 / alpha);
        // ≥ 24 nodes per period of sin(u·zmax), ≥ 4096 nodes in all; even count.
        let n = ((upper * zmax * 24.0 / (2.0 * PI)).ceil() as usize)
            .clamp(4096, 4_000_000)
            .next_multiple_of(2);
        let h = upper / n as f64;
        let mut w_cdf = Vec::with_capacity(n + 1);
        let mut w_pdf = Vec::with_capacity(n + 1);
        for j in 0..=n {
            let simpson = if j == 0 || j == n {
                1.0
            } else if j % 2 == 1 {
                4.0
            } else {
                2.0
            } * h
                / 3.0;
            let u = j as f64 * h;
            let e = (-u.powf(alpha)).exp();
            w_pdf.push(simpson * e);
            w_cdf.push(if j == 0 { simpson } else { simpson * e / u });
        }
        StandardStable {
            alpha,
            zmax,
            h,
            w_cdf,
            w_pdf,
        }
    }

    /// Σ_j w_j·f(u_j z) for f = sin (with the j = 0 term taken as z) or cos, by rotation
    /// (re-synchronized every 4096 steps).
    fn sum(&self, z: f64, sine: bool) -> f64 {
        let w = if sine { &self.w_cdf } else { &self.w_pdf };
        let (sd, cd) = (self.h * z).sin_cos();
        let mut acc = 0.0;
        let (mut s, mut c) = (0.0f64, 1.0f64);
        for (j, wj) in w.iter().enumerate() {
            if j % 4096 == 0 && j > 0 {
                (s, c) = (j as f64 * self.h * z).sin_cos();
            }
            acc += wj
                * if sine {
                    if j == 0 {
                        z
                    } else {
                        s
                    }
                } else {
                    c
                };
            (s, c) = (s * cd + c * sd, c * cd - s * sd);
        }
        acc
    }

    /// Tail constant C_α: P(Z > z) ≈ C_α z^(−α) for large z (α < 2).
    fn tail_constant(&self) -> f64 {
        (ln_gamma(self.alpha)).exp() * (PI * self.alpha / 2.0).sin() / PI
    }

    pub fn cdf(&self, z: f64) -> f64 {
        if z.abs() > self.zmax {
            // Outside the resolved range: the Gaussian (α = 2, variance 2) or the Pareto tail.
            if self.alpha >= ALPHA_MAX - 1e-9 {
                return norm_cdf(z / std::f64::consts::SQRT_2);
            }
            let t = (self.tail_constant() * z.abs().powf(-self.alpha)).min(0.5);
            return if z > 0.0 { 1.0 - t } else { t };
        }
        (0.5 + self.sum(z, true) / PI).clamp(0.0, 1.0)
    }

    pub fn pdf(&self, z: f64) -> f64 {
        if z.abs() > self.zmax {
            if self.alpha >= ALPHA_MAX - 1e-9 {
                return norm_pdf(z / std::f64::consts::SQRT_2) / std::f64::consts::SQRT_2;
            }
            return self.alpha * self.tail_constant() * z.abs().powf(-self.alpha - 1.0);
        }
        (self.sum(z, false) / PI).max(0.0)
    }

    /// The p-quantile for p in (0.5, 1) (safeguarded Newton; symmetric law).
    pub fn quantile(&self, p: f64) -> f64 {
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        while self.cdf(hi) < p && hi < 1e12 {
            lo = hi;
            hi *= 2.0;
        }
        let mut z = 0.5 * (lo + hi);
        for _ in 0..100 {
            let f = self.cdf(z) - p;
            if f.abs() < 1e-12 {
                break;
            }
            if f > 0.0 {
                hi = z;
            } else {
                lo = z;
            }
            let d = self.pdf(z);
            let newton = z - f / d;
            z = if d > 0.0 && newton > lo && newton < hi {
                newton
            } else {
                0.5 * (lo + hi)
            };
            if hi - lo < 1e-12 * hi.max(1.0) {
                break;
            }
        }
        z
    }
}

/// McCulloch's ν_α = (z₀.₉₅ − z₀.₀₅)/(z₀.₇₅ − z₀.₂₅) of S(α, 0, 1), and z₀.₇₅ − z₀.₂₅.
fn nu_alpha(alpha: f64) -> (f64, f64) {
    // A z-range that holds q(0.95) for every α ≥ 0.5 (the Pareto tail bounds it).
    let probe = StandardStable::new(alpha, 1.0);
    let zmax = if alpha >= ALPHA_MAX - 1e-9 {
        4.0
    } else {
        (probe.tail_constant() / 0.05).powf(1.0 / alpha).max(4.0) * 1.5
    };
    let s = StandardStable::new(alpha, zmax);
    let (q75, q95) = (s.quantile(0.75), s.quantile(0.95));
    (q95 / q75, 2.0 * q75)
}

/// A fitted symmetric α-stable law: X = δ + γ·Z, Z ~ S(α, 0, 1).
#[derive(Debug, Clone, Copy)]
pub struct StableFit {
    pub alpha: f64,
    pub gamma: f64,
    pub delta: f64,
}

/// McCulloch's quantile fit from the sample quantiles x₀.₀₅, x₀.₂₅, x₀.₅₀, x₀.₇₅, x₀.₉₅.
pub fn mcculloch(q05: f64, q25: f64, q50: f64, q75: f64, q95: f64) -> Option<StableFit> {
    let iqr = q75 - q25;
    if iqr.is_nan() || iqr <= 0.0 {
        return None;
    }
    let nu = (q95 - q05) / iqr;
    let alpha = if nu <= nu_alpha(ALPHA_MAX).0 {
        ALPHA_MAX
    } else if nu >= nu_alpha(ALPHA_MIN).0 {
        ALPHA_MIN
    } else {
        // ν(α) decreases with α: bisection.
        let (mut lo, mut hi) = (ALPHA_MIN, ALPHA_MAX);
        for _ in 0..22 {
            let mid = 0.5 * (lo + hi);
            if nu_alpha(mid).0 > nu {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let (_, z_iqr) = nu_alpha(alpha);
    Some(StableFit {
        alpha,
        gamma: iqr / z_iqr,
        delta: q50,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cauchy_and_gauss_limits() {
        // α = 1 is the Cauchy law: G(z) = 1/2 + atan(z)/π.
        let s = StandardStable::new(1.0, 20.0);
        for z in [-10.0, -1.0, 0.0, 0.3, 2.0, 15.0] {
            let want = 0.5 + f64::atan(z) / PI;
            assert!(
                (s.cdf(z) - want).abs() < 1e-6,
                "z {z}: {} vs {want}",
                s.cdf(z)
            );
            let dens = 1.0 / (PI * (1.0 + z * z));
            assert!((s.pdf(z) - dens).abs() < 1e-6);
        }
        assert!((s.quantile(0.75) - 1.0).abs() < 1e-6);
        // α = 2 is N(0, 2).
        let g = StandardStable::new(2.0, 8.0);
        let want = norm_cdf(1.3 / std::f64::consts::SQRT_2);
        assert!((g.cdf(1.3) - want).abs() < 1e-9);
        let (nu, _) = nu_alpha(2.0);
        assert!((nu - 2.438_737).abs() < 1e-4, "{nu}");
        assert!((nu_alpha(1.0).0 - (0.45 * PI).tan()).abs() < 1e-4);
    }

    #[test]
    fn mcculloch_recovers_cauchy() {
        // Exact Cauchy(δ = 0.2, γ = 0.5) quantiles give α = 1, γ = 0.5, δ = 0.2.
        let q = |p: f64| 0.2 + 0.5 * (PI * (p - 0.5)).tan();
        let f = mcculloch(q(0.05), q(0.25), q(0.5), q(0.75), q(0.95)).unwrap();
        assert!((f.alpha - 1.0).abs() < 1e-3, "{f:?}");
        assert!((f.gamma - 0.5).abs() < 1e-3 && (f.delta - 0.2).abs() < 1e-12);
    }
}
