//! From scores to decisions: the anomaly threshold and the percentile sketch.
//!
//! The threshold is calibrated once, at training time, as the `1 - contamination` quantile of the
//! training scores (PyOD's and BigQuery ML's convention), unless the user gives one explicitly. A
//! compact sketch of the training-score distribution travels with the model so that any later score
//! can be read as a percentile: the fraction of training rows that scored lower.

use serde::{Deserialize, Serialize};

/// Training sets up to this many rows keep every score (exact percentiles); larger ones keep this many
/// evenly spaced quantiles (percentiles exact at the grid points, linear in between: error < 0.1 %).
pub const SKETCH_POINTS: usize = 1001;

/// How the threshold was set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "lowercase")]
pub enum ThresholdRule {
    /// The `1 - contamination` quantile of the training scores.
    Contamination { contamination: f64 },
    /// Given by the user.
    Explicit,
}

/// The score above which a row is an anomaly, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f64,
    #[serde(flatten)]
    pub rule: ThresholdRule,
}

/// Sorted training scores (small sets) or their quantiles on an even grid (large sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSketch {
    /// Ascending values.
    pub points: Vec<f64>,
    /// Number of training rows summarised.
    pub count: usize,
    /// True when `points` holds every training score.
    pub exact: bool,
}

/// Where the `q` quantile of `n` ordered values falls: the index of the order statistic at or below it,
/// and the fraction of the way to the next one. Linear interpolation between order statistics (numpy's
/// default) is the one quantile rule autoenc uses: the model's threshold and sketch, the stream's sliding
/// threshold and the stream's latency figures.
fn quantile_position(n: usize, q: f64) -> (usize, f64) {
    let position = q.clamp(0.0, 1.0) * n.saturating_sub(1) as f64;
    let below = position.floor() as usize;
    (below, position - below as f64)
}

/// The `q` quantile of ascending `sorted`; NaN when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let (below, fraction) = quantile_position(sorted.len(), q);
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// The `q` quantile of `values` in any order (which this reorders), by selection instead of a full sort:
/// the same number as [`quantile_sorted`] of the sorted values, in linear time. NaN when empty.
pub fn quantile_unsorted(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let (below, fraction) = quantile_position(values.len(), q);
    let (_, &mut low, upper) = values.select_nth_unstable_by(below, f64::total_cmp);
    let high = upper.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    low + (high - low) * fraction
}

/// Sorts scores ascending; NaN (which scoring never produces) would sort last.
pub fn sorted_scores(scores: &[f64]) -> Vec<f64> {
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted
}

impl ScoreSketch {
    pub fn from_sorted(sorted: &[f64]) -> Self {
        if sorted.len() <= SKETCH_POINTS {
            return ScoreSketch { points: sorted.to_vec(), count: sorted.len(), exact: true };
        }
        let last = (SKETCH_POINTS - 1) as f64;
        let points = (0..SKETCH_POINTS).map(|i| quantile_sorted(sorted, i as f64 / last)).collect();
        ScoreSketch { points, count: sorted.len(), exact: false }
    }

    /// The fraction of training rows whose score is lower than `score`, in [0, 1].
    pub fn percentile(&self, score: f64) -> f64 {
        let n = self.points.len();
        if n == 0 || score.is_nan() {
            return f64::NAN;
        }
        let below = self.points.partition_point(|&p| p < score);
        if self.exact {
            return below as f64 / n as f64;
        }
        if below == 0 {
            return 0.0;
        }
        if below == n {
            return 1.0;
        }
        let (lo, hi) = (self.points[below - 1], self.points[below]);
        let within = if hi > lo { (score - lo) / (hi - lo) } else { 0.0 };
        ((below - 1) as f64 + within) / (n - 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn selection_gives_the_same_quantile_as_sorting() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        for n in [1, 2, 3, 10, 101, 1000] {
            let values: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * 100.0).collect();
            let sorted = sorted_scores(&values);
            for q in [0.0, 0.01, 0.5, 0.9, 0.999, 1.0] {
                let mut scratch = values.clone();
                assert_eq!(quantile_unsorted(&mut scratch, q), quantile_sorted(&sorted, q), "n {n}, q {q}");
            }
        }
        assert!(quantile_unsorted(&mut [], 0.5).is_nan());
    }

    #[test]
    fn quantiles_match_numpy_linear_interpolation() {
        let sorted = [1.0, 2.0, 4.0, 8.0];
        // numpy.quantile([1,2,4,8], [0, .5, .9, 1]) = [1, 3, 6.8, 8]
        let got: Vec<f64> = [0.0, 0.5, 0.9, 1.0].iter().map(|&q| quantile_sorted(&sorted, q)).collect();
        for (g, e) in got.iter().zip([1.0, 3.0, 6.8, 8.0]) {
            assert!((g - e).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn exact_sketch_counts_lower_scores() {
        let sketch = ScoreSketch::from_sorted(&[1.0, 2.0, 3.0, 4.0]);
        assert!(sketch.exact);
        assert_eq!(sketch.percentile(0.5), 0.0);
        assert_eq!(sketch.percentile(2.0), 0.25);
        assert_eq!(sketch.percentile(2.5), 0.5);
        assert_eq!(sketch.percentile(9.0), 1.0);
    }

    #[test]
    fn grid_sketch_is_within_a_tenth_of_a_percent() {
        let scores: Vec<f64> = (0..100_000).map(|i| ((i * 7919) % 100_000) as f64 / 1000.0).collect();
        let sorted = sorted_scores(&scores);
        let sketch = ScoreSketch::from_sorted(&sorted);
        assert!(!sketch.exact && sketch.points.len() == SKETCH_POINTS && sketch.count == 100_000);
        for probe in [0.0105, 3.3, 50.0, 77.77, 99.9] {
            let truth = sorted.partition_point(|&s| s < probe) as f64 / sorted.len() as f64;
            assert!(
                (sketch.percentile(probe) - truth).abs() < 1e-3,
                "{probe}: {} vs {truth}",
                sketch.percentile(probe)
            );
        }
    }
}
