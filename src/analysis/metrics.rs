//! The task metrics of thesis §2.4 in one place, with the standard (scikit-learn) definitions:
//! classification (accuracy, per-class accuracy, precision, recall, F1; eqs. 2.3–2.7),
//! regression (SSE, SAE, MSE, MAE, RMSE; eqs. 2.8–2.12) and PSNR, ranking (cumulative gain,
//! DCG, NDCG, MRR; eqs. 2.13–2.16) and image classification (top-1/top-5 accuracy and error;
//! eqs. 2.17–2.20). The unit tests reproduce the thesis's worked examples (Tables 2.1–2.4).
//!
//! On the thesis's own numbers: §2.4.1 says the columns of Tables 2.1/2.2 are the expected
//! classes and the rows the predicted ones. Under that layout Table 2.1 gives precision
//! (0.8, 0.9) and recall (0.889, 0.818), but the thesis prints precision 0.888/0.8181 and recall
//! 0.8/0.9: its precision and recall are swapped relative to its stated layout (equivalently, it
//! computed them as if rows were the true classes; its "50 elements per class" also matches
//! the row sums). F1 is symmetric in the two and matches either way. Its per-class accuracy
//! of Table 2.1 (0.85, eq. 2.4) likewise divides by the row sums; scikit-learn's balanced
//! accuracy (mean recall over true classes) under the stated layout is 0.8535. The tests
//! below follow the stated layout and the standard definitions, and say where the thesis
//! differs.

