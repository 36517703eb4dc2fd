//! Running the model while encoding (feature `runtime`): onnxruntime loaded at run time
//! ([`engine`]), calibration inputs supplied or synthesized ([`inputs`]), and the calibrating
//! encoder that measures each weight's effect on the outputs and allocates steps to a target
//! ([`calibrate`]). The decoder never uses this module.
pub mod array;
pub mod bias;
pub mod calibrate;
pub mod compensate;
pub mod engine;
pub mod inputs;
pub mod runs;
pub mod search;

pub use calibrate::{CalibrationOptions, DEFAULT_SNR_DB};
