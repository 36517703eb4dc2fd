//! The encoder pipeline (spec §4.3): ONNX walk → per-tensor coding → container writer.
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use prost::Message;
use rayon::prelude::*;

use crate::base::BaseModel;
use crate::container::fidelity::Fidelity;
use crate::container::record::PREFIX_LEN;
use crate::container::tensor_header::{Coding, Storage, TensorHeader};
use crate::container::writer::ContainerWriter;
use crate::container::FILE_HEADER_LEN;
use crate::decoder::check_graph;
use crate::error::{Error, Result};
use crate::lossless::{self, LosslessOptions};
use crate::onnx::dtype;
use crate::onnx::lift::{lift_bounded, map_file, restore, Lifted, RawSource};
use crate::onnx::proto::ModelProto;
use crate::onnx::walk::walk;
use crate::onnx::wire::{census, strip_raw_data, CensusError};
use crate::output::AtomicFile;
use crate::quant::policy::{Consumers, LossyOptions, StepRule};
use crate::quant::{self, float, QuantParams};
use crate::Limits;

/// Encoder settings. The same input and settings give the same bytes, whatever the number of
/// threads.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// How tensors that are not quantized are coded.
    pub lossless: LosslessOptions,
    /// Quantize eligible float weights (`None`: every tensor lossless).
    pub lossy: Option<LossyOptions>,
    /// Subgraph nesting accepted in the input model.
    pub max_depth: Option<u32>,
    /// The decoder limits the file must satisfy (default: `Limits::default()`): the encoder
    /// writes only files a decoder with these limits accepts, and fails naming the limit
    /// otherwise (spec §10).
    pub limits: Option<Limits>,
    /// Give every tensor a record of its own, even one that would cost less in the graph
    /// (for tools and tests that look at records; files get larger).
    pub records_only: bool,
    /// Per tensor in walk order, a setting that overrides the lossy options' step rule (the
    /// calibrating encoder's allocation). Missing entries follow the options.
    #[doc(hidden)]
    pub tensor_rules: Option<std::sync::Arc<Vec<TensorRule>>>,
    /// Code an update against this base (spec §14): tensors that decode to the bytes of the
    /// base's tensor of the same name, type and shape become references to it, and the graph
    /// is compressed with the base's dictionary. The file then decodes only with that base,
    /// to exactly what the file without a base decodes to.
    pub base: Option<std::sync::Arc<crate::base::BaseModel>>,
    /// With a base: do not try tensors on the base's grid (only tensors the base holds as
    /// they are become references). The calibrating encoder's fallback when the grid misses
    /// the fidelity target.
    #[doc(hidden)]
    pub base_no_grid: bool,
    /// With a base: the tensors (by name) not to try on the base's grid, the others being
    /// tried: the calibrating encoder's first fallback when the grid misses the target.
    #[doc(hidden)]
    pub base_no_grid_for: Option<std::sync::Arc<std::collections::HashSet<String>>>,
    /// Per tensor (walk index), new data (little-endian, the tensor's type and size) that is
    /// coded exactly in place of the tensor's own: the biases the calibrating encoder
    /// corrects for the shift its quantized weights cause (`runtime::bias`).
    #[doc(hidden)]
    pub replaced: Option<std::sync::Arc<HashMap<usize, Vec<u8>>>>,
    /// Per tensor (walk index), values on the tensor's own grid whose levels are coded in
    /// place of its values' nearest ones: the calibrating encoder's error-compensating
    /// rounding (`runtime::compensate`). The grid (steps) is still the one the tensor's own
    /// values and rule give, and the error is measured against its own values.
    #[doc(hidden)]
    pub compensated: Option<std::sync::Arc<HashMap<usize, Vec<f64>>>>,
}

/// A per-tensor override of the step rule (see `EncodeOptions::tensor_rules`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TensorRule {
    /// As the lossy options say.
    Policy,
    /// Quantize with steps of this fraction of each channel's (or the tensor's) σ.
    Fraction(f32),
    /// Keep the tensor exact.
    Exact,
}

/// What the encoder wrote, per tensor and in total.
#[derive(Debug, Clone, Default)]
pub struct EncodeReport {
    /// Bytes of the GRAPH record's payload.
    pub graph_bytes: u64,
    /// Bytes of the whole `.nnc` file.
    pub total_bytes: u64,
    /// One entry per tensor of the model, in walk order.
    pub tensors: Vec<TensorReport>,
    /// What the calibrating encoder measured of the decoded model (written in the file).
    #[doc(hidden)]
    pub fidelity: Option<Fidelity>,
    /// What the encoder has to tell its user (a fallback, tensors it could not measure).
    pub notes: Vec<String>,
    /// Outputs of the FIDELITY record whose SNR was reported but not targeted: piecewise
    /// constant on the calibration inputs (a saturated map, a thresholded state).
    pub untargeted_outputs: Vec<String>,
    /// Seconds the calibration took (running the model, allocating, checking).
    pub calibration_seconds: f64,
    /// Of which in onnxruntime: building sessions and running them.
    pub runtime_seconds: f64,
}

/// What the encoder did with one tensor.
#[derive(Debug, Clone)]
pub struct TensorReport {
    /// The tensor's name.
    pub name: String,
    /// ONNX data type code.
    pub data_type: i32,
    /// Number of elements.
    pub elements: u64,
    /// Bytes of its canonical data.
    pub data_bytes: u64,
    /// Where the data goes back in the model.
    pub storage: Storage,
    /// How it was coded.
    pub coding: Coding,
    /// Bytes its payload takes in the file.
    pub payload_bytes: u64,
    /// The data stays in the graph (no record of its own; `coding` and `payload_bytes` do
    /// not apply).
    pub in_graph: bool,
    /// For quantized tensors: what the quantizer did.
    #[doc(hidden)]
    pub quant: Option<QuantReport>,
}

/// Quality and rate of one quantized tensor.
#[derive(Debug, Clone)]
pub struct QuantReport {
    pub params: QuantParams,
    /// Mean squared error of the reconstruction against the original weights.
    pub mse: f64,
    /// Signal-to-quantization-noise ratio in dB (10·log10(Σx² / Σ(x − x̂)²)).
    pub sqnr_db: f64,
    /// Distinct levels used.
    pub levels: usize,
    /// Order-0 entropy of the levels times their count, in bits.
    pub entropy_bits: f64,
}

/// Parses an ONNX model from bytes, after a census of what parsing builds (spec §10: the
/// encoder's input is bounded like the decoder's, by the expansion rule over its size).
pub fn parse_model(bytes: &[u8]) -> Result<ModelProto> {
    let budget = input_budget(bytes.len() as u64, &Limits::default());
    census(bytes, budget).map_err(|e| match e {
        CensusError::Budget { memory, .. } => Error::Limit {
            what: "input model memory",
            value: memory,
            limit: budget,
            offset: 0,
            tensor: None,
        },
        CensusError::Malformed { at, detail } => Error::input(
            None,
            format!("not an ONNX ModelProto: {detail} at byte {at}"),
        ),
    })?;
    ModelProto::decode(bytes)
        .map_err(|e| Error::input(None, format!("not an ONNX ModelProto: {e}")))
}

/// What the encoder may spend on a model of `len` serialized bytes: the decoder's expansion
/// rule (`len × max_expansion + expansion_slack`).
fn input_budget(len: u64, l: &Limits) -> u64 {
    len.saturating_mul(l.max_expansion)
        .saturating_add(l.expansion_slack)
}

/// Encodes a parsed model into `out`. `base_dir` is where external data files live.
pub fn encode_model<W: Write>(
    model: ModelProto,
    base_dir: Option<&Path>,
    opts: &EncodeOptions,
    out: W,
) -> Result<(W, EncodeReport)> {
    opts.validate()?;
    let size = model.encoded_len() as u64;
    let prepared = Prepared::new(model, base_dir, opts, None, size)?;
    prepared.write(opts, out)
}

/// A model whose tensors have been lifted out, ready to be coded (once, or several times
/// with other settings by the calibrating encoder).
pub struct Prepared {
    /// The model without the data of its slots.
    model: ModelProto,
    /// Every tensor of the walk, in walk order.
    pub lifted: Vec<Lifted>,
    consumers: Consumers,
    /// The decoder limits the file must satisfy.
    limits: Limits,
    /// What the calibrating encoder's codings of the model share.
    cache: std::sync::Mutex<Cache>,
}

