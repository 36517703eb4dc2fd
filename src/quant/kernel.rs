//! Rounding that keeps each convolution kernel's sum (`--kernel-sums`, off by default): the
//! reference encoder's choice of levels, with that option, for the weights of a `Conv` whose
//! kernels have more than one tap (not normative: the decoder reconstructs whatever levels it
//! reads, spec §7.6.7).
//!
//! A kernel (the taps of one output channel over one input channel) meets a constant input,
//! or any input's mean, with its sum: a layer quantized as `W + ΔW` shifts each output
//! channel by `Σ_c E[x_c]·Σ_taps ΔW`, the same for every input, and the layers after it carry
//! the shift on (on YOLOv8n, every class score at once, where one box in 13 came or went).
//! Each value's nearest level leaves a kernel's error sum a random walk over its taps, about
//! `Δ·√(taps/12)`; this moves single levels by one step, those that cost the least squared
//! error, until the sum is within half a step of zero. Whatever the inputs' means, their
//! shift is then that of the rounding of one tap per kernel at most, not of all of them.
use super::{reconstruct, QuantParams, MAX_LEVEL};

/// Kernels of fewer taps keep their nearest levels: a 1×1 kernel's sum is its one weight.
/// (Kernels of 2 and 3 taps keep their sums too, though the half step weighs most on them:
/// leaving out silero-vad's 1-D convolutions of 3 taps gave its 16 kHz sequence export
/// 4–6 dB more on real speech at equal size, but the text recognizer's calibrated encode
/// 29.0 dB instead of 31.0: measured, and not kept.)
pub const MIN_TAPS: usize = 2;

/// Moves levels of `levels` (row-major; `taps` consecutive values per kernel, every kernel
/// within one channel of `params`' steps) by one step where that brings their kernel's sum
/// of errors `Σ (x̂ − x)` closer to zero, cheapest first (least increase of squared error;
/// the lower index on a tie); at most one move per value, none beyond the clamp of
/// `quantize_map` (`±limit`, at most `MAX_LEVEL`). Levels of other kinds than those that
/// keep kernel sums (`Kind::keeps_kernel_sums`) are left as they are.
/// Deterministic: the same values, levels and steps give the same levels.
pub fn keep_kernel_sums(
    levels: &mut [i64],
    value: impl Fn(usize) -> f64,
    params: &QuantParams,
    taps: usize,
    limit: Option<i64>,
) {
    let limit = limit.map_or(MAX_LEVEL, |l| l.min(MAX_LEVEL));
    let n = levels.len();
    let channels = params.steps.len().max(1);
    let per = (n / channels).max(1);
    if !params.kind.keeps_kernel_sums()
        || taps < 2
        || !per.is_multiple_of(taps)
        || !n.is_multiple_of(taps)
    {
        return;
    }
    let mut moved = vec![false; taps];
    let mut err = vec![0.0f64; taps];
    for start in (0..n).step_by(taps) {
        let step = params.steps.get(start / per).copied().unwrap_or(1.0);
        let rec = |q: i64| reconstruct(&params.kind, q, step);
        let group = &mut levels[start..start + taps];
        let mut sum = 0.0;
        for (j, (e, &q)) in err.iter_mut().zip(group.iter()).enumerate() {
            *e = rec(q) - value(start + j);
            sum += *e;
        }
        moved.fill(false);
        loop {
            let dir = if sum > 0.0 { -1 } else { 1 };
            let mut best: Option<(usize, f64, f64)> = None;
            for j in 0..taps {
                let q = group[j] + dir;
                if moved[j] || q.abs() > limit {
                    continue;
                }
                let e = rec(q) - value(start + j);
                let s = sum - err[j] + e;
                if s.abs() >= sum.abs() {
                    continue;
                }
                let cost = e * e - err[j] * err[j];
                if best.is_none_or(|(_, c, _)| cost < c) {
                    best = Some((j, cost, s));
                }
            }
            let Some((j, _, s)) = best else {
                break;
            };
            group[j] += dir;
            err[j] = rec(group[j]) - value(start + j);
            moved[j] = true;
            sum = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Kind;

    fn params(steps: Vec<f32>) -> QuantParams {
        QuantParams {
            kind: Kind::Midtread,
            steps,
        }
    }

    /// Nine taps at +0.4 steps round to 0, their errors summing to −3.6 steps: four move up a
    /// step (the sum: −2.6, −1.6, −0.6, +0.4), and it ends within half a step.
    #[test]
    fn a_kernel_sum_ends_within_half_a_step() {
        let x = [0.4f64; 9];
        let mut q = vec![0i64; 9];
        keep_kernel_sums(&mut q, |i| x[i], &params(vec![1.0]), 9, None);
        let sum: f64 = q.iter().zip(&x).map(|(&q, &x)| q as f64 - x).sum();
        assert!(sum.abs() <= 0.5, "{q:?} {sum}");
        assert_eq!(q.iter().filter(|&&q| q == 1).count(), 4);
        // The lowest indices move first among equal costs.
        assert_eq!(q[..4], [1, 1, 1, 1]);
    }

    /// The values nearest a rounding boundary move, each by one step at most, per channel
    /// steps are used, and a sum already within half a step is left alone.
    #[test]
    fn the_cheapest_taps_move() {
        // Channel 0 (step 1): errors −0.45, −0.3, −0.1, −0.2 → sum −1.05: the first moves.
        // Channel 1 (step 2): errors summing to −0.2, a tenth of its step: unchanged.
        let x = [0.45, 1.3, 2.1, 0.2, 0.2, -0.2, 0.4, -0.2];
        let p = params(vec![1.0, 2.0]);
        let mut q: Vec<i64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| (v / p.steps[i / 4] as f64).round() as i64)
            .collect();
        let before = q.clone();
        keep_kernel_sums(&mut q, |i| x[i], &p, 4, None);
        assert_eq!(q[0], before[0] + 1);
        assert_eq!(q[1..], before[1..]);
    }

    /// The limit holds: no level moves past ±limit, even when the sum stays off.
    #[test]
    fn levels_stay_within_the_limit() {
        let x = [2.4f64; 4];
        let mut q = vec![2i64; 4];
        keep_kernel_sums(&mut q, |i| x[i], &params(vec![1.0]), 4, Some(2));
        assert_eq!(q, [2, 2, 2, 2]);
    }
}
