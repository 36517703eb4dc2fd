//! The streaming decoder (spec §4.3, §6): open from any `Read`, get the graph, then the
//! tensors one at a time. Memory stays near the graph plus the largest tensor.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::base::{BaseModel, BaseRecord};
use crate::container::index;
use crate::container::kind;
use crate::container::reader::{Record, RecordReader};
use crate::container::record::Prefix;
use crate::container::tensor_header::{Coding, Storage, TensorHeader};
use crate::error::{Error, FormatRule, Result};
use crate::lossless;
use crate::onnx::dtype;
use crate::onnx::lift::{external_key, restore, safe_location};
use crate::onnx::proto::ModelProto;
use crate::onnx::walk::{walk_slots, SlotMut};
use crate::onnx::wire::{census, CensusError};
use crate::output::OutputSet;
use crate::Limits;

/// What the walk of the lifted graph says about one slot (spec §6.3 consistency rules).
#[derive(Debug, Clone)]
pub(crate) struct SlotInfo {
    pub(crate) name: String,
    kind: SlotKind,
}

#[derive(Debug, Clone)]
enum SlotKind {
    /// A `TensorProto`: its type, dims, whether it still holds data, whether it is external.
    Tensor {
        data_type: i32,
        dims: Vec<i64>,
        external: bool,
    },
    Floats,
    Ints,
}

/// One decoded tensor: its name, ONNX data type, dims and canonical bytes.
///
/// `data` holds the values in the canonical byte layout of spec §6.2: little-endian, packed,
/// row-major, the layout of ONNX's `raw_data` (strings are length-framed, spec §6.4).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Tensor {
    /// Position in walk order (spec §5.2), which is also the order of the INDEX.
    pub ordinal: usize,
    /// The tensor's name in the model (or a name the walk gives an unnamed attribute).
    pub name: String,
    /// The ONNX `TensorProto.DataType` code (1 float, 7 int64, 10 float16, ...); see
    /// [`Tensor::dtype_name`].
    pub data_type: i32,
    /// Dimensions, outermost first.
    pub dims: Vec<u64>,
    /// Where the data goes back in the model.
    pub storage: Storage,
    /// How the payload was coded ([`Coding::Quantized`] is the only lossy one).
    pub coding: Coding,
    /// Canonical little-endian bytes (spec §6.2); empty for [`Storage::Inline`].
    pub data: Vec<u8>,
    /// Bytes the payload took in the file.
    pub payload_bytes: u64,
    /// File offset of the tensor's record.
    pub offset: u64,
    /// Coding parameters from the header.
    #[doc(hidden)]
    pub params: Vec<u8>,
    /// The coded payload, kept only with `DecodeOptions::keep_payload` (for reports).
    #[doc(hidden)]
    pub payload: Vec<u8>,
}

impl Tensor {
    /// The data type's ONNX name: `"float"`, `"int64"`, `"float16"`, ...
    pub fn dtype_name(&self) -> &'static str {
        dtype::name(self.data_type)
    }

    /// Number of elements (the product of the dims; 1 for a scalar).
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Decoder settings.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Bounds on what an untrusted file may make the decoder allocate (spec §10).
    pub limits: Limits,
    /// Decode the chunks of a tensor on all cores. The output does not depend on it.
    pub parallel: bool,
    /// Keep each tensor's coded payload in `Tensor::payload` (reports such as `inspect`).
    pub keep_payload: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            limits: Limits::default(),
            parallel: true,
            keep_payload: false,
        }
    }
}

/// The streaming decoder: reads a `.nnc` file front to back from any [`Read`], holding the
/// graph and one tensor at a time, and checking every CRC, length and limit on the way.
///
/// It is an [`Iterator`] over the tensors (`Result<Tensor>` items, ending after the INDEX and
/// the trailer have been checked, or after the first error):
///
/// ```no_run
/// let file = std::io::BufReader::new(std::fs::File::open("model.nnc")?);
/// for t in nnc::Decoder::new(file, nnc::DecodeOptions::default())? {
///     let t = t?;
///     println!("{} {} {:?}", t.name, t.dtype_name(), t.dims);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// To decode one tensor by name without reading the others, use [`crate::Archive`].
pub struct Decoder<R: Read> {
    records: Option<RecordReader<R>>,
    model: ModelProto,
    slots: Vec<SlotInfo>,
    next: usize,
    opts: DecodeOptions,
    decoded: u64,
    offsets: Vec<u64>,
    graph_bytes: u64,
    total_bytes: u64,
    minor_version: u16,
    /// The last FIDELITY record seen: its payload and the payload's file offset.
    fidelity: Option<(Vec<u8>, u64)>,
    /// The most bytes `into_model_with` may hold for the model it builds (a file's output).
    inline_max: Option<u64>,
    /// Tensors decoded ahead of the caller, in file order.
    ready: VecDeque<Tensor>,
    /// The error that follows the `ready` tensors.
    pending: Option<Error>,
    /// The base the file is decoded against (spec §14).
    base: Option<Arc<BaseModel>>,
    /// The file's BASE record, if it is an update.
    base_record: Option<BaseRecord>,
    /// Records whose payload is not decoded (their tensors come with empty data): a file's
    /// output decodes its large raw tensors in a second pass, straight into their place.
    skip: Option<SkipRule>,
    /// The records skipped so far: ordinal and canonical byte length.
    skipped: Vec<(usize, u64)>,
    /// The GRAPH record's offset and prefix (a second pass checks it reads the same file).
    graph_record: (u64, Prefix),
}

/// What a second decoder of the same file takes from the first, instead of parsing the graph
/// again: the slots, and the GRAPH record to find unchanged.
pub(crate) struct Resume {
    slots: Vec<SlotInfo>,
    opts: DecodeOptions,
    decoded: u64,
    graph_bytes: u64,
    graph_record: (u64, Prefix),
    base: Option<Arc<BaseModel>>,
    base_record: Option<BaseRecord>,
}

impl Resume {
    /// A decoder of `r`, the file the first decoder read, from its start: the records up to
    /// the GRAPH record are read and checked (CRCs) but the graph is not parsed again.
    pub(crate) fn open<R: Read>(self, r: R) -> Result<Decoder<R>> {
        let mut records = RecordReader::new(r, self.opts.limits)?;
        let minor_version = records.minor_version();
        let mut fidelity = None;
        let mut rec = next_known(&mut records, &mut fidelity)?;
        if rec.prefix.kind == kind::BASE {
            rec = next_known(&mut records, &mut fidelity)?;
        }
        if (rec.offset, rec.prefix) != self.graph_record {
            return Err(Error::format(
                FormatRule::RecordOrder,
                rec.offset,
                "the GRAPH record changed between two reads of the file",
            ));
        }
        Ok(Decoder {
            records: Some(records),
            model: ModelProto::default(),
            slots: self.slots,
            next: 0,
            opts: self.opts,
            decoded: self.decoded,
            offsets: Vec::new(),
            graph_bytes: self.graph_bytes,
            total_bytes: 0,
            minor_version,
            fidelity,
            inline_max: None,
            ready: VecDeque::new(),
            pending: None,
            base: self.base,
            base_record: self.base_record,
            skip: None,
            skipped: Vec::new(),
            graph_record: self.graph_record,
        })
    }
}

/// Which records a decoder leaves undecoded: by ordinal and header.
type SkipRule = Arc<dyn Fn(usize, &TensorHeader) -> bool + Send + Sync>;

