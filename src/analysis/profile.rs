//! `nnc analyze`: what the thesis measured before quantizing (§3.3–3.4, Table 3.8): per float
//! tensor and for the whole model, count, range, mean, standard deviation, sparsity and the
//! order-0 entropy of the raw bit patterns; and which known distribution the weights follow.
use std::path::Path;

use super::fit::{fit_all, DistributionFit};
use super::stats::{bit_patterns, entropy_per_symbol, run_counts, Moments};
use crate::container::tensor_header::Storage;
use crate::encoder::{float_values, parse_model};
use crate::error::{Error, Result};
use crate::onnx::dtype;
use crate::onnx::lift::lift;
use crate::onnx::proto::ModelProto;
use crate::quant::policy::Consumers;

/// Settings of the analysis.
#[derive(Debug, Clone, Copy)]
pub struct ProfileOptions {
    /// Histogram bins for the distribution comparison (`None`: Freedman–Diaconis, see
    /// [`super::fit::auto_bins`]).
    pub bins: Option<usize>,
    /// Histogram window: mean ± this many standard deviations (clipped to the data's range).
    pub sigmas: f64,
    /// Model totals and the distribution fit over tensors that feed weight inputs only
    /// (Conv/Gemm/MatMul/... weights, as the encoder's default policy picks them), instead of
    /// every float tensor (the thesis's "all weights and biases").
    pub weights_only: bool,
    /// Subgraph nesting accepted.
    pub max_depth: Option<u32>,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            bins: None,
            sigmas: 6.0,
            weights_only: false,
            max_depth: None,
        }
    }
}

/// One float tensor.
#[derive(Debug, Clone)]
pub struct TensorProfile {
    pub name: String,
    pub data_type: i32,
    pub dims: Vec<u64>,
    /// Feeds only weight inputs (directly or through Reshape/Transpose/...).
    pub weight: bool,
    pub moments: Moments,
    /// Order-0 entropy of the raw bit patterns, bits per value.
    pub raw_entropy: f64,
}

/// The whole model.
#[derive(Debug, Clone)]
pub struct ModelProfile {
    pub tensors: Vec<TensorProfile>,
    /// Whether the totals and the fit cover weight tensors only.
    pub weights_only: bool,
    /// Moments of every value in the totals.
    pub total: Moments,
    /// Order-0 entropy of the raw bit patterns of the totals' values, bits per value (one
    /// histogram over the model; patterns of different float types are distinct symbols).
    pub raw_entropy: f64,
    pub fit: DistributionFit,
}

/// Analyzes a parsed model. `base_dir` is where external data files live.
pub fn profile_model(
    mut model: ModelProto,
    base_dir: Option<&Path>,
    opts: &ProfileOptions,
) -> Result<ModelProfile> {
    let consumers = Consumers::of(&model);
    let depth = opts.max_depth.unwrap_or(crate::Limits::default().max_depth);
    let lifted = lift(&mut model, base_dir, depth)?;
    let mut tensors = Vec::new();
    let mut all: Vec<f64> = Vec::new();
    // Raw patterns of the totals, one list per float type.
    let mut patterns: Vec<(i32, Vec<u64>)> = Vec::new();
    for t in &lifted {
        if !dtype::is_float(t.data_type) || matches!(t.storage, Storage::Inline) || t.elements == 0
        {
            continue;
        }
        let Some(values) = float_values(t.data_type, &t.data) else {
            continue;
        };
        let Some(mut bits) = bit_patterns(t.data_type, &t.data) else {
            continue;
        };
        let weight = consumers.is_weight(&t.name);
        let moments = Moments::of(&values);
        let in_total = weight || !opts.weights_only;
        if in_total {
            all.extend_from_slice(&values);
            match patterns.iter_mut().find(|(d, _)| *d == t.data_type) {
                Some((_, p)) => p.extend_from_slice(&bits),
                None => patterns.push((t.data_type, bits.clone())),
            }
        }
        bits.sort_unstable();
        tensors.push(TensorProfile {
            name: t.name.clone(),
            data_type: t.data_type,
            dims: t.dims.clone(),
            weight,
            moments,
            raw_entropy: entropy_per_symbol(run_counts(&bits)),
        });
    }
    drop(lifted);
    if all.is_empty() {
        return Err(Error::Unsupported {
            detail: if opts.weights_only {
                "the model has no float weight tensors to analyze".into()
            } else {
                "the model has no float tensors to analyze".into()
            },
        });
    }
    let mut counts = Vec::new();
    for (_, p) in &mut patterns {
        p.sort_unstable();
        counts.extend(run_counts(p));
    }
    drop(patterns);
    let total = Moments::of(&all);
    let fit = fit_all(&all, opts.bins, opts.sigmas);
    Ok(ModelProfile {
        tensors,
        weights_only: opts.weights_only,
        total,
        raw_entropy: entropy_per_symbol(counts),
        fit,
    })
}

