//! Lossless payload codings (spec §7.4, §7.5): byte planes with entropy-coded streams, one
//! zstd frame, or the raw bytes. The encoder tries them and keeps the smallest.
use crate::bytes::Cursor;
use crate::container::tensor_header::Coding;
use crate::entropy::classes::byte_counts;
use crate::entropy::{decode_stream_out, encode_stream_ctx, Out, Sink, StreamOptions};
use crate::error::{Error, FormatRule, Result};
use crate::onnx::dtype;

/// Encoder settings for lossless coding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LosslessOptions {
    /// Symbols per rANS chunk.
    pub chunk: usize,
    /// zstd level used when zstd is tried in earnest.
    pub zstd_level: i32,
    /// Whether symbol streams may use the modes added after the first release: the wide
    /// rANS layouts (stream modes 6 and 7, spec §7.3.5), which decode about twice as fast
    /// for about 0.1 % more bytes, and, for quantized levels, split levels (mode 8,
    /// §7.3.7) where they are smaller. A decoder older than these modes rejects such files.
    pub wide: bool,
}

impl Default for LosslessOptions {
    fn default() -> Self {
        LosslessOptions {
            chunk: crate::entropy::DEFAULT_CHUNK,
            zstd_level: 19,
            wide: true,
        }
    }
}

/// Codes canonical bytes `data` of type `dt` with the smallest lossless coding.
pub fn encode(dt: i32, data: &[u8], opt: &LosslessOptions) -> Result<(Coding, Vec<u8>)> {
    let mut best = (Coding::Raw, data.to_vec());
    if data.len() < 16 {
        return Ok(best);
    }
    if dt != dtype::STRING {
        let planes = encode_planes(dt, data, opt)?;
        if planes.len() < best.1.len() {
            best = (Coding::Planes, planes);
        }
    }
    let fast = zstd_frame(data, 3)?;
    if fast.len() < best.1.len() {
        let strong = if data.len() <= 64 << 20 {
            zstd_frame(data, opt.zstd_level)?
        } else {
            fast
        };
        best = (Coding::Zstd, strong);
    }
    Ok(best)
}

fn zstd_frame(data: &[u8], level: i32) -> Result<Vec<u8>> {
    zstd::bulk::compress(data, level).map_err(|e| Error::io("zstd compression", e))
}

/// Planes (spec §7.4): with `w = unit_bytes(dt)`, plane k holds byte k of every w-byte unit;
/// planes are written from k = w-1 (sign and exponent of floats) down to 0, each one symbol
/// stream over the alphabet 0..256.
fn encode_planes(dt: i32, data: &[u8], opt: &LosslessOptions) -> Result<Vec<u8>> {
    let w = dtype::unit_bytes(dt);
    let mut out = Vec::new();
    let so = StreamOptions {
        segment: 0,
        width: 1,
        chunk: opt.chunk,
        wide: opt.wide,
        extra: 0,
    };
    let top: Vec<u8> = data.iter().skip(w - 1).step_by(w).copied().collect();
    for k in (0..w).rev() {
        let plane: Vec<u32> = data.iter().skip(k).step_by(w).map(|&b| b as u32).collect();
        // The plane below the top one may take its classes from the top byte (spec §7.4).
        let ctx = (w >= 2 && k == w - 2).then_some(top.as_slice());
        encode_stream_ctx(&plane, so, ctx, &mut out)?;
    }
    Ok(out)
}

/// Decodes a lossless payload into `data_bytes` canonical bytes.
pub fn decode(
    coding: Coding,
    dt: i32,
    payload: &[u8],
    base: u64,
    data_bytes: usize,
    parallel: bool,
) -> Result<Vec<u8>> {
    let err = |at: u64, d: String| Error::format(FormatRule::Payload, at, d);
    match coding {
        Coding::Raw => {
            if payload.len() != data_bytes {
                return Err(err(
                    base,
                    format!(
                        "raw payload has {} bytes, header says {data_bytes}",
                        payload.len()
                    ),
                ));
            }
            crate::error::try_copy(payload, base)
        }
        Coding::Zstd => {
            let (v, r) = crate::error::try_zstd(payload, data_bytes, base)?;
            r.map_err(|e| err(base, format!("zstd frame: {e}")))?;
            if v.len() != data_bytes {
                return Err(err(
                    base,
                    format!(
                        "zstd frame holds {} bytes, header says {data_bytes}",
                        v.len()
                    ),
                ));
            }
            Ok(v)
        }
        Coding::Planes => {
            if dt == dtype::STRING {
                return Err(err(base, "planes coding of a string tensor".into()));
            }
            let w = dtype::unit_bytes(dt);
            if !data_bytes.is_multiple_of(w) {
                return Err(err(
                    base,
                    format!("{data_bytes} bytes are not whole {w}-byte units"),
                ));
            }
            let n = data_bytes / w;
            let mut out = crate::error::try_zeroed(data_bytes, base)?;
            let mut c = Cursor::new(payload, base, FormatRule::Payload);
            // Each plane goes into its bytes of `out` a window at a time: no plane is held
            // whole beside the tensor; the context of plane w − 2 is the top byte of each
            // unit, read back from `out` (§7.4).
            for k in (0..w).rev() {
                let mut sink = PlaneSink {
                    out: &mut out,
                    w,
                    k,
                    context: w >= 2 && k == w - 2,
                };
                let out = Out::Windows {
                    count: n,
                    zero: 0u8,
                    sink: &mut sink,
                };
                decode_stream_out(&mut c, 1, 256, |s| s as u8, None, out, parallel)?;
            }
            if !c.is_empty() {
                return Err(c.err(format!("{} bytes after the last plane", c.remaining())));
            }
            Ok(out)
        }
        Coding::Quantized | Coding::Reference | Coding::Difference => Err(err(
            base,
            format!("{} payload passed to the lossless decoder", coding.name()),
        )),
    }
}

/// Puts the bytes of plane `k` of `w`-byte units into `out`; gives the units' top bytes as the
/// context of plane `w − 2` (spec §7.4).
struct PlaneSink<'a> {
    out: &'a mut [u8],
    w: usize,
    k: usize,
    context: bool,
}

impl Sink<u8> for PlaneSink<'_> {
    fn put(&mut self, start: usize, symbols: &[u8]) {
        let (w, k) = (self.w, self.k);
        for (o, &b) in self.out[start * w..].chunks_exact_mut(w).zip(symbols) {
            o[k] = b;
        }
    }

    fn ctx_counts(&self) -> Option<[u64; 256]> {
        let w = self.w;
        self.context
            .then(|| byte_counts(self.out.chunks_exact(w).map(|u| u[w - 1])))
    }

    fn ctx(&self, start: usize, out: &mut [u8]) {
        let w = self.w;
        for (o, u) in out.iter_mut().zip(self.out[start * w..].chunks_exact(w)) {
            *o = u[w - 1];
        }
    }
}
