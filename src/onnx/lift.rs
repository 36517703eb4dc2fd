//! Lifting tensor data out of a `ModelProto` and putting it back (spec §6.3). After lifting,
//! the model keeps every tensor's name, dims, type and metadata, but no data except for
//! tensors that stay in the graph (`in_graph`); the data travels in TENSOR records in walk
//! order.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::dtype;
use super::proto::{ModelProto, TensorProto};
use super::walk::{walk, SlotMut};
use crate::container::tensor_header::Storage;
use crate::error::{Error, Result};
use crate::Limits;

/// The canonical bytes of a tensor (spec §6.2), owned or borrowed from an mmapped file.
pub enum Data {
    Owned(Vec<u8>),
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Owned(v) => v,
            Data::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

impl Data {
    /// Gives back the memory of mapped data that will not be read again (the streaming
    /// encoder, once a tensor is written): the pages leave this process's memory and would be
    /// read again from the file if needed. Owned data is untouched.
    pub fn release(&self) {
        if let Data::Mapped { map, start, len } = self {
            release_pages(map, *start, *len);
        }
    }
}

/// A tensor taken out of a model.
pub struct Lifted {
    pub name: String,
    pub data_type: i32,
    pub dims: Vec<u64>,
    pub elements: u64,
    pub storage: Storage,
    pub data: Data,
    /// The data stayed in the graph (a tensor nnc cannot lift, e.g. non-canonical typed
    /// data): the place is not a slot and gets no record (spec §5.2).
    pub in_graph: bool,
}

/// Takes the data of every slot out of `model` (walk order). `base_dir` is where external
/// data files are looked up (the directory of the model file). Bounded as [`lift_bounded`]
/// with the default limits and the budget of a model of this size (spec §10 expansion rule).
pub fn lift(
    model: &mut ModelProto,
    base_dir: Option<&Path>,
    max_depth: u32,
) -> Result<Vec<Lifted>> {
    use prost::Message;
    let limits = Limits {
        max_depth,
        ..Limits::default()
    };
    let size = model.encoded_len() as u64;
    let budget = size
        .saturating_mul(limits.max_expansion)
        .saturating_add(limits.expansion_slack);
    lift_bounded(model, base_dir, &limits, budget, size, None)
}

/// Tensor data left in the encoder's input (an mmap) by
/// [`strip_raw_data`](super::wire::strip_raw_data): each `raw_data` of the parsed model holds
/// the 8-byte number of its range in `ranges`.
pub struct RawSource {
    pub map: Arc<Mmap>,
    pub ranges: Vec<(usize, usize)>,
}

impl RawSource {
    /// The bytes a stripped `raw_data` stands for, as (start, len) in the map.
    fn range(&self, raw: &[u8]) -> Option<(usize, usize)> {
        let id = u64::from_le_bytes(raw.try_into().ok()?);
        let &(start, len) = self.ranges.get(usize::try_from(id).ok()?)?;
        (start.checked_add(len)? <= self.map.len()).then_some((start, len))
    }
}

/// [`lift`] under explicit limits.
///
/// Encode only what decodes (spec §10): a name longer than the decoder's `max_name_len`
/// fails here, naming the limit, and the bookkeeping of every place (its name, its dims) is
/// charged to `budget` bytes before it is allocated (`memory` is what the caller has spent
/// already), so that a small model whose places copy long names cannot make the encoder
/// allocate without bound.
pub fn lift_bounded(
    model: &mut ModelProto,
    base_dir: Option<&Path>,
    limits: &Limits,
    budget: u64,
    memory: u64,
    raw: Option<&RawSource>,
) -> Result<Vec<Lifted>> {
    let mut out: Vec<Lifted> = Vec::new();
    let mut files: HashMap<String, Arc<Mmap>> = HashMap::new();
    let mut memory = memory;
    let limit = |what: &'static str, value: u64, limit: u64| Error::Limit {
        what,
        value,
        limit,
        offset: 0,
        tensor: None,
    };
    walk(model, limits.max_depth, &mut |name, slot| {
        let len = name.len();
        if len as u64 > limits.max_name_len as u64 {
            return Err(limit(
                "name length (the decoder's max_name_len)",
                len as u64,
                limits.max_name_len as u64,
            ));
        }
        memory = memory.saturating_add(2 * std::mem::size_of::<Lifted>() as u64 + 2 * len as u64);
        if let SlotMut::Tensor(t) = &slot {
            memory = memory.saturating_add(8 * t.dims.len() as u64);
        }
        if memory > budget {
            return Err(limit("input model memory", memory, budget));
        }
        let name = name
            .to_string_within(len)
            .ok_or_else(|| limit("input model memory (allocation failed)", memory, budget))?;
        out.try_reserve(1)
            .map_err(|_| limit("input model memory (allocation failed)", memory, budget))?;
        let lifted = match slot {
            SlotMut::Floats(v) => {
                let data: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                let n = v.len() as u64;
                v.clear();
                Lifted {
                    name,
                    data_type: dtype::FLOAT,
                    dims: vec![n],
                    elements: n,
                    storage: Storage::AttrFloats,
                    data: Data::Owned(data),
                    in_graph: false,
                }
            }
            SlotMut::Ints(v) => {
                let data: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                let n = v.len() as u64;
                v.clear();
                Lifted {
                    name,
                    data_type: dtype::INT64,
                    dims: vec![n],
                    elements: n,
                    storage: Storage::AttrInts,
                    data: Data::Owned(data),
                    in_graph: false,
                }
            }
            SlotMut::Tensor(t) => lift_tensor(t, name, base_dir, &mut files, raw)?,
        };
        out.push(lifted);
        Ok(())
    })?;
    Ok(out)
}

