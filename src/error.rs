//! Errors, grouped by who is at fault (spec §9): the file (`Format`), a limit the caller set
//! (`Limit`), the caller's input model or request (`Input`, `Unsupported`), or the I/O layer.
use std::fmt;

/// What kind of rule a malformed file broke; each value names a MUST of spec/ (spec §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FormatRule {
    /// §3: the first 8 bytes are not the nnc magic.
    BadMagic,
    /// §3: major version this decoder does not implement.
    UnsupportedVersion,
    /// §3, §4: a CRC32 does not match.
    Checksum,
    /// §4: a reserved bit or field is not zero.
    Reserved,
    /// §4: the file ends inside a structure.
    Truncated,
    /// §4: a critical record kind this decoder does not know.
    UnknownCriticalRecord,
    /// §4: records out of order (graph first, tensors, index last, then the trailer).
    RecordOrder,
    /// §5: the graph section does not decompress or does not parse as a ModelProto.
    Graph,
    /// §6: a tensor header field is invalid or disagrees with the graph.
    TensorHeader,
    /// §7: a payload is malformed (bad model description, wrong length, undecodable stream).
    Payload,
    /// §8: the index or trailer disagrees with the records.
    Index,
    /// §4: bytes after the trailer.
    TrailingData,
    /// §8.3: a FIDELITY record is malformed (reported when the record is read, e.g. by
    /// `inspect`; decoding the model ignores the record).
    Fidelity,
    /// §14: a BASE record, a reference to the base, or a graph coded against the base is
    /// malformed.
    Base,
    /// §14.2: the file is an update and no base was given.
    BaseMissing,
    /// §14.2: the base given is not the one the update names.
    BaseMismatch,
}

impl FormatRule {
    /// Stable name used in error messages and in the conformance manifest.
    pub fn name(self) -> &'static str {
        match self {
            FormatRule::BadMagic => "bad-magic",
            FormatRule::UnsupportedVersion => "unsupported-version",
            FormatRule::Checksum => "checksum",
            FormatRule::Reserved => "reserved-nonzero",
            FormatRule::Truncated => "truncated",
            FormatRule::UnknownCriticalRecord => "unknown-critical-record",
            FormatRule::RecordOrder => "record-order",
            FormatRule::Graph => "graph",
            FormatRule::TensorHeader => "tensor-header",
            FormatRule::Payload => "payload",
            FormatRule::Index => "index",
            FormatRule::TrailingData => "trailing-data",
            FormatRule::Fidelity => "fidelity",
            FormatRule::Base => "base",
            FormatRule::BaseMissing => "base-missing",
            FormatRule::BaseMismatch => "base-mismatch",
        }
    }
}

/// The crate's error type. Every variant that concerns a file carries the byte offset and,
/// where known, the tensor name.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing failed at the OS level.
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `.nnc` bytes break a rule of the format.
    Format {
        /// The rule (spec §9).
        rule: FormatRule,
        /// Byte offset in the file.
        offset: u64,
        /// The tensor concerned, where known.
        tensor: Option<String>,
        /// What exactly is wrong.
        detail: String,
    },
    /// The file is valid but asks for more than the caller's [`crate::Limits`] allow.
    Limit {
        /// The quantity that is limited.
        what: &'static str,
        /// What the file asks for.
        value: u64,
        /// The limit.
        limit: u64,
        /// Byte offset in the file.
        offset: u64,
        /// The tensor concerned, where known.
        tensor: Option<String>,
    },
    /// The input ONNX model (or an external data file it names) is malformed.
    Input {
        /// The tensor concerned, where known.
        tensor: Option<String>,
        /// What exactly is wrong.
        detail: String,
    },
    /// A valid request this version cannot carry out.
    Unsupported {
        /// What was asked.
        detail: String,
    },
    /// The caller's options are out of range (the encoder's δ, μ, step, ...); nothing was
    /// read or written.
    InvalidOptions {
        /// Which option and its allowed range.
        detail: String,
    },
    /// No tensor of this name in the file ([`crate::Archive::tensor`]).
    NotFound {
        /// The name asked for.
        name: String,
    },
}