/// The quantizer parameters of a quantized record: its name, dims and params bytes.
pub(crate) type Grid = (String, Vec<u64>, Vec<u8>);

/// At most this many decoded bytes of small tensors are read ahead and decoded together.
const READ_AHEAD: u64 = 8 << 20;
/// At most this many records are read ahead.
const READ_AHEAD_RECORDS: usize = 256;

fn format_err(rule: FormatRule, at: u64, tensor: &str, d: impl Into<String>) -> Error {
    Error::Format {
        rule,
        offset: at,
        tensor: Some(tensor.to_owned()),
        detail: d.into(),
    }
}

impl Decoder<BufReader<std::fs::File>> {
    /// Opens the `.nnc` file at `path` (see [`Decoder::with_base`]). The file is also mapped:
    /// large payloads are decoded in place, their pages released as they are used, so that
    /// memory holds the tensor being decoded and little else whatever the payload's size.
    pub fn open_path(
        path: impl AsRef<Path>,
        opts: DecodeOptions,
        base: Option<Arc<BaseModel>>,
    ) -> Result<Self> {
        let (f, map) = crate::container::mapped::open(path.as_ref())?;
        let mut d = Decoder::with_base(BufReader::with_capacity(READ_BUF, f), opts, base)?;
        // A file that cannot be mapped (a pipe) is read as a stream.
        if let Ok(map) = map {
            d.read_in_place(Arc::new(map));
        }
        Ok(d)
    }
}

impl<R: Read + Seek> Decoder<BufReader<R>> {
    /// Takes payloads of at least `MAPPED_MIN` bytes in place from `map`, a mapping of the
    /// whole input this decoder reads from its start (`crate::container::mapped`).
    pub(crate) fn read_in_place(&mut self, map: Arc<memmap2::Mmap>) {
        if let Some(records) = self.records.as_mut() {
            records.set_mapped(crate::container::reader::Mapped {
                map,
                skip: crate::container::mapped::skip_buffered::<R>,
            });
        }
    }
}

impl<R: Read> Decoder<R> {
    /// Reads the file header and the GRAPH record.
    pub fn new(r: R, opts: DecodeOptions) -> Result<Self> {
        Self::with_base(r, opts, None)
    }

    /// Reads the file header and the GRAPH record of a file that may be an update (spec §14):
    /// `base` is the model it was coded against. An update without its base, or with another
    /// base, is refused here, before any tensor is decoded (`base-missing`,
    /// `base-mismatch`). A file that is not an update ignores `base`.
    pub fn with_base(r: R, opts: DecodeOptions, base: Option<Arc<BaseModel>>) -> Result<Self> {
        let mut records = RecordReader::new(r, opts.limits)?;
        let minor_version = records.minor_version();
        let mut fidelity = None;
        let mut rec = next_known(&mut records, &mut fidelity)?;
        let mut base_record = None;
        if rec.prefix.kind == kind::BASE {
            let b = BaseRecord::parse(&rec.payload, rec.payload_offset())?;
            b.check(base.as_deref(), rec.offset)?;
            base_record = Some(b);
            rec = next_known(&mut records, &mut fidelity)?;
            if rec.prefix.kind != kind::GRAPH {
                return Err(Error::format(
                    FormatRule::RecordOrder,
                    rec.offset,
                    "the BASE record must be followed by the GRAPH record",
                ));
            }
        }
        let base = if base_record.is_some() { base } else { None };
        if rec.prefix.kind != kind::GRAPH {
            return Err(Error::format(
                FormatRule::RecordOrder,
                rec.offset,
                "the first record must be GRAPH",
            ));
        }
        let read = records.offset();
        let dictionary = base.as_deref().map(BaseModel::dictionary);
        let (model, graph_len, memory) = parse_graph(&rec, &opts.limits, read, dictionary)?;
        let mut model = model;
        let slots = collect_slots(&mut model, &opts.limits, rec.offset, read, memory)?;
        Ok(Decoder {
            records: Some(records),
            model,
            slots,
            next: 0,
            opts,
            decoded: graph_len,
            offsets: Vec::new(),
            graph_bytes: rec.payload.len() as u64,
            total_bytes: 0,
            minor_version,
            fidelity,
            inline_max: None,
            ready: VecDeque::new(),
            pending: None,
            base,
            base_record,
            skip: None,
            skipped: Vec::new(),
            graph_record: (rec.offset, rec.prefix),
        })
    }

    /// What a second decoder of the same file needs (before any tensor is read).
    pub(crate) fn resume(&self) -> Resume {
        Resume {
            slots: self.slots.clone(),
            opts: self.opts,
            decoded: self.decoded,
            graph_bytes: self.graph_bytes,
            graph_record: self.graph_record,
            base: self.base.clone(),
            base_record: self.base_record,
        }
    }

    /// Decodes the model as `into_model(true)` does and gives the quantizer parameters of its
    /// quantized records (name, dims, params, in file order) beside it.
    pub(crate) fn into_model_and_grids(
        self,
    ) -> Result<(ModelProto, Vec<Grid>)> {
        let mut grids = Vec::new();
        let model = self.into_model_with_grids(&[], &mut |_, _| Ok(()), Some(&mut grids))?;
        Ok((model, grids))
    }

    /// The identity of the base this file is an update of (spec §14.2), if it is one.
    pub fn base_identity(&self) -> Option<[u8; crate::base::IDENTITY_LEN]> {
        self.base_record.map(|b| b.identity)
    }

    /// The model with tensor data lifted out (names, dims, types and all else kept).
    #[doc(hidden)]
    pub fn graph(&self) -> &ModelProto {
        &self.model
    }

    /// Compressed size of the graph section.
    pub fn graph_bytes(&self) -> u64 {
        self.graph_bytes
    }

    /// Number of tensor records the file holds (one per slot of the walk).
    pub fn tensor_count(&self) -> usize {
        self.slots.len()
    }

    /// Total file length, known once every tensor has been read.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The file's minor format version.
    pub fn minor_version(&self) -> u16 {
        self.minor_version
    }

    /// The FIDELITY record (spec §8.3), once the decoder has passed it (it follows the last
    /// tensor): `Ok(None)` when the file has none (or one of a later version). A malformed
    /// record is an error here only; it never affects decoding.
    #[doc(hidden)]
    pub fn fidelity(&self) -> Result<Option<crate::container::fidelity::Fidelity>> {
        match &self.fidelity {
            Some((payload, at)) => crate::container::fidelity::Fidelity::parse(payload, *at),
            None => Ok(None),
        }
    }

