//! Values of every data type (spec §6.2), edge values first.
use super::*;

/// IEEE binary32 values every decoder must carry bit-exactly.
pub(super) fn special_f32() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::MAX,
        -f32::MAX,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),           // smallest subnormal
        f32::from_bits(0x8000_0001), // its negative
        f32::from_bits(0x007f_ffff), // largest subnormal
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_0000), // quiet NaN
        f32::from_bits(0xffc0_0001), // negative quiet NaN with payload
        f32::from_bits(0x7f80_0001), // signaling NaN
        f32::EPSILON,
        0.1,
        std::f32::consts::PI,
        -65504.0,
    ]
}

pub(super) fn special_f64() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        f64::from_bits(0x800f_ffff_ffff_ffff),
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::from_bits(0x7ff8_0000_0000_0000),
        f64::from_bits(0xfff8_0000_0000_beef),
        f64::from_bits(0x7ff0_0000_0000_0001),
        f64::EPSILON,
        0.1,
    ]
}

/// 16-bit float bit patterns: zeros, subnormals, the largest finite, infinities, NaNs.
pub(super) fn special_f16() -> Vec<u16> {
    vec![
        0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x7c00, 0xfc00,
        0x7e00, 0x7c01, 0xfe01, 0x3555, 0x5640,
    ]
}

pub(super) fn special_bf16() -> Vec<u16> {
    vec![
        0x0000, 0x8000, 0x0001, 0x007f, 0x0080, 0x3f80, 0xbf80, 0x7f7f, 0xff7f, 0x7f80, 0xff80,
        0x7fc0, 0x7f81, 0xffc1, 0x3e4d, 0x4049,
    ]
}

/// Canonical bytes of `n` elements of type `dt` (spec §6.2) from `rng`: structured enough
/// that byte planes pay for larger tensors, with the type's edge values first.
pub(super) fn data_of(dt: i32, n: usize, rng: &mut Rng) -> Vec<u8> {
    let smallish = |rng: &mut Rng| rng.gauss(20.0).round() as i64;
    match dt {
        dtype::FLOAT => {
            let mut v = special_f32();
            v.extend(rng.weights(n, 0.05));
            v.truncate(n);
            f32_bytes(&v)
        }
        dtype::DOUBLE => {
            let mut v = special_f64();
            v.extend((0..n).map(|_| rng.gauss(0.05)));
            v.truncate(n);
            f64_bytes(&v)
        }
        dtype::COMPLEX64 => {
            let mut v = special_f32();
            v.extend(rng.weights(2 * n, 1.0));
            v.truncate(2 * n);
            f32_bytes(&v)
        }
        dtype::COMPLEX128 => {
            let mut v = special_f64();
            v.extend((0..2 * n).map(|_| rng.gauss(1.0)));
            v.truncate(2 * n);
            f64_bytes(&v)
        }
        dtype::FLOAT16 | dtype::BFLOAT16 => {
            let mut v = if dt == dtype::FLOAT16 {
                special_f16()
            } else {
                special_bf16()
            };
            v.extend((0..n).map(|_| {
                let x = rng.gauss(0.1) as f32;
                if dt == dtype::FLOAT16 {
                    f32_to_f16(x)
                } else {
                    f32_to_bf16(x)
                }
            }));
            v.truncate(n);
            u16_bytes(&v)
        }
        dtype::UINT8 => {
            let mut v = vec![0u8, 255];
            v.extend((0..n).map(|_| (128 + smallish(rng)).clamp(0, 255) as u8));
            v.truncate(n);
            v
        }
        dtype::INT8 => {
            let mut v = vec![0x80u8, 0x7f, 0xff];
            v.extend((0..n).map(|_| smallish(rng).clamp(-128, 127) as i8 as u8));
            v.truncate(n);
            v
        }
        dtype::BOOL => (0..n)
            .map(|i| (rng.below(3) == 0 || i == 0) as u8)
            .collect(),
        dtype::UINT16 | dtype::INT16 => {
            let mut v: Vec<u16> = vec![0, 0xffff, 0x8000, 0x7fff];
            v.extend((0..n).map(|_| (1000 + smallish(rng)) as u16));
            v.truncate(n);
            u16_bytes(&v)
        }
        dtype::INT32 | dtype::UINT32 => {
            let mut v: Vec<u32> = vec![0, u32::MAX, 0x8000_0000, 0x7fff_ffff];
            v.extend((0..n).map(|_| (100_000 + smallish(rng)) as u32));
            v.truncate(n);
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        dtype::INT64 | dtype::UINT64 => {
            let mut v: Vec<u64> = vec![0, u64::MAX, 1 << 63, (1 << 63) - 1];
            v.extend((0..n).map(|_| smallish(rng) as u64));
            v.truncate(n);
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        // 8-bit float kinds: every bit pattern is a value (or NaN) of the type.
        17..=20 | 24 => {
            let mut v = vec![0x00u8, 0x80, 0x7f, 0xff, 0x01, 0x38];
            v.extend((0..n).map(|_| 0x30 + rng.below(24) as u8));
            v.truncate(n);
            v
        }
        // 4-, 2- and 6-bit types: packed codes (spec §6.2), the padding bits zero.
        _ => {
            let bits = dtype::bits(dt).expect("fixed-width type") as usize;
            let mut out = vec![0u8; (n * bits).div_ceil(8)];
            for i in 0..n {
                let code = if i < 2 {
                    [0, (1u64 << bits) - 1][i]
                } else {
                    rng.below(1 << bits)
                };
                for b in 0..bits {
                    if code >> b & 1 == 1 {
                        let at = i * bits + b;
                        out[at / 8] |= 1 << (at % 8);
                    }
                }
            }
            out
        }
    }
}

/// The fixed-width types of §6.2, with their ONNX names.
pub(super) fn fixed_width_types() -> Vec<i32> {
    (1..=28).filter(|&t| t != dtype::STRING).collect()
}
