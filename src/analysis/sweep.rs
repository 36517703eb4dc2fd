//! `nnc sweep`: the thesis's rate–distortion experiment (§3.5–3.7, Figures 3.6–3.11, Tables
//! 3.9/3.10) run through the real encoder: every setting of a grid of quantizers × levels is
//! encoded in memory with [`crate::encode_model`], and its rate (order-0 entropy, eq. 2.31;
//! CR = 32/H, eq. 3.1; RE = (32 − H)/32, eq. 3.2; and the real coded size) and distortion
//! (weight MSE, SQNR, and optionally a task metric of the decoded model) are reported.
//!
//! Three kinds of settings:
//! - **thesis** ([`Mode::Thesis`] with `all_tensors`): as in §3.5, one range [−1, 1] for the
//!   whole model, 2^k levels (Δ = 2/2^k, values clamped to the range), and every float tensor
//!   quantized, weights, biases and normalization parameters alike (models whose batch
//!   normalization is not folded into the convolutions break: a running variance of 300 is
//!   clamped to 1);
//! - **thesis-w** ([`Mode::Thesis`] without `all_tensors`): the same quantizers and global
//!   grid, applied only to the tensors nnc's policy quantizes (weight inputs of Conv, Gemm,
//!   MatMul, ... with at least 1024 elements); the rest stays lossless;
//! - **per-channel** ([`Mode::PerChannel`]): nnc's default policy, Δ = σ/d of each output
//!   channel, on the same weight tensors.
use std::path::Path;

use super::stats::{bit_patterns, entropy_per_symbol, run_counts};
use crate::container::tensor_header::{Coding, Storage};
use crate::encoder::{float_values, parse_model, EncodeOptions, EncodeReport};
use crate::error::{Error, Result};
use crate::onnx::dtype;
use crate::onnx::lift::lift;
use crate::onnx::proto::ModelProto;
use crate::quant::minifloat::Layout;
use crate::quant::policy::{Family, LossyOptions, StepRule};
use crate::quant::{self, Kind};

/// How a setting chooses the step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Thesis §3.5: range [−1, 1], 2^`levels_bits` levels; every float tensor when
    /// `all_tensors` (as the thesis), else the weight tensors of the default policy.
    Thesis { levels_bits: u32, all_tensors: bool },
    /// Default policy: Δ = σ/`denominator` per output channel, weights only.
    PerChannel { denominator: u32 },
}

/// One point of the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub family: Family,
    pub mode: Mode,
}

/// The minifloat layouts (E, M) of Table 3.5, with IEEE half (5, 10) first.
pub const THESIS_MINIFLOATS: [(u8, u8); 13] = [
    (5, 10),
    (4, 7),
    (3, 6),
    (3, 4),
    (4, 3),
    (3, 3),
    (2, 4),
    (2, 3),
    (1, 4),
    (2, 2),
    (1, 3),
    (1, 2),
    (0, 3),
];

/// Dead-zone sizes of Table 3.4.
pub const THESIS_DELTAS: [f32; 4] = [0.1, 0.25, 0.4, 0.7];

impl Setting {
    /// The quantizer, e.g. "midtread", "deadzone 0.4", "mu-law 255", "minifloat E4M3".
    pub fn method(&self) -> String {
        match self.family {
            Family::Midtread => "midtread".into(),
            Family::Midrise => "midrise".into(),
            Family::DeadZone { delta } => format!("deadzone {delta}"),
            Family::MuLaw { mu } => format!("mu-law {mu}"),
            Family::Minifloat { layout } => {
                format!("minifloat E{}M{}", layout.exp_bits, layout.man_bits)
            }
        }
    }

    /// "thesis" (every float tensor), "thesis-w" (weight tensors) or "per-channel".
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Thesis {
                all_tensors: true, ..
            } => "thesis",
            Mode::Thesis { .. } => "thesis-w",
            Mode::PerChannel { .. } => "per-channel",
        }
    }

    /// The level count or step: "2^8", "8 bits" (minifloat: sign + E + M), "sigma/16".
    pub fn levels(&self) -> String {
        match (self.mode, self.family) {
            (Mode::Thesis { .. }, Family::Minifloat { layout }) => {
                format!("{} bits", 1 + layout.exp_bits + layout.man_bits)
            }
            (Mode::Thesis { levels_bits, .. }, _) => format!("2^{levels_bits}"),
            (Mode::PerChannel { denominator }, _) => format!("sigma/{denominator}"),
        }
    }

    /// The curve this setting belongs to in a rate–distortion plot (minifloat layouts form
    /// one curve, as in the thesis's figures).
    pub fn curve(&self) -> String {
        format!("{} ({})", self.family_label(), self.mode_name())
    }

    /// The quantizer with minifloat layouts collapsed: "deadzone 0.4", "minifloat", ...
    pub fn family_label(&self) -> String {
        match self.family {
            Family::Minifloat { .. } => "minifloat".to_owned(),
            _ => self.method(),
        }
    }

    /// The encoder options of this setting.
    pub fn options(&self) -> LossyOptions {
        match self.mode {
            Mode::Thesis {
                levels_bits,
                all_tensors,
            } => LossyOptions {
                family: self.family,
                step: StepRule::Thesis {
                    min: -1.0,
                    max: 1.0,
                    levels_bits,
                },
                per_channel: false,
                all_tensors,
                ..LossyOptions::default()
            },
            Mode::PerChannel { denominator } => LossyOptions {
                family: self.family,
                step: StepRule::StdFraction(1.0 / denominator as f32),
                ..LossyOptions::default()
            },
        }
    }
}

