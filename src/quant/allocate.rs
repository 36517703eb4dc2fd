//! Step allocation by measured sensitivity: which step each quantized tensor gets so that the
//! model's outputs stay within a distortion budget at the fewest bits (the encoder's choice;
//! the format carries only the steps, spec §7.6.2).
//!
//! Model (additive noise, measured): quantizing tensor `t` with weight-domain mean squared
//! error `m_t` adds `a[t][o]·m_t` to the normalized squared error `D_o = Σ(y − ŷ)² / P_o` of
//! output `o` (`P_o` its signal power, `runtime::search::Signal`), so `D_o ≈ Σ_t a[t][o]·m_t`
//! and the output SNR is `−10·log10 D_o`. Each tensor
//! has a rate–distortion curve of candidate settings (a step, or lossless) with their bits
//! and `m_t` measured on its own values. The allocation minimises `Σ bits` subject to
//! `D_o ≤ budget_o` for every output by Lagrangian choice per tensor (each tensor takes the
//! setting minimising `bits + λ·Σ_o w_o·a[t][o]·m`), with λ bisected and the output weights
//! `w_o` re-balanced so that no output's budget is spent where another's is binding.

use rayon::prelude::*;

use super::policy::{Family, LossyOptions, SigmaBasis};
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

/// Level counts by zigzag symbol: a table for the symbols up to TABLE, pairs beyond it (a
/// channel of nearly equal values far from zero, whose step is floored at 2^-24 of its
/// magnitude, has levels near 2^24 at every fraction).
#[derive(Default)]
struct Counts {
    table: Vec<u64>,
    far: Vec<(usize, u64)>,
}

impl Counts {
    const TABLE: usize = 1 << 20;

    fn clear(&mut self) {
        self.table.clear();
        self.far.clear();
    }

    /// Makes room in the table for symbols up to `z` (as far as TABLE).
    fn reach(&mut self, z: usize) {
        let len = (z + 1).min(Self::TABLE);
        if len > self.table.len() {
            self.table.resize(len, 0);
        }
    }

    #[inline]
    fn add(&mut self, z: usize, count: u64) {
        match self.table.get_mut(z) {
            Some(c) => *c += count,
            None => self.far.push((z, count)),
        }
    }

    /// Order-0 entropy in bits of `n` symbols, and the number of distinct symbols.
    fn entropy(&mut self, n: f64) -> (f64, usize) {
        self.far.sort_unstable();
        let merged: Vec<u64> = self
            .far
            .chunk_by(|a, b| a.0 == b.0)
            .map(|g| g.iter().map(|&(_, c)| c).sum())
            .collect();
        let (mut h, mut distinct) = (0.0, 0usize);
        for &c in self.table.iter().chain(&merged).filter(|&&c| c > 0) {
            h -= c as f64 * (c as f64 / n).log2();
            distinct += 1;
        }
        (h, distinct)
    }
}

/// A tensor's values as magnitudes sorted within each channel, the negative values' first:
/// a uniform quantizer's levels are then runs, so a setting is measured a run at a time.
struct Sorted {
    mags: Vec<f64>,
    /// Elements per channel.
    per: usize,
    /// Negative values of each channel.
    negative: Vec<usize>,
}

impl Sorted {
    fn of(values: &[f64], per: usize) -> Sorted {
        let mut mags = Vec::with_capacity(values.len());
        let mut negative = Vec::with_capacity(values.len() / per.max(1) + 1);
        for c in values.chunks(per) {
            let start = mags.len();
            mags.extend(c.iter().filter(|&&x| x < 0.0).map(|&x| -x));
            let neg = mags.len() - start;
            mags.extend(c.iter().filter(|&&x| x >= 0.0 || x.is_nan()).map(|&x| x.abs()));
            sort_magnitudes(&mut mags[start..start + neg]);
            sort_magnitudes(&mut mags[start + neg..]);
            negative.push(neg);
        }
        Sorted {
            mags,
            per,
            negative,
        }
    }

