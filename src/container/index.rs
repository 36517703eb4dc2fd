//! The INDEX record and the trailer (spec §8): where each tensor record starts, so that a
//! reader holding the whole file (e.g. through mmap) can jump to any tensor.
use crate::bytes::{put_varint, Cursor};
use crate::error::{Error, FormatRule, Result};

/// One index entry: the file offset of a TENSOR record and the tensor's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub offset: u64,
    pub name: String,
}

/// INDEX payload: `varint count`, then per tensor `varint offset`, `varint name length`, name.
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let mut b = Vec::new();
    put_varint(&mut b, entries.len() as u64);
    for e in entries {
        put_varint(&mut b, e.offset);
        put_varint(&mut b, e.name.len() as u64);
        b.extend_from_slice(e.name.as_bytes());
    }
    b
}

pub fn parse(payload: &[u8], base: u64) -> Result<Vec<Entry>> {
    let mut c = Cursor::new(payload, base, FormatRule::Index);
    let n = c.varint_max(payload.len() as u64 / 2, "index entry count")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let offset = c.varint("record offset")?;
        let len = c.varint_max(c.remaining() as u64, "name length")?;
        let at = c.offset();
        let name = std::str::from_utf8(c.take(len, "name")?)
            .map_err(|_| Error::format(FormatRule::Index, at, "index name is not UTF-8"))?;
        out.push(Entry {
            offset,
            name: name.to_owned(),
        });
    }
    if !c.is_empty() {
        return Err(c.err("bytes after the last index entry"));
    }
    Ok(out)
}

/// Trailer (spec §8.2): `u64 LE offset of the INDEX record`, `u32 LE CRC32 of those 8
/// bytes`, `"NNCE"`.
pub fn trailer(index_offset: u64) -> [u8; super::TRAILER_LEN] {
    let mut t = [0u8; super::TRAILER_LEN];
    t[..8].copy_from_slice(&index_offset.to_le_bytes());
    let crc = crc32fast::hash(&t[..8]);
    t[8..12].copy_from_slice(&crc.to_le_bytes());
    t[12..].copy_from_slice(&super::TRAILER_MAGIC);
    t
}

/// Parses a trailer found at file offset `at`; returns the INDEX record offset.
pub fn parse_trailer(t: &[u8; super::TRAILER_LEN], at: u64) -> Result<u64> {
    if t[12..] != super::TRAILER_MAGIC {
        return Err(Error::format(
            FormatRule::Index,
            at + 12,
            "trailer magic missing",
        ));
    }
    if u32::from_le_bytes([t[8], t[9], t[10], t[11]]) != crc32fast::hash(&t[..8]) {
        return Err(Error::format(
            FormatRule::Checksum,
            at + 8,
            "trailer CRC32 mismatch",
        ));
    }
    Ok(u64::from_le_bytes([
        t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7],
    ]))
}
