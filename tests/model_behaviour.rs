//! Behaviour of trained models through the library API: the theory check against PCA, reproducibility,
//! the model file, missing values, thresholds, warm starts and incremental training, and every
//! bad-input error.

use autoenc::synthetic::sensor_stream;
use autoenc::{
    Activation, AutoencError, Autoencoder, EarlyStopping, LatentSize, Loss, Noise, OptimizerKind, Scaling, Sparsity,
    Variant,
};
use ndarray::{Array2, s};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Rows on a `rank`-dimensional subspace of `d` dimensions plus isotropic noise.
fn low_rank(rows: usize, d: usize, rank: usize, noise: f64, seed: u64) -> Array2<f32> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
    let basis = Array2::from_shape_simple_fn((rank, d), &mut normal);
    let factors = Array2::from_shape_fn((rows, rank), |(_, k)| normal() * (3.0 - k as f64 * 0.7));
    let noise = Array2::from_shape_simple_fn((rows, d), || normal() * noise);
    (factors.dot(&basis) + noise).mapv(|v| v as f32)
}

fn quick() -> autoenc::AutoencoderParams {
    Autoencoder::params().epochs(5).record_timings(false)
}

/// A linear autoencoder with the squared loss learns the top-k principal subspace (Baldi & Hornik 1989),
/// so its reconstruction error must come within 2 % of PCA's with the same k — and cannot beat it.
#[test]
fn linear_autoencoder_reaches_the_pca_reconstruction_error() {
    let x = low_rank(2000, 10, 3, 0.3, 1);
    let k = 3;
    let model = Autoencoder::params()
        .variant(Variant::Plain)
        .latent(LatentSize::Fixed(k))
        .hidden(Some(vec![]))
        .activation(Activation::Identity)
        .trim_fraction(0.0) // the theorem is about the plain squared loss over every row
        .learning_rate(0.01)
        .epochs(150)
        .batch_size(100)
        .fit(x.view())
        .unwrap();
    // Compare in the model's scaled space, where both are measured.
    let scaled = model.scaler().transform(x.view(), model.feature_names()).unwrap().values;
    let pca = autoenc::pca::Pca::fit(scaled.view()).unwrap();
    let pca_mse = pca.reconstruction_mse(scaled.view(), k);
    let ae_mse = model.mean_score(x.view()).unwrap();
    assert!(ae_mse <= pca_mse * 1.02, "autoencoder {ae_mse} vs PCA {pca_mse}");
    assert!(ae_mse >= pca_mse * 0.999, "a linear autoencoder cannot beat PCA: {ae_mse} vs {pca_mse}");
}

#[test]
fn automatic_latent_size_follows_the_spectrum() {
    let x = low_rank(1500, 12, 3, 0.05, 2);
    let model = quick().variant(Variant::Plain).fit(x.view()).unwrap();
    assert_eq!(model.latent_size(), 3, "three strong directions explain > 95 % of the variance");
    let ratios = model.explained_variance().unwrap();
    assert!(ratios[..3].iter().sum::<f64>() >= 0.95 && ratios[..2].iter().sum::<f64>() < 0.95);
}

#[test]
fn same_seed_and_data_give_byte_identical_files_and_threads_do_not_matter() {
    let x = low_rank(800, 8, 2, 0.1, 3);
    let params = quick().seed(42).check().unwrap();
    let reference = params.fit(x.view()).unwrap().to_bytes().unwrap();
    // Train concurrently on other threads: same bytes.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (p, data) = (params.clone(), x.clone());
            std::thread::spawn(move || p.fit(data.view()).unwrap().to_bytes().unwrap())
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap() == reference, "a model trained on another thread differs");
    }
    let other_seed = quick().seed(43).fit(x.view()).unwrap().to_bytes().unwrap();
    assert!(other_seed != reference);
    // With timings recorded only the durations differ.
    let timed = Autoencoder::params().epochs(5).seed(42).fit(x.view()).unwrap();
    assert!(timed.report().epochs.iter().all(|e| e.duration_ms.is_some()));
}