/// Which grid to sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// Thesis and thesis-w modes: midtread, midrise, dead zone δ ∈ {0.1, 0.25, 0.4, 0.7} and
    /// μ-law (μ = 255) at 2^k levels for k = 2..=16, and the 13 minifloat layouts of Table
    /// 3.5; per-channel mode: midtread, midrise and each dead zone at σ/4, σ/8, σ/16, σ/32,
    /// σ/64. 266 settings.
    Thesis,
    /// A handful of settings (for a first look, and tests).
    Quick,
}

fn thesis_families() -> Vec<Family> {
    let mut f = vec![Family::Midtread, Family::Midrise];
    f.extend(
        THESIS_DELTAS
            .iter()
            .map(|&delta| Family::DeadZone { delta }),
    );
    f
}

/// The settings of a grid, in sweep order.
pub fn grid(g: Grid) -> Vec<Setting> {
    let mut out = Vec::new();
    let thesis = |family, levels_bits, all_tensors| Setting {
        family,
        mode: Mode::Thesis {
            levels_bits,
            all_tensors,
        },
    };
    let channel = |family, denominator| Setting {
        family,
        mode: Mode::PerChannel { denominator },
    };
    let minifloat = |(e, m): (u8, u8)| Family::Minifloat {
        layout: Layout {
            exp_bits: e,
            man_bits: m,
        },
    };
    match g {
        Grid::Thesis => {
            let mut families = thesis_families();
            families.push(Family::MuLaw { mu: 255.0 });
            for all in [true, false] {
                for &f in &families {
                    for k in 2..=16 {
                        out.push(thesis(f, k, all));
                    }
                }
                for l in THESIS_MINIFLOATS {
                    out.push(thesis(minifloat(l), 1 + (l.0 + l.1) as u32, all));
                }
            }
            for f in thesis_families() {
                for d in [4, 8, 16, 32, 64] {
                    out.push(channel(f, d));
                }
            }
        }
        Grid::Quick => {
            for k in [4, 8, 12] {
                out.push(thesis(Family::Midtread, k, true));
            }
            out.push(thesis(Family::DeadZone { delta: 0.4 }, 8, true));
            out.push(thesis(Family::MuLaw { mu: 255.0 }, 8, true));
            out.push(thesis(minifloat((4, 3)), 8, true));
            for k in [6, 10] {
                out.push(thesis(Family::DeadZone { delta: 0.4 }, k, false));
            }
            for d in [8, 16] {
                out.push(channel(Family::DeadZone { delta: 0.5 }, d));
            }
        }
    }
    out
}

/// Rate and distortion of one setting.
#[derive(Debug, Clone)]
pub struct Point {
    pub setting: Setting,
    pub quantized_tensors: usize,
    /// Weights quantized (the denominator of every per-weight rate below).
    pub quantized_weights: u64,
    /// Order-0 entropy of the levels of all quantized weights of the model, one histogram
    /// (the thesis's H, eq. 2.31), bits/weight.
    pub entropy: f64,
    /// Σ over quantized tensors of their own order-0 entropy (`QuantReport::entropy_bits`),
    /// per weight: what nnc's per-tensor frequency models can reach.
    pub entropy_per_tensor: f64,
    /// Bits of the quantized tensors' payloads in the file, per weight.
    pub coded_bits: f64,
    /// Size of the whole `.nnc` file.
    pub file_bytes: u64,
    /// Mean squared error of the quantized weights.
    pub mse: f64,
    /// 10·log10(Σx²/Σ(x − x̂)²) over the quantized weights, dB.
    pub sqnr_db: f64,
    /// The task metric of the decoded model (with `--eval`).
    pub metric: Option<f64>,
    /// Why the metric is missing, when evaluation failed.
    pub eval_error: Option<String>,
    /// Seconds spent encoding (and evaluating).
    pub seconds: f64,
}

