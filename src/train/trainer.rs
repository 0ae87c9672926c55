//! Mini-batch training: fitting from scratch, warm starts, and `partial_fit` on streamed batches.
//!
//! Everything random comes from generators seeded by the params' `seed` and every matrix product runs
//! on one thread (see `linalg`), so the same seed and data give bit-identical weights on any machine
//! with the same CPU features, whatever its core count.

use std::time::Instant;

use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

use super::corruption::{FeatureRange, corrupt};
use super::objective::{Batch, LossParts, Objective};
use super::optimizer::{self, Optimizer};
use crate::anomaly::{ScoreSketch, Threshold, ThresholdRule, quantile_sorted, sorted_scores};
use crate::error::{AutoencError, Result};
use crate::model::activation::Activation;
use crate::model::autoencoder::Autoencoder;
use crate::model::features::{FeatureKind, FeatureLayout};
use crate::model::network::{Architecture, Network};
use crate::model::params::{AutoencoderParams, AutoencoderValidParams, LatentSize, Loss, Sparsity, Variant};
use crate::model::training_report::{EpochKind, EpochRecord, TrainingReport};
use crate::pca::Pca;
use crate::preprocess::{Scaled, Scaler, check_finite_or_missing};

/// Stream offsets for the generators, so initialisation and batching never share random numbers.
const SHUFFLE_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

/// The optimiser state and batch generator carried between `partial_fit` calls. Not saved in the model
/// file: a loaded model resumes with a fresh optimiser (Adam's moments rebuild within a few steps).
/// Kept in the model's opaque `ResumeState` slot.
#[derive(Default)]
struct TrainerState {
    optimizer: Option<Box<dyn Optimizer>>,
    rng: Option<Pcg64Mcg>,
}

/// Scaled training rows plus what corruption needs.
struct TrainingSet {
    scaled: Scaled,
    range: FeatureRange,
}

impl TrainingSet {
    fn rows(&self) -> usize {
        self.scaled.values.nrows()
    }
    fn subset(&self, rows: &[usize]) -> TrainingSet {
        TrainingSet {
            scaled: Scaled {
                values: gather_rows(&self.scaled.values, rows),
                mask: self.scaled.mask.as_ref().map(|m| gather_rows(m, rows)),
            },
            range: self.range.clone(),
        }
    }
}

fn check_training_data(data: ArrayView2<f32>, names: &[String]) -> Result<()> {
    if data.ncols() == 0 {
        return Err(AutoencError::NoFeatures);
    }
    if data.nrows() == 0 {
        return Err(AutoencError::EmptyInput);
    }
    if names.len() != data.ncols() {
        return Err(AutoencError::InvalidInput(format!(
            "{} feature names for {} feature columns",
            names.len(),
            data.ncols()
        )));
    }
    crate::preprocess::check_feature_names(names)?;
    check_finite_or_missing(data, names)
}

fn check_bce_range(params: &AutoencoderValidParams, scaled: &Scaled, names: &[String]) -> Result<()> {
    if params.loss() != Loss::Bce {
        return Ok(());
    }
    for ((row, j), &v) in scaled.values.indexed_iter() {
        if !(0.0..=1.0).contains(&v) {
            return Err(AutoencError::BceOutOfRange { feature: names[j].clone(), row, value: v });
        }
    }
    Ok(())
}

/// Picks the code size and checks it against the input and the variant.
fn resolve_latent(params: &AutoencoderValidParams, scaled: &Scaled) -> Result<(usize, Option<Vec<f64>>)> {
    let inputs = scaled.values.ncols();
    let (latent, spectrum) = match params.latent() {
        LatentSize::Fixed(k) => (k, None),
        LatentSize::Auto { explained_variance } => {
            let pca = Pca::fit(scaled.values.view())?;
            let mut k = pca.components_for(explained_variance);
            if !params.allows_overcomplete_code() {
                k = k.min(inputs.saturating_sub(1)).max(1);
            }
            (k, Some(pca.explained_variance_ratio()))
        }
    };
    if latent >= inputs && !params.allows_overcomplete_code() {
        return Err(AutoencError::LatentNotSmaller { latent, input: inputs });
    }
    if let Variant::Sparse { sparsity: Sparsity::TopK { k } } = params.variant()
        && k > latent
    {
        return Err(AutoencError::InvalidTopK { k, latent });
    }
    Ok((latent, spectrum))
}

