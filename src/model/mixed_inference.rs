//! Running a model with categorical features on rows: the same methods as `inference` (encode, score,
//! details), on a general path.
//!
//! The numeric path folds the scaler into the first layer and scores inside the output layer's kernel;
//! neither fits one-hot blocks and softmax outputs, so a model with categorical features takes this
//! path instead: check the codes, scale, expand each code to its one-hot block, run the network, and
//! compare per feature ([`FeatureLayout::row_errors`]). Missing numeric values are imputed as on the
//! numeric path — start from the feature mean (0 in scaled units), put the reconstruction in the gaps,
//! [`IMPUTATION_ROUNDS`] times — and left out of the score. A categorical value is never missing: NULL
//! is a category of its own.

use ndarray::{Array1, Array2, ArrayView2, Zip};

use super::autoencoder::{Autoencoder, ScoreDetails};
use super::inference::IMPUTATION_ROUNDS;
use crate::error::{AutoencError, Result};

/// One chunk's forward pass in both the user's and the network's terms.
struct Forward {
    /// Codes (`(rows, latent)`).
    code: Array2<f32>,
    /// The network's output (`(rows, network width)`): numeric values in scaled units, block logits.
    output: Array2<f32>,
    /// The rows scaled, codes as they are, NaN where a numeric value is missing.
    target: Array2<f32>,
}

impl Autoencoder {
    /// Codes and outputs of up to a chunk of rows whose first row is row `at` of the caller's input.
    fn mixed_forward(&self, rows: ArrayView2<f32>, at: usize) -> Result<Forward> {
        let names = &self.feature_names;
        let rows = self.features.normalise_codes(rows, names).map_err(|e| shift_row(e, at))?;
        for (i, row) in rows.outer_iter().enumerate() {
            if let Some(j) = row.iter().position(|v| v.is_infinite()) {
                return Err(AutoencError::InfiniteValue { row: at + i, feature: names[j].clone() });
            }
        }
        let scaled = self.scaler.transform(rows.view(), names)?;
        let mut target = scaled.values.clone();
        if let Some(mask) = &scaled.mask {
            Zip::from(&mut target).and(mask).for_each(|t, &m| {
                if m == 0.0 {
                    *t = f32::NAN;
                }
            });
        }
        let mut input = self.features.expand(scaled.values.view());
        let missing = scaled.mask.as_ref().map(|m| self.features.expand_mask(m.view()));
        let (mut code, mut output) = self.mixed_pass(input.view());
        if let Some(missing) = &missing {
            for _ in 0..IMPUTATION_ROUNDS {
                Zip::from(&mut input).and(missing).and(&output).for_each(|x, &m, &o| {
                    if m == 0.0 {
                        *x = o;
                    }
                });
                (code, output) = self.mixed_pass(input.view());
            }
        }
        if let Some(i) = output.outer_iter().position(|row| !row.iter().all(|v| v.is_finite())) {
            return Err(AutoencError::InvalidInput(format!(
                "row {} overflows the network (values far outside the training range)",
                at + i
            )));
        }
        Ok(Forward { code, output, target })
    }

    /// Code (masked as training masks it) and output of network rows.
    fn mixed_pass(&self, input: ArrayView2<f32>) -> (Array2<f32>, Array2<f32>) {
        let mut code = self.network.encode(input);
        self.mask_code(code.view_mut());
        let output = self.network.decode(code.view());
        (code, output)
    }

    /// Per-feature errors and scores of a chunk's forward pass.
    fn mixed_errors(&self, forward: &Forward) -> (Array2<f32>, Array1<f64>) {
        let mut errors = Array2::zeros(forward.target.raw_dim());
        let mut scores = Array1::zeros(forward.target.nrows());
        for (i, (mut row_errors, score)) in errors.outer_iter_mut().zip(scores.iter_mut()).enumerate() {
            let slice = row_errors.as_slice_mut().expect("a fresh array's rows are contiguous");
            self.features.row_errors(forward.output.row(i), forward.target.row(i), slice);
            let (sum, count) =
                slice.iter().filter(|e| !e.is_nan()).fold((0.0f64, 0usize), |(sum, n), &e| (sum + e as f64, n + 1));
            *score = sum / count.max(1) as f64;
        }
        (errors, scores)
    }

    pub(super) fn mixed_encode_chunk(&self, rows: ArrayView2<f32>, at: usize) -> Result<Array2<f32>> {
        Ok(self.mixed_forward(rows, at)?.code)
    }

    pub(super) fn mixed_score_chunk(&self, rows: ArrayView2<f32>, at: usize) -> Result<Array1<f64>> {
        let forward = self.mixed_forward(rows, at)?;
        Ok(self.mixed_errors(&forward).1)
    }

    pub(super) fn mixed_score_details_chunk(&self, rows: ArrayView2<f32>, at: usize) -> Result<ScoreDetails> {
        let forward = self.mixed_forward(rows, at)?;
        let (feature_errors, scores) = self.mixed_errors(&forward);
        let (reconstruction_scaled, probability) = self.features.collapse(forward.output.view());
        Ok(ScoreDetails {
            embedding: forward.code,
            reconstruction_scaled,
            feature_errors,
            scores,
            category_probability: Some(probability),
        })
    }
}

/// An error about row `r` of a chunk, renumbered as row `at + r` of the caller's input.
fn shift_row(error: AutoencError, at: usize) -> AutoencError {
    match error {
        AutoencError::InvalidCategoryCode { row, feature, value, codes } => {
            AutoencError::InvalidCategoryCode { row: row + at, feature, value, codes }
        }
        other => other,
    }
}
