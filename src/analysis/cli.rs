//! Command-line front ends of `nnc analyze` and `nnc sweep` (clap argument structs that the
//! binary flattens into its subcommands), and their text / JSON / CSV / SVG output.
use std::io::Write;
use std::path::{Path, PathBuf};

use super::evaluator::Evaluator;
use super::plot::{histogram_svg, rate_distortion_svg, RdAxis};
use super::profile::{profile_file, ModelProfile, ProfileOptions};
use super::sweep::{best_within, grid, Grid, Point, Prepared, Rate};
use crate::error::{Error, Result};
use crate::onnx::dtype;

/// `nnc analyze`: weight statistics and distribution fits (thesis §3.3–3.4, Tables 3.2, 3.3,
/// 3.8).
#[derive(clap::Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Draw the histogram of the weights with the fitted densities (linear y, window
    /// mean ± 6 std) to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Histogram bins of the distribution comparison (default: the Freedman–Diaconis rule,
    /// bin width 2·IQR·n^(-1/3), clamped to 50..=5000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(4..=100_000))]
    pub bins: Option<u32>,
    /// Model totals and the fit over weight tensors only (inputs of Conv, Gemm, MatMul, ...)
    /// instead of every float tensor (the thesis's "all weights and biases").
    #[arg(long)]
    pub weights_only: bool,
    /// Leave out the per-tensor table (text output).
    #[arg(long)]
    pub no_tensors: bool,
}

/// `nnc sweep`: the thesis's rate–distortion sweep through the real encoder (§3.5–3.7,
/// Tables 3.9/3.10).
#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (one row per setting) instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Draw the rate–distortion curves (entropy vs task metric with --eval, else vs weight
    /// MSE) to this SVG file, one polyline per quantizer family and mode.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Evaluate every setting: decode it to a temporary ONNX file and run this command with
    /// `sh -c`, `{model}` replaced by the file's path (quoted for the shell when needed). The
    /// metric is the "metric" field of a JSON object printed on stdout (whole or last line),
    /// else the last number on stdout. The original model is evaluated once the same way.
    /// Example: --eval 'python3 tools/metric.py ORIGINAL.onnx {model}'.
    #[arg(long, value_name = "COMMAND")]
    pub eval: Option<String>,
    /// Pick the smallest-rate setting whose metric is at most X below the original's
    /// (absolute, in the metric's units: 0.01 is one point of accuracy on a [0, 1] scale).
    /// Printed for two rates: the thesis's entropy H and the real file size.
    #[arg(long, value_name = "X", requires = "eval")]
    pub max_drop: Option<f64>,
    /// The metric is an error or loss (lower is better): a drop is an increase.
    #[arg(long)]
    pub lower_is_better: bool,
    /// Which grid: `thesis` (every quantizer of §3.5 at 2^2..2^16 levels over [-1, 1] and the
    /// 13 minifloat layouts, on every float tensor as the thesis did and on weight tensors
    /// only; and per-channel σ/4..σ/64 steps: 266 settings) or `quick` (10 settings).
    #[arg(long, value_enum, default_value = "thesis")]
    pub grid: GridArg,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridArg {
    Thesis,
    Quick,
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(what.to_owned(), e)
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn truncate(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        s.to_owned()
    } else {
        let tail: String = s.chars().skip(count - (n - 1)).collect();
        format!("…{tail}")
    }
}

impl AnalyzeArgs {
    /// Runs the command, printing to stdout.
    pub fn run(&self) -> Result<()> {
        self.execute(&mut std::io::stdout().lock())
    }