/// A tensor left in the graph as it is. If it holds data, the place is not a slot; otherwise
/// (odd dims or no type, and no data) an `Inline` record describes it: `elements` must be the
/// product of `dims` (negative dims count as 0), which the decoder checks for every record.
fn inline(name: String, t: &TensorProto) -> Result<Lifted> {
    let dims: Vec<u64> = t.dims.iter().map(|&d| d.max(0) as u64).collect();
    let elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::input(Some(&name), "dims product overflows 64 bits"))?;
    Ok(Lifted {
        name,
        data_type: t.data_type.unwrap_or(0),
        dims,
        elements,
        storage: Storage::Inline,
        data: Data::Owned(Vec::new()),
        in_graph: super::walk::holds_data(t),
    })
}

fn lift_tensor(
    t: &mut TensorProto,
    name: String,
    base_dir: Option<&Path>,
    files: &mut HashMap<String, Arc<Mmap>>,
    raw: Option<&RawSource>,
) -> Result<Lifted> {
    let dt = t.data_type.unwrap_or(0);
    let external = t.data_location == Some(1);
    let elements = t.dims.iter().try_fold(1u64, |acc, &d| {
        u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    });
    // Data left in the input map: lifted from there when it is a plain raw_data tensor (no
    // copy), otherwise copied back, since the tensor stays in the graph as it was.
    if let (Some(src), Some(r)) = (raw, t.raw_data.as_deref()) {
        let (start, len) = src
            .range(r)
            .ok_or_else(|| Error::input(Some(&name), "internal: raw_data reference"))?;
        let canonical = !external
            && dt > 0
            && dtype::typed_len(t) == 0
            && elements.and_then(|n| dtype::byte_len(dt, n)) == Some(len as u64);
        if let (true, Some(elements)) = (canonical, elements) {
            t.raw_data = None;
            return Ok(Lifted {
                name,
                data_type: dt,
                dims: t.dims.iter().map(|&d| d as u64).collect(),
                elements,
                storage: Storage::RawData,
                data: Data::Mapped {
                    map: src.map.clone(),
                    start,
                    len,
                },
                in_graph: false,
            });
        }
        t.raw_data = Some(src.map[start..start + len].to_vec());
    }
    let (Some(elements), true) = (elements, dt > 0) else {
        if external {
            return Err(Error::input(
                Some(&name),
                "external tensor with negative dims or no data type",
            ));
        }
        return inline(name, t);
    };
    let dims: Vec<u64> = t.dims.iter().map(|&d| d as u64).collect();
    let expected = dtype::byte_len(dt, elements);
    let make = |storage, data| Lifted {
        name: name.clone(),
        data_type: dt,
        dims: dims.clone(),
        elements,
        storage,
        data,
        in_graph: false,
    };
    if external {
        let Some(expected) = expected else {
            return Err(Error::input(
                Some(&name),
                format!("external data for a {} tensor", dtype::name(dt)),
            ));
        };
        if t.raw_data.is_some() || dtype::typed_len(t) > 0 {
            return Err(Error::input(
                Some(&name),
                "external tensor also has inline data",
            ));
        }
        let data = read_external(t, &name, expected, base_dir, files)?;
        return Ok(make(Storage::External, data));
    }
    if let Some(raw) = &t.raw_data {
        if dtype::typed_len(t) == 0 && expected == Some(raw.len() as u64) {
            let data = t.raw_data.take().unwrap_or_default();
            return Ok(make(Storage::RawData, Data::Owned(data)));
        }
        return inline(name, t);
    }
    if dt == dtype::STRING && t.string_data.len() as u64 != elements {
        return inline(name, t);
    }
    if dt != dtype::STRING && expected.is_none() {
        return inline(name, t);
    }
    match dtype::typed_to_bytes(t) {
        Some(bytes) if dt == dtype::STRING || Some(bytes.len() as u64) == expected => {
            t.float_data.clear();
            t.double_data.clear();
            t.int32_data.clear();
            t.int64_data.clear();
            t.uint64_data.clear();
            t.string_data.clear();
            Ok(make(Storage::Typed, Data::Owned(bytes)))
        }
        // Empty typed field with a nonzero element count, a non-canonical field, or values
        // out of range: keep the tensor as it is.
        _ => inline(name, t),
    }
}