    /// Adds the squared error and the level histogram of quantizing channel `ch` with step
    /// `s` to `se` and `hist`. The quantizers are odd (`q(−x) = −q(x)`, `r(−q) = −r(q)`) and
    /// monotone, and a magnitude below `(k + c)·s` has a level of at most `k` (`c` is ½ for
    /// midtread, 0 for midrise, δ for the dead zone): each run of a level is found by
    /// comparing values with that bound, a little below it so that rounding cannot matter,
    /// and each run starts with an exact level, so the levels are those of quantizing the
    /// values one by one.
    fn measure(
        &self,
        ch: usize,
        (s, c): (f64, f64),
        q: impl Fn(f64) -> f64,
        r: impl Fn(i64) -> f64,
        se: &mut f64,
        hist: &mut Counts,
    ) {
        let m = MAX_LEVEL as f64;
        let level = |x: f64| q(x).clamp(-m, m) as i64;
        let start = ch * self.per;
        let end = (start + self.per).min(self.mags.len());
        let split = start + self.negative[ch];
        for (side, sign) in [(&self.mags[start..split], -1i64), (&self.mags[split..end], 1)] {
            let n = side.len();
            let (Some(&first), Some(&last)) = (side.first(), side.last()) else {
                continue;
            };
            let (low, top) = (level(first), level(last));
            // Levels run from low to top: grow the histogram once.
            hist.reach(zigzag(sign * top).max(zigzag(sign * low)) as usize);
            let mut acc = 0.0;
            if 2 * (top - low) as usize >= n {
                // Fine steps, runs of one or two values: value by value.
                *se += fine(side, sign, (s, c), level, &r, hist);
                continue;
            }
            let mut i = 0;
            while i < n {
                let x = side[i];
                let k = level(x);
                let y = r(k);
                // Below `bound` the level is still k (and values equal to x have x's level).
                let bound = ((k as f64 + c) * s * (1.0 - 1e-9)).max(next_up(x));
                let mut j = i + 1;
                while j < n && side[j] < bound {
                    j += 1;
                }
                acc += squared_error(&side[i..j], y);
                hist.add(zigzag(sign * k) as usize, (j - i) as u64);
                i = j;
            }
            *se += acc;
        }
    }
}

/// Sorts non-negative values (and NaNs without sign, last) ascending: as their bit patterns,
/// which order them the same way, compared as integers.
fn sort_magnitudes(v: &mut [f64]) {
    let mut bits: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
    bits.sort_unstable();
    for (x, b) in v.iter_mut().zip(bits) {
        *x = f64::from_bits(b);
    }
}

/// `measure` for fine steps, value by value: the level from a product with 1/s unless that
/// lands within 1e-9 of a bound (then from `level`). Returns the squared error. (Its own
/// function so that its loop keeps its values in registers.)
#[inline(never)]
fn fine(
    side: &[f64],
    sign: i64,
    (s, c): (f64, f64),
    level: impl Fn(f64) -> i64,
    r: impl Fn(i64) -> f64,
    hist: &mut Counts,
) -> f64 {
    let inv = 1.0 / s;
    // Two sums: one would wait on each addition.
    let (mut a, mut b) = (0.0f64, 0.0f64);
    for (i, &x) in side.iter().enumerate() {
        let w = x * inv - c;
        // ceil(w), |w| < 2^31 (no level overflows, checked by the caller).
        let t = w as i64;
        let f = if (t as f64) < w { t + 1 } else { t };
        let tol = 1e-9 * (w.abs() + 1.0);
        let k = if f as f64 - w > tol && w - (f - 1) as f64 > tol {
            f.max(0)
        } else {
            level(x)
        };
        let y = r(k);
        let e = (x - y) * (x - y);
        if i & 1 == 0 {
            a += e;
        } else {
            b += e;
        }
        hist.add(zigzag(sign * k) as usize, 1);
    }
    a + b
}

