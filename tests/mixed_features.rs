//! Models with categorical features through the core API: detection on the synthetic device events,
//! every variant, the model file, unseen values and NULLs, explanations, reconstructions, training
//! continued, and the refusals.

use autoenc::metrics::roc_auc;
use autoenc::synthetic_devices::{DeviceEvents, device_events};
use autoenc::{
    AutoencError, Autoencoder, AutoencoderParams, FeatureKind, LatentSize, Loss, Noise, Sparsity, Variant, Vocabulary,
};
use ndarray::{Array2, s};

fn names() -> Vec<String> {
    DeviceEvents::NAMES.iter().map(|n| n.to_string()).collect()
}

fn params() -> AutoencoderParams {
    Autoencoder::params().latent(LatentSize::Fixed(4)).hidden(Some(vec![16])).epochs(15).record_timings(false).seed(3)
}

/// Training rows (clean) and test rows (10 % anomalies), coded in the training rows' vocabularies.
struct Data {
    x: Array2<f32>,
    kinds: Vec<FeatureKind>,
    y: Array2<f32>,
    labels: Vec<bool>,
    vocabularies: [Vocabulary; 3],
}

fn data() -> Data {
    let train = device_events(3000, 0.0, 1);
    let vocabularies = train.vocabularies(64).unwrap();
    let (x, kinds) = train.coded(&vocabularies);
    let test = device_events(2000, 0.1, 2);
    let (y, _) = test.coded(&vocabularies);
    Data { x, kinds, y, labels: test.labels, vocabularies }
}

fn fit(params: AutoencoderParams, x: &Array2<f32>, kinds: &[FeatureKind]) -> Autoencoder {
    params.check().unwrap().fit_with_kinds(x.view(), names(), kinds.to_vec(), &mut |_| {}).unwrap()
}

#[test]
fn categories_inside_the_model_find_what_numbers_alone_cannot() {
    let Data { x, kinds, y, labels, .. } = data();
    let model = fit(params(), &x, &kinds);
    let auc = roc_auc(model.score(y.view()).unwrap().as_slice().unwrap(), &labels).unwrap();
    assert!(auc > 0.9, "mixed model ROC-AUC {auc}");
    // The same events without their categorical columns: the anomalies are invisible.
    let numbers = Autoencoder::params().latent(LatentSize::Fixed(2)).epochs(15).seed(3);
    let numeric = numbers.check().unwrap().fit(x.slice(s![.., 3..])).unwrap();
    let numeric_auc = roc_auc(numeric.score(y.slice(s![.., 3..])).unwrap().as_slice().unwrap(), &labels).unwrap();
    assert!(numeric_auc < 0.65, "numbers alone ROC-AUC {numeric_auc}");
}

#[test]
fn every_variant_trains_on_mixed_rows() {
    let Data { x, kinds, y, labels, .. } = data();
    let variants = [
        Variant::Plain,
        Variant::Denoising { noise: Noise::Masking { fraction: 0.2 } },
        Variant::Denoising { noise: Noise::Gaussian { std: 0.1 } },
        Variant::Denoising { noise: Noise::SaltPepper { fraction: 0.1 } },
        Variant::Sparse { sparsity: Sparsity::TopK { k: 2 } },
        Variant::Sparse { sparsity: Sparsity::L1 { lambda: 1e-3 } },
        Variant::Sparse { sparsity: Sparsity::Kl { rho: 0.1, beta: 0.1 } },
        Variant::Variational { beta: 0.1 },
    ];
    for variant in variants {
        let model = fit(params().variant(variant), &x, &kinds);
        let scores = model.score(y.view()).unwrap();
        assert!(scores.iter().all(|s| s.is_finite() && *s >= 0.0), "{variant:?}");
        let auc = roc_auc(scores.as_slice().unwrap(), &labels).unwrap();
        assert!(auc > 0.75, "{variant:?}: ROC-AUC {auc}");
    }
    // Contractive: one encoder layer, so less capacity than the others (ROC-AUC about 0.69 here).
    let contractive = params().hidden(Some(vec![])).variant(Variant::Contractive { lambda: 0.01 });
    let model = fit(contractive, &x, &kinds);
    let auc = roc_auc(model.score(y.view()).unwrap().as_slice().unwrap(), &labels).unwrap();
    assert!(auc > 0.6, "contractive: ROC-AUC {auc}");
}

#[test]
fn training_is_reproducible_and_the_file_keeps_the_vocabularies() {
    let Data { x, kinds, y, .. } = data();
    let (a, b) = (fit(params(), &x, &kinds), fit(params(), &x, &kinds));
    let bytes = a.to_bytes().unwrap();
    assert_eq!(bytes, b.to_bytes().unwrap(), "same seed and data, same file");
    let loaded = Autoencoder::from_bytes(&bytes).unwrap();
    assert_eq!(loaded.feature_kinds(), a.feature_kinds());
    let (before, after) = (a.score(y.view()).unwrap(), loaded.score(y.view()).unwrap());
    assert!(before.iter().zip(&after).all(|(p, q)| p.to_bits() == q.to_bits()));
    let metadata = autoenc::io::model_file::read_metadata(&bytes).unwrap();
    assert_eq!(metadata.format_version, 3);
    // A numeric model is still written as format 2, without feature kinds.
    let numeric = params().check().unwrap().fit(x.slice(s![.., 3..])).unwrap();
    let metadata = autoenc::io::model_file::read_metadata(&numeric.to_bytes().unwrap()).unwrap();
    assert_eq!((metadata.format_version, metadata.feature_kinds.is_none()), (2, true));
}

