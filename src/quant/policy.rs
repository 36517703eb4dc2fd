//! Which tensors are quantized, and with which parameters (spec leaves this to the encoder;
//! README and `nnc encode --help` document it). Only floating-point weights of meaningful size
//! that feed weight inputs of compute operators are quantized: scalars, small tensors,
//! shape-like constants, normalization parameters and integer tensors stay exact.
use std::collections::HashMap;

use super::minifloat::Layout;
use super::{Kind, QuantParams};
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto};

/// The quantizer family (Tonin 2021, §2.3; spec §7.6.1).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Family {
    /// Uniform, with a level at zero.
    Midtread,
    /// Uniform, with zero on a decision boundary.
    Midrise,
    /// Uniform with a wider zero bin.
    DeadZone {
        /// Relative size δ of the dead zone, in [0, 1].
        delta: f32,
    },
    /// μ-law companding, then uniform.
    MuLaw {
        /// The companding parameter μ > 0.
        mu: f32,
    },
    /// The nearest value of a small floating-point format, scaled per tensor.
    Minifloat {
        /// Its exponent and mantissa bits.
        layout: Layout,
    },
}

/// How the step is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum StepRule {
    /// One fixed step for every quantized tensor.
    Fixed(f32),
    /// A fraction of the tensor's (or channel's) standard deviation.
    StdFraction(f32),
    /// The thesis's sweep: one range for the whole model and 2^k levels, Δ = (max − min)/2^k,
    /// values clamped to the range.
    Thesis {
        /// Lower end of the range.
        min: f32,
        /// Upper end of the range.
        max: f32,
        /// K: 2^K levels (2 to 24).
        levels_bits: u32,
    },
}

/// Lossy coding: which tensors are quantized, with which quantizer and step. The default is
/// the dead-zone quantizer with δ = 0.5 and steps of σ/16 of each output channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossyOptions {
    /// The quantizer.
    pub family: Family,
    /// How the step is chosen.
    pub step: StepRule,
    /// One step per output channel (slice along axis 0).
    pub per_channel: bool,
    /// Tensors with fewer elements stay exact.
    pub min_elements: u64,
    /// Quantize every float tensor whatever it feeds (the thesis's setting; may break models).
    pub all_tensors: bool,
    /// Levels for μ-law outside thesis mode: 2^k over [−max|w|, max|w|].
    pub mulaw_levels_bits: u32,
    /// Rate–distortion optimized level choice with λ = factor·Δ² (0: plain rounding).
    pub rdo: f64,
    /// Round the mantissa of float32 tensors that are not quantized but feed only arithmetic
    /// inputs (biases, normalization parameters; at least `FINE_MIN_ELEMENTS`) to this many
    /// bits before lossless coding (`None`: keep them exact, the default).
    pub fine_bits: Option<u8>,
    /// Round a convolution's kernels keeping each one's sum (`quant::kernel`; off by default).
    pub kernel_sums: bool,
}

/// Fewest elements per output channel for per-channel steps.
pub const MIN_CHANNEL: u64 = 8;

/// Smallest tensor `fine_bits` touches: scalars and tiny constants always stay exact.
pub const FINE_MIN_ELEMENTS: u64 = 16;

/// Rounds the binary32 mantissa to `bits` bits, to nearest with ties to even; infinities
/// and NaN unchanged, finite values never round to infinity.
pub fn round_mantissa(x: f32, bits: u8) -> f32 {
    if bits >= 23 || !x.is_finite() {
        return x;
    }
    let shift = 23 - bits as u32;
    let b = x.to_bits();
    let sign = b & 0x8000_0000;
    let mag = b & 0x7fff_ffff;
    let half = 1u32 << (shift - 1);
    let odd = (mag >> shift) & 1;
    let mut r = ((mag + half - 1 + odd) >> shift) << shift;
    if r >= 0x7f80_0000 {
        r = 0x7f7f_ffff >> shift << shift;
    }
    f32::from_bits(sign | r)
}

impl Default for LossyOptions {
    fn default() -> Self {
        LossyOptions {
            family: Family::DeadZone { delta: 0.5 },
            step: StepRule::StdFraction(1.0 / 16.0),
            per_channel: true,
            min_elements: 1024,
            all_tensors: false,
            mulaw_levels_bits: 8,
            rdo: 0.0,
            fine_bits: None,
            kernel_sums: false,
        }
    }
}

/// (operator, input index) pairs that take weights; `None` = every input.
const WEIGHT_INPUTS: &[(&str, Option<usize>)] = &[
    ("Conv", Some(1)),
    ("ConvTranspose", Some(1)),
    ("Gemm", Some(0)),
    ("Gemm", Some(1)),
    ("MatMul", None),
    ("LSTM", Some(1)),
    ("LSTM", Some(2)),
    ("GRU", Some(1)),
    ("GRU", Some(2)),
    ("RNN", Some(1)),
    ("RNN", Some(2)),
    ("Gather", Some(0)),
    ("Einsum", None),
];

