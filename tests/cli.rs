//! The `autoenc` command line end to end: every subcommand on real files, and every bad input giving a
//! clear message and a non-zero exit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, FixedSizeListArray, Float32Array, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use autoenc::Autoencoder;
use autoenc::io::table::{FeatureSelection, feature_matrix, read_table, write_table};

mod common;
use common::{fails, ok, p};

/// A CSV of sensor rows with a label column (anomalies injected after row 300) and a text column
/// (`site`, one value: a categorical feature unless excluded).
fn sensor_csv(dir: &Path, rows: usize) -> PathBuf {
    let data = autoenc::synthetic::sensor_stream(rows, 5, 300, 0.05, 3);
    let mut text = String::from("s0,s1,s2,s3,s4,label,site\n");
    for (row, label) in data.rows.outer_iter().zip(&data.labels) {
        let values: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("{},{},north\n", values.join(","), u8::from(*label)));
    }
    let path = dir.join("sensors.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn train_score_encode_reconstruct_inspect_eval() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sensor_csv(dir.path(), 1200);
    let model = dir.path().join("m.ae");
    let printed =
        ok(&["train", p(&csv), "--exclude", "label,site", "--out", p(&model), "--epochs", "25", "--latent", "2"]);
    assert!(printed.contains("trained denoising (5 -> "), "{printed}");

    // score: the file's scores are the library's scores for the same rows.
    let scored = dir.path().join("scored.parquet");
    ok(&["score", p(&model), p(&csv), "--out", p(&scored), "--explain", "2"]);
    let batch = read_table(&scored).unwrap();
    assert_eq!(batch.num_rows(), 1200);
    for column in ["s0", "label", "site", "embedding", "score", "percentile", "is_anomaly", "explanation"] {
        assert!(batch.column_by_name(column).is_some(), "missing {column}");
    }
    let loaded = Autoencoder::load(&model).unwrap();
    let input = read_table(&csv).unwrap();
    let names: Vec<String> = (0..5).map(|j| format!("s{j}")).collect();
    let (x, _) = feature_matrix(&input, &FeatureSelection::Columns(names)).unwrap();
    let expected = loaded.score(x.view()).unwrap();
    let scores = batch.column_by_name("score").unwrap().as_primitive::<Float64Type>();
    assert_eq!(scores.values().to_vec(), expected.to_vec(), "CLI scores equal library scores");
    let embedding = batch.column_by_name("embedding").unwrap();
    assert_eq!(
        embedding.data_type(),
        &DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), 2)
    );
    let explanation = batch.column_by_name("explanation").unwrap().as_string::<i32>();
    assert_eq!(explanation.value(0).split(';').count(), 2);

    // CSV output spreads the embedding over columns.
    let encoded = dir.path().join("encoded.csv");
    ok(&["encode", p(&model), p(&csv), "--out", p(&encoded)]);
    let header = std::fs::read_to_string(&encoded).unwrap().lines().next().unwrap().to_string();
    assert!(header.ends_with("embedding_0,embedding_1"), "{header}");

    let reconstructed = dir.path().join("recon.arrow");
    ok(&["reconstruct", p(&model), p(&csv), "--out", p(&reconstructed)]);
    let recon = read_table(&reconstructed).unwrap();
    let list = recon.column_by_name("reconstruction").unwrap().as_fixed_size_list().clone();
    assert_eq!(list.value_length(), 5);

    let inspect = ok(&["inspect", p(&model)]);
    for needle in ["variant", "5 -> ", "threshold", "epoch", "s0, s1, s2, s3, s4"] {
        assert!(inspect.contains(needle), "inspect lacks {needle}:\n{inspect}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&["inspect", p(&model), "--json"])).unwrap();
    assert_eq!(json["report"]["epochs"].as_array().unwrap().len(), 25);

    let eval = ok(&["eval", p(&model), p(&csv), "--label-column", "label"]);
    let auc: f64 =
        eval.lines().find(|l| l.starts_with("ROC-AUC")).unwrap().split_whitespace().last().unwrap().parse().unwrap();
    assert!(auc > 0.8, "{eval}");

    // Warm start adds epochs to the report.
    let warmer = dir.path().join("warm.ae");
    ok(&["train", p(&csv), "--exclude", "label,site", "--out", p(&warmer), "--epochs", "3", "--warm-start", p(&model)]);
    assert_eq!(Autoencoder::load(&warmer).unwrap().report().epochs.len(), 28);
}

#[test]
fn same_seed_gives_byte_identical_model_files() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sensor_csv(dir.path(), 500);
    let (a, b) = (dir.path().join("a.ae"), dir.path().join("b.ae"));
    for out in [&a, &b] {
        ok(&[
            "train",
            p(&csv),
            "--exclude",
            "label,site",
            "--out",
            p(out),
            "--epochs",
            "3",
            "--seed",
            "9",
            "--no-timings",
        ]);
    }
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
}

