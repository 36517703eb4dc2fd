//! Step allocation by measured sensitivity: which step each quantized tensor gets so that the
//! model's outputs stay within a distortion budget at the fewest bits (the encoder's choice;
//! the format carries only the steps, spec §7.6.2).
//!
//! Model (additive noise, measured): quantizing tensor `t` with weight-domain mean squared
//! error `m_t` adds `a[t][o]·m_t` to the normalized squared error `D_o = Σ(y − ŷ)² / Σy²` of
//! output `o`, so `D_o ≈ Σ_t a[t][o]·m_t` and the output SNR is `−10·log10 D_o`. Each tensor
//! has a rate–distortion curve of candidate settings (a step, or lossless) with their bits
//! and `m_t` measured on its own values. The allocation minimises `Σ bits` subject to
//! `D_o ≤ budget_o` for every output by Lagrangian choice per tensor (each tensor takes the
//! setting minimising `bits + λ·Σ_o w_o·a[t][o]·m`), with λ bisected and the output weights
//! `w_o` re-balanced so that no output's budget is spent where another's is binding.

use super::policy::{LossyOptions, StepRule};
use super::{uniform, zigzag, Kind, MAX_LEVEL};

/// One candidate setting of a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Step as a fraction of each channel's standard deviation; `None`: lossless.
    pub fraction: Option<f32>,
    /// Estimated coded bits (payload and side information).
    pub bits: f64,
    /// Weight-domain mean squared error of the reconstruction.
    pub mse: f64,
}

/// A tensor's candidate settings.
#[derive(Debug, Clone, Default)]
pub struct Curve {
    pub choices: Vec<Choice>,
}

/// The result of an allocation: one choice index per tensor, and what the model predicts.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub picks: Vec<usize>,
    pub bits: f64,
    /// Predicted normalized squared error per output.
    pub distortion: Vec<f64>,
}

/// Predicted `D_o` of every output for `picks`.
pub fn predict(curves: &[Curve], sens: &[Vec<f64>], picks: &[usize], outputs: usize) -> Vec<f64> {
    let mut d = vec![0.0; outputs];
    for ((c, a), &p) in curves.iter().zip(sens).zip(picks) {
        let m = c.choices[p].mse;
        for (d, a) in d.iter_mut().zip(a) {
            *d += a * m;
        }
    }
    d
}

/// Each tensor's best choice for multiplier `lambda` and output weights `w`.
fn choose(curves: &[Curve], sens: &[Vec<f64>], lambda: f64, w: &[f64]) -> Vec<usize> {
    curves
        .iter()
        .zip(sens)
        .map(|(c, a)| {
            let weight: f64 = a.iter().zip(w).map(|(a, w)| a * w).sum();
            let mut best = (f64::INFINITY, 0usize);
            for (i, ch) in c.choices.iter().enumerate() {
                let cost = ch.bits + lambda * weight * ch.mse;
                // Ties go to the first (coarser) choice, so the result is deterministic.
                if cost < best.0 {
                    best = (cost, i);
                }
            }
            best.1
        })
        .collect()
}

fn evaluate(curves: &[Curve], sens: &[Vec<f64>], picks: Vec<usize>, outputs: usize) -> Allocation {
    let bits = curves
        .iter()
        .zip(&picks)
        .map(|(c, &p)| c.choices[p].bits)
        .sum();
    let distortion = predict(curves, sens, &picks, outputs);
    Allocation {
        picks,
        bits,
        distortion,
    }
}

/// Largest `D_o / budget_o`.
fn excess(d: &[f64], budget: &[f64]) -> f64 {
    d.iter().zip(budget).map(|(d, b)| d / b).fold(0.0, f64::max)
}

