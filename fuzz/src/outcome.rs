//! Full decoding of untrusted bytes into a comparable [`Outcome`], checking on the way the
//! promises the decoder makes about every tensor it returns (spec §6.2: canonical byte
//! lengths; §4: the file length once the trailer is read). A broken promise panics, which
//! libFuzzer reports as a crash.
use std::io::Read;

use nnc::container::tensor_header::Storage;
use nnc::onnx::dtype;
use nnc::onnx::proto::ModelProto;
use nnc::{DecodeOptions, Decoder, Error, Limits};
use prost::Message;

/// One decoded tensor in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorKey {
    pub ordinal: usize,
    pub name: String,
    pub data_type: i32,
    pub dims: Vec<u64>,
    pub storage: u8,
    pub coding: u8,
    pub data: Vec<u8>,
    pub payload_bytes: u64,
    pub params: Vec<u8>,
}

/// How a decoding ended: the file length, or the error (its full `Debug` form: kind, rule,
/// offset, tensor and detail all compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Ok { total_bytes: u64 },
    Err(String),
}

/// Everything the streaming decoder produced for some input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The lifted graph, serialized; `None` when `Decoder::new` failed.
    pub graph: Option<Vec<u8>>,
    pub tensor_count: usize,
    pub tensors: Vec<TensorKey>,
    pub end: End,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self.end, End::Ok { .. })
    }

    /// A short description of the first difference from `other` (no megabytes of tensor
    /// data in the panic message), or `None` when equal.
    pub fn diff(&self, other: &Outcome) -> Option<String> {
        if self == other {
            return None;
        }
        if self.graph != other.graph {
            return Some(format!(
                "graph differs: {:?} vs {:?} bytes",
                self.graph.as_ref().map(Vec::len),
                other.graph.as_ref().map(Vec::len)
            ));
        }
        if self.tensor_count != other.tensor_count {
            return Some(format!(
                "tensor_count {} vs {}",
                self.tensor_count, other.tensor_count
            ));
        }
        for (a, b) in self.tensors.iter().zip(&other.tensors) {
            if a != b {
                return Some(format!(
                    "tensor {} {:?} differs (data {} vs {} bytes, first differing byte {:?})",
                    a.ordinal,
                    a.name,
                    a.data.len(),
                    b.data.len(),
                    a.data.iter().zip(&b.data).position(|(x, y)| x != y)
                ));
            }
        }
        if self.tensors.len() != other.tensors.len() {
            return Some(format!(
                "{} vs {} tensors decoded",
                self.tensors.len(),
                other.tensors.len()
            ));
        }
        Some(format!("end differs: {:?} vs {:?}", self.end, other.end))
    }
}

/// The default limits: decoded bytes at most 1024 × input + 8 MiB, so the inputs libFuzzer
/// makes (a few KB) stay far below the 64 MB `-malloc_limit_mb` of the scripts.
pub fn options(parallel: bool) -> DecodeOptions {
    DecodeOptions {
        limits: Limits::default(),
        parallel,
        ..DecodeOptions::default()
    }
}

fn key(e: &Error) -> String {
    format!("{e:?}")
}

/// Decodes `r` with `Decoder`: the graph, then every tensor, the index and the trailer.
/// `input_len`: the byte count of the input, checked against `total_bytes()` at the end.
pub fn stream<R: Read>(r: R, parallel: bool, input_len: Option<usize>) -> Outcome {
    let mut d = match Decoder::new(r, options(parallel)) {
        Ok(d) => d,
        Err(e) => {
            return Outcome {
                graph: None,
                tensor_count: 0,
                tensors: Vec::new(),
                end: End::Err(key(&e)),
            }
        }
    };
    let graph = d.graph().encode_to_vec();
    let tensor_count = d.tensor_count();
    let mut tensors = Vec::new();
    let end = loop {
        match d.next_tensor() {
            Ok(Some(t)) => {
                check_tensor(&t, tensors.len());
                tensors.push(TensorKey {
                    ordinal: t.ordinal,
                    name: t.name,
                    data_type: t.data_type,
                    dims: t.dims,
                    storage: t.storage as u8,
                    coding: t.coding as u8,
                    data: t.data,
                    payload_bytes: t.payload_bytes,
                    params: t.params,
                });
            }
            Ok(None) => {
                assert_eq!(
                    tensors.len(),
                    tensor_count,
                    "decoder ended after {} tensors but tensor_count() is {tensor_count}",
                    tensors.len()
                );
                if let Some(n) = input_len {
                    assert_eq!(
                        d.total_bytes(),
                        n as u64,
                        "total_bytes() disagrees with the input length"
                    );
                }
                // After the end, the decoder keeps saying so.
                assert!(matches!(d.next_tensor(), Ok(None)));
                break End::Ok {
                    total_bytes: d.total_bytes(),
                };
            }
            Err(e) => break End::Err(key(&e)),
        }
    };
    Outcome {
        graph: Some(graph),
        tensor_count,
        tensors,
        end,
    }
}

/// What `Decoder::next_tensor` promises about a tensor it returns.
fn check_tensor(t: &nnc::Tensor, ordinal: usize) {
    assert_eq!(t.ordinal, ordinal, "tensor ordinals out of sequence");
    let elements = t
        .dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .expect("returned tensor's dims overflow u64");
    if t.storage == Storage::Inline {
        assert!(t.data.is_empty(), "inline tensor {:?} with data", t.name);
        return;
    }
    if t.data_type == dtype::STRING {
        assert_eq!(
            dtype::count_strings(&t.data),
            Some(elements),
            "string tensor {:?}: framing does not hold its elements",
            t.name
        );
    } else {
        assert_eq!(
            Some(t.data.len() as u64),
            dtype::byte_len(t.data_type, elements),
            "tensor {:?} ({}, dims {:?}): decoded byte length is not canonical",
            t.name,
            dtype::name(t.data_type),
            t.dims
        );
    }
}

/// Decodes `bytes` completely, both ways (`Decoder` tensor by tensor, and `decode_to_bytes`),
/// checking the promises above and that the two agree. Returns the decoded ONNX bytes when
/// `decode_to_bytes` succeeded.
pub fn decode_fully(bytes: &[u8]) -> Option<Vec<u8>> {
    let streamed = stream(bytes, false, Some(bytes.len()));
    let full = nnc::decode_to_bytes(bytes, options(true));
    match full {
        Ok(onnx) => {
            assert!(
                streamed.is_ok(),
                "decode_to_bytes succeeded where the streaming decoder failed: {:?}",
                streamed.end
            );
            ModelProto::decode(onnx.as_slice())
                .expect("decode_to_bytes output is not a ModelProto");
            Some(onnx)
        }
        Err(e) => {
            // Streaming succeeds and the model cannot be rebuilt only when a slot does not
            // accept its data: a format error, never a limit or I/O error.
            if streamed.is_ok() {
                assert!(
                    matches!(e, Error::Format { .. }),
                    "streaming decode succeeded but decode_to_bytes failed with {e:?}"
                );
            }
            None
        }
    }
}
