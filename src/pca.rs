//! Principal components of the scaled training data, through ndarray-linalg (LAPACK).
//!
//! Used to pick the latent size automatically (the smallest k whose components explain a target share
//! of the variance) and as the yardstick for the linear-autoencoder test: a linear autoencoder trained
//! with the squared loss spans the same subspace as the top-k principal components, so it cannot beat
//! their reconstruction error and should reach it.

use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use ndarray_linalg::{Eigh, UPLO};

use crate::error::{AutoencError, Result};

/// Eigen-decomposition of the covariance matrix, largest component first.
#[derive(Debug, Clone)]
pub struct Pca {
    pub mean: Array1<f64>,
    /// Variance along each component, descending.
    pub variances: Array1<f64>,
    /// Components as columns, `(features, features)`.
    pub components: Array2<f64>,
}

impl Pca {
    pub fn fit(data: ArrayView2<f32>) -> Result<Self> {
        let n = data.nrows();
        if n < 2 {
            return Err(AutoencError::TooFewRows { needed: 2, got: n, purpose: "compute principal components" });
        }
        let x = data.mapv(|v| v as f64);
        let mean = x.mean_axis(Axis(0)).ok_or(AutoencError::EmptyInput)?;
        let centred = &x - &mean;
        let covariance = centred.t().dot(&centred) / (n as f64 - 1.0);
        let (values, vectors) = covariance.eigh(UPLO::Lower).map_err(|e| AutoencError::Linalg(e.to_string()))?;
        // LAPACK returns ascending eigenvalues: reverse to put the largest first.
        let variances = values.slice(s![..;-1]).mapv(|v| v.max(0.0));
        let components = vectors.slice(s![.., ..;-1]).to_owned();
        Ok(Pca { mean, variances, components })
    }

    /// The share of the total variance each component explains (sums to 1; all zero for constant data).
    pub fn explained_variance_ratio(&self) -> Vec<f64> {
        let total: f64 = self.variances.sum();
        if total <= 0.0 {
            return vec![0.0; self.variances.len()];
        }
        self.variances.iter().map(|v| v / total).collect()
    }

    /// The smallest k whose leading components explain at least `target` of the variance.
    pub fn components_for(&self, target: f64) -> usize {
        let mut cumulative = 0.0;
        for (i, r) in self.explained_variance_ratio().iter().enumerate() {
            cumulative += r;
            // A hair of tolerance so that a target of 1.0 is met despite rounding.
            if cumulative >= target - 1e-9 {
                return i + 1;
            }
        }
        self.variances.len().max(1)
    }

    /// Mean squared error (over all entries) of projecting `data` onto the first `k` components and back.
    pub fn reconstruction_mse(&self, data: ArrayView2<f32>, k: usize) -> f64 {
        let x = data.mapv(|v| v as f64);
        let centred = &x - &self.mean;
        let basis = self.components.slice(s![.., ..k.min(self.components.ncols())]);
        let projected = centred.dot(&basis).dot(&basis.t());
        let diff = &centred - &projected;
        diff.mapv(|v| v * v).mean().unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_spectrum_of_a_known_covariance() {
        // Two independent columns with variances 9 and 1, plus an exact copy of the first.
        let n = 2000;
        let data = Array2::from_shape_fn((n, 3), |(i, j)| {
            let a = if i % 2 == 0 { 3.0 } else { -3.0 };
            let b = if (i / 2) % 2 == 0 { 1.0 } else { -1.0 };
            [a, b, a][j] as f32
        });
        let pca = Pca::fit(data.view()).unwrap();
        let ratios = pca.explained_variance_ratio();
        assert!((ratios[0] - 18.0 / 19.0).abs() < 1e-3, "{ratios:?}");
        assert!(ratios[2] < 1e-9);
        assert_eq!(pca.components_for(0.9), 1);
        assert_eq!(pca.components_for(0.99), 2);
        assert!(pca.reconstruction_mse(data.view(), 2) < 1e-9);
        assert!((pca.reconstruction_mse(data.view(), 1) - 1.0 / 3.0 * (n as f64 / (n as f64))).abs() < 1e-2);
    }

    #[test]
    fn one_row_is_too_few() {
        let err = Pca::fit(Array2::<f32>::zeros((1, 3)).view()).unwrap_err();
        assert!(matches!(err, AutoencError::TooFewRows { needed: 2, got: 1, .. }));
    }
}
