//! Finite-difference gradient checks of the whole training objective, for every family member.
//!
//! Each case builds a small network in f64, computes the analytic gradient of the objective for one
//! batch, and compares every parameter's entry against a central difference of the same objective.

use autoenc::model::network::{Architecture, Network};
use autoenc::train::objective::{Batch, Objective};
use autoenc::{Activation, Autoencoder, AutoencoderParams, LatentSize, Loss, Noise, Sparsity, Variant};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const ROWS: usize = 6;
const INPUTS: usize = 5;

fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(&mut rng))
}

struct Case {
    name: &'static str,
    params: AutoencoderParams,
    latent: usize,
    corrupted: bool,
    masked: bool,
    unit_target: bool,
}

fn check(case: Case) {
    let params = case.params.latent(LatentSize::Fixed(case.latent)).check().expect(case.name);
    let arch = Architecture::from_params(&params, INPUTS, case.latent);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    let net: Network<f64> = Network::init(&arch, params.init(), &mut rng);
    let objective = Objective {
        variant: params.variant(),
        loss: params.loss(),
        trim_fraction: params.trim_fraction(),
        categories: None,
    };

    let mut target = random(ROWS, INPUTS, 1);
    if case.unit_target {
        target.mapv_inplace(|v| 1.0 / (1.0 + (-v).exp()));
    }
    let input = if case.corrupted { &target + &(random(ROWS, INPUTS, 2) * 0.3) } else { target.clone() };
    let mask = case.masked.then(|| random(ROWS, INPUTS, 3).mapv(|v| if v > -0.8 { 1.0 } else { 0.0 }));
    let noise = arch.variational.then(|| random(ROWS, case.latent, 4));
    let batch = Batch {
        target: target.view(),
        input: input.view(),
        mask: mask.as_ref().map(|m| m.view()),
        noise: noise.as_ref().map(|n| n.view()),
    };

    let mut grads = net.zeros_like();
    let parts = objective.loss_and_gradients(&net, &batch, &mut grads);
    assert!(parts.total().is_finite(), "{}: loss {parts:?}", case.name);
    if !matches!(
        params.variant(),
        Variant::Plain | Variant::Denoising { .. } | Variant::Sparse { sparsity: Sparsity::TopK { .. } }
    ) {
        assert!(parts.penalty > 0.0, "{}: the penalty must contribute", case.name);
    }
    let loss_of = |n: &Network<f64>| {
        let mut scratch = n.zeros_like();
        objective.loss_and_gradients(n, &batch, &mut scratch).total()
    };
    let analytic: Vec<Vec<f64>> = grads.tensors().iter().map(|t| t.to_vec()).collect();
    let names = net.tensor_names();
    let h = 1e-6;
    let mut checked = 0;
    for (t, ((name, _), tensor)) in names.iter().zip(&analytic).enumerate() {
        for (i, &a) in tensor.iter().enumerate() {
            let mut plus = net.clone();
            plus.tensors_mut()[t].0[i] += h;
            let mut minus = net.clone();
            minus.tensors_mut()[t].0[i] -= h;
            let numeric = (loss_of(&plus) - loss_of(&minus)) / (2.0 * h);
            let tolerance = 1e-6 + 1e-4 * numeric.abs().max(a.abs());
            assert!((numeric - a).abs() < tolerance, "{}: {name}[{i}] numeric {numeric} vs analytic {a}", case.name);
            checked += 1;
        }
    }
    assert!(checked >= 30, "{}: only {checked} entries checked", case.name);
}

fn base() -> AutoencoderParams {
    Autoencoder::params().hidden(Some(vec![4])).activation(Activation::Tanh)
}

#[test]
fn plain_mse() {
    check(Case { name: "plain", params: base(), latent: 3, corrupted: false, masked: false, unit_target: false });
}

#[test]
fn plain_relu_family() {
    for act in [Activation::Relu, Activation::LeakyRelu, Activation::Elu, Activation::Sigmoid, Activation::Identity] {
        check(Case {
            name: act.name(),
            params: base().activation(act),
            latent: 2,
            corrupted: false,
            masked: false,
            unit_target: false,
        });
    }
}

#[test]
fn plain_without_trimming() {
    check(Case {
        name: "untrimmed",
        params: base().trim_fraction(0.0),
        latent: 3,
        corrupted: false,
        masked: false,
        unit_target: false,
    });
}

#[test]
fn masked_loss_for_missing_values() {
    check(Case { name: "masked", params: base(), latent: 3, corrupted: false, masked: true, unit_target: false });
}

#[test]
fn binary_cross_entropy_with_sigmoid_output() {
    let params = base().loss(Loss::Bce).output_activation(Activation::Sigmoid);
    check(Case { name: "bce", params, latent: 3, corrupted: false, masked: true, unit_target: true });
}

#[test]
fn denoising_compares_against_the_clean_input() {
    let params = base().variant(Variant::Denoising { noise: Noise::Gaussian { std: 0.3 } });
    check(Case { name: "denoising", params, latent: 3, corrupted: true, masked: false, unit_target: false });
}

#[test]
fn sparse_top_k() {
    let params = base().variant(Variant::Sparse { sparsity: Sparsity::TopK { k: 2 } });
    check(Case { name: "top-k", params, latent: 4, corrupted: false, masked: false, unit_target: false });
}

#[test]
fn sparse_l1() {
    let params = base().variant(Variant::Sparse { sparsity: Sparsity::L1 { lambda: 0.05 } });
    check(Case { name: "l1", params, latent: 3, corrupted: false, masked: false, unit_target: false });
}

#[test]
fn sparse_kl() {
    let params = base().variant(Variant::Sparse { sparsity: Sparsity::Kl { rho: 0.1, beta: 0.5 } });
    check(Case { name: "kl", params, latent: 3, corrupted: false, masked: false, unit_target: false });
}

#[test]
fn contractive_one_layer_encoder() {
    for act in [Activation::Tanh, Activation::Sigmoid, Activation::Elu] {
        let params = Autoencoder::params()
            .hidden(Some(vec![]))
            .activation(Activation::Tanh)
            .code_activation(Some(act))
            .variant(Variant::Contractive { lambda: 0.2 });
        check(Case { name: "contractive", params, latent: 3, corrupted: false, masked: false, unit_target: false });
    }
}

#[test]
fn variational() {
    let params = base().variant(Variant::Variational { beta: 0.7 });
    check(Case { name: "vae", params, latent: 2, corrupted: false, masked: false, unit_target: false });
    let shallow = Autoencoder::params().hidden(Some(vec![])).variant(Variant::Variational { beta: 1.0 });
    check(Case {
        name: "vae-no-hidden",
        params: shallow,
        latent: 2,
        corrupted: false,
        masked: true,
        unit_target: false,
    });
}