#[test]
fn list_column_features_and_variational_generation() {
    let dir = tempfile::tempdir().unwrap();
    let data = autoenc::synthetic::sensor_stream(600, 4, 600, 0.0, 5);
    let values: Float32Array = data.rows.iter().copied().collect();
    let field = Arc::new(Field::new("item", DataType::Float32, false));
    let list = FixedSizeListArray::try_new(field, 4, Arc::new(values), None).unwrap();
    let ids: Float64Array = (0..600).map(|i| i as f64).collect();
    let schema = Schema::new(vec![
        Field::new("id", DataType::Float64, false),
        Field::new("features", list.data_type().clone(), false),
    ]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(ids), Arc::new(list)]).unwrap();
    let input = dir.path().join("lists.parquet");
    write_table(&input, &batch).unwrap();

    let model = dir.path().join("vae.ae");
    ok(&[
        "train",
        p(&input),
        "--features-column",
        "features",
        "--variant",
        "variational",
        "--latent",
        "2",
        "--epochs",
        "5",
        "--out",
        p(&model),
    ]);
    let scored = dir.path().join("scored.parquet");
    ok(&["score", p(&model), p(&input), "--out", p(&scored)]);
    assert_eq!(read_table(&scored).unwrap().num_rows(), 600);
    let generated = ok(&["generate", p(&model), "-n", "7", "--seed", "1"]);
    assert_eq!(generated.lines().count(), 8, "header plus 7 rows:\n{generated}");
    assert!(generated.starts_with("features[0],features[1]"));
}

#[test]
fn bad_inputs_fail_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sensor_csv(dir.path(), 400);
    let model = dir.path().join("m.ae");
    ok(&["train", p(&csv), "--features", "s0,s1,s2", "--out", p(&model), "--epochs", "2"]);
    let out = dir.path().join("out.parquet");

    assert!(
        fails(&["train", p(&csv), "--features", "s0,nope", "--out", p(&model)]).contains("column 'nope' not found")
    );
    // A text column is a categorical feature; a date column named as a feature is refused.
    let printed =
        ok(&["train", p(&csv), "--features", "s0,site", "--out", p(&dir.path().join("site.ae")), "--epochs", "1"]);
    assert!(printed.contains("site (categorical, 1 values)"), "{printed}");
    let err =
        fails(&["train", p(&csv), "--features", "s0,s1,s2", "--variant", "plain", "--latent", "3", "--out", p(&model)]);
    assert!(err.contains("latent size 3 is not smaller than the 3 input features"), "{err}");
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "s0,s1,s2\n").unwrap();
    assert!(fails(&["train", p(&empty), "--out", p(&model)]).contains("empty input"));
    assert!(fails(&["score", p(&model), p(&empty), "--out", p(&out)]).contains("empty input"));
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "s0,s1\n1,2\n").unwrap();
    assert!(fails(&["score", p(&model), p(&other), "--out", p(&out)]).contains("column 's2' not found"));
    let err = fails(&["score", p(&model), p(&csv), "--features", "s0,s1", "--out", p(&out)]);
    assert!(err.contains("wrong dimension: the model expects 3 features, the input gives 2"), "{err}");
    let infinite = dir.path().join("inf.csv");
    std::fs::write(&infinite, "s0,s1,s2\n1,2,3\n1,inf,3\n").unwrap();
    let err = fails(&["score", p(&model), p(&infinite), "--out", p(&out)]);
    assert!(err.contains("infinite value at row 1, feature 's1'"), "{err}");
    let garbage = dir.path().join("garbage.ae");
    std::fs::write(&garbage, b"not a model at all").unwrap();
    assert!(fails(&["score", p(&garbage), p(&csv), "--out", p(&out)]).contains("cannot read model"));
    assert!(fails(&["inspect", p(&garbage)]).contains("cannot read model"));
    assert!(fails(&["score", p(&dir.path().join("missing.ae")), p(&csv), "--out", p(&out)]).contains("missing.ae"));
    assert!(fails(&["score", p(&model), p(&csv), "--out", "out.xlsx"]).contains("unsupported file type"));
    assert!(fails(&["generate", p(&model)]).contains("not a variational model"));
    assert!(fails(&["train", p(&csv), "--variant", "fancy", "--out", p(&model)]).contains("unknown variant"));
    assert!(
        fails(&["train", p(&csv), "--exclude", "label,site", "--lr=-1", "--out", p(&model)]).contains("learning rate")
    );
    assert!(fails(&["eval", p(&model), p(&csv), "--label-column", "nope"]).contains("nope"));

    // A stray word in a numeric CSV column is named with its row.
    let stray = dir.path().join("stray.csv");
    std::fs::write(&stray, "a,b\n1,2\n3,oops\n5,6\n").unwrap();
    let err = fails(&["train", p(&stray), "--features", "a,b", "--out", p(&model)]);
    assert!(err.contains("column 'b' is not numeric (type Utf8; row 1 holds 'oops' among numbers"), "{err}");
    // Flags for another variant, and model flags on a warm start, are refused rather than ignored.
    let err =
        fails(&["train", p(&csv), "--exclude", "label,site", "--variant", "plain", "--beta", "3", "--out", p(&model)]);
    assert!(err.contains("--beta applies to --variant variational, not plain"), "{err}");
    let err = fails(&["train", p(&csv), "--warm-start", p(&model), "--lr", "0.1", "--out", p(&model)]);
    assert!(err.contains("remove --lr"), "{err}");
    let err =
        fails(&["train", p(&csv), "--exclude", "label,site", "--validation-fraction", "0.999", "--out", p(&model)]);
    assert!(err.contains("need at least 2 rows"), "{err}");
}

