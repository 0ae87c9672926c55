//! A trained autoencoder: the network plus everything needed to use it on raw rows — the scaler, the
//! feature names, the anomaly threshold, the score sketch and the training report.
//!
//! All methods take rows in the original units, as `(rows, features)` matrices of `f32` in the
//! model's feature order. NaN is a missing value: it is filled from the model's own reconstruction
//! (a few rounds of iterative imputation) and left out of the score. Infinite values are an error
//! naming the row. The score of a row is the mean squared reconstruction error over its observed
//! features, in scaled units (for a variational model: of the decoded posterior mean — deterministic,
//! and comparable with the other variants).
//!
//! A categorical feature's value in these matrices is its code in the feature's vocabulary, and its
//! error is its scaled cross-entropy (see [`super::features`]); reconstructions give the most likely
//! code, and explanations name the value seen and the value expected.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::features::{FeatureKind, FeatureLayout};
use super::network::{Architecture, Network};
use super::params::{AutoencoderParams, AutoencoderValidParams};
use super::resume::ResumeState;
use crate::anomaly::{ScoreSketch, Threshold};
use crate::error::{AutoencError, Result};
use crate::limits::{GENERATE_BLOCK_ROWS, MAX_GENERATED_CELLS};
use crate::model::training_report::TrainingReport;
use crate::preprocess::Scaler;

/// A trained model. Build one with [`Autoencoder::params`] and `fit`, or load one with
/// [`Autoencoder::load`].
#[derive(Debug, Clone)]
pub struct Autoencoder {
    pub(crate) params: AutoencoderValidParams,
    pub(crate) architecture: Architecture,
    pub(crate) network: Network<f32>,
    pub(crate) scaler: Scaler,
    pub(crate) feature_names: Vec<String>,
    /// Each feature's kind, and where the categorical ones sit in the network.
    pub(crate) features: FeatureLayout,
    pub(crate) threshold: Threshold,
    pub(crate) sketch: ScoreSketch,
    pub(crate) report: TrainingReport,
    pub(crate) explained_variance: Option<Vec<f64>>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    pub(crate) trainer: ResumeState,
    /// The first layer with the scaler folded in, built on first use; cleared whenever training
    /// changes the weights ([`Autoencoder::weights_changed`]).
    pub(crate) folded_first_layer: std::sync::OnceLock<super::dense::Dense<f32>>,
}

/// One feature's share of a row's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub index: usize,
    /// Squared reconstruction error of this feature, in scaled units; for a categorical feature its
    /// scaled cross-entropy.
    pub error: f64,
    /// For a categorical feature: the value seen, the value the model expected and how likely it
    /// found that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CategoryMismatch>,
}

/// What a categorical feature's explanation says: `protocol: got "icmp", expected "tcp" (p=0.93)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryMismatch {
    /// The value seen: its text, `(other)` for one outside the vocabulary, or `NULL`.
    pub got: String,
    /// The most likely value in the reconstruction, written the same way.
    pub expected: String,
    /// The model's probability of `expected`.
    pub probability: f64,
}

impl std::fmt::Display for Contribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.category {
            Some(c) => write!(f, "{}: got {}, expected {} (p={:.2})", self.feature, c.got, c.expected, c.probability),
            None => write!(f, "{}: error {:.4}", self.feature, self.error),
        }
    }
}

/// Everything the scoring pass computes for a batch of rows.
#[derive(Debug, Clone)]
pub struct ScoreDetails {
    /// The code of each row (`(rows, latent)`).
    pub embedding: Array2<f32>,
    /// Reconstruction in scaled units (`(rows, features)`); missing inputs filled in.
    pub reconstruction_scaled: Array2<f32>,
    /// Squared error per feature in scaled units; NaN where the input was missing.
    pub feature_errors: Array2<f32>,
    /// Mean of `feature_errors` over observed features.
    pub scores: Array1<f64>,
    /// For a model with categorical features, `(rows, features)`: each categorical feature's
    /// probability of its most likely code (the code in `reconstruction_scaled`), NaN for numeric
    /// features. `None` for a numeric model.
    pub category_probability: Option<Array2<f32>>,
}