/// Whether the params can train categorical features: their outputs are logits for a softmax, so the
/// loss must be MSE (cross-entropy on the blocks) and the output layer linear.
fn check_categories(params: &AutoencoderValidParams, layout: &FeatureLayout, names: &[String]) -> Result<()> {
    let Some(j) = layout.kinds().iter().position(|k| matches!(k, FeatureKind::Categorical { .. })) else {
        return Ok(());
    };
    if params.loss() == Loss::Bce {
        return Err(AutoencError::CategoricalWithBce { feature: names[j].clone() });
    }
    if params.output_activation() != Activation::Identity {
        return Err(AutoencError::InvalidInput(format!(
            "feature '{}' is categorical: its outputs are logits for a softmax, so the output activation must \
             be identity, not {}",
            names[j],
            params.output_activation()
        )));
    }
    Ok(())
}

/// Rows in the network's terms: checked codes, scaled, categorical features one-hot, with the mask of
/// missing numeric values.
fn network_rows(layout: &FeatureLayout, scaler: &Scaler, data: ArrayView2<f32>, names: &[String]) -> Result<Scaled> {
    if !layout.is_mixed() {
        return scaler.transform(data, names);
    }
    let codes = layout.normalise_codes(data, names)?;
    expanded_rows(layout, scaler, codes.view(), names)
}

/// [`network_rows`] of rows whose codes are already checked.
fn expanded_rows(layout: &FeatureLayout, scaler: &Scaler, codes: ArrayView2<f32>, names: &[String]) -> Result<Scaled> {
    let scaled = scaler.transform(codes, names)?;
    Ok(Scaled { values: layout.expand(scaled.values.view()), mask: scaled.mask.map(|m| layout.expand_mask(m.view())) })
}

