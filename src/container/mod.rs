//! The `.nnc` container (spec §3, §4, §8): file header, framed records with CRC32, the index
//! and the trailer. It knows records and bytes, never quantizers or ONNX semantics.
pub mod fidelity;
pub mod index;
pub mod mapped;
pub mod reader;
pub mod record;
pub mod tensor_header;
pub mod writer;

/// File magic (spec §3): `\x89 N N C \r \n \x1a \n`, PNG-style, catching text-mode damage.
pub const MAGIC: [u8; 8] = [0x89, b'N', b'N', b'C', b'\r', b'\n', 0x1a, b'\n'];
/// Format major version this crate writes and reads (spec §3).
pub const VERSION_MAJOR: u16 = 1;
/// Format minor version this crate writes for files without a FIDELITY record; readers
/// accept any minor of their major.
pub const VERSION_MINOR: u16 = 0;
/// Minor version of files that hold a FIDELITY record (spec §3, §8.3).
pub const VERSION_MINOR_FIDELITY: u16 = 1;
/// Minor version of updates: files with a BASE record (spec §3, §14), which decoders of
/// earlier minor versions refuse (`unknown-critical-record`).
pub const VERSION_MINOR_UPDATE: u16 = 2;
/// Size of the file header (spec §3).
pub const FILE_HEADER_LEN: usize = 16;
/// Trailer magic (spec §8.2).
pub const TRAILER_MAGIC: [u8; 4] = *b"NNCE";
/// Size of the trailer (spec §8.2).
pub const TRAILER_LEN: usize = 16;

/// Record kinds (spec §4.2).
pub mod kind {
    pub const GRAPH: u8 = 1;
    pub const TENSOR: u8 = 2;
    pub const INDEX: u8 = 3;
    /// Non-critical: what the encoder measured of the decoded model (spec §8.3).
    pub const FIDELITY: u8 = 4;
    /// Critical: the file is an update, decoded against the base it names (spec §14.2).
    pub const BASE: u8 = 5;
}

/// Record flag bits (spec §4.1).
pub const FLAG_CRITICAL: u8 = 0x01;

/// Writes the 16-byte file header (minor version `VERSION_MINOR`).
pub fn file_header() -> [u8; FILE_HEADER_LEN] {
    file_header_minor(VERSION_MINOR)
}

/// Writes the 16-byte file header with minor version `minor`.
pub fn file_header_minor(minor: u16) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
    h[10..12].copy_from_slice(&minor.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file header; returns the minor version.
pub fn check_file_header(h: &[u8; FILE_HEADER_LEN]) -> crate::Result<u16> {
    use crate::error::{Error, FormatRule};
    if h[..8] != MAGIC {
        return Err(Error::format(FormatRule::BadMagic, 0, "not an nnc file"));
    }
    let crc = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    if crc != crc32fast::hash(&h[..12]) {
        return Err(Error::format(
            FormatRule::Checksum,
            12,
            "file header CRC32 mismatch",
        ));
    }
    let major = u16::from_le_bytes([h[8], h[9]]);
    if major != VERSION_MAJOR {
        return Err(Error::format(
            FormatRule::UnsupportedVersion,
            8,
            format!("format major version {major}, this decoder reads {VERSION_MAJOR}"),
        ));
    }
    Ok(u16::from_le_bytes([h[10], h[11]]))
}