    /// Decodes the next tensor; `None` after the last one, once the index and the trailer
    /// have been checked.
    ///
    /// With `DecodeOptions::parallel`, runs of small tensors are read ahead and decoded on
    /// every core together (at most 8 MiB of decoded bytes, or an eighth of `max_alloc`,
    /// beyond the tensor returned); tensors, results and errors come in file order as if
    /// decoded one at a time.
    pub fn next_tensor(&mut self) -> Result<Option<Tensor>> {
        if self.ready.is_empty() && self.pending.is_none() {
            self.read_ahead();
        }
        if let Some(t) = self.ready.pop_front() {
            return Ok(Some(t));
        }
        match self.pending.take() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Reads records up to a batch (one large tensor, or small ones up to the read-ahead
    /// bound), decodes their payloads, and queues the tensors up to the first error, which
    /// becomes `pending`.
    fn read_ahead(&mut self) {
        let cap = READ_AHEAD.min(self.opts.limits.max_alloc / 8);
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        let mut pending = None;
        loop {
            match self.next_header() {
                Err(e) => {
                    pending = Some(e);
                    break;
                }
                Ok(None) => break,
                Ok(Some(item)) => {
                    bytes = bytes.saturating_add(item.1.data_bytes);
                    batch.push(item);
                    if !self.opts.parallel || bytes >= cap || batch.len() >= READ_AHEAD_RECORDS {
                        break;
                    }
                }
            }
        }
        let opts = &self.opts;
        let base = self.base.as_deref();
        let batch: Vec<_> = batch
            .into_iter()
            .map(|(rec, h, ordinal)| {
                let skip = self.skip.as_ref().is_some_and(|f| f(ordinal, &h));
                if skip {
                    self.skipped.push((ordinal, h.data_bytes));
                }
                (rec, h, ordinal, skip)
            })
            .collect();
        let finish = |(rec, h, ordinal, skip): (Record, TensorHeader, usize, bool)| {
            if skip {
                Ok(tensor_of(rec, h, ordinal, Vec::new(), false))
            } else {
                finish_record(rec, h, ordinal, opts, base)
            }
        };
        let results: Vec<Result<Tensor>> = if batch.len() > 1 {
            use rayon::prelude::*;
            batch.into_par_iter().map(finish).collect()
        } else {
            batch.into_iter().map(finish).collect()
        };
        for r in results {
            match r {
                Ok(t) => self.ready.push_back(t),
                Err(e) => {
                    pending = Some(e);
                    break;
                }
            }
        }
        self.pending = pending;
    }

    /// Reads the next TENSOR record and checks its header against its slot and the limits
    /// (spec §6.1, §10); `None` once the index and the trailer have been checked.
    fn next_header(&mut self) -> Result<Option<(Record, TensorHeader, usize)>> {
        let Some(records) = self.records.as_mut() else {
            return Ok(None);
        };
        let rec = next_known(records, &mut self.fidelity)?;
        if self.next == self.slots.len() {
            if rec.prefix.kind != kind::INDEX {
                return Err(Error::format(
                    FormatRule::RecordOrder,
                    rec.offset,
                    "expected the INDEX record after the last tensor",
                ));
            }
            let entries = index::parse(&rec.payload, rec.payload_offset())?;
            if entries.len() != self.offsets.len()
                || entries
                    .iter()
                    .zip(&self.offsets)
                    .zip(&self.slots)
                    .any(|((e, &o), s)| e.offset != o || e.name != s.name)
            {
                return Err(Error::format(
                    FormatRule::Index,
                    rec.payload_offset(),
                    "index does not match the tensor records",
                ));
            }
            let records = self.records.take().ok_or_else(|| Error::Unsupported {
                detail: "decoder state".into(),
            })?;
            self.total_bytes = records.finish(rec.offset)?;
            return Ok(None);
        }
        if rec.prefix.kind != kind::TENSOR {
            return Err(Error::format(
                FormatRule::RecordOrder,
                rec.offset,
                format!("expected a TENSOR record, found kind {}", rec.prefix.kind),
            ));
        }
        // In an update the base's tensors count as input too (spec §10).
        let credit = self.base.as_deref().map_or(0, BaseModel::canonical_len);
        let read_so_far = records.offset().saturating_add(credit);
        let h = check_record(
            &rec,
            &self.slots[self.next],
            &self.opts,
            read_so_far,
            self.decoded,
        )?;
        self.decoded += h.data_bytes;
        self.offsets.push(rec.offset);
        self.next += 1;
        Ok(Some((rec, h, self.next - 1)))
    }

    /// Decodes every tensor and returns the complete model plus the external data it names
    /// (`inline_external`: put external tensors into `raw_data` instead). Holds every tensor
    /// at once: their sum, with the graph, is bounded by `max_alloc` (spec §10).
    #[doc(hidden)]
    pub fn into_model(mut self, inline_external: bool) -> Result<(ModelProto, Vec<ExternalData>)> {
        let targets = if inline_external {
            Vec::new()
        } else {
            self.external_targets()?
        };
        let mut external = Vec::new();
        let model = self.into_model_with(&targets, &mut |target, t| {
            external.push(ExternalData {
                location: target.location.clone(),
                offset: target.offset,
                data: t.data,
            });
            Ok(())
        })?;
        Ok((model, external))
    }

    /// Where each slot's data goes when external tensors stay external (spec §6.3): for an
    /// external slot its file (a checked relative path), offset and byte length, known from
    /// the graph before any tensor is decoded; `None` for a slot whose data goes back into
    /// the graph.
    #[doc(hidden)]
    pub fn external_targets(&mut self) -> Result<Vec<Option<ExternalTarget>>> {
        let mut targets = Vec::new();
        targets
            .try_reserve_exact(self.slots.len())
            .map_err(|_| Error::Limit {
                what: "memory (allocation failed)",
                value: self.slots.len() as u64,
                limit: 0,
                offset: 0,
                tensor: None,
            })?;
        let slots = &self.slots;
        walk_slots(&mut self.model, self.opts.limits.max_depth, &mut |_, slot| {
            let k = targets.len();
            let name = slots.get(k).map_or("", |s| s.name.as_str());
            let SlotMut::Tensor(tp) = slot else {
                targets.push(None);
                return Ok(());
            };
            if tp.data_location != Some(1) {
                targets.push(None);
                return Ok(());
            }
            let loc = external_key(tp, "location").unwrap_or_default();
            let offset = match external_key(tp, "offset") {
                None => 0,
                Some(v) => v.trim().parse::<u64>().map_err(|_| {
                    format_err(
                        FormatRule::Graph,
                        0,
                        name,
                        format!("external offset {v:?} is not a number"),
                    )
                })?,
            };
            let location = safe_location(loc).ok_or_else(|| {
                format_err(
                    FormatRule::Graph,
                    0,
                    name,
                    format!("unsafe external location {loc:?}"),
                )
            })?;
            let elements = tp
                .dims
                .iter()
                .try_fold(1u64, |a, &d| u64::try_from(d).ok().and_then(|d| a.checked_mul(d)));
            let len = elements.and_then(|n| dtype::byte_len(tp.data_type.unwrap_or(0), n));
            targets.push(Some(ExternalTarget {
                location,
                offset,
                len,
                file: 0,
            }));
            Ok(())
        })?;
        Ok(targets)
    }

    /// Decodes every tensor, handing each one with a target in `targets` (indexed by slot;
    /// empty: none) to `sink` as soon as it is decoded, and returns the model with every other
    /// tensor back in its place. Memory holds the graph, the tensors that go back into it
    /// (their sum bounded by `max_alloc`, spec §10) and the tensor being decoded.
    pub(crate) fn into_model_with(
        self,
        targets: &[Option<ExternalTarget>],
        sink: &mut dyn FnMut(&ExternalTarget, Tensor) -> Result<()>,
    ) -> Result<ModelProto> {
        self.into_model_with_grids(targets, sink, None)
    }

    fn into_model_with_grids(
        self,
        targets: &[Option<ExternalTarget>],
        sink: &mut dyn FnMut(&ExternalTarget, Tensor) -> Result<()>,
        grids: Option<&mut Vec<Grid>>,
    ) -> Result<ModelProto> {
        self.into_model_with_holes(targets, sink, grids, None)
    }

    /// As `into_model_with_grids`; a tensor the skip rule left undecoded gets zeroed
    /// `raw_data` of its length (allocated untouched), whose address and ordinal go to
    /// `holes`: the caller writes the model around them and decodes them into place.
    fn into_model_with_holes(
        mut self,
        targets: &[Option<ExternalTarget>],
        sink: &mut dyn FnMut(&ExternalTarget, Tensor) -> Result<()>,
        mut grids: Option<&mut Vec<Grid>>,
        mut holes: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<ModelProto> {
        let mut held: Vec<Tensor> = Vec::new();
        let mut held_bytes = self.decoded;
        let mut hole_bytes = 0u64;
        while let Some(t) = self.next_tensor()? {
            let hole = hole_len(&self.skipped, t.ordinal);
            if let (Some(g), Coding::Quantized) = (grids.as_deref_mut(), t.coding) {
                g.push((t.name.clone(), t.dims.clone(), t.params.clone()));
            }
            match targets.get(t.ordinal).and_then(Option::as_ref) {
                Some(target) => sink(target, t)?,
                None => {
                    held_bytes = held_bytes.saturating_add(t.data.len() as u64);
                    hole_bytes = hole_bytes.saturating_add(hole.unwrap_or(0) as u64);
                    if self
                        .inline_max
                        .is_some_and(|m| held_bytes.saturating_add(hole_bytes) > m)
                    {
                        return Err(Error::Unsupported {
                            detail: format!(
                                "the decoded model takes over {held_bytes} bytes at tensor {:?}, \
                                 over protobuf's 2 GB: decode with external data",
                                t.name
                            ),
                        });
                    }
                    if held_bytes > self.opts.limits.max_alloc {
                        return Err(Error::Limit {
                            what: "decoded bytes held (max_alloc)",
                            value: held_bytes,
                            limit: self.opts.limits.max_alloc,
                            offset: t.offset,
                            tensor: Some(t.name),
                        });
                    }
                    held.try_reserve(1).map_err(|_| Error::Limit {
                        what: "memory (allocation failed)",
                        value: held_bytes,
                        limit: 0,
                        offset: t.offset,
                        tensor: None,
                    })?;
                    held.push(t);
                }
            }
        }
        let mut model = std::mem::take(&mut self.model);
        let mut it = held.into_iter();
        let mut k = 0usize;
        walk_slots(&mut model, self.opts.limits.max_depth, &mut |_, slot| {
            let sent = targets.get(k).is_some_and(Option::is_some);
            k += 1;
            if sent {
                return Ok(());
            }
            let Some(t) = it.next() else {
                return Err(Error::format(
                    FormatRule::RecordOrder,
                    0,
                    "fewer tensors than slots",
                ));
            };
            let slot = match (hole_len(&self.skipped, t.ordinal), holes.as_deref_mut(), slot) {
                (Some(len), Some(holes), SlotMut::Tensor(tp)) => {
                    let data = untouched_zeros(len, t.offset)?;
                    holes.push((data.as_ptr() as usize, t.ordinal));
                    tp.raw_data = Some(data);
                    tp.data_location = None;
                    tp.external_data.clear();
                    return Ok(());
                }
                (_, _, slot) => slot,
            };
            match (slot, t.storage) {
                (SlotMut::Tensor(tp), Storage::External) => {
                    tp.raw_data = Some(t.data);
                    tp.data_location = None;
                    tp.external_data.clear();
                    Ok(())
                }
                (slot, storage) => {
                    if restore(slot, storage, t.data) {
                        Ok(())
                    } else {
                        Err(format_err(
                            FormatRule::TensorHeader,
                            0,
                            &t.name,
                            "decoded data does not fit its slot",
                        ))
                    }
                }
            }
        })?;
        Ok(model)
    }

    /// The bytes the model `into_model_with(targets, ..)` returns will take at least, known
    /// before decoding: the graph and the canonical bytes of every external slot without a
    /// target (external tensors to inline; their dims are checked against their records).
    fn inline_bytes_at_least(&self, targets: &[Option<ExternalTarget>]) -> u64 {
        let mut n = self.decoded;
        for (k, s) in self.slots.iter().enumerate() {
            if targets.get(k).is_some_and(Option::is_some) {
                continue;
            }
            if let SlotKind::Tensor {
                data_type,
                dims,
                external: true,
            } = &s.kind
            {
                let elements = dims
                    .iter()
                    .try_fold(1u64, |a, &d| u64::try_from(d).ok().and_then(|d| a.checked_mul(d)));
                let len = elements.and_then(|e| dtype::byte_len(*data_type, e));
                n = n.saturating_add(len.unwrap_or(0));
            }
        }
        n
    }
}

/// Where an external tensor's bytes go (spec §6.3).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct ExternalTarget {
    /// Relative path (checked: no `..`, not absolute).
    pub location: PathBuf,
    /// Byte offset in that file.
    pub offset: u64,
    /// Byte length the slot's type and dims give (`None`: no fixed-size type).
    pub len: Option<u64>,
    /// Index of `location` among the distinct files (set by the plan of `decode_file`).
    pub file: usize,
}

/// Spec §6: checks a TENSOR record `rec` against the slot it fills and decodes its payload.
/// `read` is the input consumed up to the end of the record, `decoded` what was decoded
/// before it (the expansion rule, spec §10).
pub(crate) fn decode_record(
    rec: Record,
    slot: &SlotInfo,
    ordinal: usize,
    opts: &DecodeOptions,
    read: u64,
    decoded: u64,
    base: Option<&BaseModel>,
) -> Result<(Tensor, u64)> {
    let h = check_record(&rec, slot, opts, read, decoded)?;
    let data_bytes = h.data_bytes;
    Ok((finish_record(rec, h, ordinal, opts, base)?, data_bytes))
}

/// A TENSOR record's header, parsed and checked against its slot and the limits (`read`
/// bytes of input so far, `decoded` bytes decoded before it).
fn check_record(
    rec: &Record,
    slot: &SlotInfo,
    opts: &DecodeOptions,
    read: u64,
    decoded: u64,
) -> Result<TensorHeader> {
    let h = TensorHeader::parse(&rec.header, rec.header_offset(), &opts.limits)?;
    check_slot(&h, slot, rec.header_offset())?;
    opts.limits
        .check_decoded(read, decoded, h.data_bytes, rec.offset, Some(&h.name))?;
    Ok(h)
}

/// Decodes a checked record's payload into its tensor.
fn finish_record(
    rec: Record,
    h: TensorHeader,
    ordinal: usize,
    opts: &DecodeOptions,
    base: Option<&BaseModel>,
) -> Result<Tensor> {
    let data = decode_payload(&h, &rec.payload, rec.payload_offset(), opts.parallel, base)
        .map_err(|e| e.with_tensor(&h.name))?;
    // A payload read in place leaves none of its pages behind (its leading fields included).
    crate::container::mapped::release(&rec.payload);
    if h.storage == Storage::Typed && !dtype::typed_fits(h.data_type, &data) {
        return Err(format_err(
            FormatRule::TensorHeader,
            rec.payload_offset(),
            &h.name,
            format!(
                "decoded values do not fit the typed field of a {} tensor",
                dtype::name(h.data_type)
            ),
        ));
    }
    Ok(tensor_of(rec, h, ordinal, data, opts.keep_payload))
}

/// The tensor of a record with its decoded `data` (empty for a record left undecoded), and
/// its coded payload when `keep_payload`.
fn tensor_of(
    rec: Record,
    h: TensorHeader,
    ordinal: usize,
    data: Vec<u8>,
    keep_payload: bool,
) -> Tensor {
    Tensor {
        ordinal,
        offset: rec.offset,
        name: h.name,
        data_type: h.data_type,
        dims: h.dims,
        storage: h.storage,
        coding: h.coding,
        data,
        payload_bytes: rec.payload.len() as u64,
        params: h.params,
        payload: if keep_payload {
            rec.payload.into_vec()
        } else {
            Vec::new()
        },
    }
}

/// The canonical length of the skipped record `ordinal`, if it was skipped.
fn hole_len(skipped: &[(usize, u64)], ordinal: usize) -> Option<usize> {
    skipped
        .binary_search_by_key(&ordinal, |s| s.0)
        .ok()
        .and_then(|i| usize::try_from(skipped[i].1).ok())
}

/// `len` zero bytes from the allocator's zeroed memory (for large sizes, pages that are only
/// mapped on first touch); an error instead of an abort when they cannot be had.
fn untouched_zeros(len: usize, at: u64) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let fail = || Error::Limit {
        what: "memory (allocation failed)",
        value: len as u64,
        limit: 0,
        offset: at,
        tensor: None,
    };
    let layout = std::alloc::Layout::array::<u8>(len).map_err(|_| fail())?;
    // SAFETY: `layout` has a nonzero size; a null result is refused; the memory comes from
    // the global allocator with the layout of a `Vec<u8>` of capacity `len`, and `len` zeroed
    // bytes are initialized, as `Vec::from_raw_parts` requires.
    #[allow(unsafe_code)]
    unsafe {
        let p = std::alloc::alloc_zeroed(layout);
        if p.is_null() {
            return Err(fail());
        }
        Ok(Vec::from_raw_parts(p, len, len))
    }
}

/// Bytes of an external data file to write beside a decoded model.
#[derive(Debug, Clone)]
pub struct ExternalData {
    /// Relative path (checked: no `..`, not absolute).
    pub location: PathBuf,
    /// Byte offset in that file.
    pub offset: u64,
    /// The tensor's canonical bytes.
    pub data: Vec<u8>,
}

impl<R: Read> Iterator for Decoder<R> {
    type Item = Result<Tensor>;

