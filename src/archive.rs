//! Random access (spec §8): a `.nnc` file opened from a path (mapped) or any `Read + Seek`,
//! whose tensors are decoded one at a time by name through the INDEX, without reading the
//! records of the others (NNR's "inference without full reconstruction": apps that load
//! layers lazily).
//!
//! Opening reads the file header, the GRAPH record (to know every slot a record must match,
//! spec §6.3), the trailer and the INDEX; decoding a tensor then reads its one record.
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use crate::base::{BaseModel, BaseRecord};
use crate::container::index::{self, Entry};
use crate::container::reader::{read_full, RecordReader};
use crate::container::{kind, FILE_HEADER_LEN, TRAILER_LEN};
use crate::decoder::{collect_slots, decode_record, next_known, parse_graph, SlotInfo};
use crate::error::{Error, FormatRule, Result};
use crate::onnx::dtype;
use crate::onnx::proto::ModelProto;
use crate::onnx::walk::{walk_slots, SlotMut};
use crate::{DecodeOptions, Storage, Tensor};

/// A `.nnc` file opened for random access: the names of its tensors, in walk order, and one
/// tensor decoded at a time by name.
///
/// ```no_run
/// let mut archive = nnc::Archive::open("model.nnc", nnc::DecodeOptions::default())?;
/// for name in archive.names() {
///     println!("{name}");
/// }
/// let t = archive.tensor("conv1.weight")?;
/// println!("{:?} {} bytes", t.dims, t.data.len());
/// # Ok::<(), nnc::Error>(())
/// ```
///
/// Every record read is checked as the streaming [`crate::Decoder`] checks it (CRCs, the
/// tensor header against the graph's slot, limits); records that are not read are not
/// checked. A file that [`crate::Decoder`] decodes, `Archive` decodes to the same tensors,
/// except that the data of an inline tensor (one that stayed in the graph, [`Storage::Inline`])
/// is filled in from the graph where the streaming decoder leaves it empty.
pub struct Archive<R: Read + Seek> {
    r: R,
    opts: DecodeOptions,
    minor_version: u16,
    slots: Vec<SlotInfo>,
    /// The lifted graph: the data of inline tensors (spec §6.3, storage 3) stays in it.
    model: ModelProto,
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    file_len: u64,
    /// The base of an update (spec §14).
    base: Option<Arc<BaseModel>>,
    /// The input mapped ([`Archive::open`]): large payloads are decoded in place.
    map: Option<Arc<memmap2::Mmap>>,
}

/// A file mapped into memory, read through [`Archive::open`].
pub struct MappedFile(std::io::Cursor<SharedMap>);