    /// Runs the command, printing to `out`.
    pub fn execute(&self, out: &mut dyn Write) -> Result<()> {
        let opts = ProfileOptions {
            bins: self.bins.map(|b| b as usize),
            weights_only: self.weights_only,
            ..ProfileOptions::default()
        };
        let p = profile_file(&self.model, &opts)?;
        if let Some(svg) = &self.plot {
            let title = format!(
                "{}: {} weights, histogram and fitted densities",
                file_name(&self.model),
                p.values()
            );
            write_file(svg, &histogram_svg(&p.fit, &title))?;
        }
        let e = io_err("writing the analysis");
        if self.json {
            let mut v = p.to_json();
            v["path"] = serde_json::json!(self.model.display().to_string());
            writeln!(out, "{v}").map_err(e)?;
        } else {
            self.print(&p, out).map_err(e)?;
        }
        Ok(())
    }

    fn print(&self, p: &ModelProfile, out: &mut dyn Write) -> std::io::Result<()> {
        if !self.no_tensors {
            writeln!(
                out,
                "{:<40} {:>8} {:>3} {:>9} {:>11} {:>11} {:>11} {:>10} {:>7} {:>7}",
                "tensor", "dtype", "w", "count", "min", "max", "mean", "std", "zeros%", "H_raw"
            )?;
            for t in &p.tensors {
                let m = &t.moments;
                writeln!(
                    out,
                    "{:<40} {:>8} {:>3} {:>9} {:>11.4e} {:>11.4e} {:>11.4e} {:>10.4e} {:>7.2} {:>7.3}",
                    truncate(&t.name, 40),
                    dtype::name(t.data_type),
                    if t.weight { "w" } else { "-" },
                    m.count,
                    m.min,
                    m.max,
                    m.mean,
                    m.std,
                    100.0 * m.sparsity(),
                    t.raw_entropy
                )?;
            }
            writeln!(
                out,
                "(w: feeds a weight input; H_raw: order-0 entropy of the raw bit patterns, bits/value)\n"
            )?;
        }
        let m = &p.total;
        writeln!(
            out,
            "{}: {} float tensors; {} ({} values)",
            file_name(&self.model),
            p.tensors.len(),
            if p.weights_only {
                "totals over weight tensors"
            } else {
                "totals over every float tensor"
            },
            m.count
        )?;
        writeln!(
            out,
            "  min {:.6e}  max {:.6e}  mean {:.6e}  std {:.6e}  skewness {:.3}  excess kurtosis {:.3}",
            m.min, m.max, m.mean, m.std, m.skewness, m.excess_kurtosis
        )?;
        writeln!(
            out,
            "  sparsity {:.4} % exact zeros; raw order-0 entropy H = {:.3} bits/weight (Table 3.8), CR = 32/H = {:.3}",
            100.0 * m.sparsity(),
            p.raw_entropy,
            32.0 / p.raw_entropy
        )?;
        let f = &p.fit;
        let h = &f.histogram;
        writeln!(
            out,
            "\ndistribution fit (Tables 3.2/3.3): histogram of {} bins over [{:.4e}, {:.4e}] (mean ± 6 std), {:.3} % of values inside",
            h.bins(),
            h.lo,
            h.hi,
            100.0 * h.inside() as f64 / h.total.max(1) as f64
        )?;
        writeln!(
            out,
            "{:>3} {:<13} {:>6} {:>12} {:>12}  {:<44} parameters",
            "KL#", "distribution", "SSE#", "SSE", "KL (nats)", "fit"
        )?;
        for (rank, &i) in f.by_kl.iter().enumerate() {
            let x = &f.fits[i];
            let sse_rank = f.by_sse.iter().position(|&j| j == i).unwrap_or(0) + 1;
            let params: Vec<String> = x
                .density
                .params()
                .iter()
                .map(|(k, v)| format!("{k}={v:.4e}"))
                .collect();
            writeln!(
                out,
                "{:>3} {:<13} {:>6} {:>12.4e} {:>12.4e}  {:<44} {}",
                rank + 1,
                x.candidate.name(),
                sse_rank,
                x.sse,
                x.kl,
                x.candidate.method(),
                params.join(" ")
            )?;
        }
        let names = |idx: &[usize]| -> String {
            idx.iter()
                .map(|&i| f.fits[i].candidate.name())
                .collect::<Vec<_>>()
                .join(" > ")
        };
        writeln!(out, "ranking by SSE: {}", names(&f.by_sse))?;
        writeln!(out, "ranking by KL:  {}", names(&f.by_kl))?;
        Ok(())
    }
}