    /// The next tensor; `None` after the last one (once the INDEX and the trailer are
    /// checked) and after an error, which ends the iteration.
    fn next(&mut self) -> Option<Result<Tensor>> {
        match self.next_tensor() {
            Ok(t) => t.map(Ok),
            Err(e) => {
                self.records = None;
                Some(Err(e))
            }
        }
    }
}

impl<R: Read> std::iter::FusedIterator for Decoder<R> {}

/// Reads records, skipping unknown non-critical ones (spec §4.2); keeps the payload of a
/// non-critical FIDELITY record in `fidelity` (spec §8.3).
pub(crate) fn next_known<R: Read>(
    records: &mut RecordReader<R>,
    fidelity: &mut Option<(Vec<u8>, u64)>,
) -> Result<Record> {
    loop {
        let rec = records.next_record()?;
        if rec.prefix.kind == kind::FIDELITY && !rec.prefix.critical() {
            let at = rec.payload_offset();
            *fidelity = Some((rec.payload.into_vec(), at));
            continue;
        }
        // Kind 5 was unassigned before version 1.2: without the critical flag it is an
        // unknown record, skipped as such (spec §4.2).
        if rec.prefix.kind == kind::BASE && !rec.prefix.critical() {
            continue;
        }
        if matches!(
            rec.prefix.kind,
            kind::GRAPH | kind::TENSOR | kind::INDEX | kind::BASE
        ) {
            if rec.prefix.kind != kind::INDEX && !rec.prefix.critical() {
                return Err(Error::format(
                    FormatRule::Reserved,
                    rec.offset + 1,
                    "GRAPH and TENSOR records must be flagged critical",
                ));
            }
            return Ok(rec);
        }
    }
}

/// Spec §5.1 steps 1 to 6: the GRAPH header, the zstd frame, the census of what parsing
/// builds (limit `graph memory`), the parse. Returns the model, `L` and the census's memory.
pub(crate) fn parse_graph(
    rec: &Record,
    limits: &Limits,
    read: u64,
    dictionary: Option<&[u8]>,
) -> Result<(ModelProto, u64, u64)> {
    let at = rec.header_offset();
    if rec.header.len() != 9 {
        return Err(Error::format(
            FormatRule::Graph,
            at,
            format!("GRAPH header has {} bytes, 9 expected", rec.header.len()),
        ));
    }
    if rec.header[0] != 1 && rec.header[0] != 2 {
        return Err(Error::format(
            FormatRule::Graph,
            at,
            format!("unknown graph compression {}", rec.header[0]),
        ));
    }
    if rec.header[0] == 2 && dictionary.is_none() {
        return Err(Error::format(
            FormatRule::Base,
            at,
            "the graph is coded against a base (compression 2) but the file has no BASE record",
        ));
    }
    let mut l = [0u8; 8];
    l.copy_from_slice(&rec.header[1..9]);
    let len = u64::from_le_bytes(l);
    if len > limits.max_graph_bytes {
        return Err(Error::Limit {
            what: "graph bytes",
            value: len,
            limit: limits.max_graph_bytes,
            offset: at + 1,
            tensor: None,
        });
    }
    limits.check_decoded(read, 0, len, at + 1, None)?;
    let (bytes, r) = match dictionary.filter(|_| rec.header[0] == 2) {
        Some(d) => {
            let (v, r) = crate::base::decompress_graph(
                &rec.payload,
                d,
                len as usize,
                rec.payload_offset(),
            )?;
            (v, r.map_err(|e| e.to_string()))
        }
        None => {
            let (v, r) = crate::error::try_zstd(&rec.payload, len as usize, rec.payload_offset())?;
            (v, r.map_err(|e| e.to_string()))
        }
    };
    r.map_err(|e| {
        Error::format(
            FormatRule::Graph,
            rec.payload_offset(),
            format!("graph zstd frame: {e}"),
        )
    })?;
    if bytes.len() as u64 != len {
        return Err(Error::format(
            FormatRule::Graph,
            rec.payload_offset(),
            format!("graph is {} bytes, header says {len}", bytes.len()),
        ));
    }
    let budget = limits.graph_memory_budget(read);
    let census = census(&bytes, budget).map_err(|e| match e {
        CensusError::Budget { memory, .. } => Error::Limit {
            what: "graph memory",
            value: memory,
            limit: budget,
            offset: rec.payload_offset(),
            tensor: None,
        },
        CensusError::Malformed { at, detail } => Error::format(
            FormatRule::Graph,
            rec.payload_offset(),
            format!("graph is not a ModelProto: {detail} at byte {at} of the serialized model"),
        ),
    })?;
    let model = ModelProto::decode(bytes.as_slice()).map_err(|e| {
        Error::format(
            FormatRule::Graph,
            rec.payload_offset(),
            format!("graph is not a ModelProto: {e}"),
        )
    })?;
    Ok((model, len, census.memory - bytes.len() as u64))
}

/// Spec §5.1 steps 7 and 8: walks the lifted model and records what each slot must match,
/// charging each slot's bookkeeping (its name, its dims) to the graph-memory budget before
/// allocating it, and failing at the first slot over `max_tensors` or with a name longer
/// than `max_name_len`: the work is linear in the graph and the budget, never in the
/// number of slots times the length of a name.
pub(crate) fn collect_slots(
    model: &mut ModelProto,
    limits: &Limits,
    at: u64,
    read: u64,
    graph_memory: u64,
) -> Result<Vec<SlotInfo>> {
    let budget = limits.graph_memory_budget(read);
    let mut memory = graph_memory;
    let mut slots: Vec<SlotInfo> = Vec::new();
    let limit = |what, value, limit| Error::Limit {
        what,
        value,
        limit,
        offset: at,
        tensor: None,
    };
    walk_slots(model, limits.max_depth, &mut |name, slot| {
        if slots.len() as u64 >= limits.max_tensors {
            return Err(limit(
                "tensor count",
                slots.len() as u64 + 1,
                limits.max_tensors,
            ));
        }
        let len = name.len();
        if len as u64 > limits.max_name_len as u64 {
            return Err(limit("name length", len as u64, limits.max_name_len as u64));
        }
        let dims = match &slot {
            SlotMut::Tensor(t) => t.dims.len(),
            _ => 0,
        };
        // The slot's entry, twice over for the growth of the vector, its name and dims.
        let cost = 2 * std::mem::size_of::<SlotInfo>() as u64 + len as u64 + 8 * dims as u64;
        memory = memory.saturating_add(cost);
        if memory > budget {
            return Err(limit("graph memory", memory, budget));
        }
        let alloc_err = || limit("graph memory (allocation failed)", memory, budget);
        let name = name.to_string_within(len).ok_or_else(alloc_err)?;
        let kind = match slot {
            SlotMut::Tensor(t) => {
                let mut d = Vec::new();
                d.try_reserve_exact(t.dims.len()).map_err(|_| alloc_err())?;
                d.extend_from_slice(&t.dims);
                SlotKind::Tensor {
                    data_type: t.data_type.unwrap_or(0),
                    dims: d,
                    external: t.data_location == Some(1),
                }
            }
            SlotMut::Floats(_) => SlotKind::Floats,
            SlotMut::Ints(_) => SlotKind::Ints,
        };
        slots.try_reserve(1).map_err(|_| alloc_err())?;
        slots.push(SlotInfo { name, kind });
        Ok(())
    })
    .map_err(|e| match e {
        Error::Input { detail, .. } => Error::format(FormatRule::Graph, at, detail),
        e => e,
    })?;
    Ok(slots)
}

/// What a decoder with `limits` checks of a GRAPH record holding `graph` (the serialized
/// lifted `model`) when it has read `read` bytes: the encoder calls this so that it writes
/// only files the decoder accepts (spec §10). Returns the number of slots.
pub(crate) fn check_graph(
    model: &mut ModelProto,
    graph: &[u8],
    read: u64,
    limits: &Limits,
) -> Result<usize> {
    let len = graph.len() as u64;
    if len > limits.max_graph_bytes {
        return Err(Error::Limit {
            what: "graph bytes",
            value: len,
            limit: limits.max_graph_bytes,
            offset: 0,
            tensor: None,
        });
    }
    limits.check_decoded(read, 0, len, 0, None)?;
    let budget = limits.graph_memory_budget(read);
    let c = census(graph, budget).map_err(|e| match e {
        CensusError::Budget { memory, .. } => Error::Limit {
            what: "graph memory",
            value: memory,
            limit: budget,
            offset: 0,
            tensor: None,
        },
        CensusError::Malformed { detail, .. } => Error::input(
            None,
            format!("internal: the lifted graph does not parse: {detail}"),
        ),
    })?;
    Ok(collect_slots(model, limits, 0, read, c.memory - len)?.len())
}

/// Spec §6.3: the record must describe the slot it fills.
fn check_slot(h: &TensorHeader, slot: &SlotInfo, at: u64) -> Result<()> {
    let err = |d: String| format_err(FormatRule::TensorHeader, at, &h.name, d);
    if h.name != slot.name {
        return Err(err(format!(
            "record name {:?} but the graph's slot is {:?}",
            h.name, slot.name
        )));
    }
    match (&slot.kind, h.storage) {
        (SlotKind::Floats, Storage::AttrFloats) | (SlotKind::Ints, Storage::AttrInts) => Ok(()),
        (
            SlotKind::Tensor {
                data_type,
                dims,
                external,
            },
            s,
        ) => {
            if *data_type != h.data_type {
                return Err(err(format!(
                    "data type {} but the graph says {}",
                    h.data_type, data_type
                )));
            }
            let dims_match = dims.len() == h.dims.len()
                && dims
                    .iter()
                    .zip(&h.dims)
                    .all(|(&a, &b)| a >= 0 && a as u64 == b);
            match s {
                Storage::Inline => Ok(()),
                _ if !dims_match => Err(err(format!(
                    "dims {:?} but the graph says {dims:?}",
                    h.dims
                ))),
                Storage::External if !*external => Err(err(
                    "external record for a tensor not marked EXTERNAL".into(),
                )),
                Storage::RawData | Storage::Typed if *external => Err(err(
                    "raw_data or typed record for a tensor marked EXTERNAL".into(),
                )),
                Storage::RawData | Storage::Typed | Storage::External => Ok(()),
                _ => Err(err(format!("storage {} for a TensorProto slot", s.name()))),
            }
        }
        _ => Err(err(format!(
            "storage {} does not fit the slot",
            h.storage.name()
        ))),
    }
}

pub(crate) fn decode_payload(
    h: &TensorHeader,
    payload: &[u8],
    base: u64,
    parallel: bool,
    model: Option<&BaseModel>,
) -> Result<Vec<u8>> {
    if h.storage == Storage::Inline {
        if !payload.is_empty() {
            return Err(Error::format(
                FormatRule::Payload,
                base,
                "an inline record has a payload",
            ));
        }
        return Ok(Vec::new());
    }
    let n = usize::try_from(h.data_bytes).map_err(|_| {
        Error::format(
            FormatRule::TensorHeader,
            base,
            "tensor too large for this machine",
        )
    })?;
    let data = match h.coding {
        Coding::Quantized => crate::quant::decode(h, payload, base, parallel, model)?,
        Coding::Reference => reference(h, payload, base, model)?,
        Coding::Difference => difference(h, payload, base, model, parallel)?,
        c => {
            if !h.params.is_empty() {
                return Err(Error::format(
                    FormatRule::TensorHeader,
                    base,
                    format!("{} coding takes no parameters", c.name()),
                ));
            }
            lossless::decode(c, h.data_type, payload, base, n, parallel)?
        }
    };
    if h.data_type == dtype::STRING && dtype::count_strings(&data) != Some(h.elements) {
        return Err(Error::format(
            FormatRule::Payload,
            base,
            format!("string data does not hold {} framed strings", h.elements),
        ));
    }
    Ok(data)
}

/// Spec §14.3 rules 4 and 5: the base's place `i`, which must have the record's name, type,
/// dims and length.
pub(crate) fn base_place<'b>(
    base: &'b BaseModel,
    i: u64,
    h: &TensorHeader,
    at: u64,
) -> Result<&'b crate::base::Place> {
    let err = |d: String| Error::format(FormatRule::Base, at, d);
    let Some(p) = usize::try_from(i).ok().and_then(|i| base.places().get(i)) else {
        return Err(err(format!(
            "base tensor {i} does not exist (the base has {})",
            base.places().len()
        )));
    };
    if p.name != h.name || p.data_type != h.data_type || p.dims != h.dims {
        return Err(err(format!(
            "base tensor {i} is {:?} ({} {:?}), the record is {:?} ({} {:?})",
            p.name,
            dtype::name(p.data_type),
            p.dims,
            h.name,
            dtype::name(h.data_type),
            h.dims
        )));
    }
    if p.data.len() as u64 != h.data_bytes {
        return Err(err(format!(
            "base tensor {i} has {} bytes, the record says {}",
            p.data.len(),
            h.data_bytes
        )));
    }
    Ok(p)
}

