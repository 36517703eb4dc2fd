//! Tensors that go into and come out of a model run: a shape and typed values.
use crate::onnx::dtype;

/// Typed values of a tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// IEEE binary16 bit patterns.
    F16(Vec<u16>),
    /// bfloat16 bit patterns.
    Bf16(Vec<u16>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
}

/// A tensor: its dims and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<i64>,
    pub values: Values,
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::F16(v) | Values::Bf16(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::I8(v) => v.len(),
            Values::U8(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ONNX data type of these values.
    pub fn data_type(&self) -> i32 {
        match self {
            Values::F32(_) => dtype::FLOAT,
            Values::F64(_) => dtype::DOUBLE,
            Values::F16(_) => dtype::FLOAT16,
            Values::Bf16(_) => dtype::BFLOAT16,
            Values::I64(_) => dtype::INT64,
            Values::I32(_) => dtype::INT32,
            Values::I8(_) => dtype::INT8,
            Values::U8(_) => dtype::UINT8,
            Values::Bool(_) => dtype::BOOL,
        }
    }

    /// Float values widened to f64 (`None` for other types).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        use crate::quant::float::{bf16_to_f32, f16_to_f32};
        Some(match self {
            Values::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Values::F64(v) => v.clone(),
            Values::F16(v) => v.iter().map(|&x| f16_to_f32(x) as f64).collect(),
            Values::Bf16(v) => v.iter().map(|&x| bf16_to_f32(x) as f64).collect(),
            _ => return None,
        })
    }

    /// Values of ONNX type `data_type` from canonical little-endian bytes (spec §6.2).
    pub fn from_le_bytes(data_type: i32, b: &[u8]) -> Option<Values> {
        fn chunks<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
            b.chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect()
        }
        Some(match data_type {
            dtype::FLOAT => Values::F32(chunks(b, f32::from_le_bytes)),
            dtype::DOUBLE => Values::F64(chunks(b, f64::from_le_bytes)),
            dtype::FLOAT16 => Values::F16(chunks(b, u16::from_le_bytes)),
            dtype::BFLOAT16 => Values::Bf16(chunks(b, u16::from_le_bytes)),
            dtype::INT64 => Values::I64(chunks(b, i64::from_le_bytes)),
            dtype::INT32 => Values::I32(chunks(b, i32::from_le_bytes)),
            dtype::INT8 => Values::I8(b.iter().map(|&x| x as i8).collect()),
            dtype::UINT8 => Values::U8(b.to_vec()),
            dtype::BOOL => Values::Bool(b.iter().map(|&x| x != 0).collect()),
            _ => return None,
        })
    }

    /// Float values of type `data_type` from f64 (rounded to nearest).
    pub fn from_f64(data_type: i32, v: &[f64]) -> Option<Values> {
        use crate::quant::float::{f32_to_bf16, f32_to_f16};
        Some(match data_type {
            dtype::FLOAT => Values::F32(v.iter().map(|&x| x as f32).collect()),
            dtype::DOUBLE => Values::F64(v.to_vec()),
            dtype::FLOAT16 => Values::F16(v.iter().map(|&x| f32_to_f16(x as f32)).collect()),
            dtype::BFLOAT16 => Values::Bf16(v.iter().map(|&x| f32_to_bf16(x as f32)).collect()),
            _ => return None,
        })
    }
}

impl Array {
    /// Stacks arrays of one type along their first axis (`None` if types, ranks or the other
    /// dims differ, or a rank is 0).
    pub fn concat(parts: &[&Array]) -> Option<Array> {
        let first = parts.first()?;
        if first.shape.is_empty() {
            return None;
        }
        let mut rows = 0i64;
        for p in parts {
            if p.shape.len() != first.shape.len()
                || p.shape[1..] != first.shape[1..]
                || std::mem::discriminant(&p.values) != std::mem::discriminant(&first.values)
            {
                return None;
            }
            rows += p.shape[0];
        }
        macro_rules! cat {
            ($v:ident) => {{
                let mut out = Vec::new();
                for p in parts {
                    if let Values::$v(x) = &p.values {
                        out.extend_from_slice(x);
                    }
                }
                Values::$v(out)
            }};
        }
        let values = match &first.values {
            Values::F32(_) => cat!(F32),
            Values::F64(_) => cat!(F64),
            Values::F16(_) => cat!(F16),
            Values::Bf16(_) => cat!(Bf16),
            Values::I64(_) => cat!(I64),
            Values::I32(_) => cat!(I32),
            Values::I8(_) => cat!(I8),
            Values::U8(_) => cat!(U8),
            Values::Bool(_) => cat!(Bool),
        };
        let mut shape = first.shape.clone();
        shape[0] = rows;
        Some(Array { shape, values })
    }

    /// Number of elements the shape holds (negative dims count as 0).
    pub fn elements(&self) -> usize {
        self.shape.iter().map(|&d| d.max(0) as usize).product()
    }
}
