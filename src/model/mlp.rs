//! A multilayer perceptron: dense layers, each followed by its activation.
//!
//! Encoders and decoders are both `Mlp`s. The training forward pass keeps every layer's output, which
//! is exactly what the backward pass needs (activation derivatives are taken from outputs).

use ndarray::{Array2, ArrayView2};
use rand::Rng;

use super::activation::Activation;
use super::dense::{Dense, Init};
use crate::linalg::Real;

#[derive(Debug, Clone, PartialEq)]
pub struct Mlp<F> {
    pub layers: Vec<Dense<F>>,
    pub activations: Vec<Activation>,
}

impl<F: Real> Mlp<F> {
    /// Layers `sizes[0] -> sizes[1] -> ...`; every layer but the last uses `hidden`, the last `last`.
    /// `init = None` picks He for ReLU-family activations and Xavier for the others.
    pub fn build<R: Rng + ?Sized>(
        sizes: &[usize],
        hidden: Activation,
        last: Activation,
        init: Option<Init>,
        rng: &mut R,
    ) -> Self {
        let count = sizes.len().saturating_sub(1);
        let mut layers = Vec::with_capacity(count);
        let mut activations = Vec::with_capacity(count);
        for (i, pair) in sizes.windows(2).enumerate() {
            let activation = if i + 1 == count { last } else { hidden };
            let scheme = init.unwrap_or(match activation {
                Activation::Relu | Activation::LeakyRelu | Activation::Elu => Init::He,
                _ => Init::Xavier,
            });
            layers.push(Dense::init(pair[0], pair[1], scheme, rng));
            activations.push(activation);
        }
        Mlp { layers, activations }
    }

    /// Same shapes, all zeros: a gradient accumulator.
    pub fn zeros_like(&self) -> Self {
        Mlp {
            layers: self.layers.iter().map(|l| Dense::zeros(l.inputs(), l.outputs())).collect(),
            activations: self.activations.clone(),
        }
    }

    /// Inference forward pass.
    pub fn forward(&self, x: ArrayView2<F>) -> Array2<F> {
        let mut current: Option<Array2<F>> = None;
        for (layer, activation) in self.layers.iter().zip(&self.activations) {
            let input = current.as_ref().map_or(x, |c| c.view());
            current = Some(layer.forward_activated(input, *activation));
        }
        current.unwrap_or_else(|| x.to_owned())
    }

    /// Training forward pass: the output of every layer, last one last (empty for an empty MLP).
    pub fn forward_train(&self, x: ArrayView2<F>) -> Vec<Array2<F>> {
        let mut outputs: Vec<Array2<F>> = Vec::with_capacity(self.layers.len());
        for (layer, activation) in self.layers.iter().zip(&self.activations) {
            let input = outputs.last().map_or(x, |o| o.view());
            outputs.push(layer.forward_activated(input, *activation));
        }
        outputs
    }

    /// Backward pass from `dL/d(output)`; adds parameter gradients into `grads` and returns `dL/dx`.
    pub fn backward(
        &self,
        x: ArrayView2<F>,
        outputs: &[Array2<F>],
        grad_output: Array2<F>,
        grads: &mut Mlp<F>,
    ) -> Array2<F> {
        let mut grad = grad_output;
        for i in (0..self.layers.len()).rev() {
            self.activations[i].backward_inplace(outputs[i].view(), grad.view_mut());
            let input = if i == 0 { x } else { outputs[i - 1].view() };
            grad = self.layers[i].backward(input, grad.view(), &mut grads.layers[i]);
        }
        grad
    }

    /// The same network in another float type.
    pub fn cast<G: Real>(&self) -> Mlp<G> {
        Mlp { layers: self.layers.iter().map(Dense::cast).collect(), activations: self.activations.clone() }
    }
}
