//! The sliding-window threshold: the `1 - contamination` quantile of the most recent scores, so the
//! line between normal and anomalous follows a drifting stream (River's quantile filter, in batches).

use std::collections::VecDeque;

use crate::anomaly::quantile_unsorted;

#[derive(Debug, Clone)]
pub struct SlidingThreshold {
    scores: VecDeque<f64>,
    capacity: usize,
    quantile: f64,
    scratch: Vec<f64>,
}

impl SlidingThreshold {
    /// A window of the last `capacity` scores and the quantile `1 - contamination`.
    pub fn new(capacity: usize, contamination: f64) -> Self {
        Self { scores: VecDeque::with_capacity(capacity), capacity, quantile: 1.0 - contamination, scratch: Vec::new() }
    }

    /// Adds scores (NaN scores are skipped: they carry no information about the distribution).
    pub fn extend(&mut self, scores: &[f64]) {
        for &score in scores.iter().filter(|s| !s.is_nan()) {
            if self.scores.len() == self.capacity {
                self.scores.pop_front();
            }
            self.scores.push_back(score);
        }
    }

    /// The current threshold, once the window is full; before that the model's own threshold applies.
    pub fn current(&mut self) -> Option<f64> {
        if self.scores.len() < self.capacity {
            return None;
        }
        self.scratch.clear();
        self.scratch.extend(self.scores.iter().copied());
        // The model's calibration rule, by selection instead of a full sort.
        Some(quantile_unsorted(&mut self.scratch, self.quantile))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::{quantile_sorted, sorted_scores};

    #[test]
    fn waits_for_a_full_window_then_tracks_the_quantile() {
        let mut window = SlidingThreshold::new(100, 0.1);
        window.extend(&(0..99).map(f64::from).collect::<Vec<_>>());
        assert_eq!(window.current(), None);
        window.extend(&[f64::NAN, 99.0]);
        let scores: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(window.current(), Some(quantile_sorted(&sorted_scores(&scores), 0.9)));
        // Drift: the scores double; after a full window the threshold has doubled too.
        window.extend(&scores.iter().map(|s| 2.0 * s).collect::<Vec<_>>());
        let doubled = quantile_sorted(&sorted_scores(&scores.iter().map(|s| 2.0 * s).collect::<Vec<_>>()), 0.9);
        assert!((window.current().unwrap() - doubled).abs() < 1e-12);
    }
}