impl Point {
    /// CR = 32/H (eq. 3.1; the thesis's CR assumes 32-bit weights and a perfect coder).
    pub fn cr(&self) -> f64 {
        32.0 / self.entropy
    }

    /// RE = (32 − H)/32 (eq. 3.2).
    pub fn re(&self) -> f64 {
        (32.0 - self.entropy) / 32.0
    }

    /// Metric drop against `original`: positive when worse.
    pub fn drop(&self, original: f64, lower_is_better: bool) -> Option<f64> {
        self.metric.map(|m| {
            if lower_is_better {
                m - original
            } else {
                original - m
            }
        })
    }
}

struct FloatTensor {
    /// Position in walk order (= position in `EncodeReport::tensors`).
    ordinal: usize,
    values: Vec<f64>,
    dims: Vec<u64>,
}

/// A model ready to be swept: parsed once, its float tensors lifted once.
pub struct Prepared {
    model: ModelProto,
    base_dir: Option<std::path::PathBuf>,
    floats: Vec<FloatTensor>,
    /// Float values in the model.
    pub float_params: u64,
    /// Order-0 entropy of the raw bit patterns of every float value, bits/value (Table 3.8).
    pub raw_entropy: f64,
    /// Size of the ONNX file (or bytes) given.
    pub original_bytes: u64,
}

impl Prepared {
    /// Prepares a parsed model; `original_bytes` is the size of its file.
    pub fn new(
        model: ModelProto,
        base_dir: Option<&Path>,
        original_bytes: u64,
    ) -> Result<Prepared> {
        let mut lifted_model = model.clone();
        let lifted = lift(
            &mut lifted_model,
            base_dir,
            crate::Limits::default().max_depth,
        )?;
        let floats: Vec<FloatTensor> = lifted
            .iter()
            .enumerate()
            .filter(|(_, t)| dtype::is_float(t.data_type) && t.storage != Storage::Inline)
            .filter_map(|(ordinal, t)| {
                float_values(t.data_type, &t.data).map(|values| FloatTensor {
                    ordinal,
                    values,
                    dims: t.dims.clone(),
                })
            })
            .collect();
        // Raw patterns, one histogram per float type (their symbols never mix).
        let mut counts = Vec::new();
        for dt in [dtype::FLOAT, dtype::DOUBLE, dtype::FLOAT16, dtype::BFLOAT16] {
            let mut p: Vec<u64> = lifted
                .iter()
                .filter(|t| t.data_type == dt && t.storage != Storage::Inline)
                .filter_map(|t| bit_patterns(dt, &t.data))
                .flatten()
                .collect();
            p.sort_unstable();
            counts.extend(run_counts(&p));
        }
        Ok(Prepared {
            model,
            base_dir: base_dir.map(Path::to_path_buf),
            float_params: floats.iter().map(|f| f.values.len() as u64).sum(),
            raw_entropy: entropy_per_symbol(counts),
            floats,
            original_bytes,
        })
    }

