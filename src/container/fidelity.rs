//! The FIDELITY record (spec §8.3): what the encoder measured of the decoded model, a
//! non-critical record after the last TENSOR record. It never changes the decoded model.
//!
//! Payload, little-endian:
//!
//! | size | field |
//! |---|---|
//! | 1 | version, 1 |
//! | 1 | target kind: 0 none, 1 output SNR (dB), 2 decision agreement, 3 file bytes, 4 bits per quantized weight |
//! | 1 | input source: 0 synthetic, 1 supplied |
//! | 1 | reserved, 0 |
//! | 8 | target value (f64; 0 for kind 0) |
//! | 4 | calibration inputs (u32) |
//! | 2 + n | runtime: u16 length, UTF-8 |
//! | 4 | output count (u32) |
//! | per output: 2 + n | name: u16 length, UTF-8 |
//! | 8 | output SNR in dB (f64; +inf when identical) |
//! | 8 | decision agreement in [0, 1] (f64; NaN when not measured) |
use crate::bytes::Cursor;
use crate::error::{Error, FormatRule, Result};

/// What the encoder aimed at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// No target (steps given by hand).
    None,
    /// Every float output's SNR at least this many dB.
    Snr(f64),
    /// The first output's decisions agree at least this fraction of the time.
    Agreement(f64),
    /// The file at most this many bytes.
    Bytes(f64),
    /// At most this many bits per quantized weight.
    BitsPerWeight(f64),
}

impl Target {
    fn code(&self) -> (u8, f64) {
        match *self {
            Target::None => (0, 0.0),
            Target::Snr(v) => (1, v),
            Target::Agreement(v) => (2, v),
            Target::Bytes(v) => (3, v),
            Target::BitsPerWeight(v) => (4, v),
        }
    }

    /// "snr=30", "agreement=0.99", ...
    pub fn describe(&self) -> String {
        match *self {
            Target::None => "none".into(),
            Target::Snr(v) => format!("snr={v}"),
            Target::Agreement(v) => format!("agreement={v}"),
            Target::Bytes(v) => format!("size={v}"),
            Target::BitsPerWeight(v) => format!("bpw={v}"),
        }
    }
}

/// Where the calibration inputs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSource {
    Synthetic,
    Supplied,
}

impl InputSource {
    pub fn name(&self) -> &'static str {
        match self {
            InputSource::Synthetic => "synthetic",
            InputSource::Supplied => "supplied",
        }
    }
}

/// One model output as measured on the decoded model.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFidelity {
    pub name: String,
    /// 10·log10(Σ(y − c)² / Σ(y − ŷ)²) over the calibration inputs, `c` 0 when every `y`
    /// lies in [0, 1], else their mean (spec §8.3); +inf when identical.
    pub snr_db: f64,
    /// Fraction of decisions (argmax over the last axis; a threshold for a last axis of 1)
    /// that agree; NaN when not measured.
    pub agreement: f64,
}

/// The record's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Fidelity {
    pub target: Target,
    pub source: InputSource,
    pub inputs: u32,
    /// The runtime that ran the model, e.g. "onnxruntime 1.23.2".
    pub runtime: String,
    pub outputs: Vec<OutputFidelity>,
}

/// The only version this decoder reads.
pub const VERSION: u8 = 1;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names longer than a u16 can say are cut at a character boundary.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