fn num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

fn opt(v: Option<f64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, num)
}

/// A finished sweep.
pub struct SweepResult {
    pub raw_entropy: f64,
    pub float_params: u64,
    pub original_bytes: u64,
    pub original_metric: Option<f64>,
    pub points: Vec<Point>,
}

impl SweepArgs {
    /// Runs the command, printing to stdout (progress on stderr).
    pub fn run(&self) -> Result<()> {
        self.execute(&mut std::io::stdout().lock())
    }

    /// Runs the command, printing to `out` (progress on stderr unless `quiet`).
    pub fn execute(&self, out: &mut dyn Write) -> Result<()> {
        let r = self.sweep()?;
        if let Some(svg) = &self.plot {
            let axis = if r.original_metric.is_some() {
                RdAxis::Metric
            } else {
                RdAxis::Mse
            };
            let title = format!("{}: rate-distortion", file_name(&self.model));
            write_file(
                svg,
                &rate_distortion_svg(&r.points, axis, r.original_metric, &title),
            )?;
        }
        let e = io_err("writing the sweep");
        if self.json {
            writeln!(out, "{}", self.json_of(&r)).map_err(e)?;
        } else if self.csv {
            self.print_csv(&r, out).map_err(e)?;
        } else {
            self.print_table(&r, out).map_err(e)?;
        }
        Ok(())
    }

    /// Encodes (and evaluates) every setting of the grid.
    pub fn sweep(&self) -> Result<SweepResult> {
        let prep = Prepared::from_file(&self.model)?;
        let evaluator = match &self.eval {
            Some(cmd) => Some(Evaluator::new(cmd, &self.model)?),
            None => None,
        };
        let original_metric = match &evaluator {
            Some(ev) => Some(ev.run(&self.model).map_err(|detail| Error::Unsupported {
                detail: format!("evaluating the original model: {detail}"),
            })?),
            None => None,
        };
        if let (Some(m), false) = (original_metric, self.quiet) {
            eprintln!("original model: metric {m}");
        }
        let settings = grid(match self.grid {
            GridArg::Thesis => Grid::Thesis,
            GridArg::Quick => Grid::Quick,
        });
        let mut points = Vec::with_capacity(settings.len());
        // On a terminal a bar, with each setting's line printed above it; elsewhere the lines.
        let bar = crate::progress::bar(!self.quiet, settings.len() as u64, "sweep", false);
        let say = |line: String| match &bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        };
        for (i, s) in settings.iter().enumerate() {
            if let Some(b) = &bar {
                b.set_position(i as u64);
            }
            let t = std::time::Instant::now();
            let (mut p, bytes) = match prep.encode(s) {
                Ok(x) => x,
                Err(err) => {
                    say(format!(
                        "{} {} {}: encoding failed: {err}",
                        s.mode_name(),
                        s.method(),
                        s.levels()
                    ));
                    continue;
                }
            };
            if let Some(ev) = &evaluator {
                let decoded = crate::decode_to_bytes(
                    std::io::Cursor::new(&bytes),
                    crate::DecodeOptions::default(),
                )
                .map_err(|err| err.to_string());
                match decoded.and_then(|onnx| ev.run_bytes(&onnx)) {
                    Ok(m) => p.metric = Some(m),
                    Err(err) => p.eval_error = Some(err),
                }
            }
            p.seconds = t.elapsed().as_secs_f64();
            if !self.quiet {
                let metric = match (&p.metric, &p.eval_error) {
                    (Some(m), _) => format!(", metric {m:.4}"),
                    (None, Some(err)) => format!(", evaluation failed: {}", truncate(err, 120)),
                    _ => String::new(),
                };
                say(format!(
                    "[{:>3}/{}] {} {} {}: H {:.3} b/w, CR {:.2}, {} bytes, MSE {:.3e}{metric} ({:.1} s)",
                    i + 1,
                    settings.len(),
                    s.mode_name(),
                    s.method(),
                    s.levels(),
                    p.entropy,
                    p.cr(),
                    p.file_bytes,
                    p.mse,
                    p.seconds
                ));
            }
            points.push(p);
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(SweepResult {
            raw_entropy: prep.raw_entropy,
            float_params: prep.float_params,
            original_bytes: prep.original_bytes,
            original_metric,
            points,
        })
    }