/// `std::result::Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn format(rule: FormatRule, offset: u64, detail: impl Into<String>) -> Self {
        Error::Format {
            rule,
            offset,
            tensor: None,
            detail: detail.into(),
        }
    }
    pub(crate) fn input(tensor: Option<&str>, detail: impl Into<String>) -> Self {
        Error::Input {
            tensor: tensor.map(str::to_owned),
            detail: detail.into(),
        }
    }
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
    /// Attaches a tensor name to an error that does not have one yet.
    pub fn with_tensor(mut self, name: &str) -> Self {
        match &mut self {
            Error::Format { tensor, .. }
            | Error::Limit { tensor, .. }
            | Error::Input { tensor, .. }
                if tensor.is_none() =>
            {
                *tensor = Some(name.to_owned())
            }
            _ => {}
        }
        self
    }
    /// The broken rule, for format errors.
    pub fn rule(&self) -> Option<FormatRule> {
        match self {
            Error::Format { rule, .. } => Some(*rule),
            _ => None,
        }
    }
}

fn tensor_suffix(t: &Option<String>) -> String {
    t.as_ref()
        .map(|n| format!(" (tensor {n:?})"))
        .unwrap_or_default()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "I/O error: {context}: {source}"),
            Error::Format {
                rule,
                offset,
                tensor,
                detail,
            } => write!(
                f,
                "invalid nnc file at byte {offset}{}: {} ({detail})",
                tensor_suffix(tensor),
                rule.name()
            ),
            Error::Limit {
                what,
                value,
                limit,
                offset,
                tensor,
            } => write!(
                f,
                "limit exceeded at byte {offset}{}: {what} is {value}, limit {limit}",
                tensor_suffix(tensor)
            ),
            Error::Input { tensor, detail } => {
                write!(f, "invalid input model{}: {detail}", tensor_suffix(tensor))
            }
            Error::Unsupported { detail } => write!(f, "unsupported: {detail}"),
            Error::InvalidOptions { detail } => write!(f, "invalid options: {detail}"),
            Error::NotFound { name } => write!(f, "no tensor named {name:?}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `n` default values, or a limit error if the memory cannot be had: a size that comes from a
/// file is reserved fallibly, so that running out of memory is an error, never an abort
/// (spec §10). `at` is the file offset to report.
#[doc(hidden)]
pub fn try_zeroed<T: Clone + Default>(n: usize, at: u64) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::Limit {
        what: "memory (allocation failed)",
        value: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        limit: 0,
        offset: at,
        tensor: None,
    })?;
    v.resize(n, T::default());
    Ok(v)
}

/// A copy of `s`, reserved fallibly as [`try_zeroed`].
pub fn try_copy(s: &[u8], at: u64) -> Result<Vec<u8>> {
    let mut v = try_zeroed(0, at)?;
    v.try_reserve_exact(s.len()).map_err(|_| Error::Limit {
        what: "memory (allocation failed)",
        value: s.len() as u64,
        limit: 0,
        offset: at,
        tensor: None,
    })?;
    // A window at a time, each released once copied (for a payload read in place).
    for w in s.chunks(crate::container::mapped::WINDOW) {
        v.extend_from_slice(w);
        crate::container::mapped::release(w);
    }
    Ok(v)
}

/// Decompresses zstd frames into a buffer of exactly `n` bytes reserved fallibly; returns
/// the bytes and how many the frames held (at most `n`).
pub fn try_zstd(payload: &[u8], n: usize, at: u64) -> Result<(Vec<u8>, std::io::Result<usize>)> {
    let mut v = try_zeroed(n, at)?;
    let r = zstd::bulk::decompress_to_buffer(payload, &mut v);
    if let Ok(k) = r {
        v.truncate(k);
    }
    Ok((v, r))
}