/// What one coding of a model leaves for the next: the calibrating encoder codes the model
/// several times, mostly with the same graph and the same tensors kept exact (on a model of
/// 327 graph tensors, zstd at level 19 of the graph took a fifth of a default encode's CPU, and
/// the lossless coding of the exact tensors another fifth). Off for a single encode, which
/// codes everything once.
#[derive(Default)]
struct Cache {
    on: bool,
    /// The last graph compressed without a base, and its frame.
    frame: Option<(Vec<u8>, Vec<u8>)>,
    /// Lossless payloads of tensors by walk index, for `options`.
    options: Option<LosslessOptions>,
    payloads: HashMap<usize, (Coding, Vec<u8>)>,
    bytes: usize,
    /// Records of an update (spec §14) by what they were made from: the base's identity, the
    /// record's header and payload, compared whole. Each check of an update's calibration
    /// codes the model against the base, and most records are those of the check before.
    records: HashMap<Vec<u8>, (TensorHeader, Vec<u8>)>,
    record_bytes: usize,
    /// Rate–distortion curves by walk index, with the options they were measured with (an
    /// update's calibration may run more than once: `encode_file_calibrated`).
    curves: HashMap<usize, (LossyOptions, LosslessOptions, quant::allocate::Curve)>,
}

impl Cache {
    /// Bytes of payloads held at most (a tensor that would pass it is coded each time).
    const BUDGET: usize = 64 << 20;
    /// Bytes of update records and their keys held at most.
    const RECORD_BUDGET: usize = 256 << 20;
}

impl Prepared {
    /// Lifts every tensor out of `model`, whose `raw_data` may have been left in its input
    /// file (`raw`); `size` is the input's size (for the budget of spec §10).
    pub fn new(
        mut model: ModelProto,
        base_dir: Option<&Path>,
        opts: &EncodeOptions,
        raw: Option<RawSource>,
        size: u64,
    ) -> Result<Prepared> {
        let mut limits = opts.limits.unwrap_or_default();
        if let Some(d) = opts.max_depth {
            limits.max_depth = d;
        }
        let consumers = Consumers::of(&model);
        let parsed = model.encoded_len() as u64;
        let lifted = lift_bounded(
            &mut model,
            base_dir,
            &limits,
            input_budget(size, &limits),
            parsed,
            raw.as_ref(),
        )?;
        drop(raw);
        Ok(Prepared {
            model,
            lifted,
            consumers,
            limits,
            cache: std::sync::Mutex::new(Cache::default()),
        })
    }

