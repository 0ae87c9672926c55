//! The training objective of each family member: one forward pass, the loss, and the backward pass
//! that fills a gradient accumulator shaped like the network.
//!
//! Randomness (the corrupted input of a denoising model, the noise of the reparameterisation) is drawn
//! by the caller and handed in through [`Batch`], so the objective itself is a pure function — which is
//! what lets the gradient checks compare it against finite differences.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, Zip};

use crate::linalg::{Real, real};
use crate::model::activation::Activation;
use crate::model::features::NetworkLayout;
use crate::model::loss::reconstruction_loss;
use crate::model::mixed_loss::{mixed_loss, mixed_row_errors};
use crate::model::network::Network;
use crate::model::params::{Loss, Sparsity, Variant};
use crate::model::regularizer::{LOG_VAR_LIMIT, contractive, gaussian_kl, kl_sparsity, l1_activity, top_k_mask};

/// One mini-batch, already scaled, with missing values set to 0 and recorded in `mask`.
pub struct Batch<'a, F> {
    /// The clean rows: the reconstruction target.
    pub target: ArrayView2<'a, F>,
    /// What the encoder sees: the target, or its corrupted copy for a denoising model.
    pub input: ArrayView2<'a, F>,
    /// 1 for observed entries, 0 for missing ones; `None` when nothing is missing.
    pub mask: Option<ArrayView2<'a, F>>,
    /// Standard-normal noise for the reparameterisation trick (variational models only).
    pub noise: Option<ArrayView2<'a, F>>,
}

/// The two parts of the objective.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossParts {
    pub reconstruction: f64,
    pub penalty: f64,
}

impl LossParts {
    pub fn total(&self) -> f64 {
        self.reconstruction + self.penalty
    }
}

/// What the objective needs to know beyond the network.
#[derive(Debug, Clone)]
pub struct Objective {
    pub variant: Variant,
    pub loss: Loss,
    /// Share of each batch's rows, the worst reconstructed, left out of the reconstruction loss.
    pub trim_fraction: f64,
    /// Where the categorical features' blocks sit, for a model that has any: their outputs are
    /// trained with softmax cross-entropy ([`mixed_loss`]), the rest with `loss`.
    pub categories: Option<Arc<NetworkLayout>>,
}

/// The loss mask with the `fraction` of rows of largest mean squared error (over observed entries)
/// zeroed. The choice of rows is piecewise constant in the weights, so it passes no gradient.
fn trim_rows<F: Real>(
    output: ArrayView2<F>,
    target: ArrayView2<F>,
    mask: Option<ArrayView2<F>>,
    fraction: f64,
    categories: Option<&NetworkLayout>,
) -> Array2<F> {
    let mut keep = match mask {
        Some(m) => m.to_owned(),
        None => Array2::from_elem(output.raw_dim(), F::one()),
    };
    let errors: Vec<f64> = match categories {
        Some(layout) => mixed_row_errors(layout, output, target, keep.view()),
        None => squared_row_errors(output, target, keep.view()),
    };
    let mut sorted = errors.clone();
    sorted.sort_by(f64::total_cmp);
    let cut = sorted[((1.0 - fraction) * (sorted.len().saturating_sub(1)) as f64).floor() as usize];
    for (mut row, &e) in keep.rows_mut().into_iter().zip(&errors) {
        if e > cut {
            row.fill(F::zero());
        }
    }
    keep
}

/// Each row's mean squared error over its observed entries.
fn squared_row_errors<F: Real>(output: ArrayView2<F>, target: ArrayView2<F>, keep: ArrayView2<F>) -> Vec<f64> {
    output
        .rows()
        .into_iter()
        .zip(target.rows())
        .zip(keep.rows())
        .map(|((o, t), m)| {
            let (mut sum, mut count) = (0.0f64, 0.0f64);
            for ((&o, &t), &m) in o.iter().zip(t.iter()).zip(m.iter()) {
                let e = (o - t).to_f64().unwrap_or(f64::NAN);
                let m = m.to_f64().unwrap_or(0.0);
                sum += e * e * m;
                count += m;
            }
            if count > 0.0 { sum / count } else { 0.0 }
        })
        .collect()
}

impl Objective {
    /// The reconstruction part of the loss and its gradient with respect to `output`.
    fn reconstruction<F: Real>(
        &self,
        output: ArrayView2<F>,
        target: ArrayView2<F>,
        mask: Option<ArrayView2<F>>,
    ) -> (f64, Array2<F>) {
        match &self.categories {
            Some(layout) => mixed_loss(layout, output, target, mask),
            None => reconstruction_loss(self.loss, output, target, mask),
        }
    }

