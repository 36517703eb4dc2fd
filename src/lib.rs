#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]

pub mod bytes;
pub mod entropy;
pub mod error;
pub mod limits;
pub mod onnx;

pub use error::{Error, FormatRule, Result};
pub use limits::Limits;
pub mod analysis;
pub mod conformance;
pub mod container;
pub mod decoder;
pub mod encoder;
pub mod lossless;
pub mod output;
pub mod quant;
#[cfg(feature = "runtime")]
pub mod runtime;

pub use decoder::{decode_file, decode_to_bytes, DecodeOptions, Decoder, Tensor};
#[cfg(feature = "runtime")]
pub use encoder::encode_file_calibrated;
pub use encoder::{encode_file, encode_model, EncodeOptions, EncodeReport};
