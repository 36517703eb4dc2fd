//! Which known distribution the weights follow (thesis §3.3–3.4, Tables 3.2 and 3.3): fit each
//! candidate of §2.6.1 to all the weights, then rank the candidates by the SSE (eq. 2.9)
//! between the histogram density and the fitted density, and by the Kullback–Leibler
//! divergence D_KL(P‖Q) (eq. 2.41) of the fitted bin probabilities Q from the histogram's P.
//!
//! How each candidate is fitted (also printed by `nnc analyze`):
//!
//! | candidate | density | fit |
//! |---|---|---|
//! | Gaussian (2.32) | N(μ, σ²) | MLE: μ = mean, σ = population standard deviation |
//! | uniform (2.33) | U[A, B] | MLE: A = min, B = max |
//! | Cauchy (2.34) | location x₀, scale γ | MLE (Nelder–Mead, from median and half the IQR) |
//! | exponential (2.35) | λe^(−λ(x−μ)), x ≥ μ: shifted, one-sided, on x itself | MLE: μ = min, λ = 1/(mean − min) |
//! | gamma (2.36) | on \|x\|: ½·Gamma(k, θ)(\|x\|), mirrored about 0 (scipy's `dgamma`) | MLE on the non-zero \|x\| (Newton on k, θ = mean/k) |
//! | Laplace (2.38) | (1/2b)e^(−\|x−μ\|/b) | MLE: μ = median, b = mean \|x − μ\| |
//! | alpha-stable | symmetric Lévy α-stable S(α, 0, γ, δ) | McCulloch's quantile method (see [`super::stable`]) |
//! | alpha (2.39) | scipy's `alpha`: φ(a − 1/y)/(y²Φ(a)·s), y = (x − loc)/s > 0 | MLE (Nelder–Mead over a, loc, s) |
//! | logistic (2.40) | e^(−z)/(s(1+e^(−z))²), z = (x − μ)/s | MLE (Nelder–Mead, from the moments μ = mean, s = σ√3/π) |
//!
//! The thesis's "alfa" (eq. 2.39) is the *alpha distribution* of scipy.stats, not the Lévy
//! α-stable law; both are fitted and reported ("alpha" and "alpha-stable"). The Nelder–Mead
//! fits use a deterministic subsample (every k-th value, at most 65,536, plus the extremes);
//! closed-form fits use every value.
//!
//! Comparison (our choices where the thesis gives none): the fitted density of a bin is its
//! probability mass (CDF difference) divided by the bin width, so it stays finite where a pdf
//! is singular (gamma with k < 1 at 0); the histogram density is count/(all values · width).
//! For D_KL both P and Q are renormalized over the histogram window, Q is floored at 1e-12 per
//! bin (so a candidate with no support where there are weights gets a large but finite value),
//! and the logarithm is natural (nats).
use super::histogram::Histogram;
use super::optimize::nelder_mead;
use super::special::{digamma, gamma_p, ln_gamma, norm_cdf, norm_pdf, trigamma};
use super::stable::{mcculloch, StableFit, StandardStable};
use std::f64::consts::PI;

/// The candidate distributions of thesis §2.6.1 (the α-stable law added, see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    Gaussian,
    Uniform,
    Cauchy,
    Exponential,
    Gamma,
    Laplace,
    AlphaStable,
    Alpha,
    Logistic,
}

