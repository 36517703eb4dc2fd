//! Record framing (spec §4.1): a 24-byte prefix, the header, the payload.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | kind |
//! | 1 | 1 | flags (bit 0 critical; others reserved, 0) |
//! | 2 | 2 | reserved, 0 |
//! | 4 | 4 | header length H (u32 LE) |
//! | 8 | 8 | payload length P (u64 LE) |
//! | 16 | 4 | CRC32 of the P payload bytes |
//! | 20 | 4 | CRC32 of prefix bytes 0..20 followed by the H header bytes |
use crate::error::{Error, FormatRule, Result};

pub const PREFIX_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub kind: u8,
    pub flags: u8,
    pub header_len: u32,
    pub payload_len: u64,
    pub payload_crc: u32,
    pub header_crc: u32,
}

impl Prefix {
    /// Frames `header` and `payload` of a record: returns the 24 prefix bytes.
    pub fn build(kind: u8, flags: u8, header: &[u8], payload: &[u8]) -> [u8; PREFIX_LEN] {
        let mut p = [0u8; PREFIX_LEN];
        p[0] = kind;
        p[1] = flags;
        p[4..8].copy_from_slice(&(header.len() as u32).to_le_bytes());
        p[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        p[16..20].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&p[..20]);
        h.update(header);
        p[20..24].copy_from_slice(&h.finalize().to_le_bytes());
        p
    }

    /// Parses a prefix at file offset `at`, checking reserved bits (not CRCs).
    pub fn parse(p: &[u8; PREFIX_LEN], at: u64) -> Result<Prefix> {
        if p[1] & !super::FLAG_CRITICAL != 0 {
            return Err(Error::format(
                FormatRule::Reserved,
                at + 1,
                format!("reserved record flag bits set: {:#04x}", p[1]),
            ));
        }
        if p[2] != 0 || p[3] != 0 {
            return Err(Error::format(
                FormatRule::Reserved,
                at + 2,
                "reserved record bytes not zero",
            ));
        }
        Ok(Prefix {
            kind: p[0],
            flags: p[1],
            header_len: u32::from_le_bytes([p[4], p[5], p[6], p[7]]),
            payload_len: u64::from_le_bytes([p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]]),
            payload_crc: u32::from_le_bytes([p[16], p[17], p[18], p[19]]),
            header_crc: u32::from_le_bytes([p[20], p[21], p[22], p[23]]),
        })
    }

    pub fn critical(&self) -> bool {
        self.flags & super::FLAG_CRITICAL != 0
    }
}
