//! Writes a container front to back (spec §4.3 order): file header, GRAPH, TENSOR records,
//! INDEX, trailer. Never seeks, so it can write to a pipe.
use std::io::Write;

use super::index::{self, Entry};
use super::record::Prefix;
use super::tensor_header::TensorHeader;
use super::{file_header_minor, kind, FLAG_CRITICAL, VERSION_MINOR};
use crate::error::{Error, Result};

pub struct ContainerWriter<W: Write> {
    w: W,
    offset: u64,
    index: Vec<Entry>,
}

impl<W: Write> ContainerWriter<W> {
    pub fn new(w: W) -> Result<Self> {
        Self::with_minor(w, VERSION_MINOR)
    }

    /// A writer whose file header says minor version `minor` (spec §3).
    pub fn with_minor(mut w: W, minor: u16) -> Result<Self> {
        w.write_all(&file_header_minor(minor))
            .map_err(|e| Error::io("writing file header", e))?;
        Ok(ContainerWriter {
            w,
            offset: super::FILE_HEADER_LEN as u64,
            index: Vec::new(),
        })
    }

    /// Writes one record; returns its file offset.
    pub fn record(&mut self, kind: u8, flags: u8, header: &[u8], payload: &[u8]) -> Result<u64> {
        let at = self.offset;
        let prefix = Prefix::build(kind, flags, header, payload);
        for part in [&prefix[..], header, payload] {
            self.w
                .write_all(part)
                .map_err(|e| Error::io("writing record", e))?;
        }
        self.offset += (prefix.len() + header.len() + payload.len()) as u64;
        Ok(at)
    }

    /// The GRAPH record (spec §5.1): header `u8 compression (1 = zstd)`, `u64 LE length of the
    /// serialized ModelProto`; payload one zstd frame.
    pub fn graph(&mut self, model_len: u64, zstd_frame: &[u8]) -> Result<()> {
        self.graph_compressed(1, model_len, zstd_frame)
    }

    /// The GRAPH record with its compression byte: 1 zstd, 2 zstd against the base's
    /// dictionary (spec §14.4).
    pub fn graph_compressed(&mut self, compression: u8, model_len: u64, frame: &[u8]) -> Result<()> {
        let mut h = vec![compression];
        h.extend_from_slice(&model_len.to_le_bytes());
        self.record(kind::GRAPH, FLAG_CRITICAL, &h, frame)?;
        Ok(())
    }

    pub fn tensor(&mut self, header: &TensorHeader, payload: &[u8]) -> Result<()> {
        let at = self.record(kind::TENSOR, FLAG_CRITICAL, &header.to_bytes(), payload)?;
        self.index.push(Entry {
            offset: at,
            name: header.name.clone(),
        });
        Ok(())
    }

    /// The BASE record of an update (spec §14.2), critical; the first record.
    pub fn base(&mut self, payload: &[u8]) -> Result<()> {
        self.record(kind::BASE, FLAG_CRITICAL, &[], payload)?;
        Ok(())
    }

    /// The FIDELITY record (spec §8.3), non-critical; after the last TENSOR record.
    pub fn fidelity(&mut self, f: &super::fidelity::Fidelity) -> Result<()> {
        self.record(kind::FIDELITY, 0, &[], &f.to_bytes())?;
        Ok(())
    }

    /// Writes the INDEX record and the trailer; returns the writer and the file length.
    pub fn finish(mut self) -> Result<(W, u64)> {
        let payload = index::write(&self.index);
        let at = self.record(kind::INDEX, 0, &[], &payload)?;
        self.w
            .write_all(&index::trailer(at))
            .map_err(|e| Error::io("writing trailer", e))?;
        self.w
            .flush()
            .map_err(|e| Error::io("flushing output", e))?;
        Ok((self.w, self.offset + super::TRAILER_LEN as u64))
    }
}