impl Autoencoder {
    /// Hyper-parameters with their defaults; see [`AutoencoderParams`].
    pub fn params() -> AutoencoderParams {
        AutoencoderParams::default()
    }

    pub fn params_used(&self) -> &AutoencoderValidParams {
        &self.params
    }
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }
    pub fn n_features(&self) -> usize {
        self.features.features()
    }
    /// Each feature's kind; a categorical feature's vocabulary.
    pub fn feature_kinds(&self) -> &[FeatureKind] {
        self.features.kinds()
    }
    /// The feature kinds and where the categorical ones sit in the network.
    pub fn feature_layout(&self) -> &FeatureLayout {
        &self.features
    }
    /// Whether any feature is categorical.
    pub fn has_categories(&self) -> bool {
        self.features.is_mixed()
    }
    pub fn latent_size(&self) -> usize {
        self.architecture.latent
    }
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }
    pub fn sketch(&self) -> &ScoreSketch {
        &self.sketch
    }
    pub fn report(&self) -> &TrainingReport {
        &self.report
    }
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }
    pub fn network(&self) -> &Network<f32> {
        &self.network
    }
    /// The explained-variance ratios of the training data's principal components, when the latent
    /// size was chosen automatically.
    pub fn explained_variance(&self) -> Option<&[f64]> {
        self.explained_variance.as_deref()
    }
    /// Free-form metadata stored with the model (adapters record provenance here).
    pub fn extra(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.extra
    }
    pub fn extra_mut(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        &mut self.extra
    }
    pub fn is_variational(&self) -> bool {
        self.architecture.variational
    }

    /// Replaces the threshold by an explicit value.
    pub fn set_threshold(&mut self, value: f64) -> Result<()> {
        if !(value.is_finite() && value >= 0.0) {
            return Err(AutoencError::InvalidThreshold(value));
        }
        self.threshold = Threshold { value, rule: crate::anomaly::ThresholdRule::Explicit };
        Ok(())
    }

    /// Drops caches derived from the weights; the trainer calls it after every update.
    pub(crate) fn weights_changed(&mut self) {
        self.folded_first_layer = std::sync::OnceLock::new();
    }

    pub(crate) fn check_width(&self, got: usize) -> Result<()> {
        if got != self.n_features() {
            return Err(AutoencError::DimensionMismatch { expected: self.n_features(), got });
        }
        Ok(())
    }

    /// Rows in original units from codes (`(rows, latent)`).
    pub fn decode(&self, codes: ArrayView2<f32>) -> Result<Array2<f32>> {
        if codes.ncols() != self.latent_size() {
            return Err(AutoencError::DimensionMismatch { expected: self.latent_size(), got: codes.ncols() });
        }
        if let Some((row, _)) = codes.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(AutoencError::InvalidInput(format!("code at row {} is not finite", row.0)));
        }
        let output = self.network.decode(codes);
        Ok(self.rows_of_output(output))
    }

    /// The network's output rows in original units: numeric features unscaled, categorical ones as
    /// their most likely code.
    fn rows_of_output(&self, output: Array2<f32>) -> Array2<f32> {
        let scaled = if self.features.is_mixed() { self.features.collapse(output.view()).0 } else { output };
        self.scaler.inverse(scaled.view())
    }

    /// The fraction of training rows that scored lower than `score`.
    pub fn percentile(&self, score: f64) -> f64 {
        self.sketch.percentile(score)
    }

    /// Whether `score` is above the model's threshold.
    pub fn is_anomaly(&self, score: f64) -> bool {
        score > self.threshold.value
    }

    /// The `k` features with the largest reconstruction error for each row, largest first.
    pub fn explain(&self, rows: ArrayView2<f32>, k: usize) -> Result<Vec<Vec<Contribution>>> {
        if k == 0 {
            return Err(AutoencError::ZeroExplainK);
        }
        let details = self.score_details(rows)?;
        Ok(self.explain_details(rows, &details, k))
    }

    /// [`Autoencoder::explain`] from a scoring pass already made: `details` of `rows`.
    pub fn explain_details(&self, rows: ArrayView2<f32>, details: &ScoreDetails, k: usize) -> Vec<Vec<Contribution>> {
        let mut explained = Vec::with_capacity(rows.nrows());
        for (i, errors) in details.feature_errors.outer_iter().enumerate() {
            let mut top = self.top_contributions(errors, k);
            if let Some(probability) = &details.category_probability {
                for contribution in &mut top {
                    let j = contribution.index;
                    let Some(vocabulary) = self.features.vocabulary(j) else { continue };
                    let name = |code: f32| vocabulary.category(code as u32).map_or(String::new(), |c| c.to_string());
                    let seen = if rows[(i, j)].is_nan() { vocabulary.null_code() as f32 } else { rows[(i, j)] };
                    contribution.category = Some(CategoryMismatch {
                        got: name(seen),
                        expected: name(details.reconstruction_scaled[(i, j)]),
                        probability: probability[(i, j)] as f64,
                    });
                }
            }
            explained.push(top);
        }
        explained
    }

    /// The `k` largest observed entries of one row of per-feature errors.
    pub fn top_contributions(&self, errors: ndarray::ArrayView1<f32>, k: usize) -> Vec<Contribution> {
        let mut ranked: Vec<(usize, f32)> = errors.iter().copied().enumerate().filter(|(_, e)| !e.is_nan()).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .take(k)
            .map(|(index, error)| Contribution {
                feature: self.feature_names[index].clone(),
                index,
                error: error as f64,
                category: None,
            })
            .collect()
    }

    /// `n` new rows (original units) decoded from codes drawn from the prior N(0, I). Variational
    /// models only. At most [`MAX_GENERATED_CELLS`] values are made in one call; for more, take blocks
    /// from [`Autoencoder::generator`], which gives the same rows.
    pub fn generate(&self, n: usize, seed: u64) -> Result<Array2<f32>> {
        let cells = (n as u64).saturating_mul(self.n_features() as u64);
        if cells > MAX_GENERATED_CELLS {
            return Err(AutoencError::SizeTooLarge {
                what: "rows x features to generate in one block",
                value: cells,
                max: MAX_GENERATED_CELLS,
            });
        }
        let mut generator = self.generator(seed)?;
        let mut rows = Array2::zeros((0, self.n_features()));
        let mut left = n;
        while left > 0 {
            let block = left.min(GENERATE_BLOCK_ROWS);
            let generated = generator.next_block(block)?;
            rows.append(Axis(0), generated.view()).map_err(|e| AutoencError::InvalidInput(e.to_string()))?;
            left -= block;
        }
        Ok(rows)
    }

    /// A source of generated rows, block by block. Blocks of [`GENERATE_BLOCK_ROWS`] give exactly the
    /// rows of one [`Autoencoder::generate`] call with the same seed, in order (it decodes in such
    /// blocks); other block sizes give the same rows within `f32` rounding, since the matrix kernel
    /// may block other row counts differently.
    pub fn generator(&self, seed: u64) -> Result<Generator<'_>> {
        if !self.is_variational() {
            return Err(AutoencError::NotVariational(self.params.variant().name().into()));
        }
        Ok(Generator { model: self, rng: rand_pcg::Pcg64Mcg::seed_from_u64(seed) })
    }

    /// Mean score of rows — a convenience for reports and tests.
    pub fn mean_score(&self, rows: ArrayView2<f32>) -> Result<f64> {
        Ok(self.score(rows)?.mean_axis(Axis(0)).map_or(f64::NAN, |m| m.into_scalar()))
    }
}

/// Rows decoded from prior samples, a block at a time (see [`Autoencoder::generator`]).
pub struct Generator<'a> {
    model: &'a Autoencoder,
    rng: rand_pcg::Pcg64Mcg,
}

impl Generator<'_> {
    /// The next `n` rows. Codes are drawn row by row from one random stream, so a run split into
    /// blocks draws the same codes.
    pub fn next_block(&mut self, n: usize) -> Result<Array2<f32>> {
        let rng = &mut self.rng;
        let codes = Array2::from_shape_simple_fn((n, self.model.latent_size()), || StandardNormal.sample(rng));
        let output = self.model.network.decode(codes.view());
        Ok(self.model.rows_of_output(output))
    }
}
