//! The fully connected layer `z = x·W + b`, the one learnable block every network here is made of.
//!
//! Weights are stored `(inputs, outputs)` so a batch of row vectors multiplies on the left without a
//! transpose; the same layout is what the model file holds, under `<prefix>.weight` and `<prefix>.bias`.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::epilogue::add_bias_and_activate;
use super::narrow::try_narrow_product;
use super::tiled::{Finish, tiled_layer};
use crate::linalg::{Real, as_f32, as_f32_mut, matmul_into, real};

/// How a layer's weights are drawn before training. Biases always start at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// He/Kaiming normal, `std = sqrt(2 / fan_in)`: keeps the variance of ReLU-family layers.
    He,
    /// Xavier/Glorot uniform, `limit = sqrt(6 / (fan_in + fan_out))`: for tanh, sigmoid and linear layers.
    Xavier,
}

/// A dense layer's parameters (or, with the same shapes, its gradients).
#[derive(Debug, Clone, PartialEq)]
pub struct Dense<F> {
    /// `(inputs, outputs)`.
    pub weight: Array2<F>,
    /// `(outputs,)`.
    pub bias: Array1<F>,
}

impl<F: Real> Dense<F> {
    /// A zero layer: the starting value of a gradient accumulator.
    pub fn zeros(inputs: usize, outputs: usize) -> Self {
        Dense { weight: Array2::zeros((inputs, outputs)), bias: Array1::zeros(outputs) }
    }

    /// A freshly initialised layer drawn from `rng`.
    pub fn init<R: Rng + ?Sized>(inputs: usize, outputs: usize, init: Init, rng: &mut R) -> Self {
        let fan_in = inputs.max(1) as f64;
        let weight = match init {
            Init::He => {
                let normal = Normal::new(0.0, (2.0 / fan_in).sqrt()).unwrap_or_else(|_| unreachable_normal());
                Array2::from_shape_simple_fn((inputs, outputs), || real(normal.sample(rng)))
            }
            Init::Xavier => {
                let limit = (6.0 / (fan_in + outputs as f64)).sqrt();
                let uniform = Uniform::new_inclusive(-limit, limit).unwrap_or_else(|_| unreachable_uniform());
                Array2::from_shape_simple_fn((inputs, outputs), || real(uniform.sample(rng)))
            }
        };
        Dense { weight, bias: Array1::zeros(outputs) }
    }

    pub fn inputs(&self) -> usize {
        self.weight.nrows()
    }

    pub fn outputs(&self) -> usize {
        self.weight.ncols()
    }

    /// Writes `activation(x·W + b)` into `out` (`(rows, outputs)`), reusing its memory, and tells whether
    /// every pre-activation `x·W + b` was finite (a NaN or infinity in a row of `x` shows up there).
    ///
    /// Widths of 16, 32, 48 or 64 outputs on AVX-512 go through the register-tiled kernel, which
    /// finishes each tile before storing it (see `tiled`). Otherwise the product overwrites `out`, and
    /// bias, finiteness probe and activation run in one vectorised pass while the block is still in
    /// cache (see `epilogue`); copying the bias into every row first and applying the activation in a
    /// second pass had cost a fifth of an inference call.
    pub fn forward_activated_into(&self, x: ArrayView2<F>, mut out: ArrayViewMut2<F>, activation: Activation) -> bool {
        if let Some(clean) = self.tiled(x, out.view_mut(), Some(activation)) {
            return clean;
        }
        self.general_product_into(x, out.view_mut());
        let width = self.outputs();
        match (out.as_slice_mut(), self.bias.as_slice()) {
            (Some(values), Some(bias)) if width > 0 => add_bias_and_activate(values, bias, activation),
            _ => {
                let mut finite = true;
                for mut row in out.rows_mut() {
                    for (v, &b) in row.iter_mut().zip(&self.bias) {
                        let z = *v + b;
                        finite &= z.is_finite();
                        *v = activation.apply(z);
                    }
                }
                finite
            }
        }
    }

    /// Writes the product `x·W` alone into `out` (`(rows, outputs)`), without the bias.
    pub fn product_into(&self, x: ArrayView2<F>, mut out: ArrayViewMut2<F>) {
        if self.tiled(x, out.view_mut(), None).is_none() {
            self.general_product_into(x, out);
        }
    }

    /// The product without the tiled kernel: the narrow kernel for outputs of at most one register,
    /// `gemm` otherwise.
    fn general_product_into(&self, x: ArrayView2<F>, mut out: ArrayViewMut2<F>) {
        // Shapes are checked here so that a caller's mistake reaches `matmul_into`'s assertion.
        let shapes_agree = x.ncols() == self.inputs() && out.dim() == (x.nrows(), self.outputs());
        if !shapes_agree || !try_narrow_product(x, self.weight.view(), out.view_mut()) {
            matmul_into(x, self.weight.view(), out, false);
        }
    }

