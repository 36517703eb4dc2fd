//! μ-law companding (Tonin 2021, §2.5.3, eq. 2.27, 2.28; the printed equations are garbled,
//! this is the standard pair they intend): compress `y = Xmax·ln(1 + μ|x|/Xmax)/ln(1 + μ)·s(x)`,
//! quantize y with a midtread step Δ, expand `|x̂| = (Xmax/μ)·((1 + μ)^(|ŷ|/Xmax) − 1)`.
//! Because `ln` and `pow` are not correctly rounded everywhere, the decoder does not evaluate
//! the expansion: the encoder ships the reconstruction of every level magnitude (spec §7.6.4).

/// Level of `x` (clamped to ±Xmax first).
pub fn quantize(x: f64, step: f64, xmax: f64, mu: f64) -> f64 {
    let a = x.abs().min(xmax);
    let y = xmax * (mu * a / xmax).ln_1p() / mu.ln_1p();
    let q = (y / step).round();
    if x < 0.0 {
        -q
    } else {
        q
    }
}

/// Reconstructed magnitude of level magnitude `k` (encoder side; stored in the table).
pub fn expand(k: u64, step: f64, xmax: f64, mu: f64) -> f64 {
    let y = k as f64 * step;
    (xmax / mu) * ((1.0 + mu).powf(y / xmax) - 1.0)
}