/// Arithmetic inputs that `--fine-bits` may round (besides the weight inputs).
const NUMERIC_INPUTS: &[(&str, Option<usize>)] = &[
    ("Conv", Some(2)),
    ("ConvTranspose", Some(2)),
    ("Gemm", Some(2)),
    ("BatchNormalization", Some(1)),
    ("BatchNormalization", Some(2)),
    ("BatchNormalization", Some(3)),
    ("BatchNormalization", Some(4)),
    ("LayerNormalization", Some(1)),
    ("LayerNormalization", Some(2)),
    ("InstanceNormalization", Some(1)),
    ("InstanceNormalization", Some(2)),
    ("PRelu", Some(1)),
    ("LSTM", Some(3)),
    ("GRU", Some(3)),
    ("RNN", Some(3)),
    ("Add", None),
    ("Sub", None),
    ("Mul", None),
];

/// Operators that only move or re-type values, which a weight may pass through on its way
/// to a weight input: (operator, data input; `None` = every input).
const PASS_THROUGH: &[(&str, Option<usize>)] = &[
    ("Identity", Some(0)),
    ("Transpose", Some(0)),
    ("Reshape", Some(0)),
    ("Cast", Some(0)),
    ("Squeeze", Some(0)),
    ("Unsqueeze", Some(0)),
    ("Flatten", Some(0)),
    ("Slice", Some(0)),
    ("Split", Some(0)),
    ("Concat", None),
    ("Expand", Some(0)),
    ("Tile", Some(0)),
];

/// One use of a value: (op_type, input index, outputs of that node).
type Use = (String, usize, Vec<String>);
type UseMap = HashMap<String, Vec<Use>>;

/// Who consumes each value name.
pub struct Consumers {
    map: UseMap,
}

impl Consumers {
    pub fn of(model: &ModelProto) -> Consumers {
        let mut map: UseMap = HashMap::new();
        fn node(n: &NodeProto, map: &mut UseMap) {
            let op = n.op_type.clone().unwrap_or_default();
            for (i, inp) in n.input.iter().enumerate() {
                if !inp.is_empty() {
                    map.entry(inp.clone())
                        .or_default()
                        .push((op.clone(), i, n.output.clone()));
                }
            }
            for a in &n.attribute {
                if let Some(g) = &a.g {
                    graph(g, map);
                }
                for g in &a.graphs {
                    graph(g, map);
                }
            }
        }
        fn graph(g: &GraphProto, map: &mut UseMap) {
            for n in &g.node {
                node(n, map);
            }
            // A graph output is a consumer that is not a weight input.
            for o in &g.output {
                if let Some(name) = &o.name {
                    map.entry(name.clone()).or_default().push((
                        "<graph output>".into(),
                        0,
                        Vec::new(),
                    ));
                }
            }
        }
        if let Some(g) = &model.graph {
            graph(g, &mut map);
        }
        for f in &model.functions {
            for n in &f.node {
                node(n, &mut map);
            }
        }
        Consumers { map }
    }

    /// True when `name` is consumed, and only as a weight (possibly through pass-through ops).
    pub fn is_weight(&self, name: &str) -> bool {
        self.weight_at(name, 0, WEIGHT_INPUTS)
    }

    /// True when `name` feeds only arithmetic inputs (weights, biases, normalization
    /// parameters, elementwise operands), never a shape, index, scale or count input.
    pub fn is_numeric(&self, name: &str) -> bool {
        self.weight_at(name, 0, WEIGHT_INPUTS) || self.weight_at(name, 0, NUMERIC_INPUTS)
    }

    /// The taps of each kernel when `name` (of shape `dims`) is read only as the weight of
    /// `Conv` nodes (input 1) and its kernels have at least `quant::kernel::MIN_TAPS` taps:
    /// `dims[2] · dims[3] · …`.
    pub fn conv_taps(&self, name: &str, dims: &[u64]) -> Option<usize> {
        let uses = self.map.get(name)?;
        let taps: u64 = dims.get(2..)?.iter().product();
        (!uses.is_empty()
            && uses.iter().all(|(op, i, _)| op == "Conv" && *i == 1)
            && taps >= super::kernel::MIN_TAPS as u64)
            .then_some(taps as usize)
    }

    fn weight_at(&self, name: &str, depth: u32, allowed: &[(&str, Option<usize>)]) -> bool {
        let Some(uses) = self.map.get(name) else {
            return false;
        };
        depth < 6
            && uses.iter().all(|(op, i, outs)| {
                allowed
                    .iter()
                    .chain(WEIGHT_INPUTS)
                    .any(|(o, idx)| o == op && idx.is_none_or(|k| k == *i))
                    || (PASS_THROUGH
                        .iter()
                        .any(|(o, idx)| o == op && idx.is_none_or(|k| k == *i))
                        && outs.iter().all(|o| self.weight_at(o, depth + 1, allowed)))
            })
    }
}

/// What σ-derived steps (`StepRule::StdFraction`) are computed from: each channel's standard
/// deviation and largest magnitude, one channel when the tensor takes one step. Read once, it
/// gives the steps of any fraction (the calibrating encoder tries 57 of them per tensor).
#[derive(Debug, Clone)]
pub struct SigmaBasis {
    /// Elements per channel.
    pub per: usize,
    /// Largest magnitude of each channel.
    pub max_abs: Vec<f64>,
    sd: Vec<f64>,
}