    fn best(&self, r: &SweepResult, rate: Rate) -> Option<usize> {
        let (orig, drop) = (r.original_metric?, self.max_drop?);
        best_within(&r.points, orig, drop, self.lower_is_better, rate)
    }

    fn point_json(&self, r: &SweepResult, p: &Point) -> serde_json::Value {
        let s = &p.setting;
        serde_json::json!({
            "mode": s.mode_name(), "method": s.method(), "levels": s.levels(), "curve": s.curve(),
            "quantized_tensors": p.quantized_tensors, "quantized_weights": p.quantized_weights,
            "entropy": num(p.entropy), "entropy_per_tensor": num(p.entropy_per_tensor),
            "cr": num(p.cr()), "re": num(p.re()), "coded_bits_per_weight": num(p.coded_bits),
            "file_bytes": p.file_bytes, "mse": num(p.mse), "sqnr_db": num(p.sqnr_db),
            "metric": opt(p.metric),
            "drop": opt(r.original_metric.and_then(|o| p.drop(o, self.lower_is_better))),
            "eval_error": p.eval_error, "seconds": p.seconds,
        })
    }

    /// One JSON object: the model, the original metric, every point, and the selections.
    pub fn json_of(&self, r: &SweepResult) -> serde_json::Value {
        let pick = |rate| {
            self.best(r, rate).map_or(serde_json::Value::Null, |i| {
                self.point_json(r, &r.points[i])
            })
        };
        serde_json::json!({
            "path": self.model.display().to_string(),
            "original_bytes": r.original_bytes,
            "float_params": r.float_params,
            "raw_entropy": num(r.raw_entropy),
            "grid": format!("{:?}", self.grid).to_lowercase(),
            "eval": self.eval,
            "original_metric": opt(r.original_metric),
            "lower_is_better": self.lower_is_better,
            "max_drop": self.max_drop,
            "points": r.points.iter().map(|p| self.point_json(r, p)).collect::<Vec<_>>(),
            "best_by_entropy": pick(Rate::Entropy),
            "best_by_file_bytes": pick(Rate::FileBytes),
        })
    }