impl Candidate {
    pub const ALL: [Candidate; 9] = [
        Candidate::Gaussian,
        Candidate::Uniform,
        Candidate::Cauchy,
        Candidate::Exponential,
        Candidate::Gamma,
        Candidate::Laplace,
        Candidate::AlphaStable,
        Candidate::Alpha,
        Candidate::Logistic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Candidate::Gaussian => "gaussian",
            Candidate::Uniform => "uniform",
            Candidate::Cauchy => "cauchy",
            Candidate::Exponential => "exponential",
            Candidate::Gamma => "gamma",
            Candidate::Laplace => "laplace",
            Candidate::AlphaStable => "alpha-stable",
            Candidate::Alpha => "alpha",
            Candidate::Logistic => "logistic",
        }
    }

    /// How the candidate is fitted, in words.
    pub fn method(self) -> &'static str {
        match self {
            Candidate::Gaussian => "MLE (= moments): mean, population std",
            Candidate::Uniform => "MLE: [min, max]",
            Candidate::Cauchy => "MLE, Nelder-Mead on a subsample",
            Candidate::Exponential => "MLE, shifted one-sided on x: loc = min",
            Candidate::Gamma => "MLE on non-zero |x|, mirrored about 0",
            Candidate::Laplace => "MLE: median, mean |x - median|",
            Candidate::AlphaStable => "McCulloch quantiles, symmetric (beta = 0)",
            Candidate::Alpha => "MLE, Nelder-Mead on a subsample (eq. 2.39)",
            Candidate::Logistic => "MLE, Nelder-Mead on a subsample",
        }
    }
}

/// A fitted density.
#[derive(Debug, Clone)]
pub enum Density {
    Gaussian {
        mu: f64,
        sigma: f64,
    },
    Uniform {
        a: f64,
        b: f64,
    },
    Cauchy {
        x0: f64,
        gamma: f64,
    },
    Exponential {
        loc: f64,
        lambda: f64,
    },
    /// ½·Gamma(shape, scale) of |x|.
    Gamma {
        shape: f64,
        scale: f64,
    },
    Laplace {
        mu: f64,
        b: f64,
    },
    Stable {
        fit: StableFit,
        law: StandardStable,
    },
    Alpha {
        a: f64,
        loc: f64,
        scale: f64,
    },
    Logistic {
        mu: f64,
        s: f64,
    },
}

impl Density {
    pub fn cdf(&self, x: f64) -> f64 {
        match self {
            Density::Gaussian { mu, sigma } => norm_cdf((x - mu) / sigma),
            Density::Uniform { a, b } => ((x - a) / (b - a)).clamp(0.0, 1.0),
            Density::Cauchy { x0, gamma } => 0.5 + ((x - x0) / gamma).atan() / PI,
            Density::Exponential { loc, lambda } => {
                if x <= *loc {
                    0.0
                } else {
                    -(-lambda * (x - loc)).exp_m1()
                }
            }
            Density::Gamma { shape, scale } => {
                0.5 + 0.5 * x.signum() * gamma_p(*shape, x.abs() / scale)
            }
            Density::Laplace { mu, b } => {
                let z = (x - mu) / b;
                if z < 0.0 {
                    0.5 * z.exp()
                } else {
                    1.0 - 0.5 * (-z).exp()
                }
            }
            Density::Stable { fit, law } => law.cdf((x - fit.delta) / fit.gamma),
            Density::Alpha { a, loc, scale } => {
                let y = (x - loc) / scale;
                if y <= 0.0 {
                    0.0
                } else {
                    norm_cdf(a - 1.0 / y) / norm_cdf(*a)
                }
            }
            Density::Logistic { mu, s } => 1.0 / (1.0 + (-(x - mu) / s).exp()),
        }
    }

