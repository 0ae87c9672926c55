//! Feature scaling fitted on the training data and stored in the model.
//!
//! The network and the anomaly score both work in scaled units, so that a feature measured in
//! thousands does not drown one measured in fractions. NaN marks a missing value: it is ignored when
//! fitting, becomes 0 (the centre) after scaling, and is reported in a mask so the loss can skip it.

use ndarray::{Array1, Array2, ArrayView2, Zip};
use serde::{Deserialize, Serialize};

use crate::error::{AutoencError, Result};
use crate::model::params::Scaling;

/// `scaled = (x - offset) / scale`, per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub kind: Scaling,
    pub offset: Array1<f32>,
    pub scale: Array1<f32>,
}

/// Scaled data ready for the network.
pub struct Scaled {
    /// Scaled values with missing entries set to 0.
    pub values: Array2<f32>,
    /// 1.0 for observed, 0.0 for missing; `None` when no value is missing.
    pub mask: Option<Array2<f32>>,
}

/// Per-column `(observed count, mean, sum of squared deviations)` by Welford's update (one pass, stable
/// for large offsets), NaN skipped. The update runs a row at a time across all columns — contiguous and
/// vectorised — rather than a column at a time down a strided column with a division's latency per value;
/// each column still sees exactly the same operations in the same order, so the results are the same bits.
fn column_moments(data: ArrayView2<f32>) -> Vec<(f64, f64, f64)> {
    let d = data.ncols();
    let (mut n, mut mean, mut m2) = (vec![0.0f64; d], vec![0.0f64; d], vec![0.0f64; d]);
    crate::linalg::vectorized(
        #[inline(always)]
        || {
            let mut buffer = vec![0.0f32; d];
            for row in data.rows() {
                let values = match row.as_slice() {
                    Some(values) => values,
                    None => {
                        buffer.iter_mut().zip(row.iter()).for_each(|(b, &v)| *b = v);
                        &buffer[..]
                    }
                };
                for (((&v, n), mean), m2) in values.iter().zip(&mut n).zip(&mut mean).zip(&mut m2) {
                    // Branch-free so it vectorises: a missing value adds 0 to the count, the mean and m2.
                    let observed = !v.is_nan();
                    let v = if observed { v as f64 } else { *mean };
                    *n += if observed { 1.0 } else { 0.0 };
                    let delta = v - *mean;
                    *mean += delta / n.max(1.0);
                    *m2 += delta * (v - *mean);
                }
            }
        },
    );
    n.into_iter().zip(mean).zip(m2).map(|((n, mean), m2)| (n, mean, m2)).collect()
}

impl Scaler {
    /// Fits per-feature statistics, ignoring NaN. A feature with no spread gets scale 1 (it is centred
    /// only, never divided by zero); a feature with no observed value gets offset 0 and scale 1.
    pub fn fit(kind: Scaling, data: ArrayView2<f32>) -> Self {
        let d = data.ncols();
        let mut offset = Array1::zeros(d);
        let mut scale = Array1::ones(d);
        if kind == Scaling::None {
            return Scaler { kind, offset, scale };
        }
        match kind {
            Scaling::Standard => {
                let moments = column_moments(data);
                for (j, &(n, mean, m2)) in moments.iter().enumerate() {
                    let std = if n > 0.0 { (m2 / n).sqrt() } else { 0.0 };
                    offset[j] = mean as f32;
                    scale[j] = if std > 1e-12 * mean.abs().max(1.0) { std as f32 } else { 1.0 };
                }
            }
            Scaling::Minmax => {
                for (j, column) in data.columns().into_iter().enumerate() {
                    let observed = column.iter().filter(|v| !v.is_nan()).map(|&v| v as f64);
                    let (lo, hi) =
                        observed.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                    if lo.is_finite() {
                        offset[j] = lo as f32;
                        scale[j] = if hi > lo { (hi - lo) as f32 } else { 1.0 };
                    }
                }
            }
            Scaling::None => {}
        }
        Scaler { kind, offset, scale }
    }

    pub fn features(&self) -> usize {
        self.offset.len()
    }

    /// Scales `data`, recording missing entries. Infinite values are an error naming row and feature.
    pub fn transform(&self, data: ArrayView2<f32>, feature_names: &[String]) -> Result<Scaled> {
        check_finite_or_missing(data, feature_names)?;
        let mut values = Array2::zeros(data.raw_dim());
        let mut any_missing = false;
        let inverse = self.inverse_scale();
        Zip::from(values.rows_mut()).and(data.rows()).for_each(|mut out, row| {
            Zip::from(&mut out).and(&row).and(&self.offset).and(&inverse).for_each(|o, &v, &off, &inv| {
                if v.is_nan() {
                    any_missing = true;
                    *o = 0.0;
                } else {
                    *o = scale_value(v, off, inv);
                }
            });
        });
        let mask = any_missing.then(|| data.mapv(|v| if v.is_nan() { 0.0 } else { 1.0 }));
        Ok(Scaled { values, mask })
    }