impl Fidelity {
    /// The record payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (kind, value) = self.target.code();
        let mut b = vec![
            VERSION,
            kind,
            match self.source {
                InputSource::Synthetic => 0,
                InputSource::Supplied => 1,
            },
            0,
        ];
        b.extend_from_slice(&value.to_le_bytes());
        b.extend_from_slice(&self.inputs.to_le_bytes());
        put_str(&mut b, &self.runtime);
        b.extend_from_slice(&(self.outputs.len() as u32).to_le_bytes());
        for o in &self.outputs {
            put_str(&mut b, &o.name);
            b.extend_from_slice(&o.snr_db.to_le_bytes());
            b.extend_from_slice(&o.agreement.to_le_bytes());
        }
        b
    }

    /// Parses a payload that starts at file offset `base`. `Ok(None)`: a later version,
    /// which this decoder does not read (it skips the record).
    pub fn parse(payload: &[u8], base: u64) -> Result<Option<Fidelity>> {
        let mut c = Cursor::new(payload, base, FormatRule::Fidelity);
        let version = c.u8("fidelity version")?;
        if version != VERSION {
            return Ok(None);
        }
        let at = c.offset();
        let kind = c.u8("target kind")?;
        let source = match c.u8("input source")? {
            0 => InputSource::Synthetic,
            1 => InputSource::Supplied,
            s => return Err(c.err(format!("unknown input source {s}"))),
        };
        if c.u8("reserved")? != 0 {
            return Err(Error::format(
                FormatRule::Reserved,
                at + 2,
                "reserved fidelity byte not zero",
            ));
        }
        let value = c.f64("target value")?;
        let target = match kind {
            0 if value == 0.0 => Target::None,
            1 if value.is_finite() => Target::Snr(value),
            2 if (0.0..=1.0).contains(&value) => Target::Agreement(value),
            3 if value.is_finite() && value > 0.0 => Target::Bytes(value),
            4 if value.is_finite() && value > 0.0 => Target::BitsPerWeight(value),
            0..=4 => return Err(c.err(format!("target value {value} not allowed for kind {kind}"))),
            k => {
                return Err(Error::format(
                    FormatRule::Fidelity,
                    at,
                    format!("unknown target kind {k}"),
                ))
            }
        };
        let inputs = c.u32("calibration inputs")?;
        let runtime = c.string16("runtime")?;
        let count = c.u32("output count")? as usize;
        // Each output takes at least 18 bytes.
        if count > c.remaining() / 18 {
            return Err(c.err(format!("{count} outputs do not fit in the record")));
        }
        let mut outputs = Vec::with_capacity(count);
        for _ in 0..count {
            let name = c.string16("output name")?;
            let snr_db = c.f64("output SNR")?;
            let agreement = c.f64("output agreement")?;
            if snr_db.is_nan() {
                return Err(c.err(format!("output {name}: SNR is NaN")));
            }
            if !(agreement.is_nan() || (0.0..=1.0).contains(&agreement)) {
                return Err(c.err(format!(
                    "output {name}: agreement {agreement} outside [0, 1]"
                )));
            }
            outputs.push(OutputFidelity {
                name,
                snr_db,
                agreement,
            });
        }
        if !c.is_empty() {
            return Err(c.err("bytes after the last output"));
        }
        Ok(Some(Fidelity {
            target,
            source,
            inputs,
            runtime,
            outputs,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fidelity {
        Fidelity {
            target: Target::Snr(30.0),
            source: InputSource::Synthetic,
            inputs: 8,
            runtime: "onnxruntime 1.23.2".into(),
            outputs: vec![
                OutputFidelity {
                    name: "logits".into(),
                    snr_db: 31.5,
                    agreement: 1.0,
                },
                OutputFidelity {
                    name: "state".into(),
                    snr_db: f64::INFINITY,
                    agreement: f64::NAN,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let f = sample();
        let b = f.to_bytes();
        let g = Fidelity::parse(&b, 0).unwrap().unwrap();
        assert_eq!(g.target, f.target);
        assert_eq!(g.outputs[0], f.outputs[0]);
        assert!(g.outputs[1].agreement.is_nan());
        assert_eq!(g.to_bytes(), b);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let b = sample().to_bytes();
        for cut in 1..b.len() {
            assert!(Fidelity::parse(&b[..cut], 0).is_err(), "cut at {cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(Fidelity::parse(&extra, 0).is_err());
        let mut kind = b.clone();
        kind[1] = 9;
        assert!(Fidelity::parse(&kind, 0).is_err());
        let mut later = b.clone();
        later[0] = 2;
        assert_eq!(Fidelity::parse(&later, 0).unwrap(), None);
    }
}
