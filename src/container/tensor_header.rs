//! The header of a TENSOR record (spec §6.1).
//!
//! | size | field |
//! |---|---|
//! | 4 | data_type: ONNX `TensorProto.DataType` code (u32 LE) |
//! | 1 | storage: where the data goes back in the ModelProto (spec §6.3) |
//! | 1 | coding: how the payload is coded (spec §7) |
//! | 2 | reserved, 0 |
//! | 4 + n | name: u32 LE byte length, UTF-8 bytes |
//! | 4 + 8·r | dims: u32 LE rank r, r × u64 LE |
//! | 8 | elements: u64 LE, the product of dims |
//! | 8 | data_bytes: u64 LE, the canonical byte length of the decoded data (spec §6.2) |
//! | 4 + p | params: u32 LE length, coding parameters (spec §7) |
use crate::bytes::Cursor;
use crate::error::{Error, FormatRule, Result};
use crate::onnx::dtype;
use crate::Limits;

/// Where a tensor's data goes back (spec §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum Storage {
    /// `TensorProto.raw_data`.
    RawData = 0,
    /// The typed field of the data type (`float_data`, `int32_data`, ...).
    Typed = 1,
    /// An external file named by `external_data` (kept in the graph).
    External = 2,
    /// Left in the graph as it was; the record carries no data.
    Inline = 3,
    /// `value_floats` of a `Constant` node.
    AttrFloats = 4,
    /// `value_ints` of a `Constant` node.
    AttrInts = 5,
}

impl Storage {
    /// The storage of a header's storage byte (spec §6.1); `None` for an unknown value.
    pub fn from_u8(v: u8) -> Option<Storage> {
        Some(match v {
            0 => Storage::RawData,
            1 => Storage::Typed,
            2 => Storage::External,
            3 => Storage::Inline,
            4 => Storage::AttrFloats,
            5 => Storage::AttrInts,
            _ => return None,
        })
    }
    /// Stable name: `raw_data`, `typed`, `external`, `inline`, `attr_floats`, `attr_ints`.
    pub fn name(self) -> &'static str {
        match self {
            Storage::RawData => "raw_data",
            Storage::Typed => "typed",
            Storage::External => "external",
            Storage::Inline => "inline",
            Storage::AttrFloats => "value_floats",
            Storage::AttrInts => "value_ints",
        }
    }
}

/// Payload codings (spec §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum Coding {
    /// The canonical bytes as they are.
    Raw = 0,
    /// Byte planes, each an entropy-coded symbol stream (spec §7.4).
    Planes = 1,
    /// One zstd frame of the canonical bytes (spec §7.5).
    Zstd = 2,
    /// Quantized levels (spec §7.6); lossy.
    Quantized = 3,
    /// The same bytes as a tensor of the base (spec §14.3); the file is an update.
    Reference = 4,
    /// The bytes XOR those of a tensor of the base, coded without loss (spec §14.7).
    Difference = 5,
}