/// A confusion matrix, `counts[true class][predicted class]` (scikit-learn's orientation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// From `counts[true][predicted]` (square).
    pub fn new(counts: Vec<Vec<u64>>) -> Confusion {
        let n = counts.len();
        assert!(
            counts.iter().all(|r| r.len() == n),
            "confusion matrix must be square"
        );
        Confusion { counts }
    }

    /// From the thesis's layout (Tables 2.1/2.2): rows are the predicted classes, columns the
    /// expected ones.
    pub fn from_thesis_layout(rows_predicted: &[Vec<u64>]) -> Confusion {
        let n = rows_predicted.len();
        Confusion::new(
            (0..n)
                .map(|t| (0..n).map(|p| rows_predicted[p][t]).collect())
                .collect(),
        )
    }

    /// From label lists, over classes `0..classes`.
    pub fn from_labels(truth: &[usize], predicted: &[usize], classes: usize) -> Confusion {
        let mut c = vec![vec![0u64; classes]; classes];
        for (&t, &p) in truth.iter().zip(predicted) {
            c[t][p] += 1;
        }
        Confusion::new(c)
    }

    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    fn true_count(&self, c: usize) -> u64 {
        self.counts[c].iter().sum()
    }

    fn predicted_count(&self, c: usize) -> u64 {
        self.counts.iter().map(|r| r[c]).sum()
    }

    /// Accuracy (eq. 2.3): correct predictions / all predictions.
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.classes()).map(|c| self.counts[c][c]).sum();
        ratio(correct, self.total())
    }

    /// Per-class accuracy (eq. 2.4), as scikit-learn's balanced accuracy: the mean over the
    /// classes present of correct / true count (the mean recall).
    pub fn balanced_accuracy(&self) -> f64 {
        let present: Vec<usize> = (0..self.classes())
            .filter(|&c| self.true_count(c) > 0)
            .collect();
        if present.is_empty() {
            return 0.0;
        }
        present.iter().map(|&c| self.recall(c)).sum::<f64>() / present.len() as f64
    }

    /// Precision of class `c` (eq. 2.5): correct predictions of c / all predictions of c
    /// (0 when c is never predicted, as scikit-learn's `zero_division=0`).
    pub fn precision(&self, c: usize) -> f64 {
        ratio(self.counts[c][c], self.predicted_count(c))
    }

    /// Recall of class `c` (eq. 2.6): correct predictions of c / elements of class c.
    pub fn recall(&self, c: usize) -> f64 {
        ratio(self.counts[c][c], self.true_count(c))
    }

    /// F1 of class `c` (eq. 2.7): harmonic mean of precision and recall (0 when both are 0).
    pub fn f1(&self, c: usize) -> f64 {
        let (p, r) = (self.precision(c), self.recall(c));
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Sum of squared errors (eq. 2.9).
pub fn sse(y: &[f64], y_hat: &[f64]) -> f64 {
    y.iter().zip(y_hat).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// Sum of absolute errors (eq. 2.11).
pub fn sae(y: &[f64], y_hat: &[f64]) -> f64 {
    y.iter().zip(y_hat).map(|(a, b)| (a - b).abs()).sum()
}

/// Mean squared error (eq. 2.10).
pub fn mse(y: &[f64], y_hat: &[f64]) -> f64 {
    sse(y, y_hat) / y.len().max(1) as f64
}

/// Mean absolute error (eq. 2.12).
pub fn mae(y: &[f64], y_hat: &[f64]) -> f64 {
    sae(y, y_hat) / y.len().max(1) as f64
}

/// Root mean squared error (eq. 2.8).
pub fn rmse(y: &[f64], y_hat: &[f64]) -> f64 {
    mse(y, y_hat).sqrt()
}

/// Peak signal-to-noise ratio in dB, 10·log10(peak²/MSE) (§2.4, image generation).
pub fn psnr(y: &[f64], y_hat: &[f64], peak: f64) -> f64 {
    10.0 * (peak * peak / mse(y, y_hat)).log10()
}

/// Cumulative gain of the first `p` relevances (eq. 2.13).
pub fn cumulative_gain(relevance_in_rank_order: &[f64], p: usize) -> f64 {
    relevance_in_rank_order.iter().take(p).sum()
}

/// Discounted cumulative gain, Σ relᵢ/log₂(i + 1) over the first `k` positions (the first
/// form of eq. 2.14, with position 1 undiscounted; scikit-learn's `dcg_score`).
pub fn dcg(relevance_in_rank_order: &[f64], k: Option<usize>) -> f64 {
    relevance_in_rank_order
        .iter()
        .take(k.unwrap_or(usize::MAX))
        .enumerate()
        .map(|(i, r)| r / ((i + 2) as f64).log2())
        .sum()
}

/// DCG with exponential gain, Σ (2^relᵢ − 1)/log₂(i + 1) (the second form of eq. 2.14, which
/// is not equal to the first despite the thesis's "=").
pub fn dcg_exponential(relevance_in_rank_order: &[f64], k: Option<usize>) -> f64 {
    let gains: Vec<f64> = relevance_in_rank_order
        .iter()
        .map(|r| r.exp2() - 1.0)
        .collect();
    dcg(&gains, k)
}

/// NDCG of one query (eq. 2.15, scikit-learn's `ndcg_score` for one sample): the DCG of the
/// true relevances ordered by decreasing score, over the DCG of the ideal order. Ties in
/// the scores keep the input order. 0 when every relevance is 0.
pub fn ndcg(true_relevance: &[f64], scores: &[f64], k: Option<usize>) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let ranked: Vec<f64> = order.iter().map(|&i| true_relevance[i]).collect();
    let mut ideal = true_relevance.to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let best = dcg(&ideal, k);
    if best == 0.0 {
        0.0
    } else {
        dcg(&ranked, k) / best
    }
}

/// Mean reciprocal rank (eq. 2.16) of 1-based positions; `None` (not found) counts 0.
pub fn mrr(positions: &[Option<usize>]) -> f64 {
    if positions.is_empty() {
        return 0.0;
    }
    positions
        .iter()
        .map(|p| p.map_or(0.0, |r| 1.0 / r as f64))
        .sum::<f64>()
        / positions.len() as f64
}

/// 1-based rank of class `truth` when `scores` are sorted decreasingly (ties: lower index
/// first).
pub fn rank_of(scores: &[f64], truth: usize) -> usize {
    let s = scores[truth];
    1 + scores
        .iter()
        .enumerate()
        .filter(|&(j, &v)| v > s || (v == s && j < truth))
        .count()
}

/// Top-k accuracy of one sample (eq. 2.17 for k = 1, eq. 2.19 for k = 5): 1 when the true
/// class is among the k highest scores. The error (eqs. 2.18, 2.20) is 1 minus it.
pub fn top_k(scores: &[f64], truth: usize, k: usize) -> f64 {
    if rank_of(scores, truth) <= k {
        1.0
    } else {
        0.0
    }
}

/// Mean top-k accuracy over samples (rows of scores, one true class each).
pub fn top_k_accuracy(scores: &[Vec<f64>], truth: &[usize], k: usize) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores
        .iter()
        .zip(truth)
        .map(|(s, &t)| top_k(s, t, k))
        .sum::<f64>()
        / scores.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Table 2.1 (rows predicted, columns expected).
    fn table_2_1() -> Confusion {
        Confusion::from_thesis_layout(&[vec![40, 10], vec![5, 45]])
    }

    /// Table 2.2 (rows predicted, columns expected).
    fn table_2_2() -> Confusion {
        Confusion::from_thesis_layout(&[vec![40, 8, 2], vec![5, 35, 10], vec![5, 7, 48]])
    }

    #[test]
    fn table_2_1_two_classes() {
        let c = table_2_1();
        assert_eq!(c.total(), 100);
        // Eq. 2.3: the thesis's 0.85.
        assert!(close(c.accuracy(), 0.85, 1e-12));
        // Standard precision/recall under the stated layout, from the matrix: class 1 was
        // predicted 50 times (40 right) and occurs 45 times.
        assert!(close(c.precision(0), 40.0 / 50.0, 1e-12));
        assert!(close(c.precision(1), 45.0 / 50.0, 1e-12));
        assert!(close(c.recall(0), 40.0 / 45.0, 1e-12));
        assert!(close(c.recall(1), 45.0 / 55.0, 1e-12));
        // The thesis prints precision 0.888/0.8181 and recall 0.8/0.9: swapped (module doc).
        // F1 is symmetric, so the thesis's 0.842 and 0.857 hold.
        assert!(close(c.f1(0), 0.842, 5e-4));
        assert!(close(c.f1(1), 0.857, 5e-4));
        // Balanced accuracy (mean recall); the thesis's eq. 2.4 value 0.85 is the mean of the
        // row-wise ratios, i.e. the mean precision here.
        assert!(close(
            c.balanced_accuracy(),
            (40.0 / 45.0 + 45.0 / 55.0) / 2.0,
            1e-12
        ));
        assert!(close((c.precision(0) + c.precision(1)) / 2.0, 0.85, 1e-12));
    }

    #[test]
    fn table_2_2_three_classes() {
        let c = table_2_2();
        assert_eq!(c.total(), 160);
        // Eq. 2.3: 123/160 = 0.76875, printed 0.7687.
        assert!(close(c.accuracy(), 0.7687, 1e-4));
        // Row and column sums agree here (50, 50, 60), so the layout question vanishes and
        // the thesis's 0.8/0.7/0.8 hold for precision, recall and F1; per-class accuracy
        // (eq. 2.4) is 0.7667 (printed 0.7666).
        for (k, want) in [0.8, 0.7, 0.8].into_iter().enumerate() {
            assert!(close(c.precision(k), want, 1e-12));
            assert!(close(c.recall(k), want, 1e-12));
            assert!(close(c.f1(k), want, 1e-12));
        }
        assert!(close(c.balanced_accuracy(), 0.7667, 1e-4));
    }

    #[test]
    fn from_labels_counts() {
        let c = Confusion::from_labels(&[0, 0, 1, 2], &[0, 1, 1, 2], 3);
        assert_eq!(c.accuracy(), 0.75);
        assert_eq!(c.recall(0), 0.5);
        assert_eq!(c.precision(1), 0.5);
    }

    /// Tables 2.3/2.4: the model's five most probable classes (plus "Bengal cat", outside
    /// the top five, with the remaining probability mass).
    #[test]
    fn top1_top5_tables_2_3_and_2_4() {
        const TIGER_CAT: usize = 0;
        const EGYPTIAN_CAT: usize = 3;
        const BENGAL_CAT: usize = 5;
        let scores = [0.432, 0.281, 0.183, 0.0895, 0.011, 0.0035];
        // Scenario 1: tiger cat → acc1 = acc5 = 1.
        assert_eq!(
            (top_k(&scores, TIGER_CAT, 1), top_k(&scores, TIGER_CAT, 5)),
            (1.0, 1.0)
        );
        // Scenario 2: Egyptian cat → acc1 = 0, acc5 = 1. (Table 2.3 lists it 4th; the text
        // says 3rd. Either way it is in the top five.)
        assert_eq!(rank_of(&scores, EGYPTIAN_CAT), 4);
        assert_eq!(
            (
                top_k(&scores, EGYPTIAN_CAT, 1),
                top_k(&scores, EGYPTIAN_CAT, 5)
            ),
            (0.0, 1.0)
        );
        // Scenario 3: Bengal cat → acc1 = acc5 = 0, err1 = err5 = 1.
        assert_eq!(
            (top_k(&scores, BENGAL_CAT, 1), top_k(&scores, BENGAL_CAT, 5)),
            (0.0, 0.0)
        );
        let all = vec![scores.to_vec(); 3];
        let truth = [TIGER_CAT, EGYPTIAN_CAT, BENGAL_CAT];
        assert!(close(top_k_accuracy(&all, &truth, 1), 1.0 / 3.0, 1e-12));
        assert!(close(top_k_accuracy(&all, &truth, 5), 2.0 / 3.0, 1e-12));
    }

    #[test]
    fn ranking_metrics() {
        // MRR (eq. 2.16): answers at positions 3, 2, 1 → (1/3 + 1/2 + 1)/3.
        assert!(close(mrr(&[Some(3), Some(2), Some(1)]), 11.0 / 18.0, 1e-12));
        assert_eq!(mrr(&[None, Some(1)]), 0.5);
        // NDCG (eq. 2.15), scikit-learn's documented example: ndcg_score([[10, 0, 0, 1, 5]],
        // [[.1, .2, .3, 4, 70]]) = 0.695...; with scores [.05, 1.1, 1., .5, .0]: 0.493...,
        // and k = 4: 0.352....
        let rel = [10.0, 0.0, 0.0, 1.0, 5.0];
        let want =
            (5.0 + 1.0 / 3f64.log2() + 10.0 / 6f64.log2()) / (10.0 + 5.0 / 3f64.log2() + 0.5);
        assert!(close(
            ndcg(&rel, &[0.1, 0.2, 0.3, 4.0, 70.0], None),
            want,
            1e-12
        ));
        assert!(close(want, 0.6957, 1e-4));
        let s2 = [0.05, 1.1, 1.0, 0.5, 0.0];
        let ideal = 10.0 + 5.0 / 3f64.log2() + 0.5;
        let at4 = 1.0 / 4f64.log2() + 10.0 / 5f64.log2();
        assert!(close(
            ndcg(&rel, &s2, None),
            (at4 + 5.0 / 6f64.log2()) / ideal,
            1e-12
        ));
        assert!(close(ndcg(&rel, &s2, Some(4)), at4 / ideal, 1e-12));
        assert!(close(ndcg(&rel, &s2, None), 0.4937, 1e-4));
        assert!(close(ndcg(&rel, &s2, Some(4)), 0.3520, 1e-4));
        assert_eq!(ndcg(&[0.0, 0.0], &[1.0, 2.0], None), 0.0);
        // Eq. 2.13 and the exponential-gain form of eq. 2.14.
        assert_eq!(cumulative_gain(&[3.0, 2.0, 3.0, 0.0], 3), 8.0);
        assert!(close(
            dcg_exponential(&[1.0, 1.0], None),
            1.0 + 1.0 / 3f64.log2(),
            1e-12
        ));
    }

    #[test]
    fn regression_metrics() {
        let (y, yh) = ([1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 2.0, 4.0]);
        assert_eq!(sse(&y, &yh), 1.25);
        assert_eq!(sae(&y, &yh), 1.5);
        assert_eq!(mse(&y, &yh), 0.3125);
        assert_eq!(mae(&y, &yh), 0.375);
        assert!(close(rmse(&y, &yh), 0.3125f64.sqrt(), 1e-15));
        assert!(close(
            psnr(&[0.0; 4], &[1.0; 4], 255.0),
            20.0 * 255f64.log10(),
            1e-12
        ));
    }
}