/// The fewest-bits allocation whose predicted distortion stays within `budget` (one entry per
/// output, each > 0). `sens[t]` has one entry per output. When even the finest choices
/// exceed the budget, returns the finest.
pub fn allocate(curves: &[Curve], sens: &[Vec<f64>], budget: &[f64]) -> Allocation {
    let outputs = budget.len();
    let mut w: Vec<f64> = budget.iter().map(|b| 1.0 / b).collect();
    let mut best: Option<Allocation> = None;
    for _ in 0..12 {
        let a = allocate_weighted(curves, sens, budget, &w);
        let feasible = excess(&a.distortion, budget) <= 1.0;
        if feasible && best.as_ref().is_none_or(|b| a.bits < b.bits) {
            best = Some(a.clone());
        }
        // Outputs with slack weigh less next round; the binding one keeps its weight.
        let e = excess(&a.distortion, budget);
        if e <= 0.0 {
            break;
        }
        let mut changed = false;
        for (o, w) in w.iter_mut().enumerate() {
            let r = (a.distortion[o] / budget[o]) / e;
            if r < 0.98 {
                *w *= r.max(1e-3).sqrt();
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    best.unwrap_or_else(|| {
        let finest = curves
            .iter()
            .map(|c| {
                (0..c.choices.len())
                    .min_by(|&i, &j| c.choices[i].mse.total_cmp(&c.choices[j].mse))
                    .unwrap_or(0)
            })
            .collect();
        evaluate(curves, sens, finest, outputs)
    })
}

/// Bisects λ (on a log scale) for the smallest λ whose allocation fits the budget.
fn allocate_weighted(curves: &[Curve], sens: &[Vec<f64>], budget: &[f64], w: &[f64]) -> Allocation {
    let outputs = budget.len();
    let at = |log_lambda: f64| {
        let picks = choose(curves, sens, log_lambda.exp2(), w);
        evaluate(curves, sens, picks, outputs)
    };
    let (mut lo, mut hi) = (-80.0f64, 160.0f64);
    let top = at(hi);
    if excess(&top.distortion, budget) > 1.0 {
        return top;
    }
    let mut fit = top;
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        let a = at(mid);
        if excess(&a.distortion, budget) <= 1.0 {
            hi = mid;
            fit = a;
        } else {
            lo = mid;
        }
        if hi - lo < 1e-3 {
            break;
        }
    }
    fit
}

/// The allocation with the least predicted distortion (as `max_o D_o / budget_o`) whose bits
/// stay within `max_bits`; the coarsest when none fits.
pub fn allocate_bits(
    curves: &[Curve],
    sens: &[Vec<f64>],
    budget: &[f64],
    max_bits: f64,
) -> Allocation {
    let outputs = budget.len();
    let w: Vec<f64> = budget.iter().map(|b| 1.0 / b).collect();
    let at = |log_lambda: f64| {
        let picks = choose(curves, sens, log_lambda.exp2(), &w);
        evaluate(curves, sens, picks, outputs)
    };
    let (mut lo, mut hi) = (-80.0f64, 160.0f64);
    let mut fit = at(lo);
    if fit.bits > max_bits {
        return fit;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        let a = at(mid);
        if a.bits <= max_bits {
            lo = mid;
            fit = a;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-3 {
            break;
        }
    }
    fit
}

/// Adds the squared error and the level histogram of quantizing `c` to `se` and `hist`.
#[inline]
fn measure(
    c: &[f64],
    q: impl Fn(f64) -> f64,
    r: impl Fn(i64) -> f64,
    se: &mut f64,
    hist: &mut Vec<u64>,
) {
    let m = MAX_LEVEL as f64;
    for &x in c {
        let q = q(x).clamp(-m, m) as i64;
        let y = r(q);
        *se += (x - y) * (x - y);
        let z = zigzag(q) as usize;
        if z >= hist.len() {
            hist.resize(z + 1, 0);
        }
        hist[z] += 1;
    }
}

/// Step fractions the calibrating encoder chooses from: 2^(−k/4), k = 0..=56 (σ down to
/// σ/16384).
pub fn fractions() -> Vec<f32> {
    (0..=56).map(|k| (-(k as f32) / 4.0).exp2()).collect()
}

/// Bits a quantized record costs besides its symbols: record prefix, header, index entry.
const RECORD_BITS: f64 = 8.0 * 96.0;

/// The rate–distortion curve of one tensor (`values` row-major, shape `dims`) under the
/// uniform quantizer of `l` at each of `fractions`, plus keeping it exact at `lossless_bits`.
/// Bits are the order-0 entropy of the levels plus the steps and the model description
/// (about 10 bits per distinct level); the coder reaches within about 1 % of that on tensors
/// of 64 K levels or more (README). Settings whose levels would overflow are left out.
pub fn curve(
    values: &[f64],
    dims: &[u64],
    l: &LossyOptions,
    fractions: &[f32],
    lossless_bits: f64,
) -> Curve {
    let mut choices = vec![Choice {
        fraction: None,
        bits: lossless_bits,
        mse: 0.0,
    }];
    if values.is_empty() {
        return Curve { choices };
    }
    for &f in fractions {
        let mut own = *l;
        own.step = StepRule::StdFraction(f);
        let Some((params, _)) = own.params_for(values, dims) else {
            continue;
        };
        if !matches!(
            params.kind,
            Kind::Midtread | Kind::Midrise | Kind::DeadZone { .. }
        ) {
            continue;
        }
        let per = (values.len() / params.steps.len().max(1)).max(1);
        let overflow = values.chunks(per).zip(&params.steps).any(|(c, &step)| {
            let max_abs = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            max_abs / step as f64 >= (MAX_LEVEL - 1) as f64
        });
        if overflow {
            continue;
        }
        let mut se = 0.0;
        let mut hist: Vec<u64> = Vec::new();
        for (c, &step) in values.chunks(per).zip(params.steps.iter().cycle()) {
            // One monomorphic loop per quantizer: level, reconstruction, histogram.
            let s = step as f64;
            match params.kind {
                Kind::DeadZone { delta } => {
                    let d = delta as f64;
                    measure(
                        c,
                        |x| uniform::deadzone(x, s, d),
                        |q| uniform::deadzone_rec(q, s, d),
                        &mut se,
                        &mut hist,
                    )
                }
                Kind::Midtread => measure(
                    c,
                    |x| uniform::midtread(x, s),
                    |q| uniform::midtread_rec(q, s),
                    &mut se,
                    &mut hist,
                ),
                Kind::Midrise => measure(
                    c,
                    |x| uniform::midrise(x, s),
                    |q| uniform::midrise_rec(q, s),
                    &mut se,
                    &mut hist,
                ),
                _ => {}
            }
        }
        let n = values.len() as f64;
        let mut h = 0.0;
        let mut distinct = 0usize;
        for &c in hist.iter().filter(|&&c| c > 0) {
            let p = c as f64 / n;
            h -= c as f64 * p.log2();
            distinct += 1;
        }
        choices.push(Choice {
            fraction: Some(f),
            bits: h + 32.0 * params.steps.len() as f64 + 10.0 * distinct as f64 + RECORD_BITS,
            mse: se / n,
        });
    }
    Curve { choices }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tensor of `n` weights with the high-rate curve bits = n·(h − log2 f), mse ∝ f².
    fn model_curve(n: f64) -> Curve {
        Curve {
            choices: (0..40)
                .map(|k| {
                    let f = 2f64.powf(-(k as f64) / 4.0);
                    Choice {
                        fraction: Some(f as f32),
                        bits: n * (2.0 - f.log2()).max(0.1),
                        mse: f * f / 12.0,
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn sensitive_tensors_get_finer_steps() {
        let curves = vec![model_curve(1000.0), model_curve(1000.0)];
        let sens = vec![vec![100.0], vec![1.0]];
        let a = allocate(&curves, &sens, &[1e-3]);
        let f = |t: usize| curves[t].choices[a.picks[t]].fraction.unwrap();
        assert!(f(0) < f(1), "{:?}", a);
        assert!(a.distortion[0] <= 1e-3);
        // Reverse water-filling: Δ_t ∝ sqrt(1/a_t), so the steps differ by about 10x.
        let ratio = (f(1) / f(0)) as f64;
        assert!((7.0..=14.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn allocation_beats_the_uniform_rule_at_equal_distortion() {
        let curves = vec![
            model_curve(1000.0),
            model_curve(1000.0),
            model_curve(4000.0),
        ];
        let sens = vec![vec![1000.0], vec![1.0], vec![10.0]];
        let budget = [1e-3];
        let a = allocate(&curves, &sens, &budget);
        // The best uniform choice (one index for all) that meets the budget.
        let uniform = (0..40)
            .map(|k| evaluate(&curves, &sens, vec![k; 3], 1))
            .find(|u| u.distortion[0] <= budget[0])
            .unwrap();
        assert!(
            a.bits < uniform.bits * 0.9,
            "{} vs {}",
            a.bits,
            uniform.bits
        );
    }

    #[test]
    fn every_output_keeps_its_budget() {
        let curves = vec![model_curve(1000.0), model_curve(1000.0)];
        // Output 0 depends on tensor 0 only, output 1 on tensor 1 only.
        let sens = vec![vec![10.0, 0.0], vec![0.0, 10.0]];
        let a = allocate(&curves, &sens, &[1e-2, 1e-4]);
        assert!(a.distortion[0] <= 1e-2 && a.distortion[1] <= 1e-4, "{a:?}");
        // Output 0's budget is loose: tensor 0 is not refined for output 1's sake.
        assert!(a.picks[0] < a.picks[1], "{a:?}");
    }

    #[test]
    fn measured_curves_fall_with_the_step() {
        // Laplace values: x = ±ln(u), u from a fixed pseudo-random sequence.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let values: Vec<f64> = (1..=65536)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                let x = -(u.ln()) * 0.01;
                if i % 2 == 0 {
                    x
                } else {
                    -x
                }
            })
            .collect();
        let l = LossyOptions::default();
        let c = curve(&values, &[256, 256], &l, &fractions(), 65536.0 * 26.0);
        assert_eq!(c.choices[0].fraction, None);
        let q: Vec<&Choice> = c.choices[1..].iter().collect();
        assert!(q.len() > 40);
        // Below σ/4 (the high-rate range): finer steps, more bits, less error. (Near σ the
        // dead zone's error need not fall with the step.)
        for w in q[8..].windows(2) {
            assert!(w[1].bits >= w[0].bits - 1.0, "{:?}", w);
            assert!(w[1].mse <= w[0].mse * 1.0001, "{:?}", w);
        }
        // About 1 bit per halving of the step in the high-rate range, MSE ≈ Δ²/12.
        let (a, b) = (q[20], q[24]);
        let per = (b.bits - a.bits) / 65536.0;
        assert!((0.9..1.1).contains(&per), "{per}");
        assert!((a.mse / b.mse - 4.0).abs() < 0.3, "{}", a.mse / b.mse);
    }

    #[test]
    fn a_size_budget_is_met() {
        let curves = vec![model_curve(1000.0), model_curve(3000.0)];
        let sens = vec![vec![5.0], vec![1.0]];
        let a = allocate_bits(&curves, &sens, &[1.0], 20_000.0);
        assert!(a.bits <= 20_000.0 && a.bits > 15_000.0, "{a:?}");
    }
}
