//! Summary statistics of weights: moments, sparsity, and the order-0 entropy of the raw bit
//! patterns (thesis eq. 2.31 over the 32-bit words, the "Entropia" column of Tables 3.7/3.8).
use crate::onnx::dtype;

/// Order-0 entropy H = −Σ pᵢ log₂ pᵢ (eq. 2.31) in bits per symbol, from symbol counts.
pub fn entropy_per_symbol(counts: impl IntoIterator<Item = u64>) -> f64 {
    let counts: Vec<u64> = counts.into_iter().filter(|&c| c > 0).collect();
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    counts
        .iter()
        .map(|&c| {
            let p = c as f64 / nf;
            -p * p.log2()
        })
        .sum()
}

/// Counts of equal runs of a sorted slice.
pub fn run_counts<T: PartialEq>(sorted: &[T]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    let mut prev: Option<&T> = None;
    for v in sorted {
        match (prev, out.last_mut()) {
            (Some(p), Some(c)) if p == v => *c += 1,
            _ => out.push(1),
        }
        prev = Some(v);
    }
    out
}

/// Order-0 entropy in bits per value of raw bit patterns (sorts `patterns`).
pub fn pattern_entropy(patterns: &mut [u64]) -> f64 {
    patterns.sort_unstable();
    entropy_per_symbol(run_counts(patterns))
}

/// The raw bit pattern of each element of a float tensor's canonical little-endian bytes:
/// u32 for float, u16 for float16/bfloat16, u64 for double. `None` for other types.
pub fn bit_patterns(data_type: i32, data: &[u8]) -> Option<Vec<u64>> {
    Some(match data_type {
        dtype::FLOAT => data
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
            .collect(),
        dtype::FLOAT16 | dtype::BFLOAT16 => data
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as u64)
            .collect(),
        dtype::DOUBLE => data
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect(),
        _ => return None,
    })
}

/// Moments and range of a set of values (non-finite values counted apart and skipped).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub count: u64,
    pub nonfinite: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Third standardized moment.
    pub skewness: f64,
    /// Fourth standardized moment minus 3 (Gaussian 0, Laplace 3, logistic 1.2).
    pub excess_kurtosis: f64,
    /// Exact zeros (±0).
    pub zeros: u64,
}

impl Moments {
    pub fn of(values: &[f64]) -> Moments {
        let mut m = Moments {
            count: values.len() as u64,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..Moments::default()
        };
        let mut sum = 0.0;
        let mut finite = 0u64;
        for &v in values {
            if !v.is_finite() {
                m.nonfinite += 1;
                continue;
            }
            finite += 1;
            sum += v;
            m.min = m.min.min(v);
            m.max = m.max.max(v);
            if v == 0.0 {
                m.zeros += 1;
            }
        }
        if finite == 0 {
            m.min = f64::NAN;
            m.max = f64::NAN;
            m.mean = f64::NAN;
            m.std = f64::NAN;
            m.skewness = f64::NAN;
            m.excess_kurtosis = f64::NAN;
            return m;
        }
        let n = finite as f64;
        m.mean = sum / n;
        let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
        for &v in values.iter().filter(|v| v.is_finite()) {
            let d = v - m.mean;
            let d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
        }
        let (m2, m3, m4) = (m2 / n, m3 / n, m4 / n);
        m.std = m2.sqrt();
        if m2 > 0.0 {
            m.skewness = m3 / m2.powf(1.5);
            m.excess_kurtosis = m4 / (m2 * m2) - 3.0;
        }
        m
    }

    /// Fraction of exact zeros among all values.
    pub fn sparsity(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.zeros as f64 / self.count as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_and_moments() {
        assert_eq!(entropy_per_symbol([5, 5]), 1.0);
        assert_eq!(entropy_per_symbol([7]), 0.0);
        assert!((entropy_per_symbol([1, 1, 2]) - 1.5).abs() < 1e-12);
        let mut p = vec![3u64, 1, 3, 2];
        assert!((pattern_entropy(&mut p) - 1.5).abs() < 1e-12);
        let m = Moments::of(&[0.0, -0.0, 1.0, 3.0, f64::NAN]);
        assert_eq!((m.count, m.nonfinite, m.zeros), (5, 1, 2));
        assert_eq!((m.min, m.max, m.mean), (0.0, 3.0, 1.0));
        assert!((m.std - 1.5f64.sqrt()).abs() < 1e-12);
        assert!((m.sparsity() - 0.4).abs() < 1e-12);
        let bits = bit_patterns(dtype::FLOAT, &1.0f32.to_le_bytes()).unwrap();
        assert_eq!(bits, vec![0x3f80_0000]);
    }
}
