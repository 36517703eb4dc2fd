#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Without `internals` the modules below are crate-private: code that only the command-line
// tool, the tests or (without `encoder`) the encoder reach is then unused by design.
#![cfg_attr(
    not(all(feature = "internals", feature = "encoder")),
    allow(dead_code, unused_imports)
)]

/// Declares internal modules: `pub` and hidden from the docs with the unstable `internals`
/// feature (the command-line tool, tests, benches and fuzz targets), `pub(crate)` otherwise.
macro_rules! internal_modules {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        pub(crate) mod $name;
    )*};
}

internal_modules! {
    bytes;
    container;
    decoder;
    delta;
    entropy;
    error;
    limits;
    lossless;
    npy;
    onnx;
    output;
    quant;
    #[cfg(feature = "encoder")]
    encoder;
    #[cfg(feature = "encoder")]
    options;
    #[cfg(feature = "cli")]
    analysis;
    #[cfg(feature = "cli")]
    conformance;
    #[cfg(feature = "cli")]
    progress;
    #[cfg(feature = "runtime")]
    runtime;
    archive;
    base;
}

pub use archive::{Archive, MappedFile};
pub use base::BaseModel;
pub use container::tensor_header::{Coding, Storage};
pub use decoder::{
    decode_file, decode_file_with_base, decode_to_bytes, decode_to_bytes_with_base, DecodeOptions,
    Decoder, Tensor,
};
pub use error::{Error, FormatRule, Result};
pub use limits::Limits;

#[cfg(feature = "runtime")]
#[doc(hidden)]
pub use encoder::encode_file_calibrated;
#[cfg(feature = "encoder")]
#[doc(hidden)]
pub use encoder::encode_model;
#[cfg(feature = "encoder")]
pub use encoder::{encode_file, EncodeOptions, EncodeReport, TensorReport};
#[cfg(feature = "encoder")]
pub use lossless::LosslessOptions;
#[cfg(feature = "encoder")]
pub use options::{Encoder, Quality};
#[cfg(feature = "encoder")]
pub use quant::minifloat::Layout as MinifloatLayout;
#[cfg(feature = "encoder")]
pub use quant::policy::{Family, LossyOptions, StepRule};