/// A mapping shared by the reader and the payloads read in place.
struct SharedMap(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Read for MappedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for MappedFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl Archive<MappedFile> {
    /// Maps the file at `path` and opens it (see [`Archive::new`]). Only the pages of the
    /// records that are read are ever touched.
    pub fn open(path: impl AsRef<Path>, opts: DecodeOptions) -> Result<Self> {
        Self::open_with_base(path, opts, None)
    }

    /// As [`Archive::open`], for a file that may be an update of `base` (spec §14).
    pub fn open_with_base(
        path: impl AsRef<Path>,
        opts: DecodeOptions,
        base: Option<Arc<BaseModel>>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let (_, map) = crate::container::mapped::open(path)?;
        let map = Arc::new(map.map_err(|e| Error::io(format!("mapping {}", path.display()), e))?);
        let mut a = Archive::with_base(
            MappedFile(std::io::Cursor::new(SharedMap(map.clone()))),
            opts,
            base,
        )?;
        a.map = Some(map);
        Ok(a)
    }
}

impl<R: Read + Seek> Archive<R> {
    /// Reads the file header, the GRAPH record, the trailer and the INDEX, and checks that
    /// the INDEX names the graph's slots in walk order at increasing offsets (spec §8.1).
    pub fn new(r: R, opts: DecodeOptions) -> Result<Self> {
        Self::with_base(r, opts, None)
    }

    /// As [`Archive::new`], for a file that may be an update of `base` (spec §14; see
    /// [`crate::Decoder::with_base`]).
    pub fn with_base(mut r: R, opts: DecodeOptions, base: Option<Arc<BaseModel>>) -> Result<Self> {
        let file_len = r
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("seeking the input", e))?;
        rewind(&mut r, 0)?;
        let mut records = RecordReader::new(&mut r, opts.limits)?;
        let minor_version = records.minor_version();
        let mut rec = next_known(&mut records, &mut None)?;
        let mut update = false;
        if rec.prefix.kind == kind::BASE {
            BaseRecord::parse(&rec.payload, rec.payload_offset())?
                .check(base.as_deref(), rec.offset)?;
            update = true;
            rec = next_known(&mut records, &mut None)?;
        }
        let base = if update { base } else { None };
        if rec.prefix.kind != kind::GRAPH {
            return Err(Error::format(
                FormatRule::RecordOrder,
                rec.offset,
                "the first record must be GRAPH",
            ));
        }
        let graph_end = records.offset();
        let dictionary = base.as_deref().map(BaseModel::dictionary);
        let (mut model, _, memory) = parse_graph(&rec, &opts.limits, graph_end, dictionary)?;
        let slots = collect_slots(&mut model, &opts.limits, rec.offset, graph_end, memory)?;

        let min_len = graph_end + TRAILER_LEN as u64;
        if file_len < min_len {
            return Err(Error::format(
                FormatRule::Truncated,
                file_len,
                "input ends before the trailer",
            ));
        }
        let trailer_at = file_len - TRAILER_LEN as u64;
        rewind(&mut r, trailer_at)?;
        let mut t = [0u8; TRAILER_LEN];
        read_full(&mut r, &mut t, trailer_at, "trailer")?;
        let index_at = index::parse_trailer(&t, trailer_at)?;
        if index_at < graph_end || index_at >= trailer_at {
            return Err(Error::format(
                FormatRule::Index,
                trailer_at,
                format!("trailer points to {index_at}, outside the records"),
            ));
        }
        rewind(&mut r, index_at)?;
        let mut records = RecordReader::resume(&mut r, index_at, opts.limits, minor_version);
        let rec = records.next_record()?;
        if rec.prefix.kind != kind::INDEX {
            return Err(Error::format(
                FormatRule::Index,
                index_at,
                format!("the trailer points to a record of kind {}", rec.prefix.kind),
            ));
        }
        if records.offset() != trailer_at {
            return Err(Error::format(
                FormatRule::Index,
                records.offset(),
                "the INDEX record does not end at the trailer",
            ));
        }
        let entries = index::parse(&rec.payload, rec.payload_offset())?;
        check_entries(&entries, &slots, graph_end, index_at, rec.payload_offset())?;
        let mut by_name = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            by_name.entry(e.name.clone()).or_insert(i);
        }
        Ok(Archive {
            r,
            opts,
            minor_version,
            slots,
            model,
            entries,
            by_name,
            file_len,
            base,
            map: None,
        })
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Tensor names in walk order (the order of [`crate::Decoder`]).
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// Whether a tensor of this name is in the file.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The file's minor format version.
    pub fn minor_version(&self) -> u16 {
        self.minor_version
    }

    /// Decodes the tensor called `name` (the first one in walk order, should two share a
    /// name): reads its record and nothing else. [`Error::NotFound`] if there is none.
    pub fn tensor(&mut self, name: &str) -> Result<Tensor> {
        let i = *self.by_name.get(name).ok_or_else(|| Error::NotFound {
            name: name.to_owned(),
        })?;
        self.tensor_at(i)
    }

    /// Decodes the tensor at position `i` of the walk order.
    pub fn tensor_at(&mut self, i: usize) -> Result<Tensor> {
        let (Some(entry), Some(slot)) = (self.entries.get(i), self.slots.get(i)) else {
            return Err(Error::NotFound {
                name: format!("#{i}"),
            });
        };
        rewind(&mut self.r, entry.offset)?;
        let mut records =
            RecordReader::resume(&mut self.r, entry.offset, self.opts.limits, self.minor_version);
        if let Some(map) = &self.map {
            records.set_mapped(crate::container::reader::Mapped {
                map: map.clone(),
                skip: crate::container::mapped::skip::<&mut R>,
            });
        }
        let rec = records.next_record()?;
        if rec.prefix.kind != kind::TENSOR || !rec.prefix.critical() {
            return Err(Error::format(
                FormatRule::Index,
                entry.offset,
                format!(
                    "index entry {:?} does not point to a critical TENSOR record",
                    entry.name
                ),
            ));
        }
        // The expansion rule over the input up to the end of this record: every tensor that
        // the streaming decoder accepts is accepted here.
        let credit = self.base.as_deref().map_or(0, BaseModel::canonical_len);
        let read = records.offset().saturating_add(credit);
        let mut t = decode_record(rec, slot, i, &self.opts, read, 0, self.base.as_deref())?.0;
        if t.storage == Storage::Inline {
            t.data = self.inline_data(i)?;
        }
        Ok(t)
    }

    /// The canonical bytes of the inline tensor in slot `i`, taken from the graph.
    fn inline_data(&mut self, i: usize) -> Result<Vec<u8>> {
        let mut k = 0usize;
        let mut found = None;
        walk_slots(&mut self.model, self.opts.limits.max_depth, &mut |_, slot| {
            if k == i {
                if let SlotMut::Tensor(t) = slot {
                    found = match &t.raw_data {
                        Some(raw) => Some(raw.clone()),
                        None => dtype::typed_to_bytes(t),
                    };
                }
            }
            k += 1;
            Ok(())
        })?;
        found.ok_or_else(|| Error::Unsupported {
            detail: format!(
                "inline tensor {:?}: its data in the graph has no canonical bytes",
                self.entries[i].name
            ),
        })
    }

    /// Decodes the whole file, as [`crate::decode_to_bytes`] does, into the bytes of the ONNX
    /// model (external tensors inlined).
    pub fn decode_model(&mut self) -> Result<Vec<u8>> {
        rewind(&mut self.r, 0)?;
        crate::decode_to_bytes_with_base(
            std::io::BufReader::new(&mut self.r),
            self.opts,
            self.base.clone(),
        )
    }

    /// The reader, for a caller that wants it back.
    pub fn into_inner(self) -> R {
        self.r
    }
}