#[test]
fn train_falls_back_to_the_library_defaults_and_shows_them() {
    use autoenc::model::params::defaults;
    let dir = tempfile::tempdir().unwrap();
    let csv = sensor_csv(dir.path(), 200);
    let model = dir.path().join("m.ae");
    let trained = |flags: &[&str]| {
        let mut args = vec!["train", p(&csv), "--exclude", "label,site", "--epochs", "1", "--out", p(&model)];
        args.extend_from_slice(flags);
        ok(&args);
        Autoencoder::load(&model).unwrap().params_used().clone()
    };
    let library = Autoencoder::params().epochs(1).check().unwrap();
    assert_eq!(trained(&[]), library);
    assert_eq!(trained(&["--variant", "denoising"]).variant(), autoenc::Variant::default());
    assert_eq!(
        trained(&["--variant", "sparse", "--latent", "4"]).variant(),
        autoenc::Variant::Sparse { sparsity: autoenc::Sparsity::default_top_k(Some(4)) }
    );
    assert_eq!(
        trained(&["--variant", "contractive"]).variant(),
        autoenc::Variant::Contractive { lambda: defaults::CONTRACTIVE_LAMBDA }
    );
    assert_eq!(
        trained(&["--variant", "vae"]).variant(),
        autoenc::Variant::Variational { beta: defaults::VARIATIONAL_BETA }
    );
    // The help prints the same constants, in the form the flags take.
    let help = ok(&["train", "--help"]);
    for shown in ["[default: denoising]", "[default: masking:0.3]", "[default: 0.95]", "[default: 0.001]"] {
        assert!(help.contains(shown), "{shown} missing from:\n{help}");
    }
}

