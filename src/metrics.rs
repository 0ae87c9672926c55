//! Detection-quality metrics over labelled data: ROC-AUC and average precision, with scikit-learn's
//! definitions (ties in the score count half in the AUC; average precision steps at each distinct score).

use crate::error::{AutoencError, Result};

/// Area under the ROC curve: the probability that a random anomaly scores above a random normal row.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    check(scores, labels)?;
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    // Mann–Whitney U with average ranks for ties.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * average_rank;
        i = j + 1;
    }
    let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Ok(u / (positives as f64 * negatives as f64))
}

/// Average precision: `sum_n (R_n - R_{n-1}) P_n` over decreasing distinct score thresholds.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Result<f64> {
    check(scores, labels)?;
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut true_pos, mut seen, mut previous_recall, mut ap) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        // Take every row tied at this score together.
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] {
                true_pos += 1.0;
            }
            seen += 1.0;
            j += 1;
        }
        let recall = true_pos / positives;
        ap += (recall - previous_recall) * (true_pos / seen);
        previous_recall = recall;
        i = j;
    }
    Ok(ap)
}

fn check(scores: &[f64], labels: &[bool]) -> Result<()> {
    if scores.len() != labels.len() {
        return Err(AutoencError::InvalidInput(format!("{} scores but {} labels", scores.len(), labels.len())));
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err(AutoencError::InvalidInput("a score is NaN".into()));
    }
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 || positives == labels.len() {
        return Err(AutoencError::InvalidInput(
            "labels must contain both classes to compute ROC-AUC / average precision".into(),
        ));
    }
    Ok(())
}

/// How anomaly flags compare with labels: the counts, and the precision and recall they give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlagCounts {
    /// Rows labelled anomalous.
    pub labelled: usize,
    /// Rows flagged.
    pub flagged: usize,
    /// Rows both flagged and labelled anomalous.
    pub true_positives: usize,
}

impl FlagCounts {
    /// Counts `flags` against `labels` (pairs beyond the shorter slice are ignored).
    pub fn of(flags: &[bool], labels: &[bool]) -> Self {
        FlagCounts {
            labelled: labels.iter().filter(|l| **l).count(),
            flagged: flags.iter().filter(|f| **f).count(),
            true_positives: flags.iter().zip(labels).filter(|(f, l)| **f && **l).count(),
        }
    }

    /// Share of flagged rows that are labelled anomalous; 0 when nothing is flagged.
    pub fn precision(&self) -> f64 {
        if self.flagged == 0 { 0.0 } else { self.true_positives as f64 / self.flagged as f64 }
    }

    /// Share of anomalous rows that are flagged; 0 when none is labelled.
    pub fn recall(&self) -> f64 {
        if self.labelled == 0 { 0.0 } else { self.true_positives as f64 / self.labelled as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed with scikit-learn 1.9.1:
    // roc_auc_score([0,0,1,1,0,1], [0.1,0.4,0.35,0.8,0.4,0.9]) = 0.7777777777777778
    // average_precision_score(same) = 0.8666666666666667
    #[test]
    fn matches_scikit_learn_on_a_small_case_with_ties() {
        let labels = [false, false, true, true, false, true];
        let scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9];
        assert!((roc_auc(&scores, &labels).unwrap() - 0.7777777777777778).abs() < 1e-12);
        assert!((average_precision(&scores, &labels).unwrap() - 0.8666666666666667).abs() < 1e-12);
    }

    #[test]
    fn perfect_and_reversed_rankings() {
        let labels = [false, true, false, true];
        assert_eq!(roc_auc(&[0.1, 0.9, 0.2, 0.8], &labels).unwrap(), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.1, 0.8, 0.2], &labels).unwrap(), 0.0);
        assert_eq!(average_precision(&[0.1, 0.9, 0.2, 0.8], &labels).unwrap(), 1.0);
    }

    #[test]
    fn one_class_or_mismatched_lengths_are_errors() {
        assert!(roc_auc(&[0.1, 0.2], &[true, true]).is_err());
        assert!(average_precision(&[0.1], &[true, false]).is_err());
    }

    #[test]
    fn flag_counts_give_precision_and_recall() {
        let counts = FlagCounts::of(&[true, true, false, true], &[true, false, true, true]);
        assert_eq!(counts, FlagCounts { labelled: 3, flagged: 3, true_positives: 2 });
        assert!((counts.precision() - 2.0 / 3.0).abs() < 1e-12 && (counts.recall() - 2.0 / 3.0).abs() < 1e-12);
        let none = FlagCounts::of(&[false, false], &[false, false]);
        assert_eq!((none.precision(), none.recall()), (0.0, 0.0));
    }
}