/// `Σ (x − y)²` over `xs`, in four partial sums (one sum would wait on each addition).
fn squared_error(xs: &[f64], y: f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut quads = xs.chunks_exact(4);
    for q in &mut quads {
        for (a, &x) in acc.iter_mut().zip(q) {
            *a += (x - y) * (x - y);
        }
    }
    let tail: f64 = quads.remainder().iter().map(|&x| (x - y) * (x - y)).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The least f64 above a non-negative `x` (NaN and infinity stay as they are).
fn next_up(x: f64) -> f64 {
    if x.is_finite() {
        f64::from_bits(x.to_bits() + 1)
    } else {
        x
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
    let kind = match l.family {
        Family::Midtread => Kind::Midtread,
        Family::Midrise => Kind::Midrise,
        Family::DeadZone { delta } => Kind::DeadZone { delta },
        _ => return Curve { choices },
    };
    if values.is_empty() {
        return Curve { choices };
    }
    let basis = SigmaBasis::of(values, dims, l.per_channel);
    let sorted = Sorted::of(values, basis.per);
    // The fractions are independent: measured in parallel (a large tensor alone would
    // otherwise keep one core busy while the others wait), each worker with its histogram.
    let measured: Vec<Option<Choice>> = fractions
        .par_iter()
        .map_init(Counts::default, |hist, &f| {
            measure_fraction(values, &basis, &sorted, kind, f, hist)
        })
        .collect();
    choices.extend(measured.into_iter().flatten());
    Curve { choices }
}

/// One point of [`curve`]: the levels' bits and the mean squared error of `kind` at step
/// fraction `f` (`None` where a level would overflow); `hist` is the caller's to reuse.
fn measure_fraction(
    values: &[f64],
    basis: &SigmaBasis,
    sorted: &Sorted,
    kind: Kind,
    f: f32,
    hist: &mut Counts,
) -> Option<Choice> {
    let steps = basis.steps(f, values)?;
    let overflow = basis
        .max_abs
        .iter()
        .zip(&steps)
        .any(|(&max_abs, &step)| max_abs / step as f64 >= (MAX_LEVEL - 1) as f64);
    if overflow {
        return None;
    }
    let mut se = 0.0;
    hist.clear();
    for (c, &step) in steps.iter().enumerate() {
        // One monomorphic loop per quantizer.
        let s = step as f64;
        match kind {
            Kind::DeadZone { delta } => {
                let d = delta as f64;
                sorted.measure(
                    c,
                    (s, d),
                    |x| uniform::deadzone(x, s, d),
                    |q| uniform::deadzone_rec(q, s, d),
                    &mut se,
                    hist,
                )
            }
            Kind::Midtread => sorted.measure(
                c,
                (s, 0.5),
                |x| uniform::midtread(x, s),
                |q| uniform::midtread_rec(q, s),
                &mut se,
                hist,
            ),
            Kind::Midrise => sorted.measure(
                c,
                (s, 0.0),
                |x| uniform::midrise(x, s),
                |q| uniform::midrise_rec(q, s),
                &mut se,
                hist,
            ),
            _ => {}
        }
    }
    let n = values.len() as f64;
    let (h, distinct) = hist.entropy(n);
    Some(Choice {
        fraction: Some(f),
        bits: h + 32.0 * steps.len() as f64 + 10.0 * distinct as f64 + RECORD_BITS,
        mse: se / n,
    })
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

    /// Uniform values in (0, 1) from a xorshift sequence seeded with `state`.
    fn uniform(mut state: u64) -> impl FnMut() -> f64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
    }

    /// The curve of quantizing value by value with `params_for` (what `curve` computes a run
    /// at a time from sorted magnitudes).
    fn direct_curve(values: &[f64], dims: &[u64], l: &LossyOptions, fractions: &[f32]) -> Curve {
        let mut choices = Vec::new();
        for &f in fractions {
            let mut own = *l;
            own.step = super::super::policy::StepRule::StdFraction(f);
            let Some((params, _)) = own.params_for(values, dims) else {
                continue;
            };
            let per = values.len() / params.steps.len();
            let mut hist = std::collections::BTreeMap::<u32, u64>::new();
            let mut se = 0.0;
            for (c, &step) in values.chunks(per).zip(&params.steps) {
                if c.iter().fold(0.0f64, |m, v| m.max(v.abs())) / step as f64
                    >= (MAX_LEVEL - 1) as f64
                {
                    hist.clear();
                    break;
                }
                for &x in c {
                    let q = super::super::quantize_value(&params.kind, x, step);
                    let y = super::super::reconstruct(&params.kind, q, step);
                    se += (x - y) * (x - y);
                    *hist.entry(zigzag(q)).or_default() += 1;
                }
            }
            if hist.is_empty() {
                continue;
            }
            let n = values.len() as f64;
            let (mut h, mut distinct) = (0.0, 0usize);
            for &c in hist.values() {
                h -= c as f64 * (c as f64 / n).log2();
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

    #[test]
    fn runs_of_sorted_magnitudes_give_the_levels_value_by_value() {
        // Laplace-like values with repeats, zeros of both signs, a constant channel and a
        // channel of one sign.
        let mut next = uniform(0x9e37_79b9_7f4a_7c15);
        let (rows, cols) = (12usize, 1000usize);
        let mut values: Vec<f64> = (0..rows * cols)
            .map(|_| {
                let u = next();
                let x = -(next().ln()) * 0.02;
                if u < 0.45 {
                    x
                } else if u < 0.9 {
                    -x
                } else if u < 0.93 {
                    0.0
                } else if u < 0.95 {
                    -0.0
                } else {
                    0.013
                }
            })
            .collect();
        values[3 * cols..4 * cols].fill(0.25);
        for v in &mut values[5 * cols..6 * cols] {
            *v = v.abs();
        }
        let dims = [rows as u64, cols as u64];
        let fractions = fractions();
        for family in [
            Family::Midtread,
            Family::Midrise,
            Family::DeadZone { delta: 0.3 },
            Family::DeadZone { delta: 0.7 },
        ] {
            for per_channel in [true, false] {
                let l = LossyOptions {
                    family,
                    per_channel,
                    ..LossyOptions::default()
                };
                let fast = curve(&values, &dims, &l, &fractions, 1e9);
                let slow = direct_curve(&values, &dims, &l, &fractions);
                assert_eq!(fast.choices.len(), slow.choices.len() + 1, "{family:?}");
                for (a, b) in fast.choices[1..].iter().zip(&slow.choices) {
                    assert_eq!(a.fraction, b.fraction);
                    // Same levels: the same histogram, so the same bits exactly.
                    assert_eq!(a.bits, b.bits, "{family:?} {:?}", a.fraction);
                    assert!(
                        (a.mse - b.mse).abs() <= 1e-12 * b.mse.max(1e-300),
                        "{family:?} {a:?} {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn runs_end_where_the_quantizer_says() {
        // Values on the bounds (k + c)·Δ of the levels and a few ulps either side, among
        // Laplace values; runs of many values (coarse) and of one or two (fine).
        let mut next = uniform(0x2545_f491_4f6c_dd1d);
        let e = f64::EPSILON;
        let near = [1.0, 1.0 + e, 1.0 - e / 2.0, 1.0 + 2.0 * e, 1.0 - e, 1.0 + 1e-13, 1.0 - 1e-13];
        for (kind, c) in [
            (Kind::Midtread, 0.5),
            (Kind::Midrise, 0.0),
            (Kind::DeadZone { delta: 0.3 }, 0.3),
            (Kind::DeadZone { delta: 0.7 }, 0.7),
        ] {
            for (step, spread) in [(0.37f32, 0.05), (0.37, 40000.0)] {
                let s = step as f64;
                let mut values: Vec<f64> = (0..3000)
                    .map(|i| {
                        let x = -(next().ln()) * spread * s / 40.0;
                        if i % 2 == 0 {
                            x
                        } else {
                            -x
                        }
                    })
                    .collect();
                for k in 0..40usize {
                    for (j, r) in near.iter().enumerate() {
                        let x = (k as f64 + c) * s * r;
                        values.push(if j % 2 == 0 { x } else { -x });
                    }
                }
                let sorted = Sorted::of(&values, values.len());
                let mut counts = Counts::default();
                let mut se = 0.0;
                let m = MAX_LEVEL as f64;
                let q = |x: f64| super::super::quantize_value(&kind, x, step) as f64;
                let r = |q: i64| super::super::reconstruct(&kind, q, step);
                sorted.measure(0, (s, c), |x| q(x).clamp(-m, m), r, &mut se, &mut counts);
                let mut want = std::collections::BTreeMap::<usize, u64>::new();
                let mut want_se = 0.0;
                for &x in &values {
                    let k = super::super::quantize_value(&kind, x, step);
                    let y = r(k);
                    want_se += (x - y) * (x - y);
                    *want.entry(zigzag(k) as usize).or_default() += 1;
                }
                let got: std::collections::BTreeMap<usize, u64> = counts
                    .table
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(z, &c)| (z, c))
                    .collect();
                assert_eq!(got, want, "{kind:?} spread {spread}");
                assert!((se - want_se).abs() <= 1e-12 * want_se, "{kind:?} {se} {want_se}");
            }
        }
    }

    #[test]
    fn measured_curves_fall_with_the_step() {
        // Laplace values: x = ±ln(u), u from a fixed pseudo-random sequence.
        let mut next = uniform(0x2545_f491_4f6c_dd1d);
        let values: Vec<f64> = (1..=65536)
            .map(|i| {
                let x = -(next().ln()) * 0.01;
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