#[test]
fn unseen_values_and_nulls_are_scored_never_refused() {
    let Data { x, kinds, y, vocabularies, .. } = data();
    let model = fit(params(), &x, &kinds);
    // One row three times, its device replaced by one never seen, by NULL, and by NaN.
    let mut rows = ndarray::concatenate(ndarray::Axis(0), &[y.slice(s![0..1, ..]); 3]).unwrap();
    let device = &vocabularies[0];
    rows[(0, 0)] = device.code(Some("toaster")) as f32;
    rows[(1, 0)] = device.code(None) as f32;
    rows[(2, 0)] = f32::NAN;
    let scores = model.score(rows.view()).unwrap();
    assert!(scores.iter().all(|s| s.is_finite()));
    assert_eq!(scores[1].to_bits(), scores[2].to_bits(), "NaN in a categorical column is NULL");
    let as_given = model.score(y.slice(s![0..1, ..])).unwrap()[0];
    assert!(scores[0] > as_given, "an unseen device scores higher than the row as it was");
}

#[test]
fn codes_that_are_not_codes_are_errors_naming_row_and_feature() {
    let Data { x, kinds, y, .. } = data();
    let model = fit(params(), &x, &kinds);
    for bad in [99.0, -1.0, 1.5] {
        let mut rows = y.slice(s![0..4, ..]).to_owned();
        rows[(2, 1)] = bad;
        let err = model.score(rows.view()).unwrap_err();
        assert!(matches!(err, AutoencError::InvalidCategoryCode { row: 2, .. }), "{err}");
        assert!(err.to_string().contains("protocol"), "{err}");
    }
    let mut rows = y.slice(s![0..4, ..]).to_owned();
    rows[(1, 4)] = f32::INFINITY;
    assert!(matches!(model.score(rows.view()).unwrap_err(), AutoencError::InfiniteValue { row: 1, .. }));
}

#[test]
fn explanations_and_reconstructions_speak_in_categories() {
    let Data { x, kinds, vocabularies, .. } = data();
    let model = fit(params(), &x, &kinds);
    // A camera's numbers (large messages over UDP) labelled as a sensor.
    let mut row = x.slice(s![0..1, ..]).to_owned();
    let camera = (0..x.nrows()).find(|&i| x[(i, 0)] == vocabularies[0].code(Some("camera")) as f32).unwrap();
    row.assign(&x.slice(s![camera..camera + 1, ..]));
    row[(0, 0)] = vocabularies[0].code(Some("sensor")) as f32;
    let explained = model.explain(row.view(), 6).unwrap();
    let device = explained[0].iter().find(|c| c.feature == "device").expect("device is explained");
    let mismatch = device.category.as_ref().expect("a categorical explanation");
    assert_eq!(mismatch.got, "\"sensor\"");
    assert_eq!(mismatch.expected, "\"camera\"", "{device}");
    assert!(mismatch.probability > 0.5 && mismatch.probability <= 1.0);
    assert!(device.to_string().starts_with("device: got \"sensor\", expected \"camera\" (p="), "{device}");
    assert!(explained[0].iter().filter(|c| c.feature.starts_with("log_")).all(|c| c.category.is_none()));

    let reconstruction = model.reconstruct(row.view()).unwrap();
    assert_eq!(reconstruction[(0, 0)], vocabularies[0].code(Some("camera")) as f32);
    let code = model.encode(row.view()).unwrap();
    let decoded = model.decode(code.view()).unwrap();
    assert_eq!(decoded[(0, 0)], reconstruction[(0, 0)]);
}

#[test]
fn generated_rows_hold_valid_codes() {
    let Data { x, kinds, .. } = data();
    let model = fit(params().variant(Variant::Variational { beta: 0.5 }), &x, &kinds);
    let rows = model.generate(200, 4).unwrap();
    for (j, kind) in kinds.iter().enumerate() {
        if let Some(vocabulary) = kind.vocabulary() {
            assert!(rows.column(j).iter().all(|&c| c.fract() == 0.0 && (c as usize) < vocabulary.width()));
        }
    }
    assert!(model.score(rows.view()).unwrap().iter().all(|s| s.is_finite()));
}

