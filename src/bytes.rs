//! A bounds-checked little-endian byte cursor over untrusted input (spec §2 conventions).
//! Every read either succeeds or returns a `Truncated`/`Payload` format error with the
//! absolute byte offset; nothing here can panic or allocate on behalf of the input.
use crate::error::{Error, FormatRule, Result};

#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute file offset of `buf[0]`, for error messages.
    base: u64,
    /// The rule to report when the buffer ends early.
    rule: FormatRule,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], base: u64, rule: FormatRule) -> Self {
        Cursor {
            buf,
            pos: 0,
            base,
            rule,
        }
    }
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn err(&self, detail: impl Into<String>) -> Error {
        Error::format(self.rule, self.offset(), detail)
    }
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "{what}: needs {n} bytes, {} remain",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    /// The next byte, without consuming it.
    pub fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_bits(self.u32(what)?))
    }
    pub fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    /// A string of `u16` length and UTF-8 bytes.
    pub fn string16(&mut self, what: &str) -> Result<String> {
        let n = self.u16(what)? as usize;
        let at = self.offset();
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| Error::format(self.rule, at, format!("{what} is not UTF-8")))
    }
    /// Unsigned LEB128, at most 10 bytes, no overlong 10th byte (spec §2).
    pub fn varint(&mut self, what: &str) -> Result<u64> {
        let start = self.offset();
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8(what)?;
            if i == 9 && b > 1 {
                return Err(Error::format(
                    self.rule,
                    start,
                    format!("{what}: varint overflows 64 bits"),
                ));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::format(
            self.rule,
            start,
            format!("{what}: varint longer than 10 bytes"),
        ))
    }
    /// A varint that must fit in `usize` and be at most `max`.
    pub fn varint_max(&mut self, max: u64, what: &str) -> Result<usize> {
        let at = self.offset();
        let v = self.varint(what)?;
        if v > max {
            return Err(Error::format(
                self.rule,
                at,
                format!("{what} is {v}, at most {max} allowed here"),
            ));
        }
        usize::try_from(v)
            .map_err(|_| Error::format(self.rule, at, format!("{what} does not fit in memory")))
    }
}

/// Appends `v` as unsigned LEB128.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes `put_varint` writes for `v`.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros()).div_ceil(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_rejects() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut c = Cursor::new(&b, 0, FormatRule::Payload);
            assert_eq!(c.varint("v").unwrap(), v);
            assert!(c.is_empty());
        }
        let over = [0xffu8; 10];
        assert!(Cursor::new(&over, 0, FormatRule::Payload)
            .varint("v")
            .is_err());
        let short = [0x80u8];
        assert!(Cursor::new(&short, 0, FormatRule::Payload)
            .varint("v")
            .is_err());
    }
}