    /// Keeps what one coding of the model can leave for the next (`Cache`): the calibrating
    /// encoder codes it several times.
    pub fn cache_codings(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.on = true;
        }
    }

    /// Tensor `i`'s data coded losslessly with `opts` (`lossless::encode`), from the cache
    /// when it was coded before with the same options.
    fn exact_payload(&self, i: usize, opts: &LosslessOptions) -> Result<(Coding, Vec<u8>)> {
        let t = &self.lifted[i];
        let hit = self.cache.lock().ok().and_then(|c| {
            (c.options.as_ref() == Some(opts))
                .then(|| c.payloads.get(&i).cloned())
                .flatten()
        });
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let coded = lossless::encode(t.data_type, &t.data, opts)?;
        if let Ok(mut c) = self.cache.lock() {
            if c.on {
                if c.options.as_ref() != Some(opts) {
                    c.options = Some(*opts);
                    c.payloads.clear();
                    c.bytes = 0;
                }
                if c.bytes + coded.1.len() <= Cache::BUDGET {
                    c.bytes += coded.1.len();
                    c.payloads.insert(i, coded.clone());
                }
            }
        }
        Ok(coded)
    }

    /// [`against_base_record`], from the cache when the same record was made against the same
    /// base before.
    fn update_record(
        &self,
        p: Placement,
        base: &BaseModel,
        lossless: &LosslessOptions,
    ) -> Result<Placement> {
        let Placement::Record(h, payload) = &p else {
            return against_base_record(p, base, lossless);
        };
        if !self.cache.lock().is_ok_and(|c| c.on) {
            return against_base_record(p, base, lossless);
        }
        let mut key = base.identity().to_vec();
        key.extend_from_slice(&h.to_bytes());
        key.extend_from_slice(payload);
        let hit = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.records.get(&key).cloned());
        if let Some((h, r)) = hit {
            return Ok(Placement::Record(h, r));
        }
        let p = against_base_record(p, base, lossless)?;
        if let (Placement::Record(h, r), Ok(mut c)) = (&p, self.cache.lock()) {
            let size = key.len() + r.len() + h.params.len() + h.name.len();
            if c.record_bytes + size <= Cache::RECORD_BUDGET && !c.records.contains_key(&key) {
                c.record_bytes += size;
                c.records.insert(key, (h.clone(), r.clone()));
            }
        }
        Ok(p)
    }

    /// Update records held by the cache (for tests).
    #[doc(hidden)]
    pub fn cached_update_records(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.records.len())
    }

    /// Tensor `i`'s rate–distortion curve under `lossy` and `lossless`: `make`'s, or the
    /// cache's when it was measured before with the same options.
    pub(crate) fn curve(
        &self,
        i: usize,
        lossy: &LossyOptions,
        lossless: &LosslessOptions,
        make: impl FnOnce() -> quant::allocate::Curve,
    ) -> quant::allocate::Curve {
        let hit = self.cache.lock().ok().and_then(|c| {
            c.curves
                .get(&i)
                .filter(|(l, ll, _)| l == lossy && ll == lossless)
                .map(|(_, _, curve)| curve.clone())
        });
        if let Some(hit) = hit {
            return hit;
        }
        let curve = make();
        if let Ok(mut c) = self.cache.lock() {
            if c.on {
                c.curves.insert(i, (*lossy, *lossless, curve.clone()));
            }
        }
        curve
    }

    /// zstd of `graph` at `level`, from the cache when the last graph compressed was the same.
    fn graph_frame(&self, graph: &[u8], level: i32) -> Result<Vec<u8>> {
        let hit = self.cache.lock().ok().and_then(|c| {
            c.frame
                .as_ref()
                .filter(|(g, _)| g.as_slice() == graph)
                .map(|(_, f)| f.clone())
        });
        if let Some(f) = hit {
            return Ok(f);
        }
        let f = zstd::bulk::compress(graph, level)
            .map_err(|e| Error::io("zstd compression of the graph", e))?;
        if let Ok(mut c) = self.cache.lock() {
            if c.on {
                c.frame = Some((graph.to_vec(), f.clone()));
            }
        }
        Ok(f)
    }

    /// The model with its slots' data lifted out.
    pub fn lifted_model(&self) -> &ModelProto {
        &self.model
    }

    /// Subgraph nesting the walk accepts.
    pub fn max_depth(&self) -> u32 {
        self.limits.max_depth
    }

    /// Whether the policy of `l` lets tensor `i` be quantized (it may still stay exact).
    pub fn may_quantize(&self, i: usize, l: &LossyOptions) -> bool {
        self.lifted
            .get(i)
            .is_some_and(|t| quant_candidate(t, l, &self.consumers))
    }

    /// The taps of tensor `i`'s kernels when it is a convolution's weight whose levels keep
    /// each kernel's sum under `l` (`quant::kernel`; `None` without `l.kernel_sums`).
    pub fn conv_taps(&self, i: usize, l: &LossyOptions) -> Option<usize> {
        self.lifted
            .get(i)
            .filter(|_| l.kernel_sums)
            .and_then(|t| self.consumers.conv_taps(&t.name, &t.dims))
    }

    /// Whether tensor `i` feeds only arithmetic inputs (see `Consumers::is_numeric`).
    pub fn is_numeric(&self, i: usize) -> bool {
        self.lifted
            .get(i)
            .is_some_and(|t| self.consumers.is_numeric(&t.name))
    }

    /// Whether each tensor (walk order) may be quantized under `opts`.
    fn quantizable(&self, opts: &EncodeOptions) -> Vec<bool> {
        self.lifted
            .iter()
            .map(|t| {
                opts.lossy
                    .as_ref()
                    .is_some_and(|l| quant_candidate(t, l, &self.consumers))
            })
            .collect()
    }

    /// Codes tensor `i`. Tensors that may go back into the graph (`early`) are coded before
    /// the graph is written; all others get a record of their own.
    fn code_one(&self, opts: &EncodeOptions, i: usize, early: bool) -> Result<Coded> {
        let t = &self.lifted[i];
        let rule = opts
            .tensor_rules
            .as_ref()
            .and_then(|r| r.get(i).copied())
            .unwrap_or(TensorRule::Policy);
        if let Some(data) = opts.replaced.as_ref().and_then(|r| r.get(&i)) {
            // New data, coded exactly (the lossless coding of the tensor's own data, cached
            // by walk index, does not apply).
            let t = Lifted {
                name: t.name.clone(),
                data_type: t.data_type,
                dims: t.dims.clone(),
                elements: t.elements,
                storage: t.storage,
                data: crate::onnx::lift::Data::Owned(data.clone()),
                in_graph: t.in_graph,
            };
            let exact = EncodeOptions {
                lossy: None,
                tensor_rules: None,
                ..opts.clone()
            };
            return code_tensor(&t, &exact, &self.consumers, early, TensorRule::Exact, Levels::Nearest, || {
                lossless::encode(t.data_type, &t.data, &opts.lossless)
            })
            .map_err(|e| e.with_tensor(&t.name));
        }
        if opts.base.as_deref().is_some_and(|b| unchanged(t, b)) {
            // A tensor the base holds as it is costs a reference: it stays exact, and a full
            // encode with the same steps keeps it exact too (spec §14.3).
            let exact = EncodeOptions {
                lossy: None,
                tensor_rules: None,
                ..opts.clone()
            };
            return code_tensor(t, &exact, &self.consumers, early, TensorRule::Exact, Levels::Nearest, || {
                self.exact_payload(i, &opts.lossless)
            })
            .map_err(|e| e.with_tensor(&t.name));
        }
        // A tensor the base's file quantized is quantized on the same grid (spec §14.5): where
        // it did not change, its levels decode to the base's bytes and it becomes a reference
        // (even where the allocation would keep it exact: the base's version costs nothing);
        // where it changed, its levels are close to the base's and cost little as residuals
        // (§14.6). The final run of the decoded model measures what that does; when it misses
        // the target, the calibrating encoder runs again without the grid.
        if let (Some(b), true) = (
            opts.base.as_deref(),
            opts.lossy.is_some()
                && !opts.base_no_grid
                && !opts
                    .base_no_grid_for
                    .as_ref()
                    .is_some_and(|set| set.contains(&t.name)),
        ) {
            let place = b
                .find(&t.name, t.data_type, &t.dims, usize::MAX)
                .map(|i| &b.places()[i as usize]);
            if let Some((place, grid)) = place.and_then(|p| {
                let g = QuantParams::parse(p.grid.as_deref()?, 0, &t.dims).ok()?;
                Some((p, g))
            }) {
                let on_grid = match rule {
                    TensorRule::Exact => TensorRule::Policy,
                    r => r,
                };
                let on_base_grid = |opts: &EncodeOptions| {
                    code_tensor(t, opts, &self.consumers, early, on_grid, Levels::Grid(&grid), || {
                        self.exact_payload(i, &opts.lossless)
                    })
                    .map_err(|e| e.with_tensor(&t.name))
                };
                let is_base = |coded: &Coded| match &coded.0 {
                    Placement::Record(h, payload) => {
                        h.coding == Coding::Quantized
                            && crate::decoder::decode_payload(h, payload, 0, true, None)
                                .is_ok_and(|d| d == place.data)
                    }
                    _ => false,
                };
                let coded = on_base_grid(opts)?;
                let same = is_base(&coded);
                // The base may have kept its kernels' sums where this encode does not, or
                // the reverse (a calibrated base keeps them when its target still holds): an
                // unchanged convolution weight is found either way.
                if !same {
                    if let Some(l) = opts
                        .lossy
                        .filter(|_| self.consumers.conv_taps(&t.name, &t.dims).is_some())
                    {
                        let other = EncodeOptions {
                            lossy: Some(LossyOptions {
                                kernel_sums: !l.kernel_sums,
                                ..l
                            }),
                            ..opts.clone()
                        };
                        let flipped = on_base_grid(&other)?;
                        if is_base(&flipped) {
                            return Ok(flipped);
                        }
                    }
                }
                if let Placement::Record(h, _) = &coded.0 {
                    let close = || close_spread(t.data_type, &t.data, &place.data);
                    if same
                        || (h.coding == Coding::Quantized && rule != TensorRule::Exact && close())
                    {
                        return Ok(coded);
                    }
                }
            }
        }
        let levels = match opts.compensated.as_ref().and_then(|c| c.get(&i)) {
            Some(v) => Levels::Given(v),
            None => Levels::Nearest,
        };
        code_tensor(t, opts, &self.consumers, early, rule, levels, || {
            self.exact_payload(i, &opts.lossless)
        })
            .map_err(|e| e.with_tensor(&t.name))
    }

    /// The first phase: codes the tensors that may stay in the graph (those no policy may
    /// quantize, up to `RESIDE_MAX` bytes, and those the graph keeps anyway), puts back those
    /// that cost less there, and serializes the graph, checked as the decoder will check it.
    /// Every other tensor is left for the second phase (`None` in `Front::coded`). On an
    /// error, the first one in walk order is reported, whatever the number of threads.
    fn front(&self, opts: &EncodeOptions) -> Result<Front> {
        let n = self.lifted.len();
        let quantizable = self.quantizable(opts);
        let early: Vec<bool> = (0..n)
            .map(|i| {
                let t = &self.lifted[i];
                t.in_graph || (!quantizable[i] && t.data.len() <= RESIDE_MAX)
            })
            .collect();
        let results: Vec<(usize, Result<Coded>)> = (0..n)
            .into_par_iter()
            .filter(|&i| early[i])
            .map(|i| (i, self.code_one(opts, i, true)))
            .collect();
        let mut coded: Vec<Option<Coded>> = (0..n).map(|_| None).collect();
        for (i, r) in results {
            match r {
                Ok(c) => coded[i] = Some(c),
                Err(e) => {
                    // An earlier tensor of the second phase may fail too: its error comes first.
                    for k in (0..i).filter(|&k| !early[k]) {
                        self.code_one(opts, k, false)?;
                    }
                    return Err(e);
                }
            }
        }
        // Tensors cheaper in the graph than in a record of their own go back into it: they
        // are then not slots (spec §5.2) and the graph's zstd frame codes them.
        let mut model = self.model.clone();
        let mut k = 0;
        walk(&mut model, self.limits.max_depth, &mut |_, slot| {
            let i = k;
            k += 1;
            if let Some((Placement::Graph(Some(bytes)), _)) = &coded[i] {
                if !restore(slot, self.lifted[i].storage, bytes.clone()) {
                    return Err(Error::input(
                        Some(&self.lifted[i].name),
                        "internal: tensor data does not go back into its place",
                    ));
                }
            }
            Ok(())
        })?;
        let records = coded
            .iter()
            .filter(|c| match c {
                Some((p, _)) => matches!(p, Placement::Record(..)),
                None => true,
            })
            .count();
        let graph = model.encode_to_vec();
        // Encode only what decodes: the graph's size, what parsing it builds, the count and
        // names of its slots, under the decoder's limits (the compressed size is not known
        // yet: `compress_graph` repeats the budget-dependent rules once it is).
        let slots = check_graph(&mut model, &graph, u64::MAX, &self.limits)?;
        if slots != records {
            return Err(Error::input(
                None,
                format!("internal: {slots} slots in the lifted model but {records} records"),
            ));
        }
        Ok(Front {
            coded,
            model,
            graph,
        })
    }

    /// The graph's zstd frame, checked against the decoder's limits once its size is known.
    fn compress_graph(
        &self,
        model: &mut ModelProto,
        graph: &[u8],
        base: Option<&BaseModel>,
    ) -> Result<Vec<u8>> {
        // Level 19 costs 15-90 ms on a graph of 60-150 KB for 0.1-3 % of the graph's size
        // over level 15 (0.1 % of the file at most, measured on the corpus): 19 only for
        // small graphs.
        let level = if graph.len() <= GRAPH_LEVEL_19_MAX {
            19
        } else {
            15
        };
        let frame = match base {
            Some(b) => crate::base::compress_graph(graph, b.dictionary(), level)?,
            None => self.graph_frame(graph, level)?,
        };
        let read = Sizes::after_graph(graph.len() as u64, frame.len(), base).read;
        check_graph(model, graph, read, &self.limits)?;
        Ok(frame)
    }

    /// Codes every tensor and the graph, holding them all (the calibrating encoder codes a
    /// model several times and measures each). [`Prepared::write`] streams instead.
    pub fn code(&self, opts: &EncodeOptions) -> Result<CodedModel> {
        let Front {
            mut coded,
            mut model,
            graph,
        } = self.front(opts)?;
        let later: Vec<usize> = (0..coded.len()).filter(|&i| coded[i].is_none()).collect();
        // The graph is compressed while the second phase runs.
        let (frame, rest) = rayon::join(
            || self.compress_graph(&mut model, &graph, None),
            || {
                later
                    .par_iter()
                    .map(|&i| (i, self.code_one(opts, i, false)))
                    .collect::<Vec<_>>()
            },
        );
        for (i, r) in rest {
            coded[i] = Some(r?);
        }
        let frame = frame?;
        let tensors = coded
            .into_iter()
            .map(|c| c.ok_or_else(|| Error::input(None, "internal: tensor not coded")))
            .collect::<Result<_>>()?;
        Ok(CodedModel {
            graph_len: graph.len() as u64,
            frame,
            tensors,
            base: None,
        })
    }

    /// Codes the model and writes it to `out` as it goes: the graph first, then the tensors in
    /// walk order, a window of at most `WINDOW_BYTES` of input at a time coded on all cores,
    /// each written as soon as its window is done and its input pages released. Memory holds
    /// the graph, the small tensors that may stay in it, and one window: not the model, not
    /// the output. Gives the same bytes as `code` then `CodedModel::write`.
    pub fn write<W: Write>(&self, opts: &EncodeOptions, out: W) -> Result<(W, EncodeReport)> {
        let Front {
            mut coded,
            mut model,
            graph,
        } = self.front(opts)?;
        let base = opts.base.as_deref();
        let frame = self.compress_graph(&mut model, &graph, base)?;
        drop(model);
        let minor = if base.is_some() {
            crate::container::VERSION_MINOR_UPDATE
        } else {
            crate::container::VERSION_MINOR
        };
        let mut w = ContainerWriter::with_minor(out, minor)?;
        let mut sizes = Sizes::start(&mut w, graph.len() as u64, &frame, base)?;
        drop(graph);
        let mut report = EncodeReport {
            graph_bytes: frame.len() as u64,
            ..Default::default()
        };
        let n = coded.len();
        let mut i = 0;
        while i < n {
            let mut j = i;
            let mut bytes = 0u64;
            while j < n {
                if coded[j].is_none() {
                    let len = self.lifted[j].data.len() as u64;
                    if bytes > 0 && bytes + len > WINDOW_BYTES {
                        break;
                    }
                    bytes += len;
                }
                j += 1;
            }
            // Coded (those the first phase left), and in an update coded against the base, on
            // every core; the first error in walk order is the one reported.
            let front: Vec<Option<Coded>> = coded[i..j].iter_mut().map(Option::take).collect();
            let window: Vec<Result<Coded>> = front
                .into_par_iter()
                .enumerate()
                .map(|(d, c)| {
                    let k = i + d;
                    let mut c = match c {
                        Some(c) => c,
                        None => self.code_one(opts, k, false)?,
                    };
                    if let Some(b) = base {
                        c.0 = self.update_record(c.0, b, &opts.lossless)
                            .map_err(|e| e.with_tensor(&self.lifted[k].name))?;
                    }
                    Ok(c)
                })
                .collect();
            for (r, t) in window.into_iter().zip(&self.lifted[i..j]) {
                let c = r?;
                sizes.write(&mut w, &c.0, &self.limits)?;
                report.tensors.push(tensor_report(&c, t));
                t.data.release();
            }
            i = j;
        }
        let (w, total) = w.finish()?;
        report.total_bytes = total;
        Ok((w, report))
    }
}

