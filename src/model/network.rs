//! The autoencoder's layers: an encoder MLP, optional variational heads, and a decoder MLP.
//!
//! For every variant but the variational one the encoder ends in the code layer. A variational encoder
//! ends at its last hidden layer; two linear heads then give the code's mean and log-variance.
//! Parameters are visited in one fixed order ([`Network::tensor_names`]) shared by the optimiser, the
//! gradient accumulator and the model file.

use ndarray::{Array2, ArrayView2};
use rand::Rng;

use super::activation::Activation;
use super::dense::{Dense, Init};
use super::mlp::Mlp;
use super::params::{AutoencoderValidParams, Variant};
use crate::limits::{MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH, MAX_PARAMETERS};
use crate::linalg::Real;

/// Mean and log-variance heads of a variational encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct VariationalHeads<F> {
    pub mean: Dense<F>,
    pub log_var: Dense<F>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network<F> {
    pub encoder: Mlp<F>,
    pub heads: Option<VariationalHeads<F>>,
    pub decoder: Mlp<F>,
}

/// The layer sizes of a network, enough to rebuild it from stored tensors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Architecture {
    pub inputs: usize,
    pub latent: usize,
    pub encoder_hidden: Vec<usize>,
    pub decoder_hidden: Vec<usize>,
    pub activation: Activation,
    pub code_activation: Activation,
    pub output_activation: Activation,
    pub variational: bool,
}

impl Architecture {
    pub fn from_params(params: &AutoencoderValidParams, inputs: usize, latent: usize) -> Self {
        let encoder_hidden = params.encoder_hidden(inputs, latent);
        let decoder_hidden = params.decoder_hidden_sizes(&encoder_hidden);
        Architecture {
            inputs,
            latent,
            encoder_hidden,
            decoder_hidden,
            activation: params.activation(),
            code_activation: params.effective_code_activation(),
            output_activation: params.output_activation(),
            variational: matches!(params.variant(), Variant::Variational { .. }),
        }
    }

    /// Sizes of the encoder MLP (for a variational network it stops before the heads).
    fn encoder_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.inputs];
        sizes.extend(&self.encoder_hidden);
        if !self.variational {
            sizes.push(self.latent);
        }
        sizes
    }

    fn decoder_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.latent];
        sizes.extend(&self.decoder_hidden);
        sizes.push(self.inputs);
        sizes
    }

    /// Input width of the variational heads.
    fn head_inputs(&self) -> usize {
        *self.encoder_hidden.last().unwrap_or(&self.inputs)
    }

    /// `(name, shape)` of every parameter tensor this architecture has, in the canonical order of
    /// [`Network::tensor_names`], computed without building the network (the model file checks a
    /// file's tensors against it before allocating anything).
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut layers: Vec<(String, usize, usize)> = Vec::new();
        for (i, pair) in self.encoder_sizes().windows(2).enumerate() {
            layers.push((format!("encoder.{i}"), pair[0], pair[1]));
        }
        if self.variational {
            layers.push(("encoder.mean".into(), self.head_inputs(), self.latent));
            layers.push(("encoder.log_var".into(), self.head_inputs(), self.latent));
        }
        for (i, pair) in self.decoder_sizes().windows(2).enumerate() {
            layers.push((format!("decoder.{i}"), pair[0], pair[1]));
        }
        layers
            .into_iter()
            .flat_map(|(name, inputs, outputs)| {
                [(format!("{name}.weight"), vec![inputs, outputs]), (format!("{name}.bias"), vec![outputs])]
            })
            .collect()
    }

    /// The number of weights and biases, `None` if it overflows.
    pub fn parameter_count(&self) -> Option<usize> {
        self.tensor_shapes().iter().try_fold(0usize, |total, (_, shape)| {
            total.checked_add(shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d))?)
        })
    }

    /// Checks the architecture against [`crate::limits`]: every layer at most [`MAX_LAYER_WIDTH`] wide,
    /// at most [`MAX_HIDDEN_LAYERS`] hidden layers a side, at most [`MAX_PARAMETERS`] parameters.
    pub fn check_size(&self) -> crate::Result<()> {
        use crate::AutoencError::ModelTooLarge;
        for hidden in [&self.encoder_hidden, &self.decoder_hidden] {
            if hidden.len() > MAX_HIDDEN_LAYERS {
                return Err(ModelTooLarge(format!("{} hidden layers; at most {MAX_HIDDEN_LAYERS}", hidden.len())));
            }
        }
        let widest = self.encoder_hidden.iter().chain(&self.decoder_hidden).chain([&self.inputs, &self.latent]);
        if let Some(width) = widest.copied().max().filter(|&w| w > MAX_LAYER_WIDTH) {
            return Err(ModelTooLarge(format!("a layer of {width} units; at most {MAX_LAYER_WIDTH} per layer")));
        }
        match self.parameter_count() {
            Some(count) if count <= MAX_PARAMETERS => Ok(()),
            count => Err(ModelTooLarge(format!(
                "{} parameters ({}); at most {MAX_PARAMETERS}",
                count.map_or("too many".to_string(), |c| c.to_string()),
                self.describe()
            ))),
        }
    }

    /// The network in plain words, e.g. `64 -> 32 -> 8 -> 32 -> 64`.
    pub fn describe(&self) -> String {
        let mut sizes = vec![self.inputs];
        sizes.extend(&self.encoder_hidden);
        sizes.push(self.latent);
        sizes.extend(&self.decoder_hidden);
        sizes.push(self.inputs);
        sizes.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" -> ")
    }
}

