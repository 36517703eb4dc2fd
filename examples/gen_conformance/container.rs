//! A byte-level view of an nnc file for making conformance vectors (spec §3, §4, §8): split
//! a valid file into its records, change any field, and put it back together with every CRC
//! that covers the change recomputed, so that the decoder hits the intended rule and not
//! `checksum`. Generator-only code: it trusts its input (files the encoder just wrote).
use nnc::container::record::PREFIX_LEN;
use nnc::container::{index, kind, FILE_HEADER_LEN, TRAILER_LEN};

/// One record with every prefix field editable (spec §4.1). CRCs are not stored: `assemble`
/// computes them.
#[derive(Debug, Clone)]
pub struct Rec {
    pub kind: u8,
    pub flags: u8,
    pub reserved: [u8; 2],
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Rec {
    pub fn new(kind: u8, flags: u8, header: Vec<u8>, payload: Vec<u8>) -> Rec {
        Rec {
            kind,
            flags,
            reserved: [0, 0],
            header,
            payload,
        }
    }

    /// Prefix, header and payload with correct CRCs.
    pub fn bytes(&self) -> Vec<u8> {
        let mut p = [0u8; PREFIX_LEN];
        p[0] = self.kind;
        p[1] = self.flags;
        p[2..4].copy_from_slice(&self.reserved);
        p[4..8].copy_from_slice(&(self.header.len() as u32).to_le_bytes());
        p[8..16].copy_from_slice(&(self.payload.len() as u64).to_le_bytes());
        p[16..20].copy_from_slice(&crc32fast::hash(&self.payload).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&p[..20]);
        h.update(&self.header);
        p[20..24].copy_from_slice(&h.finalize().to_le_bytes());
        let mut v = p.to_vec();
        v.extend_from_slice(&self.header);
        v.extend_from_slice(&self.payload);
        v
    }
}

/// A whole file: the 16-byte header (kept as is), the records, and how to end it.
#[derive(Debug, Clone)]
pub struct NncFile {
    pub head: [u8; FILE_HEADER_LEN],
    pub recs: Vec<Rec>,
}

/// Where each record landed in an assembled file.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// File offset of each record's prefix byte 0.
    pub offsets: Vec<usize>,
    /// Offset of the trailer.
    pub trailer: usize,
}

impl NncFile {
    /// Splits a valid file (panics on anything else: generator input is trusted).
    pub fn parse(b: &[u8]) -> NncFile {
        let mut head = [0u8; FILE_HEADER_LEN];
        head.copy_from_slice(&b[..FILE_HEADER_LEN]);
        let mut at = FILE_HEADER_LEN;
        let mut recs = Vec::new();
        while at + TRAILER_LEN < b.len() {
            let p = &b[at..at + PREFIX_LEN];
            let h = u32::from_le_bytes(p[4..8].try_into().unwrap()) as usize;
            let n = u64::from_le_bytes(p[8..16].try_into().unwrap()) as usize;
            let hs = at + PREFIX_LEN;
            recs.push(Rec {
                kind: p[0],
                flags: p[1],
                reserved: [p[2], p[3]],
                header: b[hs..hs + h].to_vec(),
                payload: b[hs + h..hs + h + n].to_vec(),
            });
            at = hs + h + n;
        }
        assert_eq!(at + TRAILER_LEN, b.len(), "file does not end in a trailer");
        NncFile { head, recs }
    }

    /// Sets the file header's CRC to match bytes 0..12 (spec §3).
    pub fn fix_head_crc(&mut self) {
        let crc = crc32fast::hash(&self.head[..12]);
        self.head[12..16].copy_from_slice(&crc.to_le_bytes());
    }

    /// Indices of the records of a kind.
    pub fn find(&self, k: u8) -> Vec<usize> {
        (0..self.recs.len())
            .filter(|&i| self.recs[i].kind == k)
            .collect()
    }

    /// The i-th TENSOR record's position in `recs`.
    pub fn tensor(&self, i: usize) -> usize {
        self.find(kind::TENSOR)[i]
    }

