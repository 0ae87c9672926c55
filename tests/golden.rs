//! The training objective against golden values from an independent implementation: PyTorch autograd
//! in float64 (`tests/golden/make_fixtures.py`, which also documents every definition). For each case the
//! network is rebuilt from the fixture's weights and the code, reconstruction, both loss parts and every
//! parameter gradient must match to 1e-9; the f32 inference path must match the forward pass to 1e-5.

use autoenc::model::network::{Architecture, Network};
use autoenc::train::objective::{Batch, Objective};
use autoenc::{Loss, Variant};
use ndarray::Array2;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
struct Fixtures {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Tensor {
    shape: Vec<usize>,
    values: Vec<f64>,
}

/// A fixture's batch, as PyTorch saw it.
#[derive(Deserialize)]
struct FixtureBatch {
    target: Vec<Vec<f64>>,
    input: Vec<Vec<f64>>,
    mask: Option<Vec<Vec<f64>>>,
    noise: Option<Vec<Vec<f64>>>,
}

/// The objective on that batch, as PyTorch computed it.
#[derive(Deserialize)]
struct LossExpected {
    reconstruction_loss: f64,
    penalty: f64,
    grads: HashMap<String, Vec<f64>>,
}

#[derive(Deserialize)]
struct Expected {
    #[serde(flatten)]
    loss: LossExpected,
    code: Vec<Vec<f64>>,
    reconstruction: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    architecture: Architecture,
    variant: Variant,
    loss: Loss,
    tensors: HashMap<String, Tensor>,
    #[serde(flatten)]
    batch: FixtureBatch,
    expected: Expected,
}

fn matrix(rows: &[Vec<f64>]) -> Array2<f64> {
    let cols = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), cols), rows.concat()).expect("rectangular fixture")
}

fn network(case: &str, architecture: &Architecture, tensors: &HashMap<String, Tensor>) -> Network<f64> {
    let mut net = Network::zeros(architecture);
    let names = net.tensor_names();
    assert_eq!(names.len(), tensors.len(), "{case}: tensor count");
    for ((name, shape), (slot, _)) in names.iter().zip(net.tensors_mut()) {
        let tensor = tensors.get(name).unwrap_or_else(|| panic!("{case}: fixture lacks {name}"));
        assert_eq!(&tensor.shape, shape, "{case}: shape of {name}");
        slot.copy_from_slice(&tensor.values);
    }
    net
}

/// Runs `objective` on the fixture's batch and checks both loss parts and every parameter gradient
/// against PyTorch's to 1e-9.
fn check_objective(
    name: &str,
    net: &Network<f64>,
    objective: &Objective,
    batch: &FixtureBatch,
    expected: &LossExpected,
) {
    let (target, input) = (matrix(&batch.target), matrix(&batch.input));
    let (mask, noise) = (batch.mask.as_deref().map(matrix), batch.noise.as_deref().map(matrix));
    let batch = Batch {
        target: target.view(),
        input: input.view(),
        mask: mask.as_ref().map(|m| m.view()),
        noise: noise.as_ref().map(|n| n.view()),
    };
    let mut grads = net.zeros_like();
    let parts = objective.loss_and_gradients(net, &batch, &mut grads);
    assert_close(&format!("{name} reconstruction loss"), [parts.reconstruction], [expected.reconstruction_loss], 1e-9);
    assert_close(&format!("{name} penalty"), [parts.penalty], [expected.penalty], 1e-9);
    for ((tensor, _), grad) in net.tensor_names().iter().zip(grads.tensors()) {
        assert_close(
            &format!("{name} d/d{tensor}"),
            grad.iter().copied(),
            expected.grads[tensor].iter().copied(),
            1e-9,
        );
    }
}

fn assert_close(what: &str, got: impl IntoIterator<Item = f64>, want: impl IntoIterator<Item = f64>, tol: f64) {
    let (got, want): (Vec<f64>, Vec<f64>) = (got.into_iter().collect(), want.into_iter().collect());
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: got {g}, want {w}");
    }
}

