//! The encoder as a library caller sees it: [`Encoder`] checks its [`EncodeOptions`] once
//! (the ranges `nnc encode` documents in `--help`), then encodes files or bytes. A caller who
//! passes δ = 5 gets [`Error::InvalidOptions`] naming δ, never a format error about the
//! encoder's own output.
use std::path::Path;

use crate::encoder::{encode_file, encode_model, parse_model, EncodeOptions, EncodeReport};
use crate::error::{Error, Result};
use crate::quant::policy::{Family, LossyOptions, StepRule};

/// The step presets of `nnc encode --quality`: a dead-zone quantizer (δ = 0.5) whose step is a
/// fraction of each output channel's standard deviation σ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Quality {
    /// Δ = σ/32: about 1 bit per weight more than the default, closest to the original.
    High,
    /// Δ = σ/16, the default.
    #[default]
    Default,
    /// Δ = σ/8: the smallest files of the three.
    Small,
}

impl Quality {
    /// The fraction F of σ that the preset takes as the step (Δ = F·σ).
    pub fn std_fraction(self) -> f32 {
        match self {
            Quality::High => 1.0 / 32.0,
            Quality::Default => 1.0 / 16.0,
            Quality::Small => 1.0 / 8.0,
        }
    }

    /// The lossy options of the preset.
    pub fn lossy_options(self) -> LossyOptions {
        LossyOptions {
            step: StepRule::StdFraction(self.std_fraction()),
            ..LossyOptions::default()
        }
    }
}

fn invalid(detail: String) -> Error {
    Error::InvalidOptions { detail }
}

impl LossyOptions {
    /// Checks every parameter against its range (the ranges of `nnc encode --help`):
    /// δ in [0, 1], μ > 0, minifloat E ≤ 8, M ≤ 23, 1 ≤ E + M ≤ 23, steps and fractions
    /// positive and finite, thesis ranges MIN < MAX with 2 ≤ K ≤ 24 level bits, the RDO
    /// factor ≥ 0, at most 22 fine bits, 2 ≤ μ-law level bits ≤ 24.
    pub fn validate(&self) -> Result<()> {
        match self.family {
            Family::Midtread | Family::Midrise => {}
            Family::DeadZone { delta } => {
                if !(0.0..=1.0).contains(&delta) {
                    return Err(invalid(format!("dead-zone delta {delta} must be in [0, 1]")));
                }
            }
            Family::MuLaw { mu } => {
                if !(mu > 0.0 && mu.is_finite()) {
                    return Err(invalid(format!("mu {mu} must be positive")));
                }
            }
            Family::Minifloat { layout } => {
                let (e, m) = (layout.exp_bits, layout.man_bits);
                if e > 8 || m > 23 || e + m > 23 || e + m == 0 {
                    return Err(invalid(format!(
                        "minifloat exp_bits {e} man_bits {m}: need E <= 8, M <= 23, 1 <= E + M <= 23"
                    )));
                }
            }
        }
        match self.step {
            StepRule::Fixed(s) => {
                if !(s > 0.0 && s.is_finite()) {
                    return Err(invalid(format!("step {s} must be positive")));
                }
            }
            StepRule::StdFraction(f) => {
                if !(f > 0.0 && f.is_finite()) {
                    return Err(invalid(format!("step fraction {f} must be positive")));
                }
            }
            StepRule::Thesis {
                min,
                max,
                levels_bits,
            } => {
                if !(min < max && min.is_finite() && max.is_finite()) {
                    return Err(invalid(format!("range {min}:{max} must have MIN < MAX")));
                }
                if !(2..=24).contains(&levels_bits) {
                    return Err(invalid(format!(
                        "levels_bits {levels_bits} must be in 2..=24"
                    )));
                }
            }
        }
        if !(2..=24).contains(&self.mulaw_levels_bits) {
            return Err(invalid(format!(
                "mulaw_levels_bits {} must be in 2..=24",
                self.mulaw_levels_bits
            )));
        }
        if !(self.rdo >= 0.0 && self.rdo.is_finite()) {
            return Err(invalid(format!("rdo {} must be >= 0", self.rdo)));
        }
        if let Some(b) = self.fine_bits {
            if b > 22 {
                return Err(invalid(format!("fine_bits {b} must be in 0..=22")));
            }
        }
        Ok(())
    }
}

impl EncodeOptions {
    /// Lossy coding with a [`Quality`] preset, everything else at its default.
    pub fn with_quality(q: Quality) -> Self {
        EncodeOptions {
            lossy: Some(q.lossy_options()),
            ..EncodeOptions::default()
        }
    }

    /// Every tensor bit-exact (`nnc encode --lossless`).
    pub fn lossless() -> Self {
        EncodeOptions::default()
    }

    /// Checks the options (see [`LossyOptions::validate`]; the rANS chunk must be 1 to
    /// 2^24 symbols and the zstd level 1 to 22).
    pub fn validate(&self) -> Result<()> {
        if let Some(l) = &self.lossy {
            l.validate()?;
        }
        let c = self.lossless.chunk;
        if c == 0 || c > 1 << 24 {
            return Err(invalid(format!("chunk {c} must be in 1..=16777216")));
        }
        let z = self.lossless.zstd_level;
        if !(1..=22).contains(&z) {
            return Err(invalid(format!("zstd_level {z} must be in 1..=22")));
        }
        Ok(())
    }
}

/// An encoder with checked options.
///
/// ```no_run
/// let enc = nnc::Encoder::new(nnc::EncodeOptions::with_quality(nnc::Quality::High))?;
/// let report = enc.encode_file("model.onnx", "model.nnc")?;
/// println!("{} bytes", report.total_bytes);
/// # Ok::<(), nnc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Encoder {
    opts: EncodeOptions,
}

impl Encoder {
    /// Checks `opts` ([`EncodeOptions::validate`]).
    pub fn new(opts: EncodeOptions) -> Result<Self> {
        opts.validate()?;
        Ok(Encoder { opts })
    }

    /// The options.
    pub fn options(&self) -> &EncodeOptions {
        &self.opts
    }

    /// Encodes the ONNX file `input` (with any external data files beside it) into the `.nnc`
    /// file `output`, written under a temporary name and renamed only on success.
    pub fn encode_file(
        &self,
        input: impl AsRef<Path>,
        output: impl AsRef<Path>,
    ) -> Result<EncodeReport> {
        encode_file(input.as_ref(), output.as_ref(), &self.opts)
    }

    /// Encodes a serialized ONNX model held in memory (its tensors all inside it: a model
    /// with external data is encoded from its file) and returns the `.nnc` bytes.
    pub fn encode_bytes(&self, onnx: &[u8]) -> Result<(Vec<u8>, EncodeReport)> {
        let model = parse_model(onnx)?;
        encode_model(model, None, &self.opts, Vec::new())
    }
}
