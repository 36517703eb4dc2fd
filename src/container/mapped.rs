//! Payloads read in place from a mapped input file, and the release of their pages once used.
//!
//! A record read from a file the decoder has mapped (`Decoder::open_path`, `decode_file`)
//! keeps its large payload in the mapping instead of copying it: the CRC is computed window by
//! window, and the payload decoders hand back each window of bytes they are done with
//! ([`release`]), so that at any time only a few windows of a payload are resident besides the
//! tensor being decoded (issue 13: peak memory at most the largest tensor plus a bound).
//! Releasing is `MADV_DONTNEED` on a read-only file mapping: the pages leave this process and a
//! later access reads the same bytes from the file again, so it never changes what is read.
use std::io::{Seek, SeekFrom};
use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use memmap2::Mmap;

/// Payloads at least this long are read in place when the input is mapped. Shorter ones
/// are copied out of the reader's buffer; longer ones would be copied into fresh memory (a
/// page fault per 4 KiB, dearer than reading the mapping's page-cache pages in place).
pub const MAPPED_MIN: u64 = 16 << 10;

/// Bytes hashed or decoded between two releases.
pub const WINDOW: usize = 8 << 20;

/// Releases are rounded outward to this alignment (a multiple of every common page size);
/// spans shorter than it are left alone.
const ALIGN: usize = 64 << 10;

/// A record payload: bytes read into memory, or a range of a mapped input file.
#[derive(Debug)]
pub enum Payload {
    Owned(Vec<u8>),
    Mapped { map: Arc<Mmap>, range: Range<usize> },
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Payload::Owned(v) => v,
            Payload::Mapped { map, range } => &map[range.clone()],
        }
    }
}

impl Payload {
    /// The bytes as an owned vector (a copy for a mapped payload).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Payload::Owned(v) => v,
            Payload::Mapped { map, range } => map[range].to_vec(),
        }
    }

    /// CRC-32 of the bytes; a mapped payload is hashed a window at a time, each window
    /// released once hashed.
    pub fn crc32(&self) -> u32 {
        match self {
            Payload::Owned(v) => crc32fast::hash(v),
            Payload::Mapped { .. } => {
                let mut h = crc32fast::Hasher::new();
                for w in self.chunks(WINDOW) {
                    h.update(w);
                    release(w);
                }
                h.finalize()
            }
        }
    }
}

/// The mappings whose pages [`release`] may drop: read-only mappings of input files.
static MAPS: Mutex<Vec<Weak<Mmap>>> = Mutex::new(Vec::new());

/// Makes `map`'s pages releasable by [`release`] (while it lives).
pub fn register(map: &Arc<Mmap>) {
    let mut maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    maps.retain(|w| w.strong_count() > 0);
    if !maps.iter().any(|w| w.as_ptr() == Arc::as_ptr(map)) {
        maps.push(Arc::downgrade(map));
    }
}

/// Drops from this process the whole pages that `bytes` covers, when `bytes` lies in a
/// registered mapping; does nothing for any other memory (a payload read into a vector).
pub fn release(bytes: &[u8]) {
    let lo = bytes.as_ptr() as usize;
    release_addresses(lo, lo + bytes.len());
}

/// [`release`] of the bytes from the start of `first` to the end of `last`, two slices of
/// one buffer (`last` not before `first`).
pub fn release_span(first: &[u8], last: &[u8]) {
    let lo = first.as_ptr() as usize;
    let hi = last.as_ptr() as usize + last.len();
    if hi > lo {
        release_addresses(lo, hi);
    }
}

/// Releases the aligned blocks that addresses `lo..hi` touch when they lie in a registered
/// mapping (only addresses are compared: nothing is read through them). The blocks are
/// rounded outward: releasing a page that is still in use (the next record's first bytes)
/// only means that it is read from the file again when used, so nothing stays behind at
/// window boundaries.
fn release_addresses(lo: usize, hi: usize) {
    if hi - lo < ALIGN {
        return;
    }
    let maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    for m in maps.iter().filter_map(Weak::upgrade) {
        let base = m.as_ptr() as usize;
        if lo < base || hi > base + m.len() {
            continue;
        }
        let start = (lo - base) / ALIGN * ALIGN;
        let end = (hi - base).next_multiple_of(ALIGN).min(m.len());
        if end > start {
            crate::onnx::lift::release_pages(&m, start, end - start);
        }
        return;
    }
}

/// Opens the file at `path` and maps it; the mapping fails (a pipe) without failing the open.
pub(crate) fn open(path: &Path) -> crate::Result<(std::fs::File, std::io::Result<Mmap>)> {
    let f = std::fs::File::open(path)
        .map_err(|e| crate::Error::io(format!("opening {}", path.display()), e))?;
    let map = crate::onnx::lift::map_file(&f);
    Ok((f, map))
}

/// Moves `r` forward past `n` bytes of a payload taken in place (`reader::Mapped::skip`).
pub(crate) fn skip<S: Seek>(r: &mut S, n: u64) -> std::io::Result<()> {
    let n = i64::try_from(n).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    r.seek(SeekFrom::Current(n)).map(|_| ())
}

/// [`skip`] for a buffered reader, keeping what it has buffered beyond the payload (the next
/// records' bytes) instead of reading them again.
pub(crate) fn skip_buffered<R: std::io::Read + Seek>(
    r: &mut std::io::BufReader<R>,
    n: u64,
) -> std::io::Result<()> {
    let n = i64::try_from(n).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    r.seek_relative(n)
}