/// Tensors no policy may quantize and at most this many bytes are coded before the graph is
/// written, so that those cheaper there can go back into it; larger ones always get a record
/// (a record's overhead is under 0.2 % of such a tensor) and are coded while the file is
/// written.
const RESIDE_MAX: usize = 64 << 10;

/// Input bytes of tensor data the streaming encoder codes at once (at least one tensor).
const WINDOW_BYTES: u64 = 256 << 20;

/// The first phase's results: tensors coded so far, the lifted model with the tensors that
/// went back into it, and its serialization.
struct Front {
    coded: Vec<Option<Coded>>,
    model: ModelProto,
    graph: Vec<u8>,
}

/// What a decoder will have read and decoded at the end of each record written (spec §10).
struct Sizes {
    read: u64,
    decoded: u64,
    /// The base's canonical bytes, counted as read for TENSOR records (spec §10).
    credit: u64,
}

impl Sizes {
    fn after_graph(graph_len: u64, frame_len: usize, base: Option<&BaseModel>) -> Sizes {
        let base_len = if base.is_some() {
            PREFIX_LEN + crate::base::RECORD_LEN
        } else {
            0
        };
        Sizes {
            read: (FILE_HEADER_LEN + base_len + PREFIX_LEN + 9 + frame_len) as u64,
            decoded: graph_len,
            credit: base.map_or(0, BaseModel::canonical_len),
        }
    }

    /// Writes the BASE record of an update and the GRAPH record (compression 2 against a
    /// base, else 1).
    fn start<W: Write>(
        w: &mut ContainerWriter<W>,
        graph_len: u64,
        frame: &[u8],
        base: Option<&BaseModel>,
    ) -> Result<Sizes> {
        let compression = match base {
            Some(b) => {
                w.base(&b.record())?;
                2
            }
            None => 1,
        };
        w.graph_compressed(compression, graph_len, frame)?;
        Ok(Sizes::after_graph(graph_len, frame.len(), base))
    }

    /// Writes the record of a tensor that has one, checked against the decoder's `limits`.
    fn write<W: Write>(
        &mut self,
        w: &mut ContainerWriter<W>,
        placement: &Placement,
        limits: &Limits,
    ) -> Result<()> {
        if let Placement::Record(h, payload) = placement {
            let header = h.to_bytes();
            self.read += (PREFIX_LEN + header.len() + payload.len()) as u64;
            check_record(h, header.len(), self.read.saturating_add(self.credit), self.decoded, limits)
                .map_err(|e| e.with_tensor(&h.name))?;
            self.decoded += h.data_bytes;
            w.tensor(h, payload)?;
        }
        Ok(())
    }
}

/// The report of one coded tensor.
fn tensor_report((placement, quant): &Coded, t: &Lifted) -> TensorReport {
    let (coding, payload_bytes, in_graph) = match placement {
        Placement::Record(h, payload) => (h.coding, payload.len() as u64, false),
        Placement::Graph(_) => (Coding::Raw, 0, true),
    };
    TensorReport {
        name: t.name.clone(),
        data_type: t.data_type,
        elements: t.elements,
        data_bytes: t.data.len() as u64,
        storage: t.storage,
        coding,
        payload_bytes,
        in_graph,
        quant: quant.clone(),
    }
}

/// Every tensor and the graph, coded.
#[derive(Clone)]
pub struct CodedModel {
    graph_len: u64,
    frame: Vec<u8>,
    tensors: Vec<Coded>,
    /// The base of an update (set by `against_base`).
    base: Option<std::sync::Arc<BaseModel>>,
}

impl CodedModel {
    /// The same model as an update of `base` (spec §14): tensors that decode to the bytes of
    /// the base's tensor become references to it, and the graph is compressed against the
    /// base's dictionary. Decodes with `base` to the same bytes as `self` without it.
    pub fn against_base(
        mut self,
        prepared: &Prepared,
        base: std::sync::Arc<BaseModel>,
        opts: &EncodeOptions,
    ) -> Result<CodedModel> {
        let graph = zstd::bulk::decompress(&self.frame, self.graph_len as usize)
            .map_err(|e| Error::io("decompressing the graph", e))?;
        // The lifted model as coded: the tensors that went back into the graph are in it.
        let mut model = ModelProto::decode(graph.as_slice())
            .map_err(|e| Error::input(None, format!("internal: coded graph: {e}")))?;
        self.frame = prepared.compress_graph(&mut model, &graph, Some(&base))?;
        let tensors = std::mem::take(&mut self.tensors);
        self.tensors = tensors
            .into_par_iter()
            .map(|(p, q)| Ok((prepared.update_record(p, &base, &opts.lossless)?, q)))
            .collect::<Result<_>>()?;
        self.base = Some(base);
        Ok(self)
    }