#[test]
fn objective_matches_pytorch_autograd() {
    let fixtures: Fixtures =
        serde_json::from_str(include_str!("golden/objective_fixtures.json")).expect("fixtures parse");
    assert!(fixtures.cases.len() >= 12);
    for case in &fixtures.cases {
        let net = network(&case.name, &case.architecture, &case.tensors);
        let objective = Objective { variant: case.variant, loss: case.loss, trim_fraction: 0.0, categories: None };
        check_objective(&case.name, &net, &objective, &case.batch, &case.expected.loss);
        let name = &case.name;
        let input = matrix(&case.batch.input);

        // Forward pass on the clean input: the deterministic code (mean for variational models).
        if case.batch.input == case.batch.target
            && !matches!(case.variant, Variant::Variational { .. } | Variant::Sparse { .. })
        {
            let code = net.encode(input.view());
            assert_close(&format!("{name} code"), code.iter().copied(), case.expected.code.concat(), 1e-9);
            let reconstruction = net.decode(code.view());
            assert_close(
                &format!("{name} reconstruction"),
                reconstruction.iter().copied(),
                case.expected.reconstruction.concat(),
                1e-9,
            );
            // The f32 network the product runs gives the same numbers to f32 precision.
            let net32: Network<f32> = net.cast();
            let code32 = net32.encode(input.mapv(|v| v as f32).view());
            assert_close(
                &format!("{name} f32 code"),
                code32.iter().map(|&v| v as f64),
                case.expected.code.concat(),
                1e-5,
            );
        }
        if matches!(case.variant, Variant::Variational { .. }) {
            let code = net.encode(input.view());
            assert_close(&format!("{name} posterior mean"), code.iter().copied(), case.expected.code.concat(), 1e-9);
        }
    }
}

/// One feature of a mixed fixture: numeric, or categorical with `values` vocabulary values.
#[derive(Deserialize)]
struct FixtureFeature {
    kind: String,
    values: Option<usize>,
}

#[derive(Deserialize)]
struct MixedCase {
    name: String,
    features: Vec<FixtureFeature>,
    architecture: Architecture,
    variant: Variant,
    tensors: HashMap<String, Tensor>,
    #[serde(flatten)]
    batch: FixtureBatch,
    expected: LossExpected,
}

#[derive(Deserialize)]
struct MixedFixtures {
    cases: Vec<MixedCase>,
}

/// The mixed objective (squared error on numeric columns, scaled softmax cross-entropy on each
/// categorical block, one vote per feature) against PyTorch autograd: `make_mixed_fixtures.py`.
#[test]
fn mixed_objective_matches_pytorch_autograd() {
    use autoenc::{FeatureKind, FeatureLayout, Vocabulary};
    let fixtures: MixedFixtures =
        serde_json::from_str(include_str!("golden/mixed_fixtures.json")).expect("fixtures parse");
    assert!(fixtures.cases.len() >= 6);
    for case in &fixtures.cases {
        let kinds = case
            .features
            .iter()
            .map(|f| match (f.kind.as_str(), f.values) {
                ("numeric", _) => FeatureKind::Numeric,
                ("categorical", Some(n)) => FeatureKind::Categorical {
                    vocabulary: Vocabulary::new((0..n).map(|k| format!("v{k}")).collect()).unwrap(),
                },
                other => panic!("{}: unknown feature {other:?}", case.name),
            })
            .collect();
        let layout = FeatureLayout::new(kinds);
        assert_eq!(layout.width(), case.architecture.inputs, "{}: network width", case.name);
        let net = network(&case.name, &case.architecture, &case.tensors);
        let objective = Objective {
            variant: case.variant,
            loss: Loss::Mse,
            trim_fraction: 0.0,
            categories: layout.network().cloned(),
        };
        check_objective(&case.name, &net, &objective, &case.batch, &case.expected);
    }
}