/// Spec §14.3: the canonical bytes of the base's place that a reference names.
fn reference(h: &TensorHeader, payload: &[u8], at: u64, base: Option<&BaseModel>) -> Result<Vec<u8>> {
    let err = |d: String| Error::format(FormatRule::Base, at, d);
    if !h.params.is_empty() {
        return Err(Error::format(
            FormatRule::TensorHeader,
            at,
            "reference coding takes no parameters",
        ));
    }
    let base = crate::base::required(base, "a reference to a base tensor", at)?;
    let mut c = crate::bytes::Cursor::new(payload, at, FormatRule::Base);
    let i = c.varint("base tensor number")?;
    if !c.is_empty() {
        return Err(err("bytes after the base tensor number".into()));
    }
    let p = base_place(base, i, h, at)?;
    crate::error::try_copy(&p.data, at)
}

/// Spec §14.7: the canonical bytes of a difference record, the base place's bytes XOR the
/// inner payload's.
fn difference(
    h: &TensorHeader,
    payload: &[u8],
    at: u64,
    model: Option<&BaseModel>,
    parallel: bool,
) -> Result<Vec<u8>> {
    if !h.params.is_empty() {
        return Err(Error::format(
            FormatRule::TensorHeader,
            at,
            "difference coding takes no parameters",
        ));
    }
    if h.data_type == dtype::STRING {
        return Err(Error::format(
            FormatRule::TensorHeader,
            at,
            "difference coding of a STRING tensor",
        ));
    }
    let model = crate::base::required(model, "a difference from a base tensor", at)?;
    let mut c = crate::bytes::Cursor::new(payload, at, FormatRule::Base);
    let i = c.varint("base tensor number")?;
    let p = base_place(model, i, h, at)?;
    let inner_at = c.offset();
    let mut c = crate::bytes::Cursor::new(
        &payload[(inner_at - at) as usize..],
        inner_at,
        FormatRule::Payload,
    );
    let code = c.u8("inner coding")?;
    if code == crate::delta::INNER {
        return crate::delta::decode(h.data_type, &p.data, &mut c, parallel);
    }
    let inner = match Coding::from_u8(code) {
        Some(k @ (Coding::Raw | Coding::Planes | Coding::Zstd)) => k,
        _ => {
            return Err(Error::format(
                FormatRule::Payload,
                inner_at,
                format!("inner coding {code} of a difference (0, 1, 2 or 3 expected)"),
            ))
        }
    };
    let rest = &payload[(inner_at + 1 - at) as usize..];
    let mut data = lossless::decode(inner, h.data_type, rest, inner_at + 1, p.data.len(), parallel)?;
    for (d, b) in data.iter_mut().zip(&p.data) {
        *d ^= b;
    }
    Ok(data)
}

