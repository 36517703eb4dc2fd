//! Reads records front to back from any `std::io::Read` (spec §4.3), checking every CRC and
//! every length against the limits before allocating. Never seeks backward: when the input is
//! also mapped (`set_mapped`), large payloads are taken in place from the mapping and the
//! reader only skips forward past them.
use std::io::{ErrorKind, Read};

use super::mapped::{Payload, MAPPED_MIN};
use super::record::{Prefix, PREFIX_LEN};
use super::{check_file_header, index, kind, FILE_HEADER_LEN, TRAILER_LEN};
use crate::error::{Error, FormatRule, Result};
use crate::Limits;

/// One record as read: its prefix, file offsets, header and payload bytes (CRCs verified).
#[derive(Debug)]
pub struct Record {
    pub prefix: Prefix,
    pub offset: u64,
    pub header: Vec<u8>,
    pub payload: Payload,
}

impl Record {
    /// File offset of the first header byte.
    pub fn header_offset(&self) -> u64 {
        self.offset + PREFIX_LEN as u64
    }
    /// File offset of the first payload byte.
    pub fn payload_offset(&self) -> u64 {
        self.header_offset() + self.prefix.header_len as u64
    }
}

pub struct RecordReader<R: Read> {
    r: R,
    offset: u64,
    limits: Limits,
    minor_version: u16,
    /// The input file mapped, and how to move `r` past bytes: large payloads are then read in
    /// place (spec-neutral: the same bytes, checks and errors).
    mapped: Option<Mapped<R>>,
}

/// A mapping of the whole input that `RecordReader::r` reads, and a way to skip bytes of `r`.
pub struct Mapped<R> {
    pub map: std::sync::Arc<memmap2::Mmap>,
    pub skip: fn(&mut R, u64) -> std::io::Result<()>,
}

impl<R: Read> RecordReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut r: R, limits: Limits) -> Result<Self> {
        let mut h = [0u8; FILE_HEADER_LEN];
        read_full(&mut r, &mut h, 0, "file header")?;
        let minor_version = check_file_header(&h)?;
        Ok(RecordReader {
            r,
            offset: FILE_HEADER_LEN as u64,
            limits,
            minor_version,
            mapped: None,
        })
    }

    /// From here on, payloads of at least `MAPPED_MIN` bytes are taken in place from
    /// `mapped.map`, a mapping of the whole input that `r` reads from its start.
    pub(crate) fn set_mapped(&mut self, mapped: Mapped<R>) {
        super::mapped::register(&mapped.map);
        self.mapped = Some(mapped);
    }

    /// A reader positioned at `offset` of a file whose header has been checked: random access
    /// to a record the INDEX points to (spec §8.1).
    pub(crate) fn resume(r: R, offset: u64, limits: Limits, minor_version: u16) -> Self {
        RecordReader {
            r,
            offset,
            limits,
            minor_version,
            mapped: None,
        }
    }

    /// The file's minor format version (spec §3).
    pub fn minor_version(&self) -> u16 {
        self.minor_version
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record. Unknown non-critical records are returned too; the caller skips
    /// them (spec §4.2).
    pub fn next_record(&mut self) -> Result<Record> {
        let at = self.offset;
        let mut p = [0u8; PREFIX_LEN];
        read_full(&mut self.r, &mut p, at, "record prefix")?;
        let prefix = Prefix::parse(&p, at)?;
        if prefix.header_len > self.limits.max_header_bytes {
            return Err(Error::Limit {
                what: "record header length",
                value: prefix.header_len as u64,
                limit: self.limits.max_header_bytes as u64,
                offset: at + 4,
                tensor: None,
            });
        }
        let header = read_vec(
            &mut self.r,
            prefix.header_len as u64,
            at + PREFIX_LEN as u64,
            "record header",
        )?;
        let mut h = crc32fast::Hasher::new();
        h.update(&p[..20]);
        h.update(&header);
        if h.finalize() != prefix.header_crc {
            return Err(Error::format(
                FormatRule::Checksum,
                at + 20,
                "record header CRC32 mismatch",
            ));
        }
        let known = matches!(prefix.kind, kind::GRAPH | kind::TENSOR | kind::INDEX | kind::BASE);
        if !known && prefix.critical() {
            return Err(Error::format(
                FormatRule::UnknownCriticalRecord,
                at,
                format!(
                    "critical record kind {} is not known to this decoder",
                    prefix.kind
                ),
            ));
        }
        let limit = self.limits.max_alloc;
        if prefix.payload_len > limit {
            return Err(Error::Limit {
                what: "record payload length",
                value: prefix.payload_len,
                limit,
                offset: at + 8,
                tensor: None,
            });
        }
        let payload_at = at + PREFIX_LEN as u64 + prefix.header_len as u64;
        let in_map = self.mapped.as_ref().and_then(|m| {
            let start = usize::try_from(payload_at).ok()?;
            let end = start.checked_add(usize::try_from(prefix.payload_len).ok()?)?;
            (prefix.payload_len >= MAPPED_MIN && end <= m.map.len())
                .then(|| (m.map.clone(), start..end, m.skip))
        });
        let payload = match in_map {
            Some((map, range, skip)) => {
                skip(&mut self.r, prefix.payload_len)
                    .map_err(|e| Error::io("reading the record payload", e))?;
                Payload::Mapped { map, range }
            }
            None => Payload::Owned(read_vec(
                &mut self.r,
                prefix.payload_len,
                payload_at,
                "record payload",
            )?),
        };
        if payload.crc32() != prefix.payload_crc {
            return Err(Error::format(
                FormatRule::Checksum,
                at + 16,
                "record payload CRC32 mismatch",
            ));
        }
        self.offset = payload_at + prefix.payload_len;
        Ok(Record {
            prefix,
            offset: at,
            header,
            payload,
        })
    }

    /// Reads the trailer after the INDEX record at `index_offset` and checks that the input
    /// ends there.
    pub fn finish(mut self, index_offset: u64) -> Result<u64> {
        let at = self.offset;
        let mut t = [0u8; TRAILER_LEN];
        read_full(&mut self.r, &mut t, at, "trailer")?;
        let claimed = index::parse_trailer(&t, at)?;
        if claimed != index_offset {
            return Err(Error::format(
                FormatRule::Index,
                at,
                format!("trailer points to {claimed}, the index is at {index_offset}"),
            ));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.r.read(&mut extra) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(Error::format(
                        FormatRule::TrailingData,
                        at + TRAILER_LEN as u64,
                        "bytes after the trailer",
                    ))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading input", e)),
            }
        }
        Ok(at + TRAILER_LEN as u64)
    }
}

/// `read_exact` that reports a short input as a `Truncated` format error at `at`.
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8], at: u64, what: &str) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => {
                return Err(Error::format(
                    FormatRule::Truncated,
                    at + done as u64,
                    format!("input ends inside the {what}"),
                ));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("reading the {what}"), e)),
        }
    }
    Ok(())
}

/// Reads exactly `len` bytes, growing the buffer as bytes arrive (never trusting `len` for
/// the allocation up front beyond 1 MiB).
fn read_vec<R: Read>(r: &mut R, len: u64, at: u64, what: &str) -> Result<Vec<u8>> {
    const STEP: u64 = 1 << 20;
    let mut v = Vec::with_capacity(len.min(STEP) as usize);
    while (v.len() as u64) < len {
        let start = v.len();
        let want = (len - start as u64).min(STEP) as usize;
        v.resize(start + want, 0);
        read_full(r, &mut v[start..], at + start as u64, what)?;
    }
    Ok(v)
}