    /// Writes the file with all record CRCs recomputed. With `fix_index`, the INDEX payload
    /// is rebuilt from the TENSOR records as they now lie (offsets and names, spec §8.1) and
    /// the trailer points at the last INDEX record (spec §8.2); otherwise the INDEX payload is
    /// kept and only the trailer is recomputed.
    pub fn assemble(&self, fix_index: bool) -> (Vec<u8>, Layout) {
        let mut recs = self.recs.clone();
        if fix_index {
            // Record sizes do not depend on the index payload except the index's own, which
            // comes after every tensor: one pass suffices.
            let mut at = FILE_HEADER_LEN;
            let mut entries = Vec::new();
            for r in &recs {
                if r.kind == kind::TENSOR {
                    entries.push(index::Entry {
                        offset: at as u64,
                        name: header_name(&r.header),
                    });
                }
                at += PREFIX_LEN + r.header.len() + r.payload.len();
            }
            let payload = index::write(&entries);
            for r in recs.iter_mut().filter(|r| r.kind == kind::INDEX) {
                r.payload = payload.clone();
            }
        }
        let mut out = self.head.to_vec();
        let mut layout = Layout::default();
        let mut index_at = 0;
        for r in &recs {
            layout.offsets.push(out.len());
            if r.kind == kind::INDEX {
                index_at = out.len();
            }
            out.extend_from_slice(&r.bytes());
        }
        layout.trailer = out.len();
        out.extend_from_slice(&index::trailer(index_at as u64));
        (out, layout)
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.assemble(true).0
    }
}

/// The name field of a tensor header (spec §6.1), lossily decoded.
pub fn header_name(h: &[u8]) -> String {
    let n = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
    String::from_utf8_lossy(&h[12..12 + n.min(h.len() - 12)]).into_owned()
}

/// A tensor header with every field raw, so that any value can be written (spec §6.1).
#[derive(Debug, Clone)]
pub struct RawHeader {
    pub data_type: u32,
    pub storage: u8,
    pub coding: u8,
    pub reserved: u16,
    pub name: Vec<u8>,
    pub dims: Vec<u64>,
    /// Written as the rank when set, instead of `dims.len()`.
    pub rank_override: Option<u32>,
    pub elements: u64,
    pub data_bytes: u64,
    pub params: Vec<u8>,
    /// Bytes after `params` (none in a valid header).
    pub extra: Vec<u8>,
    /// Written as the name length when set, instead of `name.len()`.
    pub name_len_override: Option<u32>,
}

impl RawHeader {
    pub fn parse(h: &[u8]) -> RawHeader {
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap());
        let n = u32_at(8) as usize;
        let name = h[12..12 + n].to_vec();
        let mut at = 12 + n;
        let r = u32_at(at) as usize;
        at += 4;
        let dims = (0..r).map(|i| u64_at(at + 8 * i)).collect();
        at += 8 * r;
        let elements = u64_at(at);
        let data_bytes = u64_at(at + 8);
        let p = u32_at(at + 16) as usize;
        let params = h[at + 20..at + 20 + p].to_vec();
        let extra = h[at + 20 + p..].to_vec();
        RawHeader {
            data_type: u32_at(0),
            storage: h[4],
            coding: h[5],
            reserved: u16::from_le_bytes([h[6], h[7]]),
            name,
            dims,
            rank_override: None,
            elements,
            data_bytes,
            params,
            extra,
            name_len_override: None,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.data_type.to_le_bytes().to_vec();
        b.push(self.storage);
        b.push(self.coding);
        b.extend_from_slice(&self.reserved.to_le_bytes());
        let n = self.name_len_override.unwrap_or(self.name.len() as u32);
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(&self.name);
        let r = self.rank_override.unwrap_or(self.dims.len() as u32);
        b.extend_from_slice(&r.to_le_bytes());
        for d in &self.dims {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b.extend_from_slice(&self.elements.to_le_bytes());
        b.extend_from_slice(&self.data_bytes.to_le_bytes());
        b.extend_from_slice(&(self.params.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.params);
        b.extend_from_slice(&self.extra);
        b
    }
}
