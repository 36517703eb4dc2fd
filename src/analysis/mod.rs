//! The thesis as a tool (Tonin 2021): weight statistics and distribution fits (`nnc analyze`,
//! §3.3–3.4, Tables 3.2/3.3/3.8), rate–distortion sweeps over the thesis's quantizers through
//! the real encoder (`nnc sweep`, §3.5–3.7, Tables 3.9/3.10), and the task metrics of §2.4.
//!
//! Library entry points: [`profile::profile_model`] / [`profile::profile_file`] (analysis),
//! [`sweep::Prepared`] with [`sweep::grid`] and [`sweep::best_within`] (sweeps),
//! [`evaluator::Evaluator`] (external evaluation commands), [`plot`] (SVG figures),
//! [`metrics`] (§2.4); [`cli::AnalyzeArgs`] and [`cli::SweepArgs`] are the clap front ends.
pub mod cli;
pub mod evaluator;
pub mod fit;
pub mod histogram;
pub mod metrics;
pub mod optimize;
pub mod plot;
pub mod profile;
pub mod special;
pub mod stable;
pub mod stats;
pub mod sweep;