    pub fn pdf(&self, x: f64) -> f64 {
        match self {
            Density::Gaussian { mu, sigma } => norm_pdf((x - mu) / sigma) / sigma,
            Density::Uniform { a, b } => {
                if x >= *a && x <= *b {
                    1.0 / (b - a)
                } else {
                    0.0
                }
            }
            Density::Cauchy { x0, gamma } => {
                let z = (x - x0) / gamma;
                1.0 / (PI * gamma * (1.0 + z * z))
            }
            Density::Exponential { loc, lambda } => {
                if x < *loc {
                    0.0
                } else {
                    lambda * (-lambda * (x - loc)).exp()
                }
            }
            Density::Gamma { shape, scale } => {
                let y = x.abs() / scale;
                if y == 0.0 {
                    return if *shape < 1.0 {
                        f64::INFINITY
                    } else if *shape == 1.0 {
                        0.5 / scale
                    } else {
                        0.0
                    };
                }
                0.5 * ((shape - 1.0) * y.ln() - y - ln_gamma(*shape)).exp() / scale
            }
            Density::Laplace { mu, b } => (-(x - mu).abs() / b).exp() / (2.0 * b),
            Density::Stable { fit, law } => law.pdf((x - fit.delta) / fit.gamma) / fit.gamma,
            Density::Alpha { a, loc, scale } => {
                let y = (x - loc) / scale;
                if y <= 0.0 {
                    0.0
                } else {
                    norm_pdf(a - 1.0 / y) / (y * y * norm_cdf(*a) * scale)
                }
            }
            Density::Logistic { mu, s } => {
                let e = (-((x - mu) / s).abs()).exp();
                e / (s * (1.0 + e) * (1.0 + e))
            }
        }
    }

    /// The fitted parameters, named as in the thesis's equations.
    pub fn params(&self) -> Vec<(&'static str, f64)> {
        match self {
            Density::Gaussian { mu, sigma } => vec![("mu", *mu), ("sigma", *sigma)],
            Density::Uniform { a, b } => vec![("A", *a), ("B", *b)],
            Density::Cauchy { x0, gamma } => vec![("mu", *x0), ("alpha", *gamma)],
            Density::Exponential { loc, lambda } => vec![("mu", *loc), ("lambda", *lambda)],
            Density::Gamma { shape, scale } => vec![("alpha", *shape), ("beta", *scale)],
            Density::Laplace { mu, b } => vec![("mu", *mu), ("b", *b)],
            Density::Stable { fit, .. } => vec![
                ("alpha", fit.alpha),
                ("beta", 0.0),
                ("gamma", fit.gamma),
                ("delta", fit.delta),
            ],
            Density::Alpha { a, loc, scale } => {
                vec![("a", *a), ("loc", *loc), ("scale", *scale)]
            }
            Density::Logistic { mu, s } => vec![("mu", *mu), ("s", *s)],
        }
    }
}

/// One candidate fitted to the weights and compared with their histogram.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub candidate: Candidate,
    pub density: Density,
    /// Σ over bins of (histogram density − fitted density)² (eq. 2.9).
    pub sse: f64,
    /// D_KL(histogram ‖ fit) in nats (eq. 2.41).
    pub kl: f64,
}

/// All candidates fitted and ranked.
#[derive(Debug, Clone)]
pub struct DistributionFit {
    pub histogram: Histogram,
    /// In [`Candidate::ALL`] order; candidates that cannot be fitted (e.g. constant data)
    /// are missing.
    pub fits: Vec<Fitted>,
    /// Indices into `fits`, best (smallest SSE) first.
    pub by_sse: Vec<usize>,
    /// Indices into `fits`, best (smallest D_KL) first.
    pub by_kl: Vec<usize>,
}

/// Sample quantile (linear interpolation) of sorted data.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = p * (sorted.len() - 1) as f64;
    let i = h.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    sorted[i] + (h - i as f64) * (sorted[j] - sorted[i])
}

const SUBSAMPLE: usize = 65_536;

/// Every k-th value (at most `SUBSAMPLE`), plus the minimum and the maximum.
fn subsample(values: &[f64], min: f64, max: f64) -> Vec<f64> {
    let k = values.len().div_ceil(SUBSAMPLE).max(1);
    let mut s: Vec<f64> = values.iter().step_by(k).copied().collect();
    s.push(min);
    s.push(max);
    s
}

