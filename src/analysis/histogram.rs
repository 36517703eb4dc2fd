//! The weight histogram that estimates the amplitude PDF (thesis §3.3.1, Figure 3.3): equal
//! bins over the mean ± k standard deviations (clipped to the data's range).

/// Equal-width bins over `[lo, hi]`.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
    /// All values offered, including the ones outside `[lo, hi]`.
    pub total: u64,
}

impl Histogram {
    /// Histogram of `values` with `bins` bins over [`Histogram::window`].
    pub fn around_mean(values: &[f64], bins: usize, sigmas: f64) -> Histogram {
        let (lo, hi) = Histogram::window(values, sigmas);
        Histogram::new(values, bins, lo, hi)
    }

    /// The window mean ± `sigmas`·σ ∩ [min, max] of `values` (σ the population standard
    /// deviation); a unit window around the value for constant data.
    pub fn window(values: &[f64], sigmas: f64) -> (f64, f64) {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (mut lo, mut hi) = (min.max(mean - sigmas * std), max.min(mean + sigmas * std));
        if lo.is_nan() || hi.is_nan() || lo >= hi {
            // Constant data (or none): one unit-wide window around it.
            let c = if mean.is_finite() { mean } else { 0.0 };
            (lo, hi) = (c - 0.5, c + 0.5);
        }
        (lo, hi)
    }

    /// Histogram of `values` with `bins` bins over `[lo, hi]` (the last bin is closed).
    pub fn new(values: &[f64], bins: usize, lo: f64, hi: f64) -> Histogram {
        let bins = bins.max(1);
        let mut counts = vec![0u64; bins];
        let scale = bins as f64 / (hi - lo);
        for &v in values {
            if v >= lo && v <= hi {
                let i = (((v - lo) * scale) as usize).min(bins - 1);
                counts[i] += 1;
            }
        }
        Histogram {
            lo,
            hi,
            counts,
            total: values.len() as u64,
        }
    }

    pub fn bins(&self) -> usize {
        self.counts.len()
    }

    pub fn width(&self) -> f64 {
        (self.hi - self.lo) / self.bins() as f64
    }

    /// Edge `i` (0 ..= bins).
    pub fn edge(&self, i: usize) -> f64 {
        self.lo + i as f64 * self.width()
    }

    pub fn center(&self, i: usize) -> f64 {
        self.lo + (i as f64 + 0.5) * self.width()
    }

    /// Values inside `[lo, hi]`.
    pub fn inside(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Density estimate of bin `i`: count / (all values · width), so the bars integrate to the
    /// fraction of values inside the window.
    pub fn density(&self, i: usize) -> f64 {
        self.counts[i] as f64 / (self.total.max(1) as f64 * self.width())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_density() {
        let v = [0.0, 0.1, 0.5, 0.99, 1.0, 2.0];
        let h = Histogram::new(&v, 2, 0.0, 1.0);
        assert_eq!(h.counts, vec![2, 3]);
        assert_eq!(h.inside(), 5);
        assert!((h.density(1) - 3.0 / (6.0 * 0.5)).abs() < 1e-12);
        assert!((h.center(0) - 0.25).abs() < 1e-12);
    }
}