/// Decodes a whole `.nnc` from `r` to ONNX bytes (external tensors inlined).
pub fn decode_to_bytes<R: Read>(r: R, opts: DecodeOptions) -> Result<Vec<u8>> {
    decode_to_bytes_with_base(r, opts, None)
}

/// [`decode_to_bytes`] for a file that may be an update of `base` (spec §14).
pub fn decode_to_bytes_with_base<R: Read>(
    r: R,
    opts: DecodeOptions,
    base: Option<Arc<BaseModel>>,
) -> Result<Vec<u8>> {
    let (model, _) = Decoder::with_base(r, opts, base)?.into_model(true)?;
    encode_fallibly(&model)
}

/// A reader that reports how many bytes it has handed out.
struct CountingReader<'a, R> {
    inner: R,
    read: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read);
        Ok(n)
    }
}

impl<R: Seek> Seek for CountingReader<'_, R> {
    /// Bytes skipped count as read (only relative moves forward are made).
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let at = self.inner.seek(pos)?;
        self.read = at;
        (self.progress)(self.read);
        Ok(at)
    }
}

/// The serialized model, its buffer reserved fallibly.
pub(crate) fn encode_fallibly(model: &ModelProto) -> Result<Vec<u8>> {
    let mut bytes = crate::error::try_zeroed(0, 0)?;
    bytes
        .try_reserve_exact(model.encoded_len())
        .map_err(|_| Error::Limit {
            what: "memory (allocation failed)",
            value: model.encoded_len() as u64,
            limit: 0,
            offset: 0,
            tensor: None,
        })?;
    // The capacity was reserved for the whole message above, so `encode` cannot fall short.
    model.encode_raw(&mut crate::output::VecBuf(&mut bytes));
    Ok(bytes)
}

