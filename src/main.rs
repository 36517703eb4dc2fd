//! The `nnc` command line: argument parsing and printing only; every action is a library call.

/// `println!` to standard output, except that a closed pipe (`nnc inspect F | head`) ends
/// the program quietly with status 0 instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        stdout_result(writeln!(std::io::stdout(), $($t)*));
    }};
}

/// `print!` with the same handling of a closed pipe as `outln!`.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        stdout_result(write!(std::io::stdout(), $($t)*));
    }};
}

/// Exits quietly when the reader of standard output has gone away; other write errors are
/// reported and end the program with status 1.
fn stdout_result(r: std::io::Result<()>) {
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("nnc: error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use nnc::{DecodeOptions, Decoder, EncodeOptions, Limits};

/// `--fine-bits` when not given: the mantissa bits kept of biases and normalization
/// parameters (measured: README, "Biases and normalization parameters").
const DEFAULT_FINE_BITS: u8 = 12;

#[derive(Parser)]
#[command(
    name = "nnc",
    version,
    about = "Compress ONNX neural-network models (codec and container format)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct LimitArgs {
    /// Largest total of decoded bytes the decoder may allocate.
    #[arg(long, value_name = "BYTES")]
    max_alloc: Option<u64>,
    /// Largest ratio of decoded bytes to file bytes read (zip-bomb guard).
    #[arg(long, value_name = "RATIO")]
    max_expansion: Option<u64>,
    /// Largest number of tensors.
    #[arg(long, value_name = "N")]
    max_tensors: Option<u64>,
    /// Largest element count of one tensor.
    #[arg(long, value_name = "N")]
    max_elements: Option<u64>,
    /// The base of an update (spec §14): its .onnx, or its .nnc. Repeat for a chain, root
    /// first (each .nnc decoded against the one before it).
    #[arg(long, value_name = "FILE")]
    base: Vec<PathBuf>,
}

impl LimitArgs {
    /// The base chain given with `--base`, opened (`None` without one).
    fn base(&self) -> nnc::Result<Option<std::sync::Arc<nnc::BaseModel>>> {
        if self.base.is_empty() {
            return Ok(None);
        }
        nnc::BaseModel::open_chain(&self.base, self.options()).map(Some)
    }

    fn options(&self) -> DecodeOptions {
        let mut l = Limits::default();
        if let Some(v) = self.max_alloc {
            l.max_alloc = v;
        }
        if let Some(v) = self.max_expansion {
            l.max_expansion = v;
        }
        if let Some(v) = self.max_tensors {
            l.max_tensors = v;
        }
        if let Some(v) = self.max_elements {
            l.max_elements = v;
        }
        DecodeOptions {
            limits: l,
            ..DecodeOptions::default()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum QuantizerArg {
    /// Uniform, zero is a level: q = round(x/Δ) (thesis eq. 2.21/2.22).
    Midtread,
    /// Uniform, no zero level: q = s(x)·ceil(|x|/Δ) (eq. 2.23/2.24).
    Midrise,
    /// Uniform with a dead zone of relative size δ (eq. 2.25/2.26); δ = 0.5 is midtread.
    Deadzone,
    /// μ-law companding, then uniform (eq. 2.27/2.28).
    Mulaw,
    /// Minifloat with --exp-bits/--man-bits (eq. 2.29/2.30).
    Minifloat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GranularityArg {
    Channel,
    Tensor,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum QualityArg {
    /// Output SNR target 42 dB on the calibration inputs (without a runtime: step σ/32 of
    /// each output channel).
    High,
    /// The default: output SNR target 36 dB on the synthetic calibration inputs, measured to
    /// keep every corpus model at 30 dB or more on real inputs (README); without a runtime:
    /// σ/16.
    Default,
    /// Output SNR target 30 dB (without a runtime: σ/8); check decisions with
    /// tools/evaluate.py.
    Small,
}

impl QualityArg {
    fn snr_db(self) -> f64 {
        match self {
            QualityArg::High => nnc_default_snr() + 6.0,
            QualityArg::Default => nnc_default_snr(),
            QualityArg::Small => nnc_default_snr() - 6.0,
        }
    }
}

#[cfg(feature = "runtime")]
fn nnc_default_snr() -> f64 {
    nnc::runtime::DEFAULT_SNR_DB
}
#[cfg(not(feature = "runtime"))]
fn nnc_default_snr() -> f64 {
    36.0
}

/// What the encoder aims at when it runs the model.
#[derive(clap::Args, Clone)]
struct TargetArgs {
    /// Fidelity target checked on the decoded model: `snr=DB` (every float output's SNR on
    /// the calibration inputs, its values counted around their mean unless all lie in
    /// [0, 1]) or `agreement=F` (decisions of the first output: argmax over its last axis).
    /// The default is the --quality preset's SNR.
    #[arg(long, value_name = "snr=DB|agreement=F")]
    target: Option<String>,
    /// Size budget: the least output distortion whose file fits in BYTES (with --base, the
    /// update's size). Never a file over it: an error when no allocation fits.
    #[arg(long, value_name = "BYTES")]
    size: Option<u64>,
    /// Size budget: the least output distortion at B bits per quantized weight.
    #[arg(long, value_name = "B")]
    bpw: Option<f64>,
    /// Calibration inputs: ONNX test-data directories (DIR/test_data_set_*/input_*.pb),
    /// DIR/*.npz (one set per file, arrays named by input) or DIR/NAME.npy per input
    /// (samples along the first axis). Without it, synthetic inputs (see README).
    #[arg(long, value_name = "DIR")]
    calibrate: Option<PathBuf>,
    /// Shape of a synthetic input: NAME=D,D,... (repeatable); dynamic dimensions default to
    /// batch 1, 224x224 images, 16-token sequences (see README).
    #[arg(long, value_name = "NAME=DIMS")]
    input_shape: Vec<String>,
    /// Number of synthetic calibration inputs.
    #[arg(long, value_name = "N", default_value_t = 8)]
    calibration_inputs: usize,
    /// Steps from the weights alone (σ fraction per channel, --quality or --per-tensor),
    /// without running the model.
    #[arg(long)]
    weight_domain: bool,
    /// With --calibrate: keep the biases as they are (by default the bias after each
    /// quantized layer is corrected for the mean shift of the layer's outputs on the
    /// calibration inputs).
    #[arg(long)]
    no_bias_correction: bool,
    /// With --calibrate: round every weight to its nearest level (by default the weights of
    /// convolutions and matrix products are rounded so that their errors cancel on the
    /// layer's inputs as measured on the calibration inputs).
    #[arg(long)]
    no_compensation: bool,
    /// Leave every convolution kernel at its nearest levels. By default, with synthetic inputs
    /// and an SNR target, the file the search found is coded again with each kernel's error
    /// sum kept within half a step (as --kernel-sums does) and kept when the decoded model
    /// still meets the target and measures no worse on the calibration inputs: same size,
    /// inputs' means no longer shift the layers' outputs (README)
    #[arg(long, conflicts_with = "kernel_sums")]
    no_kernel_sums: bool,
    /// Leave tensors of weak effect on the calibration inputs (10^-6 to 10^-4 of the strongest
    /// tensor's, outside branches and recurrences) at the fallback step. By default, with an
    /// SNR target, a second search measures them too and its file is kept when it meets the
    /// target with fewer bytes (README, "Weak tensors")
    #[arg(long)]
    no_weak_search: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[cfg(feature = "runtime")]
impl TargetArgs {
    /// The calibration settings, or `None` for the weight-domain rule.
    fn options(
        &self,
        quality: Option<QualityArg>,
    ) -> Result<nnc::runtime::CalibrationOptions, String> {
        use nnc::container::fidelity::Target;
        let given = [
            self.target.is_some(),
            self.size.is_some(),
            self.bpw.is_some(),
        ];
        if given.iter().filter(|&&b| b).count() > 1 {
            return Err("give at most one of --target, --size, --bpw".into());
        }
        let target = if let Some(t) = &self.target {
            let (k, v) = t
                .split_once('=')
                .ok_or("--target must be snr=DB or agreement=F")?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("--target {t}: not a number"))?;
            match k.trim() {
                "snr" if v.is_finite() && v > 0.0 && v <= 200.0 => Target::Snr(v),
                "agreement" if (0.0..=1.0).contains(&v) => Target::Agreement(v),
                _ => {
                    return Err(format!(
                        "--target {t}: need snr=DB (0 < DB <= 200) or agreement=F (0 <= F <= 1)"
                    ))
                }
            }
        } else if let Some(b) = self.size {
            if b == 0 {
                return Err("--size must be positive".into());
            }
            Target::Bytes(b as f64)
        } else if let Some(b) = self.bpw {
            if !(b > 0.0 && b.is_finite()) {
                return Err(format!("--bpw {b} must be positive"));
            }
            Target::BitsPerWeight(b)
        } else {
            Target::Snr(quality.unwrap_or(QualityArg::Default).snr_db())
        };
        let mut input_shapes = std::collections::HashMap::new();
        for s in &self.input_shape {
            let (name, dims) = s
                .split_once('=')
                .ok_or_else(|| format!("--input-shape {s}: need NAME=D,D,..."))?;
            let dims: Vec<i64> = dims
                .split(',')
                .filter(|d| !d.trim().is_empty())
                .map(|d| d.trim().parse::<i64>().ok().filter(|&v| v >= 0))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("--input-shape {s}: dimensions must be integers >= 0"))?;
            input_shapes.insert(name.to_owned(), dims);
        }
        if self.calibration_inputs == 0 || self.calibration_inputs > 4096 {
            return Err("--calibration-inputs must be in 1..=4096".into());
        }
        Ok(nnc::runtime::CalibrationOptions {
            target,
            dir: self.calibrate.clone(),
            input_shapes,
            synthetic_inputs: self.calibration_inputs,
            progress: !self.quiet,
            bias_correction: !self.no_bias_correction,
            compensation: !self.no_compensation,
            final_kernel_sums: !self.no_kernel_sums,
            weak_search: !self.no_weak_search,
            ..Default::default()
        })
    }
}

/// Lossy coding (the default): which quantizer, which step, which tensors.
#[derive(clap::Args, Clone)]
struct LossyArgs {
    /// Preset for the step when neither --step, --per-tensor nor --levels-bits is given.
    #[arg(long, value_enum)]
    quality: Option<QualityArg>,
    /// Quantizer family.
    #[arg(long, value_enum, default_value = "deadzone")]
    quantizer: QuantizerArg,
    /// Dead-zone relative size δ in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    delta: f32,
    /// μ-law companding parameter μ.
    #[arg(long, default_value_t = 255.0)]
    mu: f32,
    /// Minifloat exponent bits E (IEEE half: 5).
    #[arg(long, default_value_t = 5)]
    exp_bits: u8,
    /// Minifloat mantissa bits M (IEEE half: 10).
    #[arg(long, default_value_t = 10)]
    man_bits: u8,
    /// Thesis mode: 2^K levels over --range for every quantized tensor (2 <= K <= 24).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(2..=24))]
    levels_bits: Option<u32>,
    /// Thesis mode: the one range of the whole model, MIN:MAX.
    #[arg(
        long,
        value_name = "MIN:MAX",
        default_value = "-1:1",
        allow_hyphen_values = true
    )]
    range: String,
    /// One fixed step Δ for every quantized tensor.
    #[arg(long, value_name = "S")]
    step: Option<f32>,
    /// Statistics-derived step: Δ = F·σ, with σ the standard deviation of each output channel
    /// (or of the whole tensor with --granularity tensor). The presets use F = 1/32, 1/16, 1/8.
    #[arg(long, value_name = "F")]
    per_tensor: Option<f32>,
    /// What σ-derived steps are computed over: each output channel (slice along axis 0) or
    /// the whole tensor. Fixed and thesis-mode steps are per tensor.
    #[arg(long, value_enum, default_value = "channel")]
    granularity: GranularityArg,
    /// Rate–distortion optimized levels: move a level toward zero when that lowers
    /// (x − x̂)² + λ·bits, λ = R·Δ² (0 = plain rounding; 0.1155 is the high-rate optimum).
    #[arg(long, value_name = "R", default_value_t = 0.0)]
    rdo: f64,
    /// Near-lossless coding of float32 tensors that are not quantized but feed only arithmetic
    /// inputs (biases, normalization parameters, at least 16 elements): round each mantissa to
    /// M bits (relative error <= 2^-(M+1)), then code losslessly. 12 by default (4 times finer
    /// than float16's 10 bits; the direction classifier's file 9 % smaller, the same SNR on real
    /// inputs: README); 23 keeps them exact.
    #[arg(long, value_name = "M", default_value_t = DEFAULT_FINE_BITS,
          value_parser = clap::value_parser!(u8).range(0..=23))]
    fine_bits: u8,
    /// Round each convolution kernel (taps of one output and one input channel) keeping its
    /// sum within half a step, so that inputs' means do not shift the layer's outputs (spec
    /// §7.6.7; YOLOv8n: +2.9 dB on real images at the same steps; README), in the calibrated
    /// search too (the default applies them to the file its search found) and with
    /// --weight-domain. Pass it to the base's encode and to its updates alike.
    #[arg(long)]
    kernel_sums: bool,
    /// Tensors with fewer elements stay exact.
    #[arg(long, default_value_t = 1024)]
    min_elements: u64,
    /// Quantize every float tensor, whatever operator input it feeds (the thesis's setting;
    /// shape constants and normalization parameters then change and models may break).
    #[arg(long)]
    all_tensors: bool,
}

impl LossyArgs {
    /// The options as given; their ranges are checked by the library
    /// (`LossyOptions::validate`).
    fn options(&self) -> Result<nnc::LossyOptions, String> {
        use nnc::{Family, LossyOptions, MinifloatLayout, Quality, StepRule};
        let family = match self.quantizer {
            QuantizerArg::Midtread => Family::Midtread,
            QuantizerArg::Midrise => Family::Midrise,
            QuantizerArg::Deadzone => Family::DeadZone { delta: self.delta },
            QuantizerArg::Mulaw => Family::MuLaw { mu: self.mu },
            QuantizerArg::Minifloat => Family::Minifloat {
                layout: MinifloatLayout {
                    exp_bits: self.exp_bits,
                    man_bits: self.man_bits,
                },
            },
        };
        let given = [
            self.levels_bits.is_some(),
            self.step.is_some(),
            self.per_tensor.is_some(),
        ];
        if given.iter().filter(|&&b| b).count() > 1 {
            return Err("give at most one of --levels-bits, --step, --per-tensor".into());
        }
        let step = if let Some(k) = self.levels_bits {
            let (a, b) = self
                .range
                .split_once(':')
                .ok_or("--range must be MIN:MAX")?;
            let min: f32 = a.trim().parse().map_err(|_| "bad --range MIN")?;
            let max: f32 = b.trim().parse().map_err(|_| "bad --range MAX")?;
            StepRule::Thesis {
                min,
                max,
                levels_bits: k,
            }
        } else if let Some(s) = self.step {
            StepRule::Fixed(s)
        } else if let Some(f) = self.per_tensor {
            StepRule::StdFraction(f)
        } else {
            let q = match self.quality.unwrap_or(QualityArg::Default) {
                QualityArg::High => Quality::High,
                QualityArg::Default => Quality::Default,
                QualityArg::Small => Quality::Small,
            };
            StepRule::StdFraction(q.std_fraction())
        };
        let o = LossyOptions {
            family,
            step,
            per_channel: self.granularity == GranularityArg::Channel
                && matches!(step, StepRule::StdFraction(_)),
            min_elements: self.min_elements,
            all_tensors: self.all_tensors,
            mulaw_levels_bits: self.levels_bits.unwrap_or(8),
            // 23 mantissa bits are binary32's own: nothing to round.
            fine_bits: (self.fine_bits < 23).then_some(self.fine_bits),
            rdo: self.rdo,
            kernel_sums: self.kernel_sums,
        };
        o.validate().map_err(|e| match e {
            nnc::Error::InvalidOptions { detail } => detail,
            e => e.to_string(),
        })?;
        Ok(o)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Weight statistics and distribution fits of an ONNX model (thesis Tables 3.2, 3.3, 3.8).
    Analyze(nnc::analysis::cli::AnalyzeArgs),
    /// Rate-distortion sweep over the thesis's quantizers, optionally evaluating each setting
    /// (thesis sections 3.5-3.7, Tables 3.9/3.10).
    Sweep(nnc::analysis::cli::SweepArgs),
    /// Encode an ONNX model into a .nnc container.
    Encode {
        input: PathBuf,
        output: PathBuf,
        /// Keep every tensor bit-exact (byte planes, entropy coded); no quantization.
        #[arg(long)]
        lossless: bool,
        /// Give every tensor a record of its own; by default, tensors that cost less in the
        /// graph than in a record (small biases, shape constants) stay in the graph.
        #[arg(long)]
        records_only: bool,
        /// Never use the stream modes added after the first release: the wide rANS layouts
        /// (modes 6 and 7, spec §7.3.5) and split levels (mode 8, §7.3.7). Files that older
        /// decoders can read, decoded about half as fast, and 0 to 14 % larger (PP-OCRv4
        /// det 8 %: its fine steps spread levels over thousands of values).
        #[arg(long)]
        narrow_rans: bool,
        /// Code an update against this base (spec §14): the base's .onnx, or its .nnc (repeat
        /// for a chain, root first). Tensors that decode to the base's bytes become references
        /// and the graph is compressed against the base; `nnc decode --base` restores exactly
        /// what the file without --base decodes to.
        #[arg(long, value_name = "FILE")]
        base: Vec<PathBuf>,
        #[command(flatten)]
        lossy: LossyArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Print a per-tensor table: coding, sizes, and for quantized tensors the quantizer,
        /// weight MSE, SQNR and level entropy; then model totals (bits per weight, CR, RE).
        #[arg(long)]
        report: bool,
        /// Print the report as one JSON object on stdout instead (per tensor and totals).
        #[arg(long)]
        json: bool,
    },
    /// Decode a .nnc container back into an ONNX model.
    Decode {
        input: PathBuf,
        output: PathBuf,
        /// Put external-data tensors into the .onnx file instead of beside it.
        #[arg(long)]
        inline_external: bool,
        /// Wait until the outputs are on the disk before renaming them into place (fsync:
        /// durable across a power loss). Without it, as `zstd -d` or `cp`, the outputs are
        /// still written under temporary names and renamed into place only once complete
        #[arg(long)]
        sync: bool,
        /// No progress bar (there is none when stderr is not a terminal).
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Describe a .nnc container: its tensors and how each is coded.
    Inspect {
        input: PathBuf,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run a conformance suite (see conformance/README.md): decode every vector listed in
    /// DIR/manifest.json and compare with the expected hashes and error classes. Prints one
    /// line per vector; exits with status 1 if any vector fails.
    Conformance {
        /// The suite directory, holding manifest.json.
        #[arg(default_value = "conformance")]
        dir: PathBuf,
    },
    /// Decode one tensor by name through the INDEX (only its record is read) and write it as
    /// a NumPy .npy file.
    Extract {
        input: PathBuf,
        /// The tensor's name (`nnc inspect` lists them).
        name: String,
        /// The .npy file to write.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Check a .nnc container completely (every CRC, every payload) without writing output.
    Verify {
        input: PathBuf,
        /// Print one JSON object: tensors, decoded bytes, seconds spent decoding.
        #[arg(long)]
        json: bool,
        /// No progress bar (there is none when stderr is not a terminal).
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nnc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open(
    path: &PathBuf,
    opts: DecodeOptions,
    base: Option<std::sync::Arc<nnc::BaseModel>>,
) -> nnc::Result<Decoder<std::io::BufReader<std::fs::File>>> {
    Decoder::open_path(path, opts, base)
}

fn run(cli: Cli) -> nnc::Result<()> {
    if matches!(cli.cmd, Cmd::Encode { .. } | Cmd::Decode { .. }) {
        // Ctrl-C or a kill while writing leaves no partial output behind.
        nnc::output::remove_outputs_on_signal()?;
    }
    match cli.cmd {
        Cmd::Analyze(args) => args.run(),
        Cmd::Conformance { dir } => {
            let report = nnc::conformance::run(&dir)?;
            out!("{}", report.table());
            if !report.all_passed() {
                eprintln!(
                    "nnc: {} of {} conformance vectors failed",
                    report.failed(),
                    report.cases.len()
                );
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Sweep(args) => args.run(),
        Cmd::Encode {
            input,
            output,
            lossless,
            records_only,
            narrow_rans,
            base,
            lossy,
            target,
            report,
            json,
        } => {
            let t = Instant::now();
            // The model runs (calibration) unless the steps are given by hand.
            let by_hand = lossy.levels_bits.is_some()
                || lossy.step.is_some()
                || lossy.per_tensor.is_some()
                || target.weight_domain
                || lossless;
            let quality = lossy.quality;
            let in_size = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
            let lossy = if lossless {
                None
            } else {
                Some(
                    lossy
                        .options()
                        .map_err(|detail| nnc::Error::InvalidOptions { detail })?,
                )
            };
            let opts = EncodeOptions {
                lossy,
                records_only,
                lossless: nnc::lossless::LosslessOptions {
                    wide: !narrow_rans,
                    ..Default::default()
                },
                base: if base.is_empty() {
                    None
                } else {
                    Some(nnc::BaseModel::open_chain(&base, DecodeOptions::default())?)
                },
                ..EncodeOptions::default()
            };
            let r = encode(&input, &output, &opts, &target, quality, by_hand)?;
            let secs = t.elapsed().as_secs_f64();
            // The model's size counts its external data, as the ratio's denominator should.
            let in_size = in_size
                + r.tensors
                    .iter()
                    .filter(|t| t.storage == nnc::container::tensor_header::Storage::External)
                    .map(|t| t.data_bytes)
                    .sum::<u64>();
            for note in &r.notes {
                eprintln!("nnc: {note}");
            }
            if json {
                outln!("{}", report_json(&r, in_size, secs));
            } else if report {
                print_report(&r);
            }
            if let Some(f) = &r.fidelity {
                eprintln!(
                    "{}",
                    fidelity_line(
                        f,
                        &r.untargeted_outputs,
                        r.calibration_seconds,
                        r.runtime_seconds
                    )
                );
            }
            eprintln!(
                "{} -> {}: {} -> {} bytes ({:.3}x), {} tensors ({} in the graph), {:.2} s",
                input.display(),
                output.display(),
                in_size,
                r.total_bytes,
                in_size as f64 / r.total_bytes.max(1) as f64,
                r.tensors.len(),
                r.tensors.iter().filter(|t| t.in_graph).count(),
                secs
            );
            Ok(())
        }
        Cmd::Decode {
            input,
            output,
            inline_external,
            sync,
            quiet,
            limits,
        } => {
            let t = Instant::now();
            let len = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
            let bar = nnc::progress::bar(!quiet, len, "decoding", true);
            nnc::decoder::decode_file_with_progress(
                &input,
                &output,
                limits.options(),
                inline_external,
                limits.base()?,
                sync,
                &mut |read| {
                    if let Some(b) = &bar {
                        b.set_position(read);
                    }
                },
            )?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            eprintln!(
                "{} -> {}: {:.2} s",
                input.display(),
                output.display(),
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Cmd::Inspect {
            input,
            json,
            limits,
        } => inspect(&input, json, limits.options(), limits.base()?),
        Cmd::Extract {
            input,
            name,
            output,
            limits,
        } => {
            let f = std::fs::File::open(&input).map_err(|e| nnc::Error::Io {
                context: format!("opening {}", input.display()),
                source: e,
            })?;
            let t = nnc::Archive::with_base(f, limits.options(), limits.base()?)?.tensor(&name)?;
            let npy = t.to_npy()?;
            let mut w = nnc::output::AtomicFile::create(&output)?.writer();
            std::io::Write::write_all(&mut w, &npy).map_err(|e| nnc::Error::Io {
                context: format!("writing {}", output.display()),
                source: e,
            })?;
            nnc::output::AtomicFile::commit(w)?;
            outln!(
                "{}: {} {:?} ({} bytes) -> {}",
                t.name,
                t.dtype_name(),
                t.dims,
                t.data.len(),
                output.display()
            );
            Ok(())
        }
        Cmd::Verify {
            input,
            json,
            quiet,
            limits,
        } => {
            let t = Instant::now();
            let mut d = open(&input, limits.options(), limits.base()?)?;
            let bar = nnc::progress::bar(!quiet, d.tensor_count() as u64, "verifying", false);
            let (mut n, mut bytes, mut float_bytes) = (0usize, 0u64, 0u64);
            while let Some(t) = d.next_tensor()? {
                if let Some(b) = &bar {
                    b.inc(1);
                }
                n += 1;
                bytes += t.data.len() as u64;
                if nnc::onnx::dtype::is_float(t.data_type) {
                    float_bytes += t.data.len() as u64;
                }
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let secs = t.elapsed().as_secs_f64();
            if json {
                let v = serde_json::json!({
                    "tensors": n, "total_bytes": d.total_bytes(), "decoded_bytes": bytes,
                    "decoded_float_bytes": float_bytes, "seconds": secs,
                    "decoded_MBps": bytes as f64 / 1e6 / secs,
                });
                outln!("{v}");
            } else {
                outln!(
                    "{}: OK ({} tensors, {} bytes; {} bytes of tensor data decoded in {:.3} s, {:.0} MB/s)",
                    input.display(),
                    n,
                    d.total_bytes(),
                    bytes,
                    secs,
                    bytes as f64 / 1e6 / secs
                );
            }
            Ok(())
        }
    }
}

/// Encodes with the runtime unless the steps are given by hand.
#[cfg(feature = "runtime")]
fn encode(
    input: &std::path::Path,
    output: &std::path::Path,
    opts: &EncodeOptions,
    target: &TargetArgs,
    quality: Option<QualityArg>,
    by_hand: bool,
) -> nnc::Result<nnc::EncodeReport> {
    if by_hand {
        if target.target.is_some()
            || target.size.is_some()
            || target.bpw.is_some()
            || target.calibrate.is_some()
        {
            return Err(nnc::Error::InvalidOptions {
                detail:
                    "--target, --size, --bpw and --calibrate run the model; they do not go with \
                         --step, --per-tensor, --levels-bits, --weight-domain or --lossless"
                        .into(),
            });
        }
        return nnc::encode_file(input, output, opts);
    }
    let cal = target
        .options(quality)
        .map_err(|detail| nnc::Error::InvalidOptions { detail })?;
    nnc::encode_file_calibrated(input, output, opts, &cal)
}

#[cfg(not(feature = "runtime"))]
fn encode(
    input: &std::path::Path,
    output: &std::path::Path,
    opts: &EncodeOptions,
    _target: &TargetArgs,
    _quality: Option<QualityArg>,
    by_hand: bool,
) -> nnc::Result<nnc::EncodeReport> {
    let mut r = nnc::encode_file(input, output, opts)?;
    if !by_hand {
        r.notes.push(
            "this nnc was built without the runtime feature: steps follow the weight-domain rule"
                .into(),
        );
    }
    Ok(r)
}

/// "fidelity: target snr=30 on 8 synthetic inputs (onnxruntime 1.23.2, 12.1 s): out 31.2 dB ..."
/// Outputs in `untargeted` are marked: their SNR was reported, not held to the target.
fn fidelity_line(
    f: &nnc::container::fidelity::Fidelity,
    untargeted: &[String],
    secs: f64,
    in_runtime: f64,
) -> String {
    let outs: Vec<String> = f
        .outputs
        .iter()
        .map(|o| {
            let mut s = format!("{} {}", truncate(&o.name, 32), db(o.snr_db));
            if !o.agreement.is_nan() {
                s.push_str(&format!(" (decisions {:.4})", o.agreement));
            }
            if untargeted.contains(&o.name) {
                s.push_str(" [not targeted]");
            }
            s
        })
        .collect();
    format!(
        "fidelity: target {} on {} {} inputs ({}, {:.1} s, {:.1} s of it in the runtime): {}",
        f.target.describe(),
        f.inputs,
        f.source.name(),
        f.runtime,
        secs,
        in_runtime,
        outs.join(", ")
    )
}

/// The FIDELITY record in lines of text.
fn fidelity_text(f: &nnc::container::fidelity::Fidelity) -> String {
    let mut s = format!(
        "fidelity: target {}, measured on {} {} inputs with {}",
        f.target.describe(),
        f.inputs,
        f.source.name(),
        f.runtime
    );
    for o in &f.outputs {
        s.push_str(&format!(
            "\n  {:<44} SNR {}",
            truncate(&o.name, 44),
            db(o.snr_db)
        ));
        if !o.agreement.is_nan() {
            s.push_str(&format!(", decisions agree {:.4}", o.agreement));
        }
    }
    s
}

fn db(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "exact".into()
        } else {
            "differs".into()
        }
    } else {
        format!("{v:.1} dB")
    }
}

fn report_json(r: &nnc::EncodeReport, in_size: u64, secs: f64) -> serde_json::Value {
    let tensors: Vec<serde_json::Value> = r
        .tensors
        .iter()
        .map(|t| {
            let mut v = serde_json::json!({
                "name": t.name, "dtype": nnc::onnx::dtype::name(t.data_type), "elements": t.elements,
                "storage": t.storage.name(), "coding": if t.in_graph { "graph" } else { t.coding.name() },
                "data_bytes": t.data_bytes, "payload_bytes": t.payload_bytes, "in_graph": t.in_graph,
            });
            if let Some(q) = &t.quant {
                v["quantizer"] = serde_json::json!(q.params.kind.name());
                v["mse"] = serde_json::json!(q.mse);
                v["sqnr_db"] = serde_json::json!(q.sqnr_db);
                v["levels"] = serde_json::json!(q.levels);
                v["entropy_bits"] = serde_json::json!(q.entropy_bits);
            }
            v
        })
        .collect();
    let q: Vec<_> = r
        .tensors
        .iter()
        .filter(|t| !t.in_graph)
        .filter_map(|t| t.quant.as_ref().map(|q| (t, q)))
        .collect();
    let weights: u64 = q.iter().map(|(t, _)| t.elements).sum();
    let ent: f64 = q.iter().map(|(_, q)| q.entropy_bits).sum();
    let coded: u64 = q.iter().map(|(t, _)| t.payload_bytes).sum();
    let se: f64 = q.iter().map(|(t, q)| q.mse * t.elements as f64).sum();
    let w = weights.max(1) as f64;
    serde_json::json!({
        "input_bytes": in_size, "total_bytes": r.total_bytes, "graph_bytes": r.graph_bytes, "seconds": secs,
        "calibration_seconds": r.calibration_seconds, "runtime_seconds": r.runtime_seconds,
        "quantized_weights": weights, "entropy_bits_per_weight": ent / w, "coded_bits_per_weight": 8.0 * coded as f64 / w,
        "quantized_payload_bytes": coded, "entropy_bits": ent, "quantized_mse": se / w, "tensors": tensors,
    })
}

fn print_report(r: &nnc::EncodeReport) {
    outln!(
        "{:<40} {:>9} {:>10} {:>10} {:>10} {:>11} {:>8} {:>7} {:>7}",
        "tensor",
        "dtype",
        "coding",
        "bytes",
        "coded",
        "mse",
        "sqnr_dB",
        "levels",
        "H/elem"
    );
    let (mut weights, mut coded_bits, mut ent_bits, mut se) = (0u64, 0f64, 0f64, 0f64);
    for t in &r.tensors {
        let name = truncate(&t.name, 40);
        let dtype = nnc::onnx::dtype::name(t.data_type);
        match &t.quant {
            Some(q) if !t.in_graph => {
                outln!(
                    "{:<40} {:>9} {:>10} {:>10} {:>10} {:>11.3e} {:>8.2} {:>7} {:>7.3}",
                    name,
                    dtype,
                    q.params.kind.name(),
                    t.data_bytes,
                    t.payload_bytes,
                    q.mse,
                    q.sqnr_db,
                    q.levels,
                    q.entropy_bits / t.elements.max(1) as f64
                );
                weights += t.elements;
                coded_bits += 8.0 * t.payload_bytes as f64;
                ent_bits += q.entropy_bits;
                se += q.mse * t.elements as f64;
            }
            _ => outln!(
                "{:<40} {:>9} {:>10} {:>10} {:>10}",
                name,
                dtype,
                if t.in_graph { "graph" } else { t.coding.name() },
                t.data_bytes,
                t.payload_bytes
            ),
        }
    }
    if weights > 0 {
        let h = ent_bits / weights as f64;
        outln!(
            "quantized weights: {weights}; order-0 entropy H = {h:.4} bits/weight (CR = 32/H = {:.2}, RE = {:.2} %); coded {:.4} bits/weight ({:+.2} % vs H); weight MSE {:.3e}",
            32.0 / h,
            100.0 * (32.0 - h) / 32.0,
            coded_bits / weights as f64,
            100.0 * (coded_bits / ent_bits.max(1e-9) - 1.0),
            se / weights as f64
        );
    }
    let all: u64 = r.tensors.iter().map(|t| t.data_bytes).sum();
    outln!(
        "tensor data {all} bytes -> file {} bytes (graph {} bytes)",
        r.total_bytes,
        r.graph_bytes
    );
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

/// Quantizer parameters, distinct levels and level entropy of a quantized tensor.
fn quant_json(t: &nnc::Tensor, base: Option<&nnc::BaseModel>) -> nnc::Result<serde_json::Value> {
    use nnc::quant::{Kind, QuantParams};
    // Residual levels (spec §14.6): flag bit 1 of the params.
    let (params, flags) = nnc::quant::residual::strip_flags(&t.params);
    let residual = flags.residual;
    let elements: u64 = t.dims.iter().product();
    // Residual records are read with the base: the steps may be coded against it, and the
    // levels in context classes computed from it.
    let (p, hist) = if residual {
        let (p, syms) = nnc::quant::residual::tensor_symbols(t, base)?;
        (p, nnc::entropy::histogram(&syms))
    } else {
        (
            QuantParams::parse(&params, 0, &t.dims)?,
            nnc::quant::level_histogram(&t.params, &t.dims, elements, &t.payload)?,
        )
    };
    let mut q = serde_json::json!({ "kind": p.kind.name(), "steps": p.steps });
    if residual {
        q["residual"] = true.into();
    }
    if flags.low_rank {
        q["low_rank"] = true.into();
    }
    if flags.base_steps {
        q["steps_from_base"] = true.into();
    }
    if flags.coded_steps {
        q["steps_coded"] = true.into();
    }
    match p.kind {
        Kind::DeadZone { delta } => q["delta"] = delta.into(),
        Kind::MuLaw { xmax, mu } => {
            q["xmax"] = xmax.into();
            q["mu"] = mu.into();
        }
        Kind::Minifloat { layout, scale_exp } => {
            q["exp_bits"] = layout.exp_bits.into();
            q["man_bits"] = layout.man_bits.into();
            q["scale_exp"] = scale_exp.into();
        }
        Kind::Midtread | Kind::Midrise => {}
    }
    Ok(serde_json::json!({
        "quantizer": q,
        "levels": hist.len(),
        "entropy_bits": nnc::entropy::entropy_bits(&hist),
    }))
}

fn inspect(
    input: &PathBuf,
    json: bool,
    mut opts: DecodeOptions,
    base: Option<std::sync::Arc<nnc::BaseModel>>,
) -> nnc::Result<()> {
    opts.keep_payload = true;
    let mut d = open(input, opts, base.clone())?;
    let base_identity = d.base_identity().map(|b| nnc::base::hex(&b));
    let graph_bytes = d.graph_bytes();
    let mut rows = Vec::new();
    while let Some(t) = d.next_tensor()? {
        let elements: u64 = t.dims.iter().product();
        rows.push(serde_json::json!({
            "name": t.name,
            "dtype": nnc::onnx::dtype::name(t.data_type),
            "dims": t.dims,
            "storage": t.storage.name(),
            "coding": if t.coding == nnc::container::tensor_header::Coding::Quantized { "quantized" } else if t.coding == nnc::container::tensor_header::Coding::Reference { "reference" } else if t.storage == nnc::container::tensor_header::Storage::Inline { "inline" } else { "lossless" },
            "method": t.coding.name(),
            "elements": elements,
                        "payload_bytes": t.payload_bytes,
        }));
        if t.coding == nnc::container::tensor_header::Coding::Quantized {
            let q = quant_json(&t, base.as_deref()).map_err(|e| e.with_tensor(&t.name))?;
            if let (Some(row), serde_json::Value::Object(extra)) =
                (rows.last_mut().and_then(|r| r.as_object_mut()), q)
            {
                row.extend(extra);
            }
        }
    }
    let total = d.total_bytes();
    let fidelity = d.fidelity()?;
    if json {
        let mut v = serde_json::json!({
            "format_version": format!("{}.{}", nnc::container::VERSION_MAJOR, d.minor_version()),
            "total_bytes": total,
            "graph_bytes": graph_bytes,
            "tensors": rows,
        });
        if let Some(b) = &base_identity {
            v["base"] = serde_json::json!(b);
        }
        if let Some(f) = &fidelity {
            v["fidelity"] = nnc::conformance::fidelity_json(f);
        }
        outln!("{v}");
    } else {
        outln!(
            "format {}.{}, {} bytes, graph {} bytes, {} tensors",
            nnc::container::VERSION_MAJOR,
            d.minor_version(),
            total,
            graph_bytes,
            rows.len()
        );
        if let Some(b) = &base_identity {
            outln!("update of the base with identity {b}");
        }
        outln!(
            "{:<44} {:>9} {:>18} {:>10} {:>10} {:>10} {:>7} {:>7}",
            "tensor",
            "dtype",
            "dims",
            "coding",
            "elements",
            "payload",
            "levels",
            "H/elem"
        );
        for r in &rows {
            let elements = r["elements"].as_u64().unwrap_or(0);
            let (levels, h) = match (r["levels"].as_u64(), r["entropy_bits"].as_f64()) {
                (Some(l), Some(h)) => (l.to_string(), format!("{:.3}", h / elements.max(1) as f64)),
                _ => (String::new(), String::new()),
            };
            let coding = r["quantizer"]["kind"]
                .as_str()
                .or(r["method"].as_str())
                .unwrap_or("");
            outln!(
                "{:<44} {:>9} {:>18} {:>10} {:>10} {:>10} {:>7} {:>7}",
                truncate(r["name"].as_str().unwrap_or(""), 44),
                r["dtype"].as_str().unwrap_or(""),
                truncate(&r["dims"].to_string(), 18),
                coding,
                elements,
                r["payload_bytes"].as_u64().unwrap_or(0),
                levels,
                h
            );
        }
    }
    if let (false, Some(f)) = (json, &fidelity) {
        outln!("{}", fidelity_text(f));
    }
    Ok(())
}