/// Fits `candidate` to `values` (finite; `sorted` the same values sorted). `window` is the
/// range the density will be evaluated on (for the stable law's quadrature).
pub fn fit(
    candidate: Candidate,
    values: &[f64],
    sorted: &[f64],
    window: (f64, f64),
) -> Option<Density> {
    let n = values.len() as f64;
    if values.len() < 2 {
        return None;
    }
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    if max <= min {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    let median = quantile(sorted, 0.5);
    let finite = |d: &Density| d.params().iter().all(|(_, v)| v.is_finite());
    let d = match candidate {
        Candidate::Gaussian => Density::Gaussian {
            mu: mean,
            sigma: std,
        },
        Candidate::Uniform => Density::Uniform { a: min, b: max },
        Candidate::Exponential => Density::Exponential {
            loc: min,
            lambda: 1.0 / (mean - min),
        },
        Candidate::Laplace => {
            let b = values.iter().map(|v| (v - median).abs()).sum::<f64>() / n;
            if b.is_nan() || b <= 0.0 {
                return None;
            }
            Density::Laplace { mu: median, b }
        }
        Candidate::Gamma => {
            let (mut k_n, mut s1, mut sl) = (0.0f64, 0.0f64, 0.0f64);
            for v in values.iter().map(|v| v.abs()).filter(|&v| v > 0.0) {
                k_n += 1.0;
                s1 += v;
                sl += v.ln();
            }
            if k_n < 2.0 {
                return None;
            }
            let m = s1 / k_n;
            let s = m.ln() - sl / k_n;
            if s.is_nan() || s <= 0.0 {
                return None;
            }
            // Minka's start, then Newton on ln k − ψ(k) = s.
            let mut k = (3.0 - s + ((s - 3.0) * (s - 3.0) + 24.0 * s).sqrt()) / (12.0 * s);
            for _ in 0..50 {
                let f = k.ln() - digamma(k) - s;
                let step = f / (1.0 / k - trigamma(k));
                let next = (k - step).max(k / 10.0);
                if (next - k).abs() < 1e-12 * k {
                    k = next;
                    break;
                }
                k = next;
            }
            Density::Gamma {
                shape: k,
                scale: m / k,
            }
        }
        Candidate::Cauchy => {
            let sample = subsample(values, min, max);
            let iqr = quantile(sorted, 0.75) - quantile(sorted, 0.25);
            let g0 = (iqr / 2.0).max(std * 1e-3).max(f64::MIN_POSITIVE);
            let nll = |p: &[f64]| {
                let g = p[1].exp();
                sample
                    .iter()
                    .map(|x| {
                        let z = (x - p[0]) / g;
                        (1.0 + z * z).ln()
                    })
                    .sum::<f64>()
                    / sample.len() as f64
                    + p[1]
            };
            let p = nelder_mead(nll, &[median, g0.ln()], &[g0, 0.5], 400, 1e-12);
            Density::Cauchy {
                x0: p[0],
                gamma: p[1].exp(),
            }
        }
        Candidate::Logistic => {
            let sample = subsample(values, min, max);
            let s0 = (std * 3f64.sqrt() / PI).max(f64::MIN_POSITIVE);
            let nll = |p: &[f64]| {
                let s = p[1].exp();
                sample
                    .iter()
                    .map(|x| {
                        let z = ((x - p[0]) / s).abs();
                        z + 2.0 * (-z).exp().ln_1p()
                    })
                    .sum::<f64>()
                    / sample.len() as f64
                    + p[1]
            };
            let p = nelder_mead(nll, &[mean, s0.ln()], &[s0, 0.3], 400, 1e-12);
            Density::Logistic {
                mu: p[0],
                s: p[1].exp(),
            }
        }
        Candidate::AlphaStable => {
            let q = |p| quantile(sorted, p);
            let f = mcculloch(q(0.05), q(0.25), q(0.5), q(0.75), q(0.95))?;
            let zmax = (window.0 - f.delta).abs().max((window.1 - f.delta).abs()) / f.gamma;
            Density::Stable {
                fit: f,
                law: StandardStable::new(f.alpha, zmax),
            }
        }
        Candidate::Alpha => fit_alpha(values, min, max, mean, std)?,
    };
    finite(&d).then_some(d)
}

/// MLE of scipy's alpha(a, loc, scale) (thesis eq. 2.39 with location and scale), over
/// (ln a, ln(min − loc), ln scale) so that every sample stays in the support y > 0.
fn fit_alpha(values: &[f64], min: f64, max: f64, mean: f64, std: f64) -> Option<Density> {
    if std.is_nan() || std <= 0.0 {
        return None;
    }
    let sample = subsample(values, min, max);
    // For large a, 1/y ≈ N(a, 1): a bell at loc + scale/a with width scale/a². Start there,
    // with loc below the smallest value.
    let a0 = ((mean - min) / std + 0.5).max(4.0);
    let scale0 = std * a0 * a0;
    let gap0 = (min - (mean - std * a0)).max(0.1 * std);
    let unpack = |p: &[f64]| (p[0].exp(), min - p[1].exp(), p[2].exp());
    let nll = |p: &[f64]| {
        let (a, loc, scale) = unpack(p);
        let norm = norm_cdf(a).ln() + scale.ln();
        let mut s = 0.0;
        for x in &sample {
            let y = (x - loc) / scale;
            if y <= 0.0 {
                return f64::INFINITY;
            }
            let t = a - 1.0 / y;
            s += 2.0 * y.ln() + 0.5 * t * t;
        }
        s / sample.len() as f64 + norm
    };
    let p = nelder_mead(
        nll,
        &[a0.ln(), gap0.ln(), scale0.ln()],
        &[0.5, 0.5, 0.5],
        900,
        1e-12,
    );
    let (a, loc, scale) = unpack(&p);
    Some(Density::Alpha { a, loc, scale })
}

/// SSE (eq. 2.9) between the histogram density and the fitted bin-averaged density, and
/// D_KL(P‖Q) (eq. 2.41) of the bin probabilities (see the module doc).
pub fn compare(h: &Histogram, d: &Density) -> (f64, f64) {
    let w = h.width();
    let mut mass = Vec::with_capacity(h.bins());
    let mut prev = d.cdf(h.edge(0));
    for i in 0..h.bins() {
        let next = d.cdf(h.edge(i + 1));
        mass.push((next - prev).max(0.0));
        prev = next;
    }
    let sse = mass
        .iter()
        .enumerate()
        .map(|(i, m)| (h.density(i) - m / w).powi(2))
        .sum();
    let floored: Vec<f64> = mass.iter().map(|m| m.max(1e-12)).collect();
    let qsum: f64 = floored.iter().sum();
    let inside = h.inside().max(1) as f64;
    let kl = h
        .counts
        .iter()
        .zip(&floored)
        .filter(|(c, _)| **c > 0)
        .map(|(&c, q)| {
            let p = c as f64 / inside;
            p * (p / (q / qsum)).ln()
        })
        .sum();
    (sse, kl)
}

/// Bins of a histogram of `sorted` values over a window of width `span` by the
/// Freedman–Diaconis rule (bin width 2·IQR·n^(−1/3)), clamped to 50..=5000.
pub fn auto_bins(sorted: &[f64], span: f64) -> usize {
    let iqr = quantile(sorted, 0.75) - quantile(sorted, 0.25);
    let width = 2.0 * iqr / (sorted.len().max(1) as f64).cbrt();
    if width.is_nan() || width <= 0.0 || span.is_nan() || span <= 0.0 {
        return 50;
    }
    ((span / width).ceil() as usize).clamp(50, 5000)
}

/// Fits every candidate to `values` (non-finite values are ignored) and ranks them against
/// a histogram of `bins` bins (default [`auto_bins`]) over mean ± `sigmas`·σ.
pub fn fit_all(values: &[f64], bins: Option<usize>, sigmas: f64) -> DistributionFit {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let mut sorted = finite.clone();
    sorted.sort_unstable_by(f64::total_cmp);
    let (lo, hi) = Histogram::window(&finite, sigmas);
    let bins = bins.unwrap_or_else(|| auto_bins(&sorted, hi - lo));
    let histogram = Histogram::new(&finite, bins, lo, hi);
    let window = (histogram.lo, histogram.hi);
    let fits: Vec<Fitted> = std::thread::scope(|s| {
        let handles: Vec<_> = Candidate::ALL
            .iter()
            .map(|&c| {
                let (finite, sorted, histogram) = (&finite, &sorted, &histogram);
                s.spawn(move || {
                    fit(c, finite, sorted, window).map(|density| {
                        let (sse, kl) = compare(histogram, &density);
                        Fitted {
                            candidate: c,
                            density,
                            sse,
                            kl,
                        }
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    let rank = |key: fn(&Fitted) -> f64| {
        let mut idx: Vec<usize> = (0..fits.len()).collect();
        idx.sort_by(|&a, &b| key(&fits[a]).total_cmp(&key(&fits[b])));
        idx
    };
    let by_sse = rank(|f| f.sse);
    let by_kl = rank(|f| f.kl);
    DistributionFit {
        histogram,
        fits,
        by_sse,
        by_kl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic Laplace(0.02, 0.05) sample by the inverse CDF on a stratified grid (off
    /// zero, so that the gamma candidate, mirrored about 0, cannot mimic it).
    fn laplace_sample(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let u = (i as f64 + 0.5) / n as f64 - 0.5;
                0.02 - 0.05 * u.signum() * (1.0 - 2.0 * u.abs()).ln()
            })
            .collect()
    }

    #[test]
    fn laplace_data_ranks_laplace_first() {
        let v = laplace_sample(100_000);
        let f = fit_all(&v, Some(200), 6.0);
        assert_eq!(f.fits.len(), 9);
        let best = f.fits[f.by_kl[0]].candidate;
        assert_eq!(best, Candidate::Laplace, "{:?}", f.by_kl);
        assert_eq!(f.fits[f.by_sse[0]].candidate, Candidate::Laplace);
        let lap = f
            .fits
            .iter()
            .find(|x| x.candidate == Candidate::Laplace)
            .unwrap();
        match lap.density {
            Density::Laplace { mu, b } => {
                assert!(
                    (mu - 0.02).abs() < 1e-6 && (b - 0.05).abs() < 1e-3,
                    "{mu} {b}"
                )
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn gaussian_data_ranks_gaussian_or_stable_first() {
        // Stratified N(0.1, 0.2²) via bisection on Φ.
        let n = 20_000;
        let v: Vec<f64> = (0..n)
            .map(|i| {
                let p = (i as f64 + 0.5) / n as f64;
                let (mut lo, mut hi) = (-10.0, 10.0);
                for _ in 0..60 {
                    let m = 0.5 * (lo + hi);
                    if norm_cdf(m) < p {
                        lo = m
                    } else {
                        hi = m
                    }
                }
                0.1 + 0.2 * lo
            })
            .collect();
        let f = fit_all(&v, None, 6.0);
        let top = f.fits[f.by_kl[0]].candidate;
        // α-stable with α = 2 is the Gaussian.
        assert!(
            matches!(top, Candidate::Gaussian | Candidate::AlphaStable),
            "{top:?}"
        );
        let g = f
            .fits
            .iter()
            .find(|x| x.candidate == Candidate::Gaussian)
            .unwrap();
        assert!(g.kl < 1e-3, "{}", g.kl);
    }

    #[test]
    fn densities_integrate_to_their_cdf() {
        let v = laplace_sample(20_000);
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        for c in Candidate::ALL {
            let d = fit(c, &v, &sorted, (-0.3, 0.3)).expect("fits");
            // Midpoint rule of the pdf over [−0.2, −0.1] against the CDF difference.
            let (a, b, n) = (-0.2, -0.1, 2000);
            let h = (b - a) / n as f64;
            let integral: f64 = (0..n).map(|i| d.pdf(a + (i as f64 + 0.5) * h) * h).sum();
            let diff = d.cdf(b) - d.cdf(a);
            assert!(
                (integral - diff).abs() < 1e-4 * diff.max(1e-3),
                "{c:?}: {integral} vs {diff}"
            );
        }
    }
}
