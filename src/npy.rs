//! Tensors as NumPy `.npy` files (format version 1.0): `nnc extract`, and the dtype strings the
//! C and Python bindings hand to NumPy.
use crate::error::{Error, Result};
use crate::onnx::dtype;
use crate::Tensor;

impl Tensor {
    /// The NumPy dtype string of the data (`"<f4"`, `"<i8"`, `"|b1"`, ...), or `None` for data
    /// types NumPy has no type for (strings, bfloat16, the 8-, 6-, 4- and 2-bit floats and
    /// integers).
    pub fn numpy_dtype(&self) -> Option<&'static str> {
        numpy_dtype(self.data_type)
    }

    /// The tensor as the bytes of a `.npy` file (version 1.0, C order).
    /// [`Error::Unsupported`] for a data type without a NumPy dtype, or an inline tensor,
    /// whose data stays in the graph.
    pub fn to_npy(&self) -> Result<Vec<u8>> {
        let descr = self.numpy_dtype().ok_or_else(|| Error::Unsupported {
            detail: format!(
                "tensor {:?}: NumPy has no dtype for {}",
                self.name,
                self.dtype_name()
            ),
        })?;
        if Some(self.data.len() as u64) != dtype::byte_len(self.data_type, self.elements()) {
            return Err(Error::Unsupported {
                detail: format!(
                    "tensor {:?} keeps its data in the graph ({} storage)",
                    self.name,
                    self.storage.name()
                ),
            });
        }
        let shape = match self.dims.len() {
            0 => "()".to_string(),
            1 => format!("({},)", self.dims[0]),
            _ => format!(
                "({})",
                self.dims
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        // Magic (6), version (2), header length (2), header: a multiple of 64 bytes, ending
        // in a newline.
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let len = u16::try_from(header.len()).map_err(|_| Error::Unsupported {
            detail: format!("tensor {:?}: .npy header too long", self.name),
        })?;
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.data);
        Ok(out)
    }
}

/// NumPy's name for an ONNX data type's canonical bytes (little-endian).
pub(crate) fn numpy_dtype(data_type: i32) -> Option<&'static str> {
    Some(match data_type {
        dtype::FLOAT => "<f4",
        dtype::UINT8 => "|u1",
        dtype::INT8 => "|i1",
        dtype::UINT16 => "<u2",
        dtype::INT16 => "<i2",
        dtype::INT32 => "<i4",
        dtype::INT64 => "<i8",
        dtype::BOOL => "|b1",
        dtype::FLOAT16 => "<f2",
        dtype::DOUBLE => "<f8",
        dtype::UINT32 => "<u4",
        dtype::UINT64 => "<u8",
        dtype::COMPLEX64 => "<c8",
        dtype::COMPLEX128 => "<c16",
        _ => return None,
    })
}
