//! `Read` implementations that deliver the same bytes in different pieces, for the
//! `buf_independent` target: the decoder's result must not depend on how reads are split.
use std::io::{ErrorKind, Read};

/// Returns at most one byte per `read` call.
pub struct OneByte<'a>(pub &'a [u8]);

impl Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() || self.0.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

/// Short reads of 1..=13 bytes mixed with `ErrorKind::Interrupted` errors, in a pattern drawn
/// from `seed` (so the fuzzer varies where the reads split).
pub struct Stuttering<'a> {
    data: &'a [u8],
    state: u64,
}

impl<'a> Stuttering<'a> {
    pub fn new(data: &'a [u8], seed: u64) -> Self {
        Stuttering { data, state: seed }
    }

    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Read for Stuttering<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.next();
        if r.is_multiple_of(3) {
            return Err(std::io::Error::new(ErrorKind::Interrupted, "EINTR"));
        }
        let n = ((r >> 8) % 13 + 1) as usize;
        let n = n.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