/// Value of an `external_data` key.
pub fn external_key<'a>(t: &'a TensorProto, key: &str) -> Option<&'a str> {
    t.external_data
        .iter()
        .find(|e| e.key.as_deref() == Some(key))
        .and_then(|e| e.value.as_deref())
}

/// Checks an external `location` (spec §6.3): split on `/` only, every component a
/// non-empty name other than `..` (`.` components are dropped), no `\`, `:` or NUL anywhere
/// (separators and drive or stream syntax on other systems). So `a//b`, `a/`, `/a`, `a/../b`,
/// `a\b` and `C:w` are refused; `./w.bin` and `w.bin` name the same file. Returns the
/// relative path.
pub fn safe_location(loc: &str) -> Option<PathBuf> {
    if loc.contains(['\\', ':', '\0']) {
        return None;
    }
    let mut clean = PathBuf::new();
    for c in loc.split('/') {
        match c {
            "" | ".." => return None,
            "." => {}
            c => clean.push(c),
        }
    }
    (!clean.as_os_str().is_empty()).then_some(clean)
}

fn parse_num(t: &TensorProto, key: &str, name: &str) -> Result<Option<u64>> {
    match external_key(t, key) {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            Error::input(
                Some(name),
                format!("external_data {key} {v:?} is not a number"),
            )
        }),
    }
}

fn read_external(
    t: &TensorProto,
    name: &str,
    expected: u64,
    base_dir: Option<&Path>,
    files: &mut HashMap<String, Arc<Mmap>>,
) -> Result<Data> {
    let loc = external_key(t, "location")
        .ok_or_else(|| Error::input(Some(name), "external tensor without location"))?;
    let rel = safe_location(loc).ok_or_else(|| {
        Error::input(
            Some(name),
            format!("external location {loc:?} is not a relative path inside the model directory"),
        )
    })?;
    let offset = parse_num(t, "offset", name)?.unwrap_or(0);
    let length = parse_num(t, "length", name)?.unwrap_or(expected);
    if length != expected {
        return Err(Error::input(
            Some(name),
            format!("external length {length} but the tensor needs {expected} bytes"),
        ));
    }
    let map = match files.get(loc) {
        Some(m) => m.clone(),
        None => {
            let f = open_external(base_dir, &rel, name)?;
            let path = rel;
            // The encoder's only mapping (the decoder never maps): see `map_file`.
            let m = Arc::new(
                map_file(&f).map_err(|e| Error::io(format!("mapping {}", path.display()), e))?,
            );
            files.insert(loc.to_owned(), m.clone());
            m
        }
    };
    let end = offset
        .checked_add(length)
        .filter(|&e| e <= map.len() as u64)
        .ok_or_else(|| {
            Error::input(
                Some(name),
                format!(
                    "external data {loc:?} has {} bytes, tensor wants {offset}..{}",
                    map.len(),
                    offset.saturating_add(length)
                ),
            )
        })?;
    Ok(Data::Mapped {
        map,
        start: offset as usize,
        len: (end - offset) as usize,
    })
}