    /// Reads and prepares an ONNX file.
    pub fn from_file(path: &Path) -> Result<Prepared> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let len = bytes.len() as u64;
        let model = parse_model(&bytes)?;
        Prepared::new(model, path.parent(), len)
    }

    /// Encodes the model with `setting`; returns the point (without metric) and the `.nnc`
    /// bytes.
    pub fn encode(&self, setting: &Setting) -> Result<(Point, Vec<u8>)> {
        let t = std::time::Instant::now();
        let lossy = setting.options();
        let opts = EncodeOptions {
            lossy: Some(lossy),
            ..EncodeOptions::default()
        };
        let (bytes, report) = crate::encode_model(
            self.model.clone(),
            self.base_dir.as_deref(),
            &opts,
            Vec::new(),
        )?;
        let mut p = self.measure(setting, &lossy, &report);
        p.file_bytes = bytes.len() as u64;
        p.seconds = t.elapsed().as_secs_f64();
        Ok((p, bytes))
    }

    fn measure(&self, setting: &Setting, lossy: &LossyOptions, r: &EncodeReport) -> Point {
        let (mut n, mut tensors, mut ent, mut coded, mut se, mut sx) =
            (0u64, 0usize, 0f64, 0u64, 0f64, 0f64);
        let mut symbols: Vec<u32> = Vec::new();
        for f in &self.floats {
            let Some(t) = r.tensors.get(f.ordinal) else {
                continue;
            };
            // Quantized payloads only (not tensors the encoder merely rounded and stored
            // losslessly).
            let (Some(q), Coding::Quantized) = (&t.quant, t.coding) else {
                continue;
            };
            tensors += 1;
            n += t.elements;
            ent += q.entropy_bits;
            coded += t.payload_bytes;
            let e = q.mse * t.elements as f64;
            se += e;
            sx += e * 10f64.powf(q.sqnr_db / 10.0);
            // The levels again, through the encoder's own policy, for the model-wide H (the
            // settings of a sweep use plain rounding: no rate-distortion refinement).
            if let Some((params, limit)) = lossy.params_for(&f.values, &f.dims) {
                let mut v = f.values.clone();
                if let StepRule::Thesis { min, max, .. } = lossy.step {
                    for x in &mut v {
                        *x = x.clamp(min as f64, max as f64);
                    }
                }
                let levels = quant::quantize(&v, &params, limit);
                match params.kind {
                    Kind::Minifloat { .. } => symbols.extend(levels.iter().map(|&l| l as u32)),
                    _ => symbols.extend(levels.iter().map(|&l| quant::zigzag(l))),
                }
            }
        }
        symbols.sort_unstable();
        let entropy = entropy_per_symbol(run_counts(&symbols));
        let w = n.max(1) as f64;
        Point {
            setting: *setting,
            quantized_tensors: tensors,
            quantized_weights: n,
            entropy,
            entropy_per_tensor: ent / w,
            coded_bits: 8.0 * coded as f64 / w,
            file_bytes: r.total_bytes,
            mse: se / w,
            sqnr_db: if se > 0.0 {
                10.0 * (sx / se).log10()
            } else {
                f64::INFINITY
            },
            metric: None,
            eval_error: None,
            seconds: 0.0,
        }
    }
}

/// Which rate a selection minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// The thesis's criterion: the model-wide entropy H of the quantized weights.
    Entropy,
    /// The real size of the `.nnc` file (counts the lossless tensors and the graph too).
    FileBytes,
}

/// Index of the smallest-rate point whose metric is at most `max_drop` (absolute, in the
/// metric's units) worse than `original`; ties go to the smaller MSE.
pub fn best_within(
    points: &[Point],
    original: f64,
    max_drop: f64,
    lower_is_better: bool,
    rate: Rate,
) -> Option<usize> {
    let key = |p: &Point| match rate {
        Rate::Entropy => p.entropy,
        Rate::FileBytes => p.file_bytes as f64,
    };
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.drop(original, lower_is_better)
                .is_some_and(|d| d <= max_drop + 1e-12)
        })
        .min_by(|(_, a), (_, b)| key(a).total_cmp(&key(b)).then(a.mse.total_cmp(&b.mse)))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids() {
        let g = grid(Grid::Thesis);
        assert_eq!(g.len(), 2 * (7 * 15 + 13) + 6 * 5);
        assert_eq!(g[0].levels(), "2^2");
        let mf = g.iter().find(|s| s.method() == "minifloat E4M3").unwrap();
        assert_eq!(mf.levels(), "8 bits");
        assert!(grid(Grid::Quick).len() <= 10);
        let o = g.last().unwrap().options();
        assert!(o.per_channel && !o.all_tensors);
        assert!(g[0].options().all_tensors);
        let w = g.iter().find(|s| s.mode_name() == "thesis-w").unwrap();
        assert!(!w.options().all_tensors && !w.options().per_channel);
    }

    #[test]
    fn selection() {
        let mk = |h: f64, bytes: u64, m: Option<f64>| Point {
            setting: grid(Grid::Quick)[0],
            quantized_tensors: 1,
            quantized_weights: 1,
            entropy: h,
            entropy_per_tensor: h,
            coded_bits: h,
            file_bytes: bytes,
            mse: 0.0,
            sqnr_db: 0.0,
            metric: m,
            eval_error: None,
            seconds: 0.0,
        };
        let pts = [
            mk(2.0, 900, Some(0.90)),
            mk(3.0, 500, Some(0.995)),
            mk(4.0, 800, Some(1.0)),
            mk(1.0, 100, None),
        ];
        assert_eq!(best_within(&pts, 1.0, 0.01, false, Rate::Entropy), Some(1));
        assert_eq!(best_within(&pts, 1.0, 0.2, false, Rate::Entropy), Some(0));
        assert_eq!(best_within(&pts, 1.0, 0.2, false, Rate::FileBytes), Some(1));
        // Lower is better (an error rate): 0.90 is an improvement on 1.0.
        assert_eq!(best_within(&pts, 1.0, 0.0, true, Rate::Entropy), Some(0));
    }
}
