//! Minifloat quantization (Tonin 2021, §2.5.3, eq. 2.29, 2.30, Tables 2.5 and 3.5): a sign
//! bit, E exponent bits, M mantissa bits. The thesis used normalized numbers only; nnc adds
//! what a codec needs (spec §7.6.5): exponent field 0 is subnormal (`m·2^(1−bias−M)`, so code
//! 0 is zero), every exponent field is finite (no Inf/NaN codes), values round to the nearest
//! representable value (ties to the even code) and clamp to the largest, and a per-tensor
//! scale `2^scale_exp` multiplies every value.

/// A layout: E exponent bits, M mantissa bits (sign bit implied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Exponent bits E (0 to 8).
    pub exp_bits: u8,
    /// Mantissa bits M (0 to 23; 1 <= E + M <= 23).
    pub man_bits: u8,
}

impl Layout {
    /// The exponent bias, 2^(E−1) − 1 (0 without exponent bits).
    pub fn bias(self) -> i32 {
        if self.exp_bits == 0 {
            0
        } else {
            (1 << (self.exp_bits - 1)) - 1
        }
    }

    /// Number of magnitude codes (sign excluded).
    pub fn magnitudes(self) -> u32 {
        1 << (self.exp_bits as u32 + self.man_bits as u32)
    }

    /// Magnitude of code `c` (sign bit clear), times `2^scale_exp`. Exact in binary64.
    pub fn magnitude(self, c: u32, scale_exp: i32) -> f64 {
        let m = (c & ((1 << self.man_bits) - 1)) as f64;
        let e = (c >> self.man_bits) as i32;
        let (mant, exp) = if e == 0 {
            (m, 1 - self.bias() - self.man_bits as i32)
        } else {
            (
                m + (1u64 << self.man_bits) as f64,
                e - self.bias() - self.man_bits as i32,
            )
        };
        mant * pow2(exp + scale_exp)
    }

    /// Value of a full code (sign bit `1 << (E + M)`).
    pub fn value(self, code: u32, scale_exp: i32) -> f64 {
        let sign_bit = self.magnitudes();
        let v = self.magnitude(code & (sign_bit - 1), scale_exp);
        if code & sign_bit != 0 {
            -v
        } else {
            v
        }
    }

    /// All magnitudes in code order (ascending, since the encoding is monotonic).
    pub fn table(self, scale_exp: i32) -> Vec<f64> {
        (0..self.magnitudes())
            .map(|c| self.magnitude(c, scale_exp))
            .collect()
    }

    /// The scale that maps `max_abs` to the largest magnitude or just below it.
    pub fn scale_for(self, max_abs: f64) -> i32 {
        let top = self.magnitude(self.magnitudes() - 1, 0);
        if max_abs <= 0.0 || !max_abs.is_finite() {
            return 0;
        }
        (max_abs / top).log2().ceil().clamp(-1000.0, 1000.0) as i32
    }
}

/// Exact `2^e` for the exponents minifloats need (|e| well inside binary64's range).
pub fn pow2(e: i32) -> f64 {
    let e = e.clamp(-1074, 1023);
    if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (e + 1074))
    }
}

/// Code of the value nearest to `x` (ties to the even code), clamped to the largest
/// magnitude. A binary search over the codes (magnitudes ascend with the code), so no table
/// of all `2^(E+M)` magnitudes is built.
pub fn quantize(x: f64, layout: Layout, scale_exp: i32) -> u32 {
    let a = x.abs();
    let n = layout.magnitudes();
    let (mut lo, mut hi) = (0u32, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if layout.magnitude(mid, scale_exp) < a {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let i = lo;
    let c = if i == 0 {
        0
    } else if i == n {
        n - 1
    } else {
        let (below, above) = (
            layout.magnitude(i - 1, scale_exp),
            layout.magnitude(i, scale_exp),
        );
        let (dl, dh) = (a - below, above - a);
        if dl < dh || (dl == dh && (i - 1) % 2 == 0) {
            i - 1
        } else {
            i
        }
    };
    if x < 0.0 && c != 0 {
        c | n
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ieee_half_layout_matches_ieee_values() {
        let h = Layout {
            exp_bits: 5,
            man_bits: 10,
        };
        assert_eq!(h.bias(), 15);
        assert_eq!(h.value(0x3c00, 0), 1.0);
        assert_eq!(h.value(0xc000, 0), -2.0);
        assert_eq!(h.value(0x0001, 0), 2f64.powi(-24));
        assert_eq!(h.value(0x7bff, 0), 65504.0);
        // Exponent field all ones is finite here (no Inf/NaN codes): 2^16 · (1 + 1023/1024).
        assert_eq!(h.value(0x7fff, 0), 131008.0);
        assert_eq!(quantize(1.0, h, 0), 0x3c00);
        assert_eq!(quantize(-0.0, h, 0), 0);
        assert_eq!(quantize(1e9, h, 0), 0x7fff);
        assert_eq!(quantize(-2.0, h, 0), 0xc000);
        // Halfway between 1 and 1 + 2^-10 rounds to the even code 0x3c00.
        assert_eq!(quantize(1.0 + 2f64.powi(-11), h, 0), 0x3c00);
        // Agrees with a search over the table of all magnitudes.
        let t = h.table(0);
        for i in 0..4000u32 {
            let x = (i as f64 - 2000.0) * 0.37 + (i as f64).sin() * 31.0;
            let a = x.abs();
            let best = (0..t.len())
                .min_by(|&p, &q| {
                    ((t[p] - a).abs(), p % 2)
                        .partial_cmp(&((t[q] - a).abs(), q % 2))
                        .unwrap()
                })
                .unwrap() as u32;
            let want = if x < 0.0 && best != 0 {
                best | 0x8000
            } else {
                best
            };
            assert_eq!(quantize(x, h, 0), want, "x = {x}");
        }
    }
}