    /// Bytes of the container `write` produces without a FIDELITY record.
    pub fn container_bytes(&self, prepared: &Prepared) -> Result<u64> {
        let (_, r) = self.write_to(std::io::sink(), None, &prepared.limits)?;
        Ok(r)
    }

    fn write_to<W: Write>(
        &self,
        out: W,
        fidelity: Option<&Fidelity>,
        limits: &Limits,
    ) -> Result<(W, u64)> {
        let minor = if self.base.is_some() {
            crate::container::VERSION_MINOR_UPDATE
        } else if fidelity.is_some() {
            crate::container::VERSION_MINOR_FIDELITY
        } else {
            crate::container::VERSION_MINOR
        };
        let mut w = ContainerWriter::with_minor(out, minor)?;
        let mut sizes = Sizes::start(&mut w, self.graph_len, &self.frame, self.base.as_deref())?;
        for (placement, _) in &self.tensors {
            sizes.write(&mut w, placement, limits)?;
        }
        if let Some(f) = fidelity {
            w.fidelity(f)?;
        }
        w.finish()
    }

    /// Writes the container (with a FIDELITY record when given) and reports what it holds.
    pub fn write<W: Write>(
        &self,
        prepared: &Prepared,
        out: W,
        fidelity: Option<&Fidelity>,
    ) -> Result<(W, EncodeReport)> {
        let (w, total) = self.write_to(out, fidelity, &prepared.limits)?;
        let report = EncodeReport {
            graph_bytes: self.frame.len() as u64,
            total_bytes: total,
            fidelity: fidelity.cloned(),
            tensors: self
                .tensors
                .iter()
                .zip(&prepared.lifted)
                .map(|(c, t)| tensor_report(c, t))
                .collect(),
            ..Default::default()
        };
        Ok((w, report))
    }
}

/// Whether the base holds `t` as it is: a tensor of the same name, type and shape with the same
/// canonical bytes.
fn unchanged(t: &Lifted, base: &BaseModel) -> bool {
    !t.in_graph
        && base
            .find(&t.name, t.data_type, &t.dims, usize::MAX)
            .is_some_and(|i| *base.places()[i as usize].data == *t.data)
}

/// Whether a changed tensor is close enough to the base's to share its grid: standard
/// deviations within 10 % (a fine-tune moves weights a little; a tensor retrained from
/// scratch, or rescaled, gets steps of its own).
fn close_spread(data_type: i32, new: &[u8], base: &[u8]) -> bool {
    let sd = |b: &[u8]| -> Option<f64> {
        let v = float_values(data_type, b)?;
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        Some((v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt())
    };
    match (sd(new), sd(base)) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => (a / b).ln().abs() < 1.1f64.ln(),
        _ => false,
    }
}

/// A record of an update (spec §14): a reference when it decodes to the bytes of the base's
/// tensor of the same name, type and shape (and that is no longer, §14.3); else, for quantized
/// levels of a uniform quantizer, the levels as residuals against that tensor when that is
/// smaller (§14.6). Either way the record decodes, with the base, to the same bytes.
fn against_base_record(
    placement: Placement,
    base: &BaseModel,
    lossless: &crate::lossless::LosslessOptions,
) -> Result<Placement> {
    let Placement::Record(h, payload) = placement else {
        return Ok(placement);
    };
    if h.storage == Storage::Inline {
        return Ok(Placement::Record(h, payload));
    }
    let Some(i) = base.find(&h.name, h.data_type, &h.dims, usize::MAX) else {
        return Ok(Placement::Record(h, payload));
    };
    let place = &base.places()[i as usize];
    if place.data.len() as u64 != h.data_bytes {
        return Ok(Placement::Record(h, payload));
    }
    let mut reference = Vec::new();
    crate::bytes::put_varint(&mut reference, i as u64);
    let decoded = crate::decoder::decode_payload(&h, &payload, 0, true, Some(base))?;
    if reference.len() <= payload.len() && decoded == place.data {
        let h = TensorHeader {
            coding: Coding::Reference,
            params: Vec::new(),
            ..h
        };
        return Ok(Placement::Record(h, reference));
    }
    // Exact bytes: their XOR with the base's, coded without loss, when smaller (§14.7).
    if matches!(h.coding, Coding::Raw | Coding::Planes | Coding::Zstd)
        && h.data_type != dtype::STRING
    {
        let xor: Vec<u8> = decoded.iter().zip(&place.data).map(|(a, b)| a ^ b).collect();
        let (inner, coded) = crate::lossless::encode(h.data_type, &xor, lossless)?;
        let mut d = reference;
        // The XOR of the bytes, or the integer differences of the values when smaller (those
        // came after the first updates: with the later stream modes, `wide`, only).
        let keys = if lossless.wide {
            crate::delta::encode(h.data_type, &decoded, &place.data, true)?
        } else {
            None
        };
        match keys {
            Some(keys) if keys.len() < coded.len() => {
                d.push(crate::delta::INNER);
                d.extend_from_slice(&keys);
            }
            _ => {
                d.push(inner as u8);
                d.extend_from_slice(&coded);
            }
        }
        if d.len() < payload.len() {
            let h = TensorHeader {
                coding: Coding::Difference,
                ..h
            };
            return Ok(Placement::Record(h, d));
        }
        return Ok(Placement::Record(h, payload));
    }
    let residual_flag = quant::residual::FLAG_RESIDUAL;
    if h.coding != Coding::Quantized || h.params.get(1).is_some_and(|f| f & residual_flag != 0) {
        return Ok(Placement::Record(h, payload));
    }
    let params = QuantParams::parse(&h.params, 0, &h.dims)?;
    if !quant::residual::kind_allows(&params.kind) {
        return Ok(Placement::Record(h, payload));
    }
    let n = h.elements as usize;
    let levels = quant::decode_levels(n, &payload)?;
    let segment = match h.dims.first() {
        Some(&d) if d >= 2 => (h.elements / d) as usize,
        _ => 0,
    };
    let residual = quant::residual::encode(
        base,
        i,
        h.data_type,
        &h.dims,
        &levels,
        &params,
        lossless.chunk,
        segment,
        lossless.wide,
    )?;
    match residual {
        // Kept when the record (params and payload) is smaller.
        Some((r, flags)) if r.len() < payload.len() + params_saved(flags, &params) => {
            let mut h = h;
            h.params[1] |= residual_flag | flags;
            if flags & quant::residual::FLAG_BASE_STEPS != 0 {
                // The steps are in the payload: the params end after their count.
                h.params.truncate(h.params.len() - 4 * params.steps.len());
            }
            Ok(Placement::Record(h, r))
        }
        _ => Ok(Placement::Record(h, payload)),
    }
}

/// Bytes of params a residual record with `flags` does not carry: the steps' f32s when they
/// are coded in the payload (spec §14.6.2).
fn params_saved(flags: u8, params: &QuantParams) -> usize {
    if flags & quant::residual::FLAG_BASE_STEPS != 0 {
        4 * params.steps.len()
    } else {
        0
    }
}

/// Largest serialized graph compressed at zstd level 19 (above: level 15).
const GRAPH_LEVEL_19_MAX: usize = 16 << 10;

/// Where a tensor's data goes.
#[derive(Clone)]
enum Placement {
    /// A TENSOR record: its header and payload.
    Record(TensorHeader, Vec<u8>),
    /// The graph: these bytes go back into the place (`None`: they never left it).
    Graph(Option<Vec<u8>>),
}

type Coded = (Placement, Option<QuantReport>);

/// Bytes a record adds besides its payload: prefix, header, index entry (offset varint of at
/// most 5 bytes for files under 32 GiB, name length varint).
fn record_overhead(name: &str, rank: usize) -> usize {
    24 + 36 + name.len() + 8 * rank + 5 + 2 + name.len()
}