    /// Loss of `batch` under `net`; adds the gradient into `grads` (which the caller zeroes).
    pub fn loss_and_gradients<F: Real>(&self, net: &Network<F>, batch: &Batch<F>, grads: &mut Network<F>) -> LossParts {
        let encoder_outputs = net.encoder.forward_train(batch.input);
        let hidden = encoder_outputs.last().map_or(batch.input, |h| h.view());
        let mut penalty = 0.0;

        // Code: the encoder output, possibly made sparse, or a sample from the variational posterior.
        let mut variational = None;
        let mut keep = None;
        let code: Array2<F> = match (&net.heads, self.variant) {
            (Some(heads), Variant::Variational { .. }) => {
                let mean = heads.mean.forward(hidden);
                let raw_log_var = heads.log_var.forward(hidden);
                let limit: F = real(LOG_VAR_LIMIT);
                let log_var = raw_log_var.mapv(|v| v.max(-limit).min(limit));
                let std = log_var.mapv(|v| (v * real(0.5)).exp());
                let noise = batch.noise.expect("variational batches carry noise");
                let code = &mean + &(&std * &noise);
                variational = Some((mean, raw_log_var, log_var, std));
                code
            }
            (_, Variant::Sparse { sparsity: Sparsity::TopK { k } }) => {
                let mask = top_k_mask(hidden, k);
                let code = &hidden * &mask;
                keep = Some(mask);
                code
            }
            _ => hidden.to_owned(),
        };

        let decoder_outputs = net.decoder.forward_train(code.view());
        let output = decoder_outputs.last().map_or(code.view(), |o| o.view());
        let trimmed = (self.trim_fraction > 0.0)
            .then(|| trim_rows(output, batch.target, batch.mask, self.trim_fraction, self.categories.as_deref()));
        let mask = trimmed.as_ref().map(|m| m.view()).or(batch.mask);
        let (reconstruction, grad_output) = self.reconstruction(output, batch.target, mask);
        let mut grad_code = net.decoder.backward(code.view(), &decoder_outputs, grad_output, &mut grads.decoder);

        let grad_hidden = match (variational, self.variant) {
            (Some((mean, raw_log_var, log_var, std)), Variant::Variational { beta }) => {
                let heads = net.heads.as_ref().expect("variational network has heads");
                let grad_heads = grads.heads.as_mut().expect("variational gradients have heads");
                let noise = batch.noise.expect("variational batches carry noise");
                // Per feature, as the reconstruction part is: a categorical feature's block is one.
                let features = match &self.categories {
                    Some(layout) => layout.numeric.len() + layout.blocks.len(),
                    None => batch.target.ncols(),
                };
                let features = features.max(1) as f64;
                let scale = beta / (batch.target.nrows().max(1) as f64 * features);
                let (kl, mut grad_mean, mut grad_log_var) = gaussian_kl(mean.view(), log_var.view(), scale);
                penalty += kl;
                grad_mean += &grad_code;
                let limit: F = real(LOG_VAR_LIMIT);
                Zip::from(&mut grad_log_var).and(&grad_code).and(&noise).and(&std).and(&raw_log_var).for_each(
                    |g, &dz, &eps, &s, &raw| {
                        // z = mean + exp(log_var / 2) * eps; the clamp passes no gradient outside its range.
                        let through = *g + dz * eps * s * real(0.5);
                        *g = if raw > limit || raw < -limit { F::zero() } else { through };
                    },
                );
                let mut grad_hidden = heads.mean.backward(hidden, grad_mean.view(), &mut grad_heads.mean);
                grad_hidden += &heads.log_var.backward(hidden, grad_log_var.view(), &mut grad_heads.log_var);
                grad_hidden
            }
            (_, Variant::Sparse { sparsity }) => {
                match sparsity {
                    Sparsity::TopK { .. } => {
                        grad_code *= keep.as_ref().expect("top-k mask was built");
                    }
                    Sparsity::L1 { lambda } => {
                        let (value, grad) = l1_activity(hidden, lambda);
                        penalty += value;
                        grad_code += &grad;
                    }
                    Sparsity::Kl { rho, beta } => {
                        let (value, grad) = kl_sparsity(hidden, rho, beta);
                        penalty += value;
                        grad_code += &grad;
                    }
                }
                grad_code
            }
            (_, Variant::Contractive { lambda }) => {
                // One-layer encoder (enforced by validation): the code is that layer's output.
                let activation = net.encoder.activations.first().copied().unwrap_or(Activation::Identity);
                if let (Some(layer), Some(grad_layer)) = (net.encoder.layers.first(), grads.encoder.layers.first_mut())
                {
                    penalty += contractive(batch.input, layer, activation, hidden, lambda, grad_layer);
                }
                grad_code
            }
            _ => grad_code,
        };
        net.encoder.backward(batch.input, &encoder_outputs, grad_hidden, &mut grads.encoder);
        LossParts { reconstruction, penalty }
    }

    /// The reconstruction loss of the deterministic forward pass (clean input, code = mean): what the
    /// validation loss and early stopping watch, comparable across variants.
    pub fn validation_loss<F: Real>(
        &self,
        net: &Network<F>,
        target: ArrayView2<F>,
        mask: Option<ArrayView2<F>>,
    ) -> f64 {
        let code = match self.variant {
            Variant::Sparse { sparsity: Sparsity::TopK { k } } => {
                let hidden = net.encode(target);
                let keep = top_k_mask(hidden.view(), k);
                hidden * keep
            }
            _ => net.encode(target),
        };
        let output = net.decode(code.view());
        self.reconstruction(output.view(), target, mask).0
    }
}