impl<F: Real> Network<F> {
    /// A freshly initialised network.
    pub fn init<R: Rng + ?Sized>(arch: &Architecture, init: Option<Init>, rng: &mut R) -> Self {
        let encoder_last = if arch.variational { arch.activation } else { arch.code_activation };
        let encoder = Mlp::build(&arch.encoder_sizes(), arch.activation, encoder_last, init, rng);
        let heads = arch.variational.then(|| VariationalHeads {
            mean: Dense::init(arch.head_inputs(), arch.latent, init.unwrap_or(Init::Xavier), rng),
            log_var: Dense::init(arch.head_inputs(), arch.latent, init.unwrap_or(Init::Xavier), rng),
        });
        let decoder = Mlp::build(&arch.decoder_sizes(), arch.activation, arch.output_activation, init, rng);
        Network { encoder, heads, decoder }
    }

    /// A network of the architecture's shape with every parameter zero (to be filled from a file).
    pub fn zeros(arch: &Architecture) -> Self {
        let mut rng = rand_pcg::Pcg64Mcg::new(0);
        let mut network: Network<F> = Network::init(arch, None, &mut rng);
        network.fill_zero();
        network
    }

    /// Same shapes, all zeros: a gradient accumulator.
    pub fn zeros_like(&self) -> Self {
        Network {
            encoder: self.encoder.zeros_like(),
            heads: self.heads.as_ref().map(|h| VariationalHeads {
                mean: Dense::zeros(h.mean.inputs(), h.mean.outputs()),
                log_var: Dense::zeros(h.log_var.inputs(), h.log_var.outputs()),
            }),
            decoder: self.decoder.zeros_like(),
        }
    }

    fn layers(&self) -> Vec<(String, &Dense<F>)> {
        let mut out: Vec<(String, &Dense<F>)> = Vec::new();
        for (i, l) in self.encoder.layers.iter().enumerate() {
            out.push((format!("encoder.{i}"), l));
        }
        if let Some(h) = &self.heads {
            out.push(("encoder.mean".into(), &h.mean));
            out.push(("encoder.log_var".into(), &h.log_var));
        }
        for (i, l) in self.decoder.layers.iter().enumerate() {
            out.push((format!("decoder.{i}"), l));
        }
        out
    }

    fn layers_mut(&mut self) -> Vec<&mut Dense<F>> {
        let mut out: Vec<&mut Dense<F>> = self.encoder.layers.iter_mut().collect();
        if let Some(h) = &mut self.heads {
            out.push(&mut h.mean);
            out.push(&mut h.log_var);
        }
        out.extend(self.decoder.layers.iter_mut());
        out
    }

    /// `(name, shape)` of every parameter tensor, in the canonical order.
    pub fn tensor_names(&self) -> Vec<(String, Vec<usize>)> {
        self.layers()
            .into_iter()
            .flat_map(|(name, l)| {
                [
                    (format!("{name}.weight"), l.weight.shape().to_vec()),
                    (format!("{name}.bias"), l.bias.shape().to_vec()),
                ]
            })
            .collect()
    }

    /// Every parameter tensor as a flat slice, in the canonical order.
    pub fn tensors(&self) -> Vec<&[F]> {
        self.layers()
            .into_iter()
            .flat_map(|(_, l)| {
                [contiguous(l.weight.as_slice_memory_order()), contiguous(l.bias.as_slice_memory_order())]
            })
            .collect()
    }

    /// Every parameter tensor as a flat mutable slice, in the canonical order, with a flag telling
    /// weights (true) from biases (false) — weight decay applies to weights only.
    pub fn tensors_mut(&mut self) -> Vec<(&mut [F], bool)> {
        self.layers_mut()
            .into_iter()
            .flat_map(|l| {
                [
                    (contiguous_mut(l.weight.as_slice_memory_order_mut()), true),
                    (contiguous_mut(l.bias.as_slice_memory_order_mut()), false),
                ]
            })
            .collect()
    }

    /// Resets every entry to zero, keeping allocations (gradient accumulators between steps).
    pub fn fill_zero(&mut self) {
        for (t, _) in self.tensors_mut() {
            t.fill(F::zero());
        }
    }

    /// The same network in another float type.
    pub fn cast<G: Real>(&self) -> Network<G> {
        Network {
            encoder: self.encoder.cast(),
            heads: self.heads.as_ref().map(|h| VariationalHeads { mean: h.mean.cast(), log_var: h.log_var.cast() }),
            decoder: self.decoder.cast(),
        }
    }

    /// The deterministic code of scaled inputs: the code layer, or the mean head of a variational model.
    pub fn encode(&self, x: ArrayView2<F>) -> Array2<F> {
        let hidden = self.encoder.forward(x);
        match &self.heads {
            Some(h) => h.mean.forward(hidden.view()),
            None => hidden,
        }
    }

    /// Reconstruction (in scaled units) of a code.
    pub fn decode(&self, code: ArrayView2<F>) -> Array2<F> {
        self.decoder.forward(code)
    }
}

fn contiguous<T>(slice: Option<&[T]>) -> &[T] {
    slice.expect("parameter arrays are owned and contiguous")
}

fn contiguous_mut<T>(slice: Option<&mut [T]>) -> &mut [T] {
    slice.expect("parameter arrays are owned and contiguous")
}