impl Coding {
    /// The coding of a header's coding byte (spec §6.1); `None` for an unknown value.
    pub fn from_u8(v: u8) -> Option<Coding> {
        Some(match v {
            0 => Coding::Raw,
            1 => Coding::Planes,
            2 => Coding::Zstd,
            3 => Coding::Quantized,
            4 => Coding::Reference,
            5 => Coding::Difference,
            _ => return None,
        })
    }
    /// Stable name: `raw`, `planes`, `zstd`, `quantized`, `reference`, `difference`.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Raw => "raw",
            Coding::Planes => "planes",
            Coding::Zstd => "zstd",
            Coding::Quantized => "quantized",
            Coding::Reference => "reference",
            Coding::Difference => "difference",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorHeader {
    pub data_type: i32,
    pub storage: Storage,
    pub coding: Coding,
    pub name: String,
    pub dims: Vec<u64>,
    pub elements: u64,
    pub data_bytes: u64,
    pub params: Vec<u8>,
}

impl TensorHeader {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b =
            Vec::with_capacity(40 + self.name.len() + 8 * self.dims.len() + self.params.len());
        b.extend_from_slice(&(self.data_type as u32).to_le_bytes());
        b.push(self.storage as u8);
        b.push(self.coding as u8);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(self.name.len() as u32).to_le_bytes());
        b.extend_from_slice(self.name.as_bytes());
        b.extend_from_slice(&(self.dims.len() as u32).to_le_bytes());
        for d in &self.dims {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b.extend_from_slice(&self.elements.to_le_bytes());
        b.extend_from_slice(&self.data_bytes.to_le_bytes());
        b.extend_from_slice(&(self.params.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.params);
        b
    }

    /// Parses and validates a header that starts at file offset `base`.
    pub fn parse(bytes: &[u8], base: u64, limits: &Limits) -> Result<TensorHeader> {
        let mut c = Cursor::new(bytes, base, FormatRule::TensorHeader);
        let at = c.offset();
        let data_type = c.u32("data_type")?;
        let type_at = at;
        let at = c.offset();
        let storage = Storage::from_u8(c.u8("storage")?)
            .ok_or_else(|| Error::format(FormatRule::TensorHeader, at, "unknown storage"))?;
        // An inline record describes a tensor left in the graph as it was, whatever its
        // data_type field holds (unset, UNDEFINED or negative: written as the i32's bits); the
        // decoder checks it against the graph. Records carrying data need a real type.
        if storage != Storage::Inline && (data_type == 0 || data_type > i32::MAX as u32) {
            return Err(Error::format(
                FormatRule::TensorHeader,
                type_at,
                format!("invalid data_type {data_type}"),
            ));
        }
        let data_type = data_type as i32;
        let at = c.offset();
        let coding = Coding::from_u8(c.u8("coding")?)
            .ok_or_else(|| Error::format(FormatRule::TensorHeader, at, "unknown coding"))?;
        let at = c.offset();
        if c.u16("reserved")? != 0 {
            return Err(Error::format(
                FormatRule::Reserved,
                at,
                "reserved tensor header bytes not zero",
            ));
        }
        let at = c.offset();
        let name_len = c.u32("name length")?;
        if name_len > limits.max_name_len {
            return Err(Error::Limit {
                what: "name length",
                value: name_len as u64,
                limit: limits.max_name_len as u64,
                offset: at,
                tensor: None,
            });
        }
        let name = std::str::from_utf8(c.take(name_len as usize, "name")?)
            .map_err(|_| Error::format(FormatRule::TensorHeader, at + 4, "name is not UTF-8"))?
            .to_owned();
        let err = |rule, at, d: String| Error::Format {
            rule,
            offset: at,
            tensor: Some(name.clone()),
            detail: d,
        };
        let at = c.offset();
        let rank = c.u32("rank")?;
        if rank > limits.max_dims {
            return Err(Error::Limit {
                what: "rank",
                value: rank as u64,
                limit: limits.max_dims as u64,
                offset: at,
                tensor: Some(name),
            });
        }
        let mut dims = Vec::with_capacity(rank as usize);
        let mut product: u128 = 1;
        for _ in 0..rank {
            let d = c.u64("dim")?;
            product = product.saturating_mul(d as u128);
            dims.push(d);
        }
        let at = c.offset();
        let elements = c.u64("elements")?;
        if elements as u128 != product {
            return Err(err(
                FormatRule::TensorHeader,
                at,
                format!("elements {elements} is not the product of dims {dims:?}"),
            ));
        }
        // Inline records carry no data: nothing is allocated for their elements.
        if elements > limits.max_elements && storage != Storage::Inline {
            return Err(Error::Limit {
                what: "elements",
                value: elements,
                limit: limits.max_elements,
                offset: at,
                tensor: Some(name),
            });
        }
        let at = c.offset();
        let data_bytes = c.u64("data_bytes")?;
        if data_bytes > limits.max_alloc {
            return Err(Error::Limit {
                what: "tensor bytes",
                value: data_bytes,
                limit: limits.max_alloc,
                offset: at,
                tensor: Some(name),
            });
        }
        if storage == Storage::Inline {
            if coding != Coding::Raw || data_bytes != 0 {
                return Err(err(
                    FormatRule::TensorHeader,
                    at,
                    "an inline record carries no data".into(),
                ));
            }
        } else {
            match dtype::byte_len(data_type, elements) {
                Some(n) if n != data_bytes => {
                    return Err(err(
                        FormatRule::TensorHeader,
                        at,
                        format!(
                            "data_bytes {data_bytes}, {} of {elements} elements need {n}",
                            dtype::name(data_type)
                        ),
                    ));
                }
                None if data_type != dtype::STRING => {
                    return Err(err(
                        FormatRule::TensorHeader,
                        base,
                        format!(
                            "data type {data_type} has no fixed width; only inline storage allowed"
                        ),
                    ));
                }
                _ => {}
            }
            if data_type == dtype::STRING && data_bytes < elements.saturating_mul(4) {
                return Err(err(
                    FormatRule::TensorHeader,
                    at,
                    format!("data_bytes {data_bytes} too small for {elements} strings"),
                ));
            }
        }
        let ok = match storage {
            Storage::AttrFloats => data_type == dtype::FLOAT && rank == 1,
            Storage::AttrInts => data_type == dtype::INT64 && rank == 1,
            Storage::External | Storage::RawData => data_type != dtype::STRING,
            Storage::Typed | Storage::Inline => true,
        };
        if !ok {
            return Err(err(
                FormatRule::TensorHeader,
                base + 4,
                format!(
                    "storage {} does not fit {} with rank {rank}",
                    storage.name(),
                    dtype::name(data_type)
                ),
            ));
        }
        let at = c.offset();
        let plen = c.u32("params length")?;
        let params = c.take(plen as usize, "params")?.to_vec();
        if !c.is_empty() {
            return Err(err(
                FormatRule::TensorHeader,
                at,
                format!("{} unexpected bytes after params", c.remaining()),
            ));
        }
        Ok(TensorHeader {
            data_type,
            storage,
            coding,
            name,
            dims,
            elements,
            data_bytes,
            params,
        })
    }
}