#[test]
fn missing_numbers_are_imputed_and_left_out_of_the_score() {
    let Data { x, kinds, y, .. } = data();
    let model = fit(params(), &x, &kinds);
    let mut rows = y.slice(s![0..5, ..]).to_owned();
    rows[(0, 3)] = f32::NAN;
    rows[(1, 3)] = f32::NAN;
    rows[(1, 4)] = f32::NAN;
    rows[(1, 5)] = f32::NAN;
    let details = model.score_details(rows.view()).unwrap();
    assert!(details.feature_errors[(0, 3)].is_nan());
    assert!(details.scores.iter().all(|s| s.is_finite()));
    // The score is the mean of the observed features' errors.
    let observed: Vec<f64> = details.feature_errors.row(1).iter().filter(|e| !e.is_nan()).map(|&e| e as f64).collect();
    assert_eq!(observed.len(), 3);
    assert!((details.scores[1] - observed.iter().sum::<f64>() / 3.0).abs() < 1e-9);
    // Missing values in the training data are fine too.
    let mut holes = x.clone();
    for i in (0..holes.nrows()).step_by(7) {
        holes[(i, 4)] = f32::NAN;
    }
    let model = fit(params(), &holes, &kinds);
    assert!(model.score(y.view()).unwrap().iter().all(|s| s.is_finite()));
}

#[test]
fn warm_start_partial_fit_and_recalibration_keep_the_vocabularies() {
    let Data { x, kinds, y, labels, .. } = data();
    let mut model = fit(params().epochs(3), &x, &kinds);
    let early = roc_auc(model.score(y.view()).unwrap().as_slice().unwrap(), &labels).unwrap();
    model.continue_training(x.view(), 12, &mut |_| {}).unwrap();
    let later = roc_auc(model.score(y.view()).unwrap().as_slice().unwrap(), &labels).unwrap();
    assert!(later > 0.9 && later >= early - 0.02, "warm start: {early} then {later}");
    let loss = model.partial_fit(x.slice(s![0..500, ..])).unwrap();
    assert!(loss.is_finite());
    model.recalibrate(x.view()).unwrap();
    assert_eq!(model.feature_kinds(), kinds.as_slice());
    let flagged = model.score(x.view()).unwrap().iter().filter(|&&s| model.is_anomaly(s)).count();
    assert!((flagged as f64 / x.nrows() as f64 - 0.1).abs() < 0.02, "threshold at the 10 % contamination");
}

#[test]
fn a_wide_category_weighs_what_one_number_weighs() {
    // Six numbers the model can learn, and a column of 60 values drawn at random: nothing predicts it,
    // so its error is about that of a uniform guess, which the scale makes 1 — not 60 times a number's.
    let events = device_events(3000, 0.0, 5);
    let (numbers, _) = events.one_hot(&events.vocabularies(64).unwrap());
    let mut x = Array2::zeros((3000, 7));
    let mut state = 12345u64;
    for i in 0..3000 {
        for j in 0..3 {
            x[(i, j)] = numbers[(i, numbers.ncols() - 3 + j)];
            x[(i, j + 3)] = 2.0 * numbers[(i, numbers.ncols() - 3 + j)];
        }
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        x[(i, 6)] = ((state >> 33) % 60) as f32;
    }
    let vocabulary = Vocabulary::new((0..60).map(|k| format!("v{k}")).collect()).unwrap();
    let mut kinds = vec![FeatureKind::Numeric; 6];
    kinds.push(FeatureKind::Categorical { vocabulary });
    let names: Vec<String> = (0..7).map(|j| format!("f{j}")).collect();
    let model = params().check().unwrap().fit_with_kinds(x.view(), names, kinds, &mut |_| {}).unwrap();
    let details = model.score_details(x.view()).unwrap();
    let mean = |j: usize| details.feature_errors.column(j).iter().map(|&e| e as f64).sum::<f64>() / 3000.0;
    let wide = mean(6);
    assert!((0.85..1.15).contains(&wide), "an unpredictable 60-value column costs about 1, got {wide}");
    let share = wide / (0..7).map(mean).sum::<f64>();
    assert!(share < 0.9, "and is one feature among seven, not the whole score: {share}");
}

#[test]
fn what_cannot_take_categories_says_so() {
    let Data { x, kinds, .. } = data();
    let bce =
        params().loss(Loss::Bce).output_activation(autoenc::Activation::Sigmoid).scaling(autoenc::Scaling::Minmax);
    let err = bce.check().unwrap().fit_with_kinds(x.view(), names(), kinds.clone(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, AutoencError::CategoricalWithBce { ref feature } if feature == "device"), "{err}");
    let sigmoid = params().output_activation(autoenc::Activation::Sigmoid);
    let err = sigmoid.check().unwrap().fit_with_kinds(x.view(), names(), kinds.clone(), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("identity"), "{err}");
    let err = params().max_categories(0).check().unwrap_err();
    assert!(err.to_string().contains("max_categories"), "{err}");
    assert!(params().max_categories(autoenc::limits::MAX_CATEGORIES + 1).check().is_err());
    let model = fit(params(), &x, &kinds);
    let err = autoenc::onnx::export(&model).unwrap_err();
    assert!(err.to_string().contains("'device' is categorical"), "{err}");
}
