//! ONNX element types (spec §6.2): widths, and the conversions between the typed fields of a
//! `TensorProto` and the canonical little-endian bytes that `raw_data` would hold.
use super::proto::TensorProto;

pub const FLOAT: i32 = 1;
pub const UINT8: i32 = 2;
pub const INT8: i32 = 3;
pub const UINT16: i32 = 4;
pub const INT16: i32 = 5;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;
pub const STRING: i32 = 8;
pub const BOOL: i32 = 9;
pub const FLOAT16: i32 = 10;
pub const DOUBLE: i32 = 11;
pub const UINT32: i32 = 12;
pub const UINT64: i32 = 13;
pub const COMPLEX64: i32 = 14;
pub const COMPLEX128: i32 = 15;
pub const BFLOAT16: i32 = 16;

/// Bits per element of a fixed-width type (packed sub-byte types included), `None` for
/// STRING, UNDEFINED and codes this version does not know.
pub fn bits(dt: i32) -> Option<u32> {
    Some(match dt {
        FLOAT | INT32 | UINT32 => 32,
        UINT8 | INT8 | BOOL => 8,
        UINT16 | INT16 | FLOAT16 | BFLOAT16 => 16,
        INT64 | DOUBLE | UINT64 | COMPLEX64 => 64,
        COMPLEX128 => 128,
        17..=20 | 24 => 8, // FLOAT8E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, E8M0
        21..=23 => 4,      // UINT4, INT4, FLOAT4E2M1
        25 | 26 => 2,      // UINT2, INT2
        27 | 28 => 6,      // FLOAT6E2M3, FLOAT6E3M2
        _ => return None,
    })
}

/// Bytes of one coding unit for byte-plane coding: the width of a scalar component.
pub fn unit_bytes(dt: i32) -> usize {
    match dt {
        COMPLEX64 => 4,
        COMPLEX128 => 8,
        _ => bits(dt).map(|b| (b as usize / 8).max(1)).unwrap_or(1),
    }
}

/// Whether the type is an IEEE-style floating-point type that lossy coding may quantize.
pub fn is_float(dt: i32) -> bool {
    matches!(dt, FLOAT | DOUBLE | FLOAT16 | BFLOAT16)
}

/// Canonical byte length of `n` elements (`raw_data` rules: sub-byte types packed, LSB first).
pub fn byte_len(dt: i32, n: u64) -> Option<u64> {
    let b = bits(dt)? as u128;
    u64::try_from((n as u128 * b).div_ceil(8)).ok()
}

/// ONNX's name for a data type code.
pub fn name(dt: i32) -> &'static str {
    const NAMES: [&str; 29] = [
        "undefined",
        "float",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "int32",
        "int64",
        "string",
        "bool",
        "float16",
        "double",
        "uint32",
        "uint64",
        "complex64",
        "complex128",
        "bfloat16",
        "float8e4m3fn",
        "float8e4m3fnuz",
        "float8e5m2",
        "float8e5m2fnuz",
        "uint4",
        "int4",
        "float4e2m1",
        "float8e8m0",
        "uint2",
        "int2",
        "float6e2m3",
        "float6e3m2",
    ];
    usize::try_from(dt)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown")
}

/// Which typed field a data type uses, and how one entry maps to canonical bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Float,
    Double,
    Int64,
    Uint64 {
        bytes: usize,
    },
    Int32 {
        bytes: usize,
        signed: bool,
        max: i64,
    },
    String,
}

fn field(dt: i32) -> Option<Field> {
    Some(match dt {
        FLOAT | COMPLEX64 => Field::Float,
        DOUBLE | COMPLEX128 => Field::Double,
        INT64 => Field::Int64,
        UINT32 => Field::Uint64 { bytes: 4 },
        UINT64 => Field::Uint64 { bytes: 8 },
        INT32 => Field::Int32 {
            bytes: 4,
            signed: true,
            max: i32::MAX as i64,
        },
        INT16 => Field::Int32 {
            bytes: 2,
            signed: true,
            max: i16::MAX as i64,
        },
        INT8 => Field::Int32 {
            bytes: 1,
            signed: true,
            max: i8::MAX as i64,
        },
        UINT16 | FLOAT16 | BFLOAT16 => Field::Int32 {
            bytes: 2,
            signed: false,
            max: u16::MAX as i64,
        },
        UINT8 | 17..=20 | 24 => Field::Int32 {
            bytes: 1,
            signed: false,
            max: u8::MAX as i64,
        },
        BOOL => Field::Int32 {
            bytes: 1,
            signed: false,
            max: 1,
        },
        STRING => Field::String,
        // Sub-byte and 6-bit types pack several elements per int32 entry: kept in the graph.
        _ => return None,
    })
}

/// Number of typed-field entries present (0 when none).
pub fn typed_len(t: &TensorProto) -> usize {
    t.float_data.len()
        + t.double_data.len()
        + t.int64_data.len()
        + t.uint64_data.len()
        + t.int32_data.len()
        + t.string_data.len()
}