#[test]
fn variant_flags_imply_their_variant_and_bce_sets_up_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sensor_csv(dir.path(), 300);
    let model = dir.path().join("m.ae");
    let printed = ok(&[
        "train",
        p(&csv),
        "--exclude",
        "label,site",
        "--noise",
        "gaussian:0.2",
        "--epochs",
        "2",
        "--out",
        p(&model),
    ]);
    assert!(printed.starts_with("features: s0, s1, s2, s3, s4\n"), "{printed}");
    let params = Autoencoder::load(&model).unwrap().params_used().clone();
    assert_eq!(params.variant(), autoenc::Variant::Denoising { noise: autoenc::Noise::Gaussian { std: 0.2 } });
    ok(&["train", p(&csv), "--exclude", "label,site", "--loss", "bce", "--epochs", "2", "--out", p(&model)]);
    let params = Autoencoder::load(&model).unwrap().params_used().clone();
    assert_eq!(
        (params.scaling(), params.output_activation()),
        (autoenc::Scaling::Minmax, autoenc::Activation::Sigmoid)
    );
    // Warm start reuses the model's features: no --exclude needed.
    ok(&["train", p(&csv), "--warm-start", p(&model), "--epochs", "1", "--out", p(&model)]);
    assert_eq!(Autoencoder::load(&model).unwrap().report().epochs.len(), 3);
}

#[test]
fn compressed_arrow_files_and_rescored_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sensor_csv(dir.path(), 300);
    let model = dir.path().join("m.ae");
    ok(&["train", p(&csv), "--exclude", "label,site", "--epochs", "2", "--latent", "2", "--out", p(&model)]);
    // An lz4-compressed Arrow IPC file, as pyarrow's write_feather makes by default.
    let batch = read_table(&csv).unwrap();
    let arrow_path = dir.path().join("compressed.arrow");
    let options = arrow::ipc::writer::IpcWriteOptions::default()
        .try_with_compression(Some(arrow::ipc::CompressionType::LZ4_FRAME))
        .unwrap();
    let file = std::fs::File::create(&arrow_path).unwrap();
    let mut writer = arrow::ipc::writer::FileWriter::try_new_with_options(file, &batch.schema(), options).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    let scored = dir.path().join("scored.csv");
    ok(&["score", p(&model), p(&arrow_path), "--out", p(&scored)]);
    // Scoring the scored CSV again replaces the old output columns.
    let rescored = dir.path().join("rescored.csv");
    ok(&["score", p(&model), p(&scored), "--out", p(&rescored)]);
    let header = std::fs::read_to_string(&rescored).unwrap().lines().next().unwrap().to_string();
    assert_eq!(header.matches("embedding_0").count(), 1, "{header}");
    assert_eq!(header.matches(",score,").count(), 1, "{header}");
}

/// The Arrow bridge's rule for a column with no value at all (CSV reads an empty column as type Null):
/// named beside others, it is a feature whose every value is missing, imputed as a partly empty column
/// is; the same rows give the scores the library gives with those values NaN. Every feature empty
/// leaves no row with a value, which is refused.
#[test]
fn an_empty_feature_column_is_missing_values() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sensor_csv(dir.path(), 400);
    let model = dir.path().join("m.ae");
    ok(&["train", p(&csv), "--exclude", "label,site", "--out", p(&model), "--epochs", "3", "--latent", "2"]);
    let mut text = String::from("s0,s1,s2,s3,s4\n");
    for i in 0..5 {
        text.push_str(&format!("{}.5,0.25,,1.0,-{i}.0\n", i));
    }
    let empty = dir.path().join("empty_s2.csv");
    std::fs::write(&empty, &text).unwrap();
    let scored = dir.path().join("scored.parquet");
    ok(&["score", p(&model), p(&empty), "--out", p(&scored)]);
    let batch = read_table(&scored).unwrap();
    let scores: Vec<f64> =
        batch.column_by_name("score").unwrap().as_primitive::<Float64Type>().values().iter().copied().collect();
    let names: Vec<String> = ["s0", "s1", "s2", "s3", "s4"].map(String::from).to_vec();
    let input = read_table(&empty).unwrap();
    assert_eq!(input.schema().field_with_name("s2").unwrap().data_type(), &DataType::Null);
    let (x, _) = feature_matrix(&input, &FeatureSelection::Columns(names)).unwrap();
    assert!(x.column(2).iter().all(|v| v.is_nan()));
    let expected = Autoencoder::load(&model).unwrap().score(x.view()).unwrap();
    assert_eq!(scores, expected.to_vec());

    std::fs::write(&empty, "s0,s1,s2,s3,s4\n,,,,\n,,,,\n").unwrap();
    let error = fails(&["score", p(&model), p(&empty), "--out", p(&scored)]);
    assert!(error.contains("no row holds a value"), "{error}");
}