/// Encode only what decodes: the checks of spec §4.1, §6.1 and §10 that the decoder's
/// `limits` apply to a TENSOR record with header `h` (`header_len` bytes) that ends after
/// `read` bytes, after `decoded` bytes of graph and tensors.
fn check_record(
    h: &TensorHeader,
    header_len: usize,
    read: u64,
    decoded: u64,
    limits: &Limits,
) -> Result<()> {
    let limit = |what, value: u64, limit: u64| {
        Err(Error::Limit {
            what,
            value,
            limit,
            offset: 0,
            tensor: None,
        })
    };
    if header_len as u64 > limits.max_header_bytes as u64 {
        return limit(
            "record header length",
            header_len as u64,
            limits.max_header_bytes as u64,
        );
    }
    if h.dims.len() as u64 > limits.max_dims as u64 {
        return limit("rank", h.dims.len() as u64, limits.max_dims as u64);
    }
    if h.storage != Storage::Inline && h.elements > limits.max_elements {
        return limit("elements", h.elements, limits.max_elements);
    }
    if h.data_bytes > limits.max_alloc {
        return limit("tensor bytes", h.data_bytes, limits.max_alloc);
    }
    limits.check_decoded(read, decoded, h.data_bytes, 0, None)
}

/// Whether the policy lets `t` be quantized (`quantize_tensor` may still keep it lossless).
fn quant_candidate(t: &Lifted, l: &LossyOptions, consumers: &Consumers) -> bool {
    !t.in_graph
        && dtype::is_float(t.data_type)
        && !matches!(t.storage, Storage::Inline | Storage::AttrInts)
        && (l.all_tensors || (t.elements >= l.min_elements && consumers.is_weight(&t.name)))
}