/// Fits a new model on `data`, every feature numeric.
pub fn fit(
    params: &AutoencoderValidParams,
    data: ArrayView2<f32>,
    feature_names: Vec<String>,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<Autoencoder> {
    fit_features(params, data, feature_names, FeatureLayout::numeric(data.ncols()), on_epoch)
}

/// Fits a new model on `data` whose features are of the kinds `layout` gives (categorical ones as
/// codes in their vocabularies).
pub fn fit_features(
    params: &AutoencoderValidParams,
    data: ArrayView2<f32>,
    feature_names: Vec<String>,
    layout: FeatureLayout,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<Autoencoder> {
    check_training_data(data, &feature_names)?;
    if layout.features() != data.ncols() {
        return Err(AutoencError::InvalidInput(format!(
            "{} feature kinds for {} feature columns",
            layout.features(),
            data.ncols()
        )));
    }
    check_categories(params, &layout, &feature_names)?;
    let codes = if layout.is_mixed() { Some(layout.normalise_codes(data, &feature_names)?) } else { None };
    let mut scaler = Scaler::fit(params.scaling(), codes.as_ref().map_or(data, |c| c.view()));
    for (j, kind) in layout.kinds().iter().enumerate() {
        if let FeatureKind::Categorical { .. } = kind {
            // A code is not a quantity: it passes the scaler unchanged.
            scaler.offset[j] = 0.0;
            scaler.scale[j] = 1.0;
        }
    }
    let scaled = match &codes {
        Some(codes) => expanded_rows(&layout, &scaler, codes.view(), &feature_names)?,
        None => scaler.transform(data, &feature_names)?,
    };
    check_bce_range(params, &scaled, &feature_names)?;
    let (latent, explained_variance) = resolve_latent(params, &scaled)?;
    let architecture = Architecture::from_params(params, layout.width(), latent);
    architecture.check_size()?;
    let mut init_rng = Pcg64Mcg::seed_from_u64(params.seed());
    let network = Network::init(&architecture, params.init(), &mut init_rng);

    let mut model = Autoencoder {
        params: params.clone(),
        architecture,
        network,
        scaler,
        feature_names,
        features: layout,
        threshold: Threshold { value: f64::INFINITY, rule: ThresholdRule::Explicit },
        sketch: ScoreSketch::from_sorted(&[]),
        report: TrainingReport::default(),
        explained_variance,
        extra: serde_json::Map::new(),
        trainer: Default::default(),
        folded_first_layer: Default::default(),
    };
    let range = FeatureRange::of(scaled.values.view());
    let all = TrainingSet { scaled, range };
    train_epochs(&mut model, &all, params.epochs(), on_epoch)?;
    calibrate(&mut model, data)?;
    Ok(model)
}

/// Splits off the validation rows (a seeded shuffle), trains for `epochs`, and applies early stopping.
fn train_epochs(
    model: &mut Autoencoder,
    all: &TrainingSet,
    epochs: usize,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<()> {
    let params = model.params.clone();
    let mut rng = Pcg64Mcg::seed_from_u64(params.seed() ^ SHUFFLE_STREAM ^ (model.report.next_epoch() as u64));
    let mut order: Vec<usize> = (0..all.rows()).collect();
    let validation_rows = (all.rows() as f64 * params.validation_fraction()).floor() as usize;
    // Training rows stay in `all` and are gathered batch by batch; only the (small) validation set is
    // copied out, once.
    let (train_rows, validation) = if validation_rows > 0 && validation_rows < all.rows() {
        order.shuffle(&mut rng);
        let (val_idx, train_idx) = order.split_at(validation_rows);
        let mut val_idx = val_idx.to_vec();
        let mut train_idx = train_idx.to_vec();
        val_idx.sort_unstable();
        train_idx.sort_unstable();
        (train_idx, Some(all.subset(&val_idx)))
    } else {
        (order, None)
    };
    if train_rows.len() < 2 {
        return Err(AutoencError::TooFewRows {
            needed: 2,
            got: train_rows.len(),
            purpose: "train on after the validation split",
        });
    }
    model.report.training_rows = train_rows.len();
    model.report.validation_rows = validation.as_ref().map_or(0, |v| v.rows());

    let objective = Objective {
        variant: params.variant(),
        loss: params.loss(),
        trim_fraction: params.trim_fraction(),
        categories: model.features.network().cloned(),
    };
    let mut optimizer =
        optimizer::build(params.optimizer(), params.learning_rate(), params.momentum(), params.weight_decay());
    let mut grads = model.network.zeros_like();
    let mut best: Option<(f64, usize, Network<f32>)> = None;
    let mut since_best = 0;
    // Shuffled in place epoch after epoch: the same permutations as shuffling positions 0..n.
    let mut indices = train_rows;

    for _ in 0..epochs {
        let started = Instant::now();
        if params.shuffle() {
            indices.shuffle(&mut rng);
        }
        let parts = run_batches(model, &objective, optimizer.as_mut(), &mut grads, all, &indices, &mut rng);
        if !parts.total().is_finite() {
            return Err(AutoencError::InvalidInput(format!(
                "training diverged (loss {}) at epoch {}; lower the learning rate",
                parts.total(),
                model.report.next_epoch()
            )));
        }
        let validation_loss = validation.as_ref().map(|v| {
            objective.validation_loss(&model.network, v.scaled.values.view(), v.scaled.mask.as_ref().map(|m| m.view()))
        });
        let record = EpochRecord {
            epoch: model.report.next_epoch(),
            loss: parts.total(),
            reconstruction_loss: parts.reconstruction,
            validation_loss,
            learning_rate: optimizer.learning_rate(),
            rows: indices.len(),
            duration_ms: params.record_timings().then(|| started.elapsed().as_secs_f64() * 1e3),
            kind: EpochKind::Epoch,
        };
        on_epoch(&record);
        model.report.epochs.push(record);

        if let (Some(stop), Some(loss)) = (params.early_stopping(), validation_loss) {
            let improved = match &best {
                None => true,
                Some((best_loss, _, _)) => loss < best_loss * (1.0 - stop.min_relative_improvement),
            };
            if improved {
                best = Some((loss, model.report.next_epoch() - 1, model.network.clone()));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= stop.patience {
                    model.report.stopped_early = true;
                    break;
                }
            }
        }
    }
    if let Some((_, epoch, network)) = best {
        model.report.best_epoch = Some(epoch);
        model.network = network;
        model.weights_changed();
    }
    Ok(())
}

/// One pass over `indices` in mini-batches; returns the batch-size-weighted mean loss.
fn run_batches(
    model: &mut Autoencoder,
    objective: &Objective,
    optimizer: &mut dyn Optimizer,
    grads: &mut Network<f32>,
    data: &TrainingSet,
    indices: &[usize],
    rng: &mut Pcg64Mcg,
) -> LossParts {
    let params = &model.params;
    let categories = model.features.network().cloned();
    let mut sum = LossParts::default();
    let mut seen = 0usize;
    for chunk in indices.chunks(params.batch_size()) {
        let target = gather_rows(&data.scaled.values, chunk);
        let mask = data.scaled.mask.as_ref().map(|m| gather_rows(m, chunk));
        let corrupted = match params.variant() {
            Variant::Denoising { noise } => {
                Some(corrupt(target.view(), noise, &data.range, categories.as_deref(), rng))
            }
            _ => None,
        };
        let noise: Option<Array2<f32>> = model.architecture.variational.then(|| {
            Array2::from_shape_simple_fn((chunk.len(), model.architecture.latent), || StandardNormal.sample(rng))
        });
        let batch = Batch {
            target: target.view(),
            input: corrupted.as_ref().map_or(target.view(), |c| c.view()),
            mask: mask.as_ref().map(|m| m.view()),
            noise: noise.as_ref().map(|n| n.view()),
        };
        grads.fill_zero();
        let parts = objective.loss_and_gradients(&model.network, &batch, grads);
        optimizer.step(model.network.tensors_mut(), grads.tensors());
        let weight = chunk.len() as f64;
        sum.reconstruction += parts.reconstruction * weight;
        sum.penalty += parts.penalty * weight;
        seen += chunk.len();
    }
    model.weights_changed();
    let n = seen.max(1) as f64;
    LossParts { reconstruction: sum.reconstruction / n, penalty: sum.penalty / n }
}

/// The rows `rows` of `source`, copied a row at a time (ndarray's `select` goes through a generic
/// concatenation that cost a tenth of the training time).
fn gather_rows(source: &Array2<f32>, rows: &[usize]) -> Array2<f32> {
    let width = source.ncols();
    let mut out = Array2::zeros((rows.len(), width));
    match (source.as_slice(), out.as_slice_mut()) {
        (Some(from), Some(to)) => {
            for (k, &i) in rows.iter().enumerate() {
                to[k * width..(k + 1) * width].copy_from_slice(&from[i * width..(i + 1) * width]);
            }
        }
        _ => out = source.select(Axis(0), rows),
    }
    out
}

/// Sets the threshold and score sketch from the scores of `rows` (raw units).
fn calibrate(model: &mut Autoencoder, rows: ArrayView2<f32>) -> Result<()> {
    let scores = model.score(rows)?;
    let sorted = sorted_scores(scores.as_slice().unwrap_or(&scores.to_vec()));
    model.sketch = ScoreSketch::from_sorted(&sorted);
    model.threshold = match model.params.threshold() {
        Some(value) => Threshold { value, rule: ThresholdRule::Explicit },
        None => {
            let contamination = model.params.contamination();
            Threshold {
                value: quantile_sorted(&sorted, 1.0 - contamination),
                rule: ThresholdRule::Contamination { contamination },
            }
        }
    };
    Ok(())
}

impl Autoencoder {
    /// New rows for more training, checked and scaled with the model's own scaler.
    fn training_set(&self, data: ArrayView2<f32>) -> Result<TrainingSet> {
        self.check_width(data.ncols())?;
        check_training_data(data, &self.feature_names)?;
        let scaled = network_rows(&self.features, &self.scaler, data, &self.feature_names)?;
        check_bce_range(&self.params, &scaled, &self.feature_names)?;
        let range = FeatureRange::of(scaled.values.view());
        Ok(TrainingSet { scaled, range })
    }

    /// Warm start: trains this model for `epochs` more passes over `data` (same params, a fresh
    /// optimiser, the scaler kept), then recalibrates the threshold and sketch on `data`.
    pub fn continue_training(
        &mut self,
        data: ArrayView2<f32>,
        epochs: usize,
        on_epoch: &mut dyn FnMut(&EpochRecord),
    ) -> Result<()> {
        if epochs == 0 {
            return Err(AutoencError::ZeroEpochs);
        }
        let all = self.training_set(data)?;
        train_epochs(self, &all, epochs, on_epoch)?;
        calibrate(self, data)
    }

    /// Incremental training on one batch of rows: one pass of mini-batch steps over `data`, keeping the
    /// optimiser's state between calls. The scaler, threshold and sketch are left as they are (call
    /// [`Autoencoder::recalibrate`] to move them). Returns the mean loss of the pass.
    pub fn partial_fit(&mut self, data: ArrayView2<f32>) -> Result<f64> {
        let set = self.training_set(data)?;
        let started = Instant::now();
        let params = self.params.clone();
        let mut state = self.trainer.take::<TrainerState>().unwrap_or_default();
        let optimizer = state.optimizer.get_or_insert_with(|| {
            optimizer::build(params.optimizer(), params.learning_rate(), params.momentum(), params.weight_decay())
        });
        let rng = state.rng.get_or_insert_with(|| {
            Pcg64Mcg::seed_from_u64(params.seed() ^ SHUFFLE_STREAM ^ self.report.next_epoch() as u64)
        });
        let mut indices: Vec<usize> = (0..set.rows()).collect();
        if params.shuffle() {
            indices.shuffle(rng);
        }
        let objective = Objective {
            variant: params.variant(),
            loss: params.loss(),
            trim_fraction: params.trim_fraction(),
            categories: self.features.network().cloned(),
        };
        let mut grads = self.network.zeros_like();
        let parts = run_batches(self, &objective, optimizer.as_mut(), &mut grads, &set, &indices, rng);
        let learning_rate = optimizer.learning_rate();
        self.trainer.put(state);
        if !parts.total().is_finite() {
            return Err(AutoencError::InvalidInput(format!("partial_fit diverged (loss {})", parts.total())));
        }
        let record = EpochRecord {
            epoch: self.report.next_epoch(),
            loss: parts.total(),
            reconstruction_loss: parts.reconstruction,
            validation_loss: None,
            learning_rate,
            rows: set.rows(),
            duration_ms: params.record_timings().then(|| started.elapsed().as_secs_f64() * 1e3),
            kind: EpochKind::PartialFit,
        };
        self.report.epochs.push(record);
        Ok(parts.total())
    }

    /// Recomputes the threshold (unless explicit) and the score sketch from the scores of `data`.
    pub fn recalibrate(&mut self, data: ArrayView2<f32>) -> Result<()> {
        if data.nrows() == 0 {
            return Err(AutoencError::EmptyInput);
        }
        if matches!(self.threshold.rule, ThresholdRule::Explicit) && self.params.threshold().is_none() {
            // A threshold set by hand after training stays; only the sketch moves.
            let explicit = self.threshold;
            calibrate(self, data)?;
            self.threshold = explicit;
            return Ok(());
        }
        calibrate(self, data)
    }
}

/// The params' `fit` is defined with the trainer (so `model` needs nothing from `train`); only the
/// validated type trains.
impl AutoencoderParams {
    /// Validates and fits on `data` (`(rows, features)`), naming features `f0, f1, ...`.
    pub fn fit(&self, data: ArrayView2<f32>) -> Result<Autoencoder> {
        self.check()?.fit(data)
    }
}

impl AutoencoderValidParams {
    /// Fits on `data`, naming features `f0, f1, ...`.
    pub fn fit(&self, data: ArrayView2<f32>) -> Result<Autoencoder> {
        let names = (0..data.ncols()).map(|j| format!("f{j}")).collect();
        fit(self, data, names, &mut |_| {})
    }

    /// Fits with feature names and a callback after every epoch (for progress bars and logs).
    pub fn fit_with(
        &self,
        data: ArrayView2<f32>,
        feature_names: Vec<String>,
        on_epoch: &mut dyn FnMut(&EpochRecord),
    ) -> Result<Autoencoder> {
        fit(self, data, feature_names, on_epoch)
    }

    /// Fits on features of the given kinds: a categorical feature's column in `data` holds codes in
    /// its vocabulary ([`crate::Vocabulary::code`]; NaN is NULL). The doors learn the vocabularies
    /// from the columns' text ([`crate::Vocabulary::fit`], with [`Self::max_categories`]) and code the
    /// rows with them.
    pub fn fit_with_kinds(
        &self,
        data: ArrayView2<f32>,
        feature_names: Vec<String>,
        kinds: Vec<FeatureKind>,
        on_epoch: &mut dyn FnMut(&EpochRecord),
    ) -> Result<Autoencoder> {
        fit_features(self, data, feature_names, FeatureLayout::new(kinds), on_epoch)
    }
}