    /// `1 / scale`: scaling multiplies by it (a multiply is cheaper than a divide on the hot path, and
    /// every door must compute exactly the same numbers, so they all use this).
    pub fn inverse_scale(&self) -> Array1<f32> {
        self.scale.mapv(|s| 1.0 / s)
    }

    /// Back to the original units.
    pub fn inverse(&self, scaled: ArrayView2<f32>) -> Array2<f32> {
        let mut out = scaled.to_owned();
        for mut row in out.rows_mut() {
            Zip::from(&mut row).and(&self.offset).and(&self.scale).for_each(|v, &off, &s| *v = *v * s + off);
        }
        out
    }
}

/// One scaled value: the single definition every code path uses, so all agree to the bit.
#[inline]
pub fn scale_value(value: f32, offset: f32, inverse_scale: f32) -> f32 {
    (value - offset) * inverse_scale
}

/// Feature names must be unique and non-empty: the doors match input columns to a model's features by
/// name, so a repeated name would silently feed one column twice.
pub fn check_feature_names(names: &[String]) -> Result<()> {
    if let Some(j) = names.iter().position(|n| n.trim().is_empty()) {
        return Err(AutoencError::InvalidFeatureNames(format!("feature #{j} has an empty name")));
    }
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    if let Some(repeated) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(AutoencError::InvalidFeatureNames(format!("'{repeated}' appears more than once")));
    }
    Ok(())
}

/// Fails on the first infinite value (NaN is allowed: it means missing).
pub fn check_finite_or_missing(data: ArrayView2<f32>, feature_names: &[String]) -> Result<()> {
    for (row, values) in data.rows().into_iter().enumerate() {
        if let Some(j) = values.iter().position(|v| v.is_infinite()) {
            let feature = feature_names.get(j).cloned().unwrap_or_else(|| format!("#{j}"));
            return Err(AutoencError::InfiniteValue { row, feature });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn names(d: usize) -> Vec<String> {
        (0..d).map(|j| format!("f{j}")).collect()
    }

    #[test]
    fn standard_scaling_centres_and_handles_constant_columns() {
        let data = array![[1.0f32, 5.0, 2.0], [3.0, 5.0, f32::NAN], [5.0, 5.0, 4.0]];
        let scaler = Scaler::fit(Scaling::Standard, data.view());
        assert_eq!(scaler.offset, array![3.0, 5.0, 3.0]);
        assert!((scaler.scale[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(scaler.scale[1], 1.0, "zero variance is centred, not divided by zero");
        let scaled = scaler.transform(data.view(), &names(3)).unwrap();
        assert!(scaled.values.iter().all(|v| v.is_finite()));
        assert_eq!(scaled.values[(1, 2)], 0.0);
        assert_eq!(scaled.mask.unwrap()[(1, 2)], 0.0);
        let back = scaler.inverse(scaled.values.view());
        assert!((back[(2, 0)] - 5.0).abs() < 1e-6);
    }

    #[test]
    fn minmax_maps_to_unit_interval() {
        let data = array![[1.0f32, 7.0], [3.0, 7.0], [2.0, 7.0]];
        let scaler = Scaler::fit(Scaling::Minmax, data.view());
        let scaled = scaler.transform(data.view(), &names(2)).unwrap();
        assert_eq!(scaled.values.column(0).to_vec(), vec![0.0, 1.0, 0.5]);
        assert_eq!(scaled.values.column(1).to_vec(), vec![0.0, 0.0, 0.0]);
        assert!(scaled.mask.is_none());
    }

    #[test]
    fn feature_names_must_be_unique_and_named() {
        let strings = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(check_feature_names(&strings(&["a", "b"])).is_ok());
        let repeated = check_feature_names(&strings(&["a", "a", "b"])).unwrap_err().to_string();
        assert!(repeated.contains("'a' appears more than once"), "{repeated}");
        let empty = check_feature_names(&strings(&["", "", "b"])).unwrap_err().to_string();
        assert!(empty.contains("feature #0 has an empty name"), "{empty}");
    }

    #[test]
    fn infinite_values_name_row_and_feature() {
        let data = array![[1.0f32, 2.0], [3.0, f32::NEG_INFINITY]];
        let scaler = Scaler::fit(Scaling::Standard, array![[0.0f32, 0.0], [1.0, 1.0]].view());
        let err = scaler.transform(data.view(), &["a".into(), "b".into()]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "infinite value at row 1, feature 'b': only finite numbers or NaN (missing) are accepted"
        );
    }
}