    fn print_csv(&self, r: &SweepResult, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "mode,method,levels,quantized_tensors,quantized_weights,entropy,entropy_per_tensor,cr,re,coded_bits_per_weight,file_bytes,mse,sqnr_db,metric,drop,eval_error")?;
        let f = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x}"));
        for p in &r.points {
            let s = &p.setting;
            let err = p.eval_error.as_deref().unwrap_or("").replace('"', "\"\"");
            writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"",
                s.mode_name(),
                s.method(),
                s.levels(),
                p.quantized_tensors,
                p.quantized_weights,
                p.entropy,
                p.entropy_per_tensor,
                p.cr(),
                p.re(),
                p.coded_bits,
                p.file_bytes,
                p.mse,
                p.sqnr_db,
                f(p.metric),
                f(r.original_metric
                    .and_then(|o| p.drop(o, self.lower_is_better))),
                err
            )?;
        }
        Ok(())
    }

    fn print_table(&self, r: &SweepResult, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{}: {} bytes, {} float parameters, raw order-0 entropy {:.3} bits/weight{}",
            file_name(&self.model),
            r.original_bytes,
            r.float_params,
            r.raw_entropy,
            r.original_metric
                .map_or(String::new(), |m| format!(", original metric {m}"))
        )?;
        let with_metric = r.original_metric.is_some();
        write!(
            out,
            "{:<11} {:<18} {:>7} {:>9} {:>8} {:>8} {:>8} {:>6} {:>9} {:>10} {:>10} {:>7}",
            "mode",
            "method",
            "levels",
            "weights",
            "H",
            "H_tens",
            "CR",
            "RE",
            "coded b/w",
            "file B",
            "MSE",
            "SQNR"
        )?;
        if with_metric {
            write!(out, " {:>9} {:>8}", "metric", "drop")?;
        }
        writeln!(out)?;
        for p in &r.points {
            self.row(r, p, out)?;
        }
        writeln!(out, "(thesis: range [-1, 1], 2^k levels, every float tensor (section 3.5); thesis-w: the same on weight tensors only;\n per-channel: step sigma/d per output channel on weight tensors (nnc's default policy). weights: quantized weights;\n H: order-0 entropy of all quantized levels of the model, eq. 2.31, bits/weight; H_tens: mean of per-tensor entropies;\n CR = 32/H, RE = (32 - H)/32 (eqs. 3.1, 3.2); coded b/w: real payload bits per quantized weight; file B: whole .nnc file)")?;
        if let (Some(orig), Some(drop)) = (r.original_metric, self.max_drop) {
            writeln!(
                out,
                "\nbest settings with a metric drop <= {drop} (original {orig}; {} is better), as in Tables 3.9/3.10:",
                if self.lower_is_better { "lower" } else { "higher" }
            )?;
            writeln!(
                out,
                "{:<14} {:<11} {:<18} {:>7} {:>16} {:>7} {:>6} {:>9} {:>10} {:>9} {:>8}",
                "criterion",
                "mode",
                "method",
                "levels",
                "H (reduction)",
                "CR",
                "RE",
                "coded b/w",
                "file B",
                "metric",
                "drop"
            )?;
            for (name, rate) in [
                ("smallest H", Rate::Entropy),
                ("smallest file", Rate::FileBytes),
            ] {
                match self.best(r, rate) {
                    Some(i) => {
                        let p = &r.points[i];
                        let s = &p.setting;
                        writeln!(
                            out,
                            "{:<14} {:<11} {:<18} {:>7} {:>16} {:>7.2} {:>6.3} {:>9.3} {:>10} {:>9.4} {:>8.4}",
                            name,
                            s.mode_name(),
                            s.method(),
                            s.levels(),
                            format!("{:.3} ({:.3})", p.entropy, r.raw_entropy - p.entropy),
                            p.cr(),
                            p.re(),
                            p.coded_bits,
                            p.file_bytes,
                            p.metric.unwrap_or(f64::NAN),
                            p.drop(orig, self.lower_is_better).unwrap_or(f64::NAN)
                        )?;
                    }
                    None => writeln!(out, "{name:<14} no setting is within the allowed drop")?,
                }
            }
        }
        Ok(())
    }

    fn row(&self, r: &SweepResult, p: &Point, out: &mut dyn Write) -> std::io::Result<()> {
        let s = &p.setting;
        write!(
            out,
            "{:<11} {:<18} {:>7} {:>9} {:>8.4} {:>8.4} {:>8.2} {:>6.3} {:>9.4} {:>10} {:>10.3e} {:>7.2}",
            s.mode_name(),
            s.method(),
            s.levels(),
            p.quantized_weights,
            p.entropy,
            p.entropy_per_tensor,
            p.cr(),
            p.re(),
            p.coded_bits,
            p.file_bytes,
            p.mse,
            p.sqnr_db
        )?;
        if let Some(orig) = r.original_metric {
            match p.metric {
                Some(m) => write!(
                    out,
                    " {:>9.4} {:>8.4}",
                    m,
                    p.drop(orig, self.lower_is_better).unwrap_or(f64::NAN)
                )?,
                None => write!(out, " {:>9} {:>8}", "failed", "-")?,
            }
        }
        writeln!(out)
    }
}