#[test]
fn model_file_round_trips_every_variant() {
    let x = low_rank(400, 6, 2, 0.2, 4);
    let dir = tempfile::tempdir().unwrap();
    let variants = [
        Variant::Plain,
        Variant::Denoising { noise: Noise::SaltPepper { fraction: 0.1 } },
        Variant::Sparse { sparsity: Sparsity::TopK { k: 2 } },
        Variant::Sparse { sparsity: Sparsity::Kl { rho: 0.1, beta: 0.1 } },
        Variant::Contractive { lambda: 0.1 },
        Variant::Variational { beta: 1.0 },
    ];
    for variant in variants {
        let model = quick().variant(variant).latent(LatentSize::Fixed(3)).fit(x.view()).unwrap();
        let path = dir.path().join(format!("{}.ae", variant.name()));
        model.save(&path).unwrap();
        let loaded = Autoencoder::load(&path).unwrap();
        assert_eq!(loaded.score(x.view()).unwrap(), model.score(x.view()).unwrap(), "{variant:?}");
        assert_eq!(loaded.encode(x.view()).unwrap(), model.encode(x.view()).unwrap());
        assert_eq!(loaded.threshold(), model.threshold());
        assert_eq!(loaded.sketch(), model.sketch());
        assert_eq!(loaded.report(), model.report());
        assert_eq!(loaded.params_used(), model.params_used());
        assert_eq!(loaded.to_bytes().unwrap(), model.to_bytes().unwrap(), "re-saving is lossless");
    }
}

#[test]
fn damaged_model_files_are_clear_errors() {
    let x = low_rank(300, 5, 2, 0.2, 5);
    let bytes = quick().latent(LatentSize::Fixed(2)).fit(x.view()).unwrap().to_bytes().unwrap();
    // Every truncation fails cleanly.
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        let err = Autoencoder::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(matches!(err, AutoencError::ModelFile(_)), "cut {cut}: {err}");
    }
    // A flipped bit in the weights is caught by the checksum.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 40;
    flipped[last] ^= 0x10;
    let err = Autoencoder::from_bytes(&flipped).unwrap_err().to_string();
    assert!(err.contains("corrupted"), "{err}");
    // Garbage and a foreign safetensors file.
    assert!(Autoencoder::from_bytes(b"definitely not a model").is_err());
    let foreign = safetensors::tensor::serialize(
        vec![("w", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0, 0, 0, 0]).unwrap())],
        None,
    )
    .unwrap();
    assert!(Autoencoder::from_bytes(&foreign).unwrap_err().to_string().contains("no metadata"));
    // A newer format version is refused with an upgrade hint.
    let newer = replace_bytes(&bytes, br#"format_version\":2,"#, br#"format_version\":9,"#);
    let err = Autoencoder::from_bytes(&newer).unwrap_err();
    assert!(matches!(err, AutoencError::UnsupportedFormatVersion { found: 9, .. }), "{err}");
    // A missing file names the path.
    let err = Autoencoder::load("/nonexistent/model.ae").unwrap_err().to_string();
    assert!(err.contains("/nonexistent/model.ae"), "{err}");
}

#[test]
fn missing_values_are_imputed_and_left_out_of_the_score() {
    let x = low_rank(1500, 8, 2, 0.05, 6);
    // Untrimmed: robust training gives up fidelity on the tails, and this test measures fidelity.
    let model = quick()
        .variant(Variant::Plain)
        .trim_fraction(0.0)
        .latent(LatentSize::Fixed(2))
        .epochs(30)
        .fit(x.view())
        .unwrap();
    let mut holed = x.slice(s![..50, ..]).to_owned();
    for i in 0..50 {
        holed[(i, i % 8)] = f32::NAN;
    }
    let filled = model.reconstruct(holed.view()).unwrap();
    let scale = model.scaler().scale.clone();
    let mut imputation_error = 0.0;
    for i in 0..50 {
        let j = i % 8;
        assert!(filled[(i, j)].is_finite());
        imputation_error += ((filled[(i, j)] - x[(i, j)]) / scale[j]).powi(2) as f64;
    }
    // Filling with the mean would err by about one variance (1.0 in std units); the model must do far better.
    assert!(imputation_error / 50.0 < 0.25, "mean squared imputation error {}", imputation_error / 50.0);
    let details = model.score_details(holed.view()).unwrap();
    assert!(details.feature_errors[(0, 0)].is_nan(), "missing features carry no error");
    assert!(details.scores.iter().all(|s| s.is_finite()));
    // Training with missing values works and is masked.
    let mut train = x.clone();
    for i in (0..1500).step_by(7) {
        train[(i, (i / 7) % 8)] = f32::NAN;
    }
    let masked = quick().fit(train.view()).unwrap();
    assert!(masked.score(x.view()).unwrap().iter().all(|s| s.is_finite()));
    // A row with nothing observed cannot be scored.
    let empty_row = Array2::from_elem((1, 8), f32::NAN);
    assert!(matches!(model.score(empty_row.view()).unwrap_err(), AutoencError::AllMissing { row: 0 }));
}