impl SigmaBasis {
    /// The basis of `values` (row-major, shape `dims`): per channel for rank >= 2 with
    /// channels of at least MIN_CHANNEL elements when `per_channel` is set (a bias or a tiny
    /// kernel takes one step for the whole tensor).
    pub fn of(values: &[f64], dims: &[u64], per_channel: bool) -> SigmaBasis {
        let channels = match dims.first() {
            Some(&d)
                if per_channel
                    && dims.len() >= 2
                    && d >= 2
                    && values.len() as u64 / d >= MIN_CHANNEL
                    && values.len().is_multiple_of(d as usize) =>
            {
                d as usize
            }
            _ => 1,
        };
        let per = (values.len() / channels).max(1);
        let (sd, max_abs) = values
            .chunks(per)
            .map(|c| (std_dev(c), c.iter().fold(0.0f64, |m, x| m.max(x.abs()))))
            .unzip();
        SigmaBasis { per, max_abs, sd }
    }

    /// The steps of fraction `f` (those of `params_for` under `StepRule::StdFraction(f)`):
    /// `f·σ` of each channel, floored at 2^-24 of its largest magnitude, so that a channel of
    /// nearly equal values (tiny σ, far from zero) keeps f32-level precision without levels
    /// beyond the format's range; a constant channel (σ = 0) takes the tensor's `f·σ`.
    /// `None` when a step is not positive and finite. `values` are those the basis was read
    /// from.
    pub fn steps(&self, f: f32, values: &[f64]) -> Option<Vec<f32>> {
        let floor = 1.0 / (1u64 << 24) as f64;
        let mut s: Vec<f32> = self
            .sd
            .iter()
            .zip(&self.max_abs)
            .map(|(sd, m)| (sd * f as f64).max(m * floor) as f32)
            .collect();
        let good = |x: &f32| *x > 0.0 && x.is_finite();
        if s.len() >= 2 && !s.iter().all(good) {
            let fallback = (std_dev(values) * f as f64) as f32;
            for x in s.iter_mut().filter(|x| !good(x)) {
                *x = fallback;
            }
        }
        (!s.is_empty() && s.iter().all(good)).then_some(s)
    }
}

/// Mean and standard deviation of values.
fn std_dev(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
}

impl LossyOptions {
    /// Parameters for one tensor (values row-major, `dims` its shape), or `None` to keep it
    /// exact (a step of zero, a constant tensor).
    pub fn params_for(&self, values: &[f64], dims: &[u64]) -> Option<(QuantParams, Option<i64>)> {
        let max_abs = || values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let (kind, limit) = match self.family {
            Family::Midtread => (Kind::Midtread, None),
            Family::Midrise => (Kind::Midrise, None),
            Family::DeadZone { delta } => (Kind::DeadZone { delta }, None),
            Family::MuLaw { mu } => {
                let xmax = match self.step {
                    StepRule::Thesis { min, max, .. } => min.abs().max(max.abs()),
                    _ => max_abs() as f32,
                };
                if xmax <= 0.0 || !xmax.is_finite() {
                    return None;
                }
                (Kind::MuLaw { xmax, mu }, None)
            }
            Family::Minifloat { layout } => {
                let scale_exp = match self.step {
                    StepRule::Thesis { .. } => 0,
                    _ => layout.scale_for(max_abs()),
                };
                // The format allows scale exponents in [-400, 400] (spec §7.6.2).
                if !(-400..=400).contains(&scale_exp) {
                    return None;
                }
                return Some((
                    QuantParams {
                        kind: Kind::Minifloat { layout, scale_exp },
                        steps: Vec::new(),
                    },
                    None,
                ));
            }
        };
        let (steps, limit) = match (self.step, kind) {
            (StepRule::Thesis { levels_bits, .. }, Kind::MuLaw { xmax, .. }) => (
                vec![2.0 * xmax / (1u64 << levels_bits) as f32],
                Some(1i64 << (levels_bits - 1)),
            ),
            (_, Kind::MuLaw { xmax, .. }) => (
                vec![2.0 * xmax / (1u64 << self.mulaw_levels_bits) as f32],
                limit,
            ),
            (
                StepRule::Thesis {
                    min,
                    max,
                    levels_bits,
                },
                _,
            ) => {
                // Levels are centred on zero; they must reach both ends of the range.
                let step = (max - min) / (1u64 << levels_bits) as f32;
                let reach = (min.abs().max(max.abs()) / step).ceil() as i64;
                (vec![step], Some(reach.max(1i64 << (levels_bits - 1))))
            }
            (StepRule::Fixed(s), _) => (vec![s], None),
            (StepRule::StdFraction(f), _) => (
                SigmaBasis::of(values, dims, self.per_channel).steps(f, values)?,
                None,
            ),
        };
        if steps.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
            return None;
        }
        Some((QuantParams { kind, steps }, limit))
    }
}