fn rewind<R: Seek>(r: &mut R, at: u64) -> Result<()> {
    r.seek(SeekFrom::Start(at))
        .map_err(|e| Error::io("seeking the input", e))?;
    Ok(())
}

/// Spec §8.1: one entry per slot, in walk order, named as the slot, at strictly increasing
/// offsets between the GRAPH record and the INDEX record.
fn check_entries(
    entries: &[Entry],
    slots: &[SlotInfo],
    graph_end: u64,
    index_at: u64,
    at: u64,
) -> Result<()> {
    if entries.len() != slots.len() {
        return Err(Error::format(
            FormatRule::Index,
            at,
            format!(
                "index has {} entries, the graph {} slots",
                entries.len(),
                slots.len()
            ),
        ));
    }
    let mut low = graph_end.max(FILE_HEADER_LEN as u64);
    for (e, s) in entries.iter().zip(slots) {
        if e.name != s.name {
            return Err(Error::format(
                FormatRule::Index,
                at,
                format!("index entry {:?} but the graph's slot is {:?}", e.name, s.name),
            ));
        }
        if e.offset < low || e.offset >= index_at {
            return Err(Error::format(
                FormatRule::Index,
                at,
                format!("index entry {:?} points to {} out of order", e.name, e.offset),
            ));
        }
        low = e.offset + 1;
    }
    Ok(())
}
