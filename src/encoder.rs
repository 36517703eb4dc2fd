//! The encoder pipeline (spec §4.3): ONNX walk → per-tensor coding → container writer.
use std::io::Write;
use std::path::Path;

use prost::Message;
use rayon::prelude::*;

use crate::container::tensor_header::{Coding, Storage, TensorHeader};
use crate::container::writer::ContainerWriter;
use crate::error::{Error, Result};
use crate::lossless::{self, LosslessOptions};
use crate::onnx::lift::{lift, Lifted};
use crate::onnx::proto::ModelProto;
use crate::output::AtomicFile;

/// Encoder settings. The same input and settings give the same bytes, whatever the number of
/// threads.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    pub lossless: LosslessOptions,
    /// Subgraph nesting accepted in the input model.
    pub max_depth: Option<u32>,
}

/// What the encoder wrote, per tensor and in total.
#[derive(Debug, Clone, Default)]
pub struct EncodeReport {
    pub graph_bytes: u64,
    pub total_bytes: u64,
    pub tensors: Vec<TensorReport>,
}

#[derive(Debug, Clone)]
pub struct TensorReport {
    pub name: String,
    pub data_type: i32,
    pub elements: u64,
    pub data_bytes: u64,
    pub storage: Storage,
    pub coding: Coding,
    pub payload_bytes: u64,
}

/// Parses an ONNX model from bytes.
pub fn parse_model(bytes: &[u8]) -> Result<ModelProto> {
    ModelProto::decode(bytes)
        .map_err(|e| Error::input(None, format!("not an ONNX ModelProto: {e}")))
}

/// Encodes a parsed model into `out`. `base_dir` is where external data files live.
pub fn encode_model<W: Write>(
    mut model: ModelProto,
    base_dir: Option<&Path>,
    opts: &EncodeOptions,
    out: W,
) -> Result<(W, EncodeReport)> {
    let depth = opts.max_depth.unwrap_or(crate::Limits::default().max_depth);
    let lifted = lift(&mut model, base_dir, depth)?;
    let graph = model.encode_to_vec();
    let frame = zstd::bulk::compress(&graph, 19)
        .map_err(|e| Error::io("zstd compression of the graph", e))?;
    let coded: Vec<(TensorHeader, Vec<u8>)> = lifted
        .par_iter()
        .map(|t| code_tensor(t, opts).map_err(|e| e.with_tensor(&t.name)))
        .collect::<Result<_>>()?;
    let mut w = ContainerWriter::new(out)?;
    w.graph(graph.len() as u64, &frame)?;
    let mut report = EncodeReport {
        graph_bytes: frame.len() as u64,
        ..Default::default()
    };
    for (h, payload) in &coded {
        w.tensor(h, payload)?;
        report.tensors.push(TensorReport {
            name: h.name.clone(),
            data_type: h.data_type,
            elements: h.elements,
            data_bytes: h.data_bytes,
            storage: h.storage,
            coding: h.coding,
            payload_bytes: payload.len() as u64,
        });
    }
    let (w, total) = w.finish()?;
    report.total_bytes = total;
    Ok((w, report))
}

fn code_tensor(t: &Lifted, opts: &EncodeOptions) -> Result<(TensorHeader, Vec<u8>)> {
    let (coding, payload) = if t.storage == Storage::Inline {
        (Coding::Raw, Vec::new())
    } else {
        lossless::encode(t.data_type, &t.data, &opts.lossless)?
    };
    let header = TensorHeader {
        data_type: t.data_type,
        storage: t.storage,
        coding,
        name: t.name.clone(),
        dims: t.dims.clone(),
        elements: t.elements,
        data_bytes: t.data.len() as u64,
        params: Vec::new(),
    };
    Ok((header, payload))
}

/// Encodes the ONNX file `input` into the `.nnc` file `output` (written under a temporary
/// name and renamed, so a failure leaves no output behind).
pub fn encode_file(input: &Path, output: &Path, opts: &EncodeOptions) -> Result<EncodeReport> {
    let bytes =
        std::fs::read(input).map_err(|e| Error::io(format!("reading {}", input.display()), e))?;
    let model = parse_model(&bytes)?;
    drop(bytes);
    let file = AtomicFile::create(output)?;
    let (file, report) = encode_model(model, input.parent(), opts, file.writer())?;
    AtomicFile::commit(file)?;
    Ok(report)
}