/// Decodes `input` to the ONNX file `output`; external tensors go to their original
/// locations relative to `output`'s directory unless `inline_external`. Every file is written
/// under an unguessable temporary name and all are renamed into place only when all decoding
/// and writing succeeded (spec §11); nothing new is left otherwise. The files are synced to
/// their device before the renames.
pub fn decode_file(
    input: &Path,
    output: &Path,
    opts: DecodeOptions,
    inline_external: bool,
) -> Result<()> {
    decode_file_with_progress(input, output, opts, inline_external, None, true, &mut |_| {})
}

/// [`decode_file`] for a file that may be an update of `base` (spec §14): an update decodes
/// only against the base it names, and is refused before any output is written otherwise.
pub fn decode_file_with_base(
    input: &Path,
    output: &Path,
    opts: DecodeOptions,
    inline_external: bool,
    base: Option<Arc<BaseModel>>,
) -> Result<()> {
    decode_file_with_progress(input, output, opts, inline_external, base, true, &mut |_| {})
}

/// [`decode_file`], calling `progress` with the number of input bytes read so far (the
/// command-line tool's progress bar); `sync` waits for the device before the renames
/// (without it, as `zstd -d` or `cp`, the outputs are still renamed into place only whole).
///
/// Memory stays bounded whatever the model's size: each external tensor is written to its
/// file as soon as it is decoded; only the graph and the tensors that go back into it are held
/// (at most protobuf's 2 GB, refused before decoding when the graph's slots already say so).
#[doc(hidden)]
pub fn decode_file_with_progress(
    input: &Path,
    output: &Path,
    opts: DecodeOptions,
    inline_external: bool,
    base: Option<Arc<BaseModel>>,
    sync: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    // Refuse a bad output path before any work.
    let mut set = OutputSet::new(output)?;
    set.sync = sync;
    let (f, map) = crate::container::mapped::open(input)?;
    let file_len = f.metadata().map(|m| m.len()).unwrap_or(0);
    // A mapped input is decoded in two passes: the first decodes all but the large raw
    // tensors, which the model is then written around; the second decodes those straight
    // into their place in the file. No tensor that goes back into the model is held whole.
    let map = map.ok().map(Arc::new);
    let again = match &map {
        Some(_) => f.try_clone().ok(),
        None => None,
    };
    let mut quiet = |_: u64| {};
    let counted = CountingReader {
        inner: f,
        read: 0,
        progress: if again.is_some() { &mut quiet } else { &mut *progress },
    };
    let mut decoder = Decoder::with_base(BufReader::with_capacity(READ_BUF, counted), opts, base)?;
    if let Some(map) = &map {
        decoder.read_in_place(map.clone());
    }
    let resume = again.as_ref().map(|_| decoder.resume());
    let mut targets = if inline_external {
        Vec::new()
    } else {
        decoder.external_targets()?
    };
    // In an update the base's tensors count as input too (spec §10).
    let credit = decoder.base.as_deref().map_or(0, BaseModel::canonical_len);
    let files = plan_external(
        &mut targets,
        output,
        file_len.saturating_add(credit),
        &opts.limits,
    )?;
    let inline = decoder.inline_bytes_at_least(&targets);
    if inline > PROTOBUF_MAX {
        return Err(Error::Unsupported {
            detail: format!(
                "the decoded model would take at least {inline} bytes, over protobuf's 2 GB{}",
                if inline_external {
                    ": decode without --inline-external"
                } else {
                    ""
                }
            ),
        });
    }
    decoder.inline_max = Some(PROTOBUF_MAX);
    if again.is_some() {
        let targeted: Vec<bool> = targets.iter().map(Option::is_some).collect();
        decoder.skip = Some(Arc::new(move |k, h| {
            !targeted.get(k).copied().unwrap_or(false)
                && matches!(h.storage, Storage::RawData | Storage::External)
                && h.data_type != dtype::STRING
                && h.data_bytes >= HOLE_MIN
        }));
    }
    let model_h = set.add(output)?;
    let mut handles = Vec::with_capacity(files.len());
    for location in &files {
        handles.push(set.add_relative(location)?);
    }
    let mut holes = Vec::new();
    let model = decoder.into_model_with_holes(
        &targets,
        &mut |target, t| {
            let h = handles[target.file];
            set.write_at(h, target.offset, &t.data)
        },
        None,
        Some(&mut holes),
    )?;
    if model.encoded_len() as u64 > PROTOBUF_MAX {
        return Err(Error::Unsupported {
            detail: "decoded model exceeds protobuf's 2 GB; decode with external data".into(),
        });
    }
    // Serialized straight into the file: the model's bytes are never whole in memory.
    let holes: HashMap<usize, usize> = holes.into_iter().collect();
    let places = set.serialize_around(model_h, &model, &holes)?;
    drop(model);
    if places.len() != holes.len() {
        return Err(Error::Unsupported {
            detail: "decoder state: a tensor's place in the output was not found".into(),
        });
    }
    if let (Some(mut f), Some(map), Some(resume), false) = (again, map, resume, places.is_empty()) {
        f.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| Error::io(format!("reading {}", input.display()), e))?;
        let places: HashMap<usize, u64> = places.into_iter().collect();
        let counted = CountingReader {
            inner: f,
            read: 0,
            progress,
        };
        let mut second = resume.open(BufReader::with_capacity(READ_BUF, counted))?;
        second.read_in_place(map);
        let wanted = places.clone();
        second.skip = Some(Arc::new(move |k, _| !wanted.contains_key(&k)));
        write_in_place(&mut set, model_h, &mut |send| {
            while let Some(t) = second.next_tensor()? {
                if let Some(&at) = places.get(&t.ordinal) {
                    send(at, t.data)?;
                }
            }
            Ok(())
        })?;
    }
    set.commit()
}