#[test]
fn thresholds_percentiles_and_detection_on_injected_anomalies() {
    let data = sensor_stream(6000, 12, 3000, 0.02, 9);
    let model = Autoencoder::params().contamination(0.01).seed(1).fit(data.rows.slice(s![..3000, ..])).unwrap();
    let train_scores = model.score(data.rows.slice(s![..3000, ..])).unwrap();
    let flagged = train_scores.iter().filter(|&&s| model.is_anomaly(s)).count();
    assert!((20..=40).contains(&flagged), "contamination 1% of 3000 flags about 30, got {flagged}");
    let max = train_scores.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(model.percentile(max + 1.0), 1.0);
    assert_eq!(model.percentile(-1.0), 0.0);
    let scores = model.score(data.rows.slice(s![3000.., ..])).unwrap().to_vec();
    let auc = autoenc::metrics::roc_auc(&scores, &data.labels[3000..]).unwrap();
    assert!(auc > 0.85, "injected anomalies should stand out, ROC-AUC {auc}");
    let top = model.explain(data.rows.slice(s![3000..3010, ..]), 3).unwrap();
    assert!(top.iter().all(|row| row.len() == 3 && row[0].error >= row[1].error && row[1].error >= row[2].error));
    let mut explicit = model.clone();
    explicit.set_threshold(0.5).unwrap();
    assert!(explicit.is_anomaly(0.51) && !explicit.is_anomaly(0.5));
    assert!(explicit.set_threshold(f64::NAN).is_err());
}

#[test]
fn early_stopping_keeps_the_best_epoch_and_reports_every_epoch() {
    let x = low_rank(1000, 8, 2, 0.3, 10);
    let stop = EarlyStopping { patience: 2, min_relative_improvement: 0.05 };
    let model =
        Autoencoder::params().epochs(200).validation_fraction(0.2).early_stopping(Some(stop)).fit(x.view()).unwrap();
    let report = model.report();
    assert!(report.stopped_early && report.epochs.len() < 200);
    assert_eq!(report.validation_rows, 200);
    assert!(report.epochs.iter().all(|e| e.validation_loss.is_some() && e.duration_ms.is_some()));
    let best = report.best_epoch.unwrap();
    let best_val = report.epochs[best - 1].validation_loss.unwrap();
    assert!(report.epochs.iter().all(|e| e.validation_loss.unwrap() >= best_val * (1.0 - 0.05) - 1e-12));
    assert!(report.to_table().contains("stopped early"));
}

#[test]
fn warm_start_and_partial_fit_continue_training() {
    let x = low_rank(2000, 8, 2, 0.1, 11);
    let mut model = quick().variant(Variant::Plain).epochs(1).latent(LatentSize::Fixed(2)).fit(x.view()).unwrap();
    let before = model.mean_score(x.view()).unwrap();
    model.continue_training(x.view(), 10, &mut |_| {}).unwrap();
    let after = model.mean_score(x.view()).unwrap();
    assert!(after < before * 0.8, "warm start keeps learning: {before} -> {after}");
    assert_eq!(model.report().epochs.len(), 11);
    let threshold = model.threshold();
    for chunk in 0..10 {
        model.partial_fit(x.slice(s![chunk * 200..(chunk + 1) * 200, ..])).unwrap();
    }
    assert!(model.mean_score(x.view()).unwrap() < after, "partial_fit keeps improving");
    assert_eq!(model.threshold(), threshold, "partial_fit leaves the threshold alone");
    assert_eq!(model.report().epochs.len(), 21);
    model.recalibrate(x.view()).unwrap();
    assert_ne!(model.threshold(), threshold);
    // Survives a save/load cycle and continues from a file.
    let mut loaded = Autoencoder::from_bytes(&model.to_bytes().unwrap()).unwrap();
    loaded.partial_fit(x.slice(s![..200, ..])).unwrap();
}

#[test]
fn every_variant_optimiser_loss_and_scaling_trains_to_a_finite_model() {
    let x = low_rank(500, 6, 2, 0.2, 12);
    let unit = x.mapv(|v| 1.0 / (1.0 + (-v).exp()));
    let cases = vec![
        quick().optimizer(OptimizerKind::Sgd).learning_rate(0.01),
        quick().variant(Variant::Denoising { noise: Noise::Gaussian { std: 0.2 } }),
        quick().variant(Variant::Sparse { sparsity: Sparsity::L1 { lambda: 0.01 } }),
        quick().variant(Variant::Variational { beta: 0.5 }).hidden(Some(vec![8, 4])),
        quick().scaling(Scaling::Minmax).loss(Loss::Bce).output_activation(Activation::Sigmoid),
        quick().scaling(Scaling::None).weight_decay(1e-4),
        quick().activation(Activation::Elu).decoder_hidden(Some(vec![5, 5])),
    ];
    for params in cases {
        let model = params.fit(unit.view()).unwrap();
        assert!(model.score(unit.view()).unwrap().iter().all(|s| s.is_finite() && *s >= 0.0));
    }
}