/// Where a quantized tensor's grid and levels come from.
#[derive(Clone, Copy)]
enum Levels<'a> {
    /// The grid of its own values and rule; each value's nearest level.
    Nearest,
    /// A base's grid (spec §14.5); each value's nearest level on it.
    Grid(&'a QuantParams),
    /// The grid of its own values and rule; the levels of these values on it
    /// (`EncodeOptions::compensated`).
    Given(&'a [f64]),
}

/// Codes one tensor; `may_reside`: it may stay in the graph when that is cheaper.
fn code_tensor(
    t: &Lifted,
    opts: &EncodeOptions,
    consumers: &Consumers,
    may_reside: bool,
    rule: TensorRule,
    levels: Levels<'_>,
    exact: impl Fn() -> Result<(Coding, Vec<u8>)>,
) -> Result<Coded> {
    if t.in_graph {
        return Ok((Placement::Graph(None), None));
    }
    let mut quant = None;
    let mut rounded_data = None;
    let (coding, payload, params) = if t.storage == Storage::Inline {
        (Coding::Raw, Vec::new(), Vec::new())
    } else if let Some((p, payload, report)) = opts
        .lossy
        .as_ref()
        .and_then(|l| quantize_tensor(t, l, consumers, opts, rule, levels).transpose())
        .transpose()?
    {
        quant = Some(report);
        (Coding::Quantized, payload, p.to_bytes())
    } else if let Some((rounded, report)) = opts
        .lossy
        .as_ref()
        .and_then(|l| round_fine(t, l, consumers))
    {
        // Rounded only where that codes smaller: exact data never costs more than its rounding
        // (a table of exact repeats, e.g. a window function, can code smaller unrounded).
        let (c, p) = lossless::encode(t.data_type, &rounded, &opts.lossless)?;
        let (ce, pe) = exact()?;
        if p.len() < pe.len() {
            quant = Some(report);
            rounded_data = Some(rounded);
            (c, p, Vec::new())
        } else {
            (ce, pe, Vec::new())
        }
    } else {
        let (c, p) = exact()?;
        (c, p, Vec::new())
    };
    // A small lossless tensor costs less in the graph than in a record of its own.
    if may_reside
        && !opts.records_only
        && coding != Coding::Quantized
        && matches!(
            t.storage,
            Storage::RawData | Storage::Typed | Storage::AttrFloats | Storage::AttrInts
        )
        && !t.data.is_empty()
        && payload.len() + record_overhead(&t.name, t.dims.len()) >= t.data.len()
    {
        let bytes = rounded_data.unwrap_or_else(|| t.data.to_vec());
        return Ok((Placement::Graph(Some(bytes)), quant));
    }
    let header = TensorHeader {
        data_type: t.data_type,
        storage: t.storage,
        coding,
        name: t.name.clone(),
        dims: t.dims.clone(),
        elements: t.elements,
        data_bytes: t.data.len() as u64,
        params,
    };
    Ok((Placement::Record(header, payload), quant))
}

/// `--fine-bits`: a float32 tensor that is not quantized but feeds only arithmetic inputs,
/// with its mantissas rounded; coded losslessly afterwards (the decoder sees plain data).
fn round_fine(
    t: &Lifted,
    l: &LossyOptions,
    consumers: &Consumers,
) -> Option<(Vec<u8>, QuantReport)> {
    let bits = l.fine_bits?;
    if t.data_type != dtype::FLOAT
        || t.elements < crate::quant::policy::FINE_MIN_ELEMENTS
        || !consumers.is_numeric(&t.name)
    {
        return None;
    }
    if !matches!(
        t.storage,
        Storage::RawData | Storage::Typed | Storage::External
    ) {
        return None;
    }
    let (mut se, mut sx) = (0.0f64, 0.0f64);
    let mut out = Vec::with_capacity(t.data.len());
    let mut levels = Vec::with_capacity(t.elements as usize);
    for b in t.data.chunks_exact(4) {
        let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let y = crate::quant::policy::round_mantissa(x, bits);
        if x.is_finite() {
            se += (x as f64 - y as f64).powi(2);
            sx += (x as f64).powi(2);
        }
        levels.push(y.to_bits());
        out.extend_from_slice(&y.to_le_bytes());
    }
    let hist = crate::entropy::histogram(&levels);
    let report = QuantReport {
        params: QuantParams {
            kind: quant::Kind::Minifloat {
                layout: quant::minifloat::Layout {
                    exp_bits: 8,
                    man_bits: bits,
                },
                scale_exp: 0,
            },
            steps: Vec::new(),
        },
        mse: se / t.elements as f64,
        sqnr_db: 10.0 * (sx / se.max(f64::MIN_POSITIVE)).log10(),
        levels: hist.len(),
        entropy_bits: crate::entropy::entropy_bits(&hist),
    };
    Some((out, report))
}

/// Values of a float tensor's canonical bytes, widened to f64.
pub fn float_values(data_type: i32, data: &[u8]) -> Option<Vec<f64>> {
    if !matches!(
        data_type,
        dtype::FLOAT | dtype::DOUBLE | dtype::FLOAT16 | dtype::BFLOAT16
    ) {
        return None;
    }
    let mut v = Vec::with_capacity(data.len() / dtype::unit_bytes(data_type).max(1));
    for_each_value(data_type, data, |_, x| v.push(x));
    Some(v)
}

/// Value `i` of a float tensor's canonical bytes, widened to f64 as `for_each_value` does
/// (0 for other types).
#[inline(always)]
fn value_at(data_type: i32, data: &[u8], i: usize) -> f64 {
    let b = |w: usize| &data[i * w..(i + 1) * w];
    match data_type {
        dtype::FLOAT => {
            let b = b(4);
            f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64
        }
        dtype::DOUBLE => {
            let b = b(8);
            f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        dtype::FLOAT16 => {
            let b = b(2);
            float::f16_to_f32(u16::from_le_bytes([b[0], b[1]])) as f64
        }
        dtype::BFLOAT16 => {
            let b = b(2);
            float::bf16_to_f32(u16::from_le_bytes([b[0], b[1]])) as f64
        }
        _ => 0.0,
    }
}

/// Calls `f(i, value)` for each value of a float tensor's canonical bytes, widened to f64
/// (nothing for other types).
fn for_each_value(data_type: i32, data: &[u8], mut f: impl FnMut(usize, f64)) {
    match data_type {
        dtype::FLOAT => {
            for (i, b) in data.chunks_exact(4).enumerate() {
                f(i, f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            }
        }
        dtype::DOUBLE => {
            for (i, b) in data.chunks_exact(8).enumerate() {
                f(
                    i,
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                )
            }
        }
        dtype::FLOAT16 => {
            for (i, b) in data.chunks_exact(2).enumerate() {
                f(
                    i,
                    float::f16_to_f32(u16::from_le_bytes([b[0], b[1]])) as f64,
                )
            }
        }
        dtype::BFLOAT16 => {
            for (i, b) in data.chunks_exact(2).enumerate() {
                f(
                    i,
                    float::bf16_to_f32(u16::from_le_bytes([b[0], b[1]])) as f64,
                )
            }
        }
        _ => {}
    }
}

/// Quantizes a tensor if the policy (and `rule`) says so: `None` keeps it lossless.
fn quantize_tensor(
    t: &Lifted,
    l: &LossyOptions,
    consumers: &Consumers,
    opts: &EncodeOptions,
    rule: TensorRule,
    levels: Levels<'_>,
) -> Result<Option<(QuantParams, Vec<u8>, QuantReport)>> {
    if !quant_candidate(t, l, consumers) {
        return Ok(None);
    }
    let mut own = *l;
    match rule {
        TensorRule::Policy => {}
        TensorRule::Exact => return Ok(None),
        TensorRule::Fraction(f) => own.step = StepRule::StdFraction(f),
    }
    let l = &own;
    let Some(mut values) = float_values(t.data_type, &t.data) else {
        return Ok(None);
    };
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return Ok(None);
    }
    let Some((params, limit)) = (match levels {
        Levels::Grid(g) => Some((g.clone(), None)),
        _ => l.params_for(&values, &t.dims),
    }) else {
        return Ok(None);
    };
    // The thesis's mode clamps values to its range; the error is measured against the
    // original values.
    let original = match l.step {
        StepRule::Thesis { min, max, .. } => {
            let original = values.clone();
            for v in &mut values {
                *v = v.clamp(min as f64, max as f64);
            }
            Some(original)
        }
        _ => None,
    };
    // Levels beyond the format's range (a tensor far from zero with a tiny spread, or a tiny
    // fixed step) would be clamped: such a tensor stays lossless instead.
    if limit.is_none() && !params.steps.is_empty() {
        let per = (values.len() / params.steps.len()).max(1);
        let too_far = values.chunks(per).zip(&params.steps).any(|(c, &step)| {
            let max_abs = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            max_abs / step as f64 >= (quant::MAX_LEVEL - 1) as f64
        });
        if too_far {
            return Ok(None);
        }
    }
    let count = values.len();
    let kind = params.kind;
    // The levels are kept as the symbols that code them (spec §7.6.2), four bytes each.
    let given = match levels {
        Levels::Given(v) if v.len() == count && original.is_none() => Some(v),
        _ => None,
    };
    let symbols: Vec<u32> = if let Some(v) = given {
        drop(values);
        quant::quantize_map(count, |i| v[i], &params, limit, |q| quant::symbol(&kind, q))
    } else if original.is_some() || l.rdo > 0.0 {
        let mut levels = quant::quantize(&values, &params, limit);
        quant::rdo::refine(&values, &mut levels, &params, l.rdo);
        drop(values);
        levels.iter().map(|&q| quant::symbol(&kind, q)).collect()
    } else if let Some(taps) = consumers
        .conv_taps(&t.name, &t.dims)
        .filter(|_| l.kernel_sums)
    {
        // A convolution's kernels keep their sums (`quant::kernel`).
        drop(values);
        let value = |i| value_at(t.data_type, &t.data, i);
        let mut levels = quant::quantize_map(count, value, &params, limit, |q| q);
        quant::kernel::keep_kernel_sums(&mut levels, value, &params, taps, limit);
        levels.iter().map(|&q| quant::symbol(&kind, q)).collect()
    } else {
        // The widened values are not held beside the levels: they are read again from the
        // tensor's bytes as they are quantized (the same values, widened the same way).
        drop(values);
        quant::quantize_map(
            count,
            |i| value_at(t.data_type, &t.data, i),
            &params,
            limit,
            |q| quant::symbol(&kind, q),
        )
    };
    // The reconstruction is measured against the tensor's own bytes (or the thesis mode's
    // copy), not against widened values held beside the levels.
    // Channel-class contexts over output channels (slices along axis 0).
    let segment = match t.dims.first() {
        Some(&d) if d >= 2 => (t.elements / d) as usize,
        _ => 0,
    };
    // μ-law ships one table entry per level magnitude, at most 2^20 (spec §7.6.2): beyond
    // that the tensor stays lossless.
    if matches!(kind, quant::Kind::MuLaw { .. })
        && symbols
            .iter()
            .any(|&s| quant::unzigzag(s).unsigned_abs() > 1 << 20)
    {
        return Ok(None);
    }
    let payload = quant::encode_symbols(
        &symbols,
        &params,
        opts.lossless.chunk,
        segment,
        opts.lossless.wide,
        opts.lossless.wide,
        None,
    )?;
    // Never spend more than the raw data (e.g. a μ-law table with more entries than weights).
    if payload.len() >= t.data.len() {
        return Ok(None);
    }
    // The levels' histogram (of their zigzag codes) for the report; the symbols are not
    // needed past this point (not held while the tensor is decoded below).
    let hist = crate::entropy::histogram_of(symbols.len(), |i| match kind {
        quant::Kind::Minifloat { .. } => quant::zigzag(symbols[i] as i64),
        _ => symbols[i],
    });
    drop(symbols);
    // Measure what a decoder will reconstruct, through the decoder itself.
    let header = TensorHeader {
        data_type: t.data_type,
        storage: t.storage,
        coding: Coding::Quantized,
        name: t.name.clone(),
        dims: t.dims.clone(),
        elements: t.elements,
        data_bytes: t.data.len() as u64,
        params: params.to_bytes(),
    };
    let decoded = quant::decode(&header, &payload, 0, true, None)?;
    let (mut se, mut sx) = (0.0f64, 0.0f64);
    let mut finite = true;
    for_each_value(t.data_type, &decoded, |i, y| {
        let x = match &original {
            Some(o) => o[i],
            None => value_at(t.data_type, &t.data, i),
        };
        finite &= y.is_finite();
        se += (x - y) * (x - y);
        sx += x * x;
    });
    // A level whose reconstruction lies beyond the type's largest finite value (weights
    // near the top of float16's range, a minifloat scale of 2^128) decodes to ±Inf: such a
    // tensor stays lossless.
    if !finite {
        return Ok(None);
    }
    let report = QuantReport {
        params: params.clone(),
        mse: se / count as f64,
        sqnr_db: 10.0 * (sx / se.max(f64::MIN_POSITIVE)).log10(),
        levels: hist.len(),
        entropy_bits: crate::entropy::entropy_bits(&hist),
    };
    Ok(Some((params, payload, report)))
}

/// Reads the ONNX file `input` and lifts its tensors.
///
/// The input is mapped, not read: the parsed model is a copy of it without the contents of
/// its `raw_data` fields (spec §10 census first, then `wire::strip_raw_data`), and tensors
/// are lifted from the map, so the encoder never holds the weights twice.
pub fn prepare_file(input: &Path, opts: &EncodeOptions) -> Result<Prepared> {
    opts.validate()?;
    let f = std::fs::File::open(input)
        .map_err(|e| Error::io(format!("opening {}", input.display()), e))?;
    let meta = f
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", input.display()), e))?;
    if !meta.is_file() {
        return Err(Error::input(
            None,
            format!("{} is not a regular file", input.display()),
        ));
    }
    let map = std::sync::Arc::new(
        map_file(&f).map_err(|e| Error::io(format!("mapping {}", input.display()), e))?,
    );
    let size = map.len() as u64;
    let budget = input_budget(size, &opts.limits.unwrap_or_default());
    let malformed = |at: usize, detail: &str| {
        Error::input(
            None,
            format!("not an ONNX ModelProto: {detail} at byte {at}"),
        )
    };
    census(&map, budget).map_err(|e| match e {
        CensusError::Budget { memory, .. } => Error::Limit {
            what: "input model memory",
            value: memory,
            limit: budget,
            offset: 0,
            tensor: None,
        },
        CensusError::Malformed { at, detail } => malformed(at, detail),
    })?;
    let stripped = strip_raw_data(&map).map_err(|e| match e {
        CensusError::Malformed { at, detail } => malformed(at, detail),
        CensusError::Budget { .. } => Error::input(None, "internal: budget while stripping"),
    })?;
    let model = ModelProto::decode(stripped.bytes.as_slice())
        .map_err(|e| Error::input(None, format!("not an ONNX ModelProto: {e}")))?;
    let raw = RawSource {
        map,
        ranges: stripped.ranges,
    };
    Prepared::new(model, input.parent(), opts, Some(raw), size)
}

/// Encodes the ONNX file `input` into the `.nnc` file `output` (written under a temporary
/// name and renamed, so a failure leaves no output behind).
pub fn encode_file(input: &Path, output: &Path, opts: &EncodeOptions) -> Result<EncodeReport> {
    let prepared = prepare_file(input, opts)?;
    let file = AtomicFile::create(output)?;
    let (file, report) = prepared.write(opts, file.writer())?;
    AtomicFile::commit(file)?;
    Ok(report)
}

/// Whether a calibrated encode reached its target on the calibration inputs (every output's
/// SNR, or the first output's agreement; size targets always hold).
#[cfg(feature = "runtime")]
fn target_met(f: &Fidelity) -> bool {
    use crate::container::fidelity::Target;
    match f.target {
        Target::Snr(db) => f.outputs.iter().all(|o| o.snr_db >= db),
        Target::Agreement(a) => f
            .outputs
            .first()
            .is_none_or(|o| o.agreement.is_nan() || o.agreement >= a),
        _ => true,
    }
}

/// The tensors to take off the base's grid when it missed an SNR target: those with the
/// largest predicted effect on the outputs per element (`Outcome::grid_effects`; coding a
/// tensor anew costs about in proportion to its elements), until they carry the share of the
/// error that must go for the target, 1.5 dB beyond it, to be met. `None` for other targets,
/// or when nothing was predicted.
#[cfg(feature = "runtime")]
fn grid_release(o: &crate::runtime::calibrate::Outcome) -> Option<std::collections::HashSet<String>> {
    use crate::container::fidelity::Target;
    let Target::Snr(target) = o.fidelity.target else {
        return None;
    };
    let reached = o
        .fidelity
        .outputs
        .iter()
        .map(|x| x.snr_db)
        .fold(f64::INFINITY, f64::min);
    release_for(target, reached, &o.grid_effects)
}

/// [`grid_release`]'s choice from the target and reached SNR (dB) and the effects (name,
/// predicted effect, elements); `None` when it would release every tensor (the fallback's
/// job) or none.
#[cfg(feature = "runtime")]
fn release_for(
    target: f64,
    reached: f64,
    effects: &[(String, f64, usize)],
) -> Option<std::collections::HashSet<String>> {
    let total: f64 = effects.iter().map(|e| e.1).sum();
    if !(reached.is_finite() && reached < target && total > 0.0) {
        return None;
    }
    let share = 1.0 - 10f64.powf(-(target - reached + 1.5) / 10.0);
    let density = |e: &(String, f64, usize)| e.1 / e.2.max(1) as f64;
    let mut order: Vec<&(String, f64, usize)> = effects.iter().collect();
    order.sort_by(|a, b| density(b).total_cmp(&density(a)).then_with(|| a.0.cmp(&b.0)));
    let mut out = std::collections::HashSet::new();
    let mut sum = 0.0;
    for (name, e, _) in order {
        if sum >= share * total {
            break;
        }
        sum += e;
        out.insert(name.clone());
    }
    (!out.is_empty() && out.len() < effects.len()).then_some(out)
}

/// The worst output of a FIDELITY record, for a note.
#[cfg(feature = "runtime")]
fn worst_output(f: &Fidelity) -> String {
    f.outputs
        .iter()
        .min_by(|a, b| a.snr_db.total_cmp(&b.snr_db))
        .map_or_else(String::new, |o| {
            format!("{} at {:.1} dB", o.name, o.snr_db)
        })
}

/// Encodes `input` into `output` with steps allocated by running the model (see
/// `runtime::calibrate`). When the model cannot run here (no onnxruntime, an operator or input
/// it cannot handle), the encoder falls back to the steps of `opts` and says so in
/// `EncodeReport::notes`.
#[cfg(feature = "runtime")]
pub fn encode_file_calibrated(
    input: &Path,
    output: &Path,
    opts: &EncodeOptions,
    cal: &crate::runtime::CalibrationOptions,
) -> Result<EncodeReport> {
    use crate::runtime::calibrate::{calibrate, Failure};
    let prepared = prepare_file(input, opts)?;
    let file = AtomicFile::create(output)?;
    let outcome = match calibrate(&prepared, opts, cal) {
        // Against a base, tensors on the base's grid keep the base's steps whatever the
        // allocation wants: when that misses the target, the encode is run again with only
        // the tensors the base holds as they are referred to (spec §14.5).
        Ok(o) if opts.base.is_some() && !target_met(&o.fidelity) => {
            let first = worst_output(&o.fidelity);
            // First only the tensors predicted to cause most of the excess error leave the
            // grid (the search then refines them as it needs); if that still misses, all do.
            let mut partial = None;
            if let Some(release) = grid_release(&o) {
                if std::env::var_os("NNC_TRACE").is_some() {
                    let mut r: Vec<&String> = release.iter().collect();
                    r.sort();
                    eprintln!("nnc: trace: released from the base's grid: {r:?}");
                }
                let again = EncodeOptions {
                    base_no_grid_for: Some(std::sync::Arc::new(release.clone())),
                    ..opts.clone()
                };
                match calibrate(&prepared, &again, cal) {
                    Ok(mut o) if target_met(&o.fidelity) => {
                        o.notes.push(format!(
                            "the base's grid missed the target ({first}); {} of the tensors \
                             the base quantized are coded anew, the others stay on its grid",
                            release.len()
                        ));
                        partial = Some(Ok(o));
                    }
                    Ok(_) => {}
                    Err(e) => partial = Some(Err(e)),
                }
            }
            partial.unwrap_or_else(|| {
                let again = EncodeOptions {
                    base_no_grid: true,
                    ..opts.clone()
                };
                calibrate(&prepared, &again, cal).map(|mut o| {
                    o.notes.push(format!(
                        "the base's grid missed the target ({first}); tensors the base \
                         quantized are coded anew"
                    ));
                    o
                })
            })
        }
        other => other,
    };
    let (file, report) = match outcome {
        Ok(o) => {
            let coded = match &opts.base {
                Some(b) => o.coded.against_base(&prepared, b.clone(), opts)?,
                None => o.coded,
            };
            let (file, mut report) = coded.write(&prepared, file.writer(), Some(&o.fidelity))?;
            report.notes = o.notes;
            report.untargeted_outputs = o.untargeted;
            report.calibration_seconds = o.seconds;
            report.runtime_seconds = o.runtime_seconds;
            (file, report)
        }
        Err(Failure::Unrunnable(why)) => {
            let (file, mut report) = prepared.write(opts, file.writer())?;
            report.notes = vec![format!(
                "cannot run the model ({why}); steps follow the weight-domain rule instead"
            )];
            (file, report)
        }
        Err(Failure::Error(e)) => return Err(e),
    };
    AtomicFile::commit(file)?;
    Ok(report)
}

#[cfg(all(test, feature = "runtime"))]
mod tests {
    use super::release_for;
    use std::collections::HashSet;

    #[test]
    fn grid_release_takes_the_densest_effects_first() {
        let e = |n: &str, effect: f64, elements: usize| (n.to_string(), effect, elements);
        // 0.8 dB short: 1 - 10^(-2.3/10) = 41 % of the error must go. The embedding carries
        // the most but per element the least; a and b, the densest, carry 50 %.
        let effects = [
            e("embedding", 0.5, 1_000_000),
            e("a", 0.4, 1000),
            e("b", 0.3, 1000),
            e("c", 0.2, 100_000),
        ];
        let got = release_for(36.0, 35.2, &effects).unwrap();
        let want: HashSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want);
        // Met, not measured, or every tensor needed: nothing to release here.
        assert!(release_for(36.0, 36.5, &effects).is_none());
        assert!(release_for(36.0, f64::NEG_INFINITY, &effects).is_none());
        assert!(release_for(36.0, 10.0, &effects).is_none());
    }
}