/// Reads, parses and analyzes an ONNX file.
pub fn profile_file(path: &Path, opts: &ProfileOptions) -> Result<ModelProfile> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let model = parse_model(&bytes)?;
    drop(bytes);
    profile_model(model, path.parent(), opts)
}

fn num(v: f64) -> serde_json::Value {
    // JSON has no NaN or infinity.
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

fn moments_json(m: &Moments) -> serde_json::Value {
    serde_json::json!({
        "count": m.count, "nonfinite": m.nonfinite, "min": num(m.min), "max": num(m.max),
        "mean": num(m.mean), "std": num(m.std), "skewness": num(m.skewness),
        "excess_kurtosis": num(m.excess_kurtosis), "zeros": m.zeros, "sparsity": m.sparsity(),
    })
}

impl ModelProfile {
    /// Float values in the totals.
    pub fn values(&self) -> u64 {
        self.total.count
    }

    /// One JSON object: `model` (totals), `tensors`, `distribution` (histogram window, fits
    /// with parameters, method, SSE and KL, and both rankings).
    pub fn to_json(&self) -> serde_json::Value {
        let tensors: Vec<_> = self
            .tensors
            .iter()
            .map(|t| {
                let mut v = moments_json(&t.moments);
                v["name"] = serde_json::json!(t.name);
                v["dtype"] = serde_json::json!(dtype::name(t.data_type));
                v["dims"] = serde_json::json!(t.dims);
                v["weight"] = serde_json::json!(t.weight);
                v["raw_entropy_bits"] = num(t.raw_entropy);
                v
            })
            .collect();
        let f = &self.fit;
        let fits: Vec<_> = f
            .fits
            .iter()
            .map(|x| {
                let params: serde_json::Map<String, serde_json::Value> = x
                    .density
                    .params()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), num(v)))
                    .collect();
                serde_json::json!({
                    "distribution": x.candidate.name(), "method": x.candidate.method(),
                    "params": params, "sse": num(x.sse), "kl": num(x.kl),
                })
            })
            .collect();
        let names = |idx: &[usize]| -> Vec<&str> {
            idx.iter().map(|&i| f.fits[i].candidate.name()).collect()
        };
        let mut model = moments_json(&self.total);
        model["raw_entropy_bits"] = num(self.raw_entropy);
        model["float_tensors"] = serde_json::json!(self.tensors.len());
        model["weights_only"] = serde_json::json!(self.weights_only);
        serde_json::json!({
            "model": model,
            "tensors": tensors,
            "distribution": {
                "histogram": {
                    "bins": f.histogram.bins(), "lo": f.histogram.lo, "hi": f.histogram.hi,
                    "inside": f.histogram.inside(), "total": f.histogram.total,
                },
                "sse": "sum over bins of (histogram density - fitted bin-averaged density)^2 (eq. 2.9)",
                "kl": "D_KL(histogram || fit) in nats over the histogram window, Q floored at 1e-12 (eq. 2.41)",
                "fits": fits,
                "ranking_sse": names(&f.by_sse),
                "ranking_kl": names(&f.by_kl),
            }
        })
    }
}