/// Hands a decoded tensor and its offset to the writer.
type Handover<'a> = dyn FnMut(u64, Vec<u8>) -> Result<()> + 'a;

/// Runs `decode`, which hands each tensor to `send` with its offset in output `h`: on unix a
/// second thread writes it there (positioned writes on the same file) while the next one is
/// decoded, at most one tensor waiting; elsewhere it is written at once.
fn write_in_place(
    set: &mut OutputSet,
    h: usize,
    decode: &mut dyn FnMut(&mut Handover<'_>) -> Result<()>,
) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let (file, name) = set.file(h)?;
        let ctx = || format!("writing {name}");
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(0);
            let writer = scope.spawn(move || -> std::io::Result<()> {
                for (at, data) in rx {
                    file.write_all_at(&data, at)?;
                }
                Ok(())
            });
            let decoded = decode(&mut |at, data| {
                // A closed channel means the writer stopped on an error, reported below.
                let _ = tx.send((at, data));
                Ok(())
            });
            drop(tx);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked")));
            decoded?;
            written.map_err(|e| Error::io(ctx(), e))
        })
    }
    #[cfg(not(unix))]
    {
        decode(&mut |at, data| set.write_at(h, at, &data))
    }
}

/// The input's read buffer. Reads larger than it (most payloads) go straight into their own
/// vectors; a larger buffer would only cost pages touched once, a page fault each (with
/// 1 MiB, reading the first record of the 0.6 MB direction classifier took 0.7-2 ms of 7-8).
const READ_BUF: usize = 64 << 10;

/// Raw tensors of at least this many bytes are decoded into their place in a file's output.
const HOLE_MIN: u64 = crate::output::DIRECT as u64;

/// The largest serialized ONNX model protobuf accepts.
const PROTOBUF_MAX: u64 = i32::MAX as u64;

/// Checks where the external tensors go before anything is decoded (spec §6.3, §10): no
/// file named like the output model, no two tensors overlapping in one file, and the files'
/// total length (the largest end in each, gaps included) within the expansion rule over the
/// input's `file_len` bytes. Numbers the distinct files (`ExternalTarget::file`) and returns
/// them in order of first use.
fn plan_external(
    targets: &mut [Option<ExternalTarget>],
    output: &Path,
    file_len: u64,
    limits: &Limits,
) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    let mut spans: Vec<Vec<(u64, u64)>> = Vec::new();
    for t in targets.iter_mut().flatten() {
        let i = *index.entry(t.location.clone()).or_insert_with(|| {
            files.push(t.location.clone());
            spans.push(Vec::new());
            files.len() - 1
        });
        t.file = i;
        spans[i].push((t.offset, t.len.unwrap_or(0)));
    }
    let model_name = output.file_name().map(PathBuf::from);
    let mut total: u64 = 0;
    for (loc, parts) in files.iter().zip(&mut spans) {
        if Some(loc) == model_name.as_ref() {
            return Err(Error::Unsupported {
                detail: format!(
                    "external location {} is the output model's own name: decode to another \
                     name or with --inline-external",
                    loc.display()
                ),
            });
        }
        parts.sort_unstable();
        let mut end = 0u64;
        for &(offset, len) in parts.iter() {
            if offset < end {
                return Err(Error::format(
                    FormatRule::Graph,
                    0,
                    format!(
                        "external tensors overlap in {} at byte {}",
                        loc.display(),
                        offset
                    ),
                ));
            }
            end = offset.saturating_add(len);
        }
        total = total.saturating_add(end);
    }
    let bound = file_len
        .saturating_mul(limits.max_expansion)
        .saturating_add(limits.expansion_slack);
    if total > bound {
        return Err(Error::Limit {
            what: "external data length",
            value: total,
            limit: bound,
            offset: 0,
            tensor: None,
        });
    }
    Ok(files)
}