    /// The layer through the register-tiled kernel (`tiled`), when the arrays are f32, contiguous and
    /// of a width it takes: `activation(x·W + b)` with the probe's answer, or with `None` the bare
    /// product. `None` back means nothing was written.
    fn tiled(&self, x: ArrayView2<F>, mut out: ArrayViewMut2<F>, activation: Option<Activation>) -> Option<bool> {
        if x.ncols() != self.inputs() || out.dim() != (x.nrows(), self.outputs()) || x.nrows() == 0 {
            return None;
        }
        let x = x.to_slice().and_then(as_f32)?;
        let weight = self.weight.as_slice().and_then(as_f32)?;
        let bias = self.bias.as_slice().and_then(as_f32)?;
        let out = out.as_slice_mut().and_then(as_f32_mut)?;
        let finish = match activation {
            Some(activation) => Finish::Store { bias: Some(bias), activation, out },
            None => Finish::Store { bias: None, activation: Activation::Identity, out },
        };
        tiled_layer(x, weight, self.inputs(), self.outputs(), finish)
    }

    /// `x·W + b` into a new array.
    pub fn forward(&self, x: ArrayView2<F>) -> Array2<F> {
        self.forward_activated(x, Activation::Identity)
    }

    /// `activation(x·W + b)` into a new array.
    pub fn forward_activated(&self, x: ArrayView2<F>, activation: Activation) -> Array2<F> {
        let mut out = Array2::zeros((x.nrows(), self.outputs()));
        self.forward_activated_into(x, out.view_mut(), activation);
        out
    }

    /// Given `dL/dz` for this layer's pre-activations, adds `dL/dW` and `dL/db` into `grads` and returns
    /// `dL/dx` for the layer's input.
    pub fn backward(&self, x: ArrayView2<F>, grad_z: ArrayView2<F>, grads: &mut Dense<F>) -> Array2<F> {
        matmul_into(x.t(), grad_z, grads.weight.view_mut(), true);
        // Column sums row by row: contiguous adds the compiler vectorises (`sum_axis` walks columns).
        if let Some(bias) = grads.bias.as_slice_mut() {
            for row in grad_z.rows() {
                match row.as_slice() {
                    Some(values) => bias.iter_mut().zip(values).for_each(|(b, &v)| *b += v),
                    None => bias.iter_mut().zip(row.iter()).for_each(|(b, &v)| *b += v),
                }
            }
        } else {
            grads.bias += &grad_z.sum_axis(Axis(0));
        }
        let mut grad_x = Array2::zeros((x.nrows(), self.inputs()));
        matmul_into(grad_z, self.weight.t(), grad_x.view_mut(), false);
        grad_x
    }

    /// Same shapes in another float type (f32 model -> f64 gradient check and back).
    pub fn cast<G: Real>(&self) -> Dense<G> {
        Dense {
            weight: self.weight.mapv(|v| real(v.to_f64().unwrap_or(f64::NAN))),
            bias: self.bias.mapv(|v| real(v.to_f64().unwrap_or(f64::NAN))),
        }
    }
}

// The distributions above are built from finite, positive parameters; these are never reached.
fn unreachable_normal() -> Normal<f64> {
    Normal::new(0.0, 1.0).expect("unit normal")
}
fn unreachable_uniform() -> Uniform<f64> {
    Uniform::new_inclusive(-1.0, 1.0).expect("unit uniform")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Finite-difference check of all three gradients on the loss `sum(G ⊙ (xW + b))`.
    #[test]
    fn backward_matches_finite_differences() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
        let layer = Dense::<f64>::init(5, 3, Init::Xavier, &mut rng);
        let x = Array2::from_shape_fn((4, 5), |(i, j)| (i as f64 - 1.5) * 0.3 + j as f64 * 0.1);
        let upstream = Array2::from_shape_fn((4, 3), |(i, j)| ((i + 2 * j) % 5) as f64 - 2.0);
        let loss = |l: &Dense<f64>, x: &Array2<f64>| (&l.forward(x.view()) * &upstream).sum();
        let mut grads = Dense::zeros(5, 3);
        let grad_x = layer.backward(x.view(), upstream.view(), &mut grads);
        let h = 1e-6;
        for idx in [(0, 0), (2, 1), (4, 2)] {
            let (mut plus, mut minus) = (layer.clone(), layer.clone());
            plus.weight[idx] += h;
            minus.weight[idx] -= h;
            let numeric = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
            assert!((numeric - grads.weight[idx]).abs() < 1e-6);
        }
        for j in 0..3 {
            let (mut plus, mut minus) = (layer.clone(), layer.clone());
            plus.bias[j] += h;
            minus.bias[j] -= h;
            let numeric = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
            assert!((numeric - grads.bias[j]).abs() < 1e-6);
        }
        for idx in [(0, 0), (3, 4), (1, 2)] {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[idx] += h;
            minus[idx] -= h;
            let numeric = (loss(&layer, &plus) - loss(&layer, &minus)) / (2.0 * h);
            assert!((numeric - grad_x[idx]).abs() < 1e-6);
        }
    }

    #[test]
    fn initialisation_scales_follow_fan_in() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        let he = Dense::<f64>::init(400, 300, Init::He, &mut rng);
        let std = (he.weight.mapv(|w| w * w).mean().unwrap()).sqrt();
        assert!((std - (2.0f64 / 400.0).sqrt()).abs() < 0.003, "He std {std}");
        let xavier = Dense::<f64>::init(400, 300, Init::Xavier, &mut rng);
        let limit = (6.0f64 / 700.0).sqrt();
        assert!(xavier.weight.iter().all(|w| w.abs() <= limit));
        assert!(he.bias.iter().all(|&b| b == 0.0));
    }
}