/// Opens the external data file `rel` of a model in `base_dir` (spec §11, paths): the path
/// is resolved with every symbolic link followed and must stay inside the model's directory
/// (also resolved), and name a regular file. The file is opened without blocking (a FIFO
/// would wait for a writer forever) and checked again once open, so that a file swapped in
/// between the check and the open is caught.
fn open_external(base_dir: Option<&Path>, rel: &Path, name: &str) -> Result<std::fs::File> {
    let base = base_dir
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let refuse = |what: String| Error::input(Some(name), what);
    let root = base.canonicalize().map_err(|e| {
        Error::io(
            format!("resolving the model directory {}", base.display()),
            e,
        )
    })?;
    let joined = base.join(rel);
    let path = joined
        .canonicalize()
        .map_err(|e| Error::io(format!("resolving external data {}", joined.display()), e))?;
    if !path.starts_with(&root) {
        return Err(refuse(format!(
            "external data {} resolves to {}, outside the model's directory {}",
            joined.display(),
            path.display(),
            root.display()
        )));
    }
    let regular = |m: &std::fs::Metadata| m.file_type().is_file();
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if !regular(&meta) {
        return Err(refuse(format!(
            "external data {} is not a regular file",
            path.display()
        )));
    }
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let f = o
        .open(&path)
        .map_err(|e| Error::io(format!("opening external data {}", path.display()), e))?;
    let meta = f
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if !regular(&meta) {
        return Err(refuse(format!(
            "external data {} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// Maps a file read-only (the encoder's input and external data).
#[allow(unsafe_code)]
pub fn map_file(f: &std::fs::File) -> std::io::Result<Mmap> {
    // SAFETY: the mapping is read-only and lives while the encoder runs; a concurrent writer
    // to the same file could change the bytes we read, which the CRC in the output then
    // covers as read. This is the usual contract of reading a file through mmap.
    unsafe { Mmap::map(f) }
}

/// Drops the pages of `map[start..start + len]` from this process (`MADV_DONTNEED`).
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn release_pages(map: &Mmap, start: usize, len: usize) {
    // SAFETY: `map` is a read-only shared mapping of a file (`map_file`). On such a mapping
    // MADV_DONTNEED only drops the pages from this process: the next access reads the same
    // bytes from the file again (the page cache), so every reference into the map keeps
    // seeing the file's contents, under the contract of `map_file`. Nothing is written or
    // unmapped. A failure only means the pages stay; it is ignored.
    let _ = unsafe {
        map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len)
    };
}

#[cfg(not(unix))]
pub(crate) fn release_pages(_map: &Mmap, _start: usize, _len: usize) {}

/// Puts decoded canonical bytes back into a slot of the lifted model. Returns false when the
/// bytes cannot represent that slot (a corrupt file). External slots are handled by the caller.
pub fn restore(slot: SlotMut<'_>, storage: Storage, bytes: Vec<u8>) -> bool {
    match (slot, storage) {
        (SlotMut::Floats(v), Storage::AttrFloats) => {
            *v = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            bytes.len().is_multiple_of(4)
        }
        (SlotMut::Ints(v), Storage::AttrInts) => {
            *v = bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect();
            bytes.len().is_multiple_of(8)
        }
        (SlotMut::Tensor(t), Storage::RawData) => {
            t.raw_data = Some(bytes);
            true
        }
        (SlotMut::Tensor(t), Storage::Typed) => dtype::bytes_to_typed(t, &bytes),
        (SlotMut::Tensor(_), Storage::Inline) => bytes.is_empty(),
        _ => false,
    }
}
