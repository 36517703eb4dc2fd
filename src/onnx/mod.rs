//! ONNX protobuf types and the walk that lifts every tensor out of a model (spec §5).
pub mod dtype;
pub mod lift;
pub mod probe;
#[allow(clippy::all, missing_docs)]
pub mod proto;
pub mod walk;
pub mod wire;