/// Converts the typed field of `t` to canonical bytes (strings: spec §6.4 framing), or `None`
/// when the field in use is not the canonical one for the type or a value is out of range
/// (such tensors stay in the graph untouched).
pub fn typed_to_bytes(t: &TensorProto) -> Option<Vec<u8>> {
    let dt = t.data_type.unwrap_or(0);
    let f = field(dt)?;
    let only = |len: usize| typed_len(t) == len;
    let mut out = Vec::new();
    match f {
        Field::Float if only(t.float_data.len()) => t
            .float_data
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        Field::Double if only(t.double_data.len()) => t
            .double_data
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        Field::Int64 if only(t.int64_data.len()) => t
            .int64_data
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        Field::Uint64 { bytes } if only(t.uint64_data.len()) => {
            for &v in &t.uint64_data {
                if bytes == 4 && v > u32::MAX as u64 {
                    return None;
                }
                out.extend_from_slice(&v.to_le_bytes()[..bytes]);
            }
        }
        Field::Int32 { bytes, signed, max } if only(t.int32_data.len()) => {
            let min = if signed { -max - 1 } else { 0 };
            for &v in &t.int32_data {
                if (v as i64) < min || v as i64 > max {
                    return None;
                }
                out.extend_from_slice(&v.to_le_bytes()[..bytes]);
            }
        }
        Field::String if only(t.string_data.len()) => out = strings_to_bytes(&t.string_data),
        _ => return None,
    }
    Some(out)
}

/// Whether canonical bytes can go back into the typed field of a `dt` tensor (what
/// `bytes_to_typed` accepts), checked without building the field (spec §6.3).
pub fn typed_fits(dt: i32, bytes: &[u8]) -> bool {
    match field(dt) {
        None => false,
        Some(Field::String) => count_strings(bytes).is_some(),
        Some(Field::Float) => bytes.len().is_multiple_of(4),
        Some(Field::Double | Field::Int64) => bytes.len().is_multiple_of(8),
        Some(Field::Uint64 { bytes: w }) => bytes.len().is_multiple_of(w),
        Some(Field::Int32 {
            bytes: w,
            signed,
            max,
        }) => {
            bytes.len().is_multiple_of(w)
                && (signed
                    || w == 4
                    || bytes.chunks_exact(w).all(|b| {
                        let mut a = [0u8; 4];
                        a[..w].copy_from_slice(b);
                        u32::from_le_bytes(a) as i64 <= max
                    }))
        }
    }
}

/// Puts canonical bytes back into the typed field of `t` (the inverse of `typed_to_bytes`).
/// Returns false when the bytes do not fit the type (a decoder reports that as corrupt).
pub fn bytes_to_typed(t: &mut TensorProto, bytes: &[u8]) -> bool {
    let dt = t.data_type.unwrap_or(0);
    let Some(f) = field(dt) else { return false };
    match f {
        Field::Float => {
            t.float_data = chunks(bytes, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        Field::Double => t.double_data = chunks(bytes, 8, |b| f64::from_le_bytes(arr8(b))),
        Field::Int64 => t.int64_data = chunks(bytes, 8, |b| i64::from_le_bytes(arr8(b))),
        Field::Uint64 { bytes: w } => {
            t.uint64_data = chunks(bytes, w, |b| {
                let mut a = [0u8; 8];
                a[..w].copy_from_slice(b);
                u64::from_le_bytes(a)
            })
        }
        Field::Int32 {
            bytes: w,
            signed,
            max,
        } => {
            t.int32_data = chunks(bytes, w, |b| {
                let mut a = [0u8; 4];
                a[..w].copy_from_slice(b);
                let u = u32::from_le_bytes(a);
                if signed && w < 4 {
                    let shift = 32 - 8 * w as u32;
                    ((u << shift) as i32) >> shift
                } else {
                    u as i32
                }
            });
            if t.int32_data.iter().any(|&v| v as i64 > max) {
                return false;
            }
        }
        Field::String => match bytes_to_strings(bytes) {
            Some(s) => t.string_data = s,
            None => return false,
        },
    }
    let w = match f {
        Field::Float => 4,
        Field::Double | Field::Int64 => 8,
        Field::Uint64 { bytes } | Field::Int32 { bytes, .. } => bytes,
        Field::String => 1,
    };
    bytes.len().is_multiple_of(w)
}

fn arr8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    a
}

fn chunks<T>(bytes: &[u8], w: usize, f: impl Fn(&[u8]) -> T) -> Vec<T> {
    bytes.chunks_exact(w).map(f).collect()
}

/// String tensors as bytes (spec §6.4): each element as `u32 LE length` then its bytes.
pub fn strings_to_bytes(strings: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strings.iter().map(|s| s.len() + 4).sum());
    for s in strings {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s);
    }
    out
}

/// The inverse of `strings_to_bytes`; `None` if the framing is broken.
pub fn bytes_to_strings(mut b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 4 {
            return None;
        }
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        b = &b[4..];
        if n > b.len() {
            return None;
        }
        out.push(b[..n].to_vec());
        b = &b[n..];
    }
    Some(out)
}

/// Number of string elements in framed bytes (spec §6.4), if the framing is intact.
pub fn count_strings(mut b: &[u8]) -> Option<u64> {
    let mut n = 0u64;
    while !b.is_empty() {
        if b.len() < 4 {
            return None;
        }
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len > b.len() - 4 {
            return None;
        }
        b = &b[4 + len..];
        n += 1;
    }
    Some(n)
}
