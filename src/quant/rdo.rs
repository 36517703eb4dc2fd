//! Rate–distortion optimized level choice (encoder only; the bitstream and the decoder are
//! unchanged). For each weight the encoder may move a level one step toward zero when that
//! lowers `(x − x̂)² + λ·bits(q)`, with `bits(q) = −log2 p(q)` from the tensor's own level
//! histogram and `λ = factor·Δ²`. At high rate an entropy-coded uniform quantizer has
//! `dD/dR = −2·ln2·D` with `D ≈ Δ²/12`, i.e. `λ ≈ 0.1155·Δ²`; `factor` is that constant.
use std::collections::HashMap;

use super::{reconstruct, zigzag, Kind, QuantParams};

/// Refines `levels` in place (two passes, each re-estimating the level costs).
pub fn refine(values: &[f64], levels: &mut [i64], params: &QuantParams, factor: f64) {
    if factor <= 0.0
        || matches!(params.kind, Kind::MuLaw { .. } | Kind::Minifloat { .. })
        || levels.is_empty()
    {
        return;
    }
    let per = (values.len() / params.steps.len().max(1)).max(1);
    for _ in 0..2 {
        let mut counts: HashMap<i64, u64> = HashMap::new();
        for &q in levels.iter() {
            *counts.entry(q).or_default() += 1;
        }
        let n = levels.len() as f64;
        // Unseen levels cost as much as the rarest seen one, plus one bit.
        let rare = counts.values().copied().min().unwrap_or(1) as f64;
        let bits = |q: i64| match counts.get(&q) {
            Some(&c) => -(c as f64 / n).log2(),
            None => -(rare / n).log2() + 1.0,
        };
        for (i, (q, &x)) in levels.iter_mut().zip(values).enumerate() {
            if *q == 0 {
                continue;
            }
            let step = params.steps.get(i / per).copied().unwrap_or(1.0);
            let lambda = factor * (step as f64) * (step as f64);
            let toward = *q - q.signum();
            let cost = |k: i64| {
                let e = x - reconstruct(&params.kind, k, step);
                e * e + lambda * bits(k)
            };
            if cost(toward) < cost(*q) {
                *q = toward;
            }
        }
    }
    let _ = zigzag;
}
