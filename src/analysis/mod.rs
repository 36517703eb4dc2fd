//! The thesis as a tool (Tonin 2021): weight statistics and distribution fits (`nnc analyze`,
//! §3.3–3.4), rate–distortion sweeps over the thesis's quantizers (`nnc sweep`, §3.5–3.7),
//! and the task metrics of §2.4.
pub mod fit;
pub mod histogram;
pub mod optimize;
pub mod profile;
pub mod special;
pub mod stable;
pub mod stats;