#[test]
fn variational_models_generate_plausible_rows_and_others_refuse() {
    let x = low_rank(2000, 6, 2, 0.1, 13);
    let vae = Autoencoder::params().variant(Variant::Variational { beta: 1.0 }).epochs(20).fit(x.view()).unwrap();
    let generated = vae.generate(500, 7).unwrap();
    assert_eq!(generated.dim(), (500, 6));
    assert_eq!(generated, vae.generate(500, 7).unwrap(), "generation is seeded");
    // Generated rows look like the data: their per-feature means are within half a std of the data's.
    let (data_mean, gen_mean) =
        (x.mean_axis(ndarray::Axis(0)).unwrap(), generated.mean_axis(ndarray::Axis(0)).unwrap());
    for j in 0..6 {
        assert!((data_mean[j] - gen_mean[j]).abs() < 0.5 * vae.scaler().scale[j], "feature {j}");
    }
    let plain = quick().fit(x.view()).unwrap();
    assert!(matches!(plain.generate(3, 0).unwrap_err(), AutoencError::NotVariational(_)));
}

#[test]
fn bad_input_is_a_clear_error() {
    let x = low_rank(200, 5, 2, 0.2, 14);
    let model = quick().latent(LatentSize::Fixed(2)).fit(x.view()).unwrap();
    let wrong = Array2::<f32>::zeros((3, 4));
    assert_eq!(model.score(wrong.view()).unwrap_err().to_string(), "wrong dimension: expected 5 features, got 4");
    assert!(matches!(model.encode(wrong.view()).unwrap_err(), AutoencError::DimensionMismatch { .. }));
    assert!(matches!(model.decode(wrong.view()).unwrap_err(), AutoencError::DimensionMismatch { expected: 2, got: 4 }));
    let mut infinite = x.slice(s![..3, ..]).to_owned();
    infinite[(2, 4)] = f32::INFINITY;
    for err in [model.score(infinite.view()).unwrap_err(), model.encode(infinite.view()).unwrap_err()] {
        assert!(matches!(&err, AutoencError::InfiniteValue { row: 2, feature } if feature == "f4"), "{err}");
    }
    assert!(matches!(quick().fit(infinite.view()).unwrap_err(), AutoencError::InfiniteValue { row: 2, .. }));
    assert!(matches!(quick().fit(Array2::<f32>::zeros((0, 5)).view()).unwrap_err(), AutoencError::EmptyInput));
    assert!(matches!(quick().fit(Array2::<f32>::zeros((5, 0)).view()).unwrap_err(), AutoencError::NoFeatures));
    let err = quick().variant(Variant::Plain).latent(LatentSize::Fixed(5)).fit(x.view()).unwrap_err();
    assert!(matches!(err, AutoencError::LatentNotSmaller { latent: 5, input: 5 }));
    // Sparse codes may be overcomplete, but top-k cannot keep more units than the code has.
    assert!(
        quick()
            .variant(Variant::Sparse { sparsity: Sparsity::L1 { lambda: 0.01 } })
            .latent(LatentSize::Fixed(8))
            .fit(x.view())
            .is_ok()
    );
    let err = quick()
        .variant(Variant::Sparse { sparsity: Sparsity::TopK { k: 4 } })
        .latent(LatentSize::Fixed(3))
        .fit(x.view());
    assert!(matches!(err.unwrap_err(), AutoencError::InvalidTopK { k: 4, latent: 3 }));
    let err = quick()
        .scaling(Scaling::None)
        .loss(Loss::Bce)
        .output_activation(Activation::Sigmoid)
        .fit(x.view())
        .unwrap_err();
    assert!(matches!(err, AutoencError::BceOutOfRange { .. }), "{err}");
    assert!(matches!(model.explain(x.view(), 0).unwrap_err(), AutoencError::ZeroExplainK));
    let diverging = quick().variant(Variant::Plain).optimizer(OptimizerKind::Sgd).learning_rate(1e6).fit(x.view());
    assert!(diverging.unwrap_err().to_string().contains("diverged"));
}

fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let at = haystack.windows(needle.len()).position(|w| w == needle).expect("pattern present");
    let mut out = haystack.to_vec();
    out[at..at + needle.len()].copy_from_slice(with);
    out
}
