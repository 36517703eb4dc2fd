//! The valid vectors: models built to exercise one feature each, the encoder options that make
//! the reference encoder use it, and the facts a parse of the result must show (so a vector
//! cannot silently stop testing what its name says when the encoder's choices change).
//! Modules: `data` (values of every type), `graphs` (the walk, names), `types` (data types
//! and storages), `codings` (codings and stream modes), `quantized`, `edited` (valid files
//! the reference encoder does not write).
#[path = "codings.rs"]
mod codings;
#[path = "data.rs"]
mod data;
#[path = "edited.rs"]
mod edited;
#[path = "graphs.rs"]
mod graphs;
#[path = "pinned.rs"]
mod pinned;
#[path = "quantized.rs"]
mod quantized;
#[path = "types.rs"]
mod types;

use codings::*;
use data::*;
use edited::*;
use graphs::*;
use nnc::lossless::LosslessOptions;
use nnc::onnx::dtype;
use nnc::onnx::proto::*;
use nnc::quant::float::{f32_to_bf16, f32_to_f16};
use nnc::quant::minifloat::Layout;
use nnc::quant::policy::{Family, LossyOptions, StepRule};
use nnc::EncodeOptions;
pub use pinned::expansion_model;
use pinned::*;
use quantized::*;
use types::*;

use super::onnx::*;

/// A post-encoding edit (for valid files the reference encoder never writes).
pub type Edit = fn(Vec<u8>) -> Vec<u8>;

pub struct Case {
    pub name: String,
    pub description: String,
    /// Spec sections this case is about, besides those its facts imply.
    pub sections: Vec<&'static str>,
    pub model: ModelProto,
    pub opts: EncodeOptions,
    /// External data files (path relative to the model, bytes) the encoder reads.
    pub files: Vec<(String, Vec<u8>)>,
    /// Facts a parse of the file must show (see `facts_of` in main.rs).
    pub facts: Vec<String>,
    pub edit: Option<Edit>,
    /// The decoded model must equal the input (external data inlined): lossless cases.
    pub exact: bool,
}

pub(super) fn case(name: &str, description: &str, model: ModelProto) -> Case {
    Case {
        name: name.into(),
        description: description.into(),
        sections: Vec::new(),
        model,
        opts: lossless(),
        files: Vec::new(),
        facts: Vec::new(),
        edit: None,
        exact: true,
    }
}

impl Case {
    pub(super) fn facts(mut self, f: &[&str]) -> Case {
        self.facts.extend(f.iter().map(|s| s.to_string()));
        self
    }
    pub(super) fn sections(mut self, s: &[&'static str]) -> Case {
        self.sections.extend_from_slice(s);
        self
    }
    pub(super) fn lossy(mut self, l: LossyOptions) -> Case {
        self.opts.lossy = Some(l);
        self.exact = false;
        self
    }
    pub(super) fn opts(mut self, o: EncodeOptions) -> Case {
        self.opts = o;
        self
    }
    pub(super) fn with_model(mut self, m: ModelProto) -> Case {
        self.model = m;
        self
    }
    pub(super) fn edit(mut self, e: Edit) -> Case {
        self.edit = Some(e);
        self
    }
    /// The file decodes to something other than the input (an edit that quantizes).
    pub(super) fn lossy_edit(mut self, e: Edit) -> Case {
        self.edit = Some(e);
        self.exact = false;
        self
    }
}

/// Lossless with a record for every tensor the encoder can lift, so each vector exercises
/// the records it describes (`in_graph()` shows the default placement).
pub fn lossless() -> EncodeOptions {
    EncodeOptions {
        lossy: None,
        records_only: true,
        // The cases written before stream mode 6 keep their bytes; `wide()` turns it on.
        lossless: LosslessOptions {
            wide: false,
            ..LosslessOptions::default()
        },
        ..EncodeOptions::default()
    }
}

/// Lossy options that quantize every float tensor (`all_tensors`), one step per tensor.
pub fn quant(family: Family, step: StepRule) -> LossyOptions {
    LossyOptions {
        family,
        step,
        per_channel: false,
        min_elements: 1,
        all_tensors: true,
        mulaw_levels_bits: 6,
        rdo: 0.0,
        fine_bits: None,
        kernel_sums: false,
    }
}

// -------------------------------------------------------------------------------------------
// The cases

pub fn cases() -> Vec<Case> {
    let mut v = vec![spec_example(), empty_model(), graph_without_tensors()];
    for dt in fixed_width_types() {
        v.push(dtype_case(dt));
    }
    v.extend([
        strings(),
        storage_typed(),
        storage_external(),
        storage_inline(),
        in_graph(),
        constant_lists(),
        coding_raw(),
        coding_planes(),
        coding_zstd(),
        stream_exact(),
        stream_compact(),
        stream_classes(),
        stream_wide_classes(),
        stream_context(),
        stream_wide(),
        stream_split(),
        stream_split_k2(),
        chunks_many(),
        special_values(),
        empty_and_scalar(),
        rank_and_dims(),
        names_non_ascii(),
        names_fallback(),
        subgraphs(),
        functions(),
        training_info(),
        sparse(),
        attribute_tensors(),
    ]);
    v.extend(quantized());
    v.extend(edited());
    v.extend(pinned());
    v
}
