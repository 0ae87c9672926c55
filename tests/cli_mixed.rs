//! The command line on mixed tables: text and boolean columns picked as categorical features, CSV and
//! Parquet alike, the vocabularies in the model file, values never seen counted, explanations and
//! reconstructions in the data's own terms, time columns refused, and the real penguins table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::Float64Type;
use autoenc::Autoencoder;
use autoenc::io::table::{model_features, read_table, write_table};
use autoenc::metrics::roc_auc;
use autoenc::synthetic_devices::device_events;

mod common;
use common::{autoenc, fails, ok, p};

/// Device events as CSV (text and `true`/`false` columns) with a `label` column.
fn events_csv(dir: &Path, name: &str, rows: usize, anomaly_rate: f64, seed: u64) -> PathBuf {
    let events = device_events(rows, anomaly_rate, seed);
    let mut text = String::from("device,protocol,encrypted,log_bytes,log_packets,duration,label\n");
    for i in 0..rows {
        text.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            events.device[i],
            events.protocol[i],
            events.encrypted[i],
            events.log_bytes[i],
            events.log_packets[i],
            events.duration[i],
            u8::from(events.labels[i])
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn scores_of(path: &Path) -> Vec<f64> {
    let batch = read_table(path).unwrap();
    batch.column_by_name("score").unwrap().as_primitive::<Float64Type>().values().to_vec()
}

#[test]
fn text_and_boolean_columns_train_score_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let train = events_csv(dir.path(), "train.csv", 3000, 0.0, 1);
    let test = events_csv(dir.path(), "test.csv", 2000, 0.1, 2);
    let model_path = dir.path().join("m.ae");
    let printed = ok(&[
        "train",
        p(&train),
        "--exclude",
        "label",
        "--out",
        p(&model_path),
        "--epochs",
        "15",
        "--latent",
        "4",
        "--seed",
        "3",
    ]);
    assert!(printed.contains("device (categorical, 4 values), protocol (categorical, 4 values)"), "{printed}");
    assert!(printed.contains("encrypted (categorical, 2 values), log_bytes"), "{printed}");

    let inspected = ok(&["inspect", p(&model_path)]);
    assert!(inspected.contains("format          autoenc v3"), "{inspected}");
    assert!(
        inspected.contains("categorical     device: sensor, camera, gateway, phone (then other, NULL)"),
        "{inspected}"
    );
    let model = Autoencoder::load(&model_path).unwrap();
    assert!(model.has_categories());
    let device = model.feature_kinds()[0].vocabulary().unwrap();
    assert_eq!(device.values(), ["sensor", "camera", "gateway", "phone"], "most frequent first");

    // The file's scores are the library's for the same rows, coded through the same bridge.
    let scored = dir.path().join("scored.parquet");
    ok(&["score", p(&model_path), p(&test), "--out", p(&scored), "--explain", "2"]);
    let batch = read_table(&test).unwrap();
    let (x, unknown) = model_features(&batch, model.feature_names(), model.feature_kinds()).unwrap();
    assert!(unknown.iter().all(|&c| c == 0));
    let library = model.score(x.view()).unwrap();
    let from_cli = scores_of(&scored);
    assert!(library.iter().zip(&from_cli).all(|(a, b)| a.to_bits() == b.to_bits()));
    let labels: Vec<bool> = batch
        .column_by_name("label")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>()
        .values()
        .iter()
        .map(|&l| l == 1)
        .collect();
    let auc = roc_auc(&from_cli, &labels).unwrap();
    assert!(auc > 0.9, "ROC-AUC {auc}");

    // Explanations name what was seen and what was expected.
    let out = read_table(&scored).unwrap();
    let explanations = out.column_by_name("explanation").unwrap().as_string::<i32>().clone();
    let anomalous = (0..out.num_rows()).find(|&i| labels[i] && explanations.value(i).contains("(got ")).unwrap();
    let text = explanations.value(anomalous);
    assert!(text.contains(", expected \"") && text.contains(", p="), "{text}");

    // Reconstructions give the most likely value of each categorical feature as text.
    let reconstructed = dir.path().join("reconstructed.parquet");
    ok(&["reconstruct", p(&model_path), p(&test), "--out", p(&reconstructed)]);
    let out = read_table(&reconstructed).unwrap();
    let devices = out.column_by_name("reconstruction_device").unwrap().as_string::<i32>().clone();
    let given = batch.column_by_name("device").unwrap().as_string::<i32>().clone();
    let agree = (0..out.num_rows()).filter(|&i| !labels[i] && devices.value(i) == given.value(i)).count();
    let normal = labels.iter().filter(|&&l| !l).count();
    // Gateways and phones share TCP and overlap in size, so not every one comes back as itself.
    assert!(agree as f64 > 0.8 * normal as f64, "normal rows reconstruct their own device: {agree} of {normal}");

    // Embeddings work on mixed rows.
    let embedded = dir.path().join("embedded.parquet");
    ok(&["encode", p(&model_path), p(&test), "--out", p(&embedded)]);
    let out = read_table(&embedded).unwrap();
    assert_eq!(out.column_by_name("embedding").unwrap().as_fixed_size_list().value_length(), 4);

    // ONNX export says why it cannot.
    let err = fails(&["export", p(&model_path), "--onnx", p(&dir.path().join("m.onnx"))]);
    assert!(err.contains("'device' is categorical"), "{err}");
}

#[test]
fn parquet_dictionaries_and_values_never_seen() {
    let dir = tempfile::tempdir().unwrap();
    let events = device_events(2000, 0.0, 4);
    let batch = events.record_batch().unwrap();
    // The same table with `device` dictionary-encoded, as Parquet writers often store text.
    let dictionary = arrow::compute::cast(
        batch.column_by_name("device").unwrap(),
        &arrow::datatypes::DataType::Dictionary(
            Box::new(arrow::datatypes::DataType::Int16),
            Box::new(arrow::datatypes::DataType::Utf8),
        ),
    )
    .unwrap();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns[0] = dictionary;
    let schema = Arc::new(arrow::datatypes::Schema::new(
        batch
            .schema()
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect::<Vec<_>>(),
    ));
    let table = dir.path().join("events.parquet");
    write_table(&table, &RecordBatch::try_new(schema, columns).unwrap()).unwrap();
    let model = dir.path().join("m.ae");
    ok(&["train", p(&table), "--exclude", "label", "--out", p(&model), "--epochs", "5", "--latent", "3"]);

    // Scoring rows with a device and a protocol never seen, and a NULL: scored as other, counted.
    let new_rows = RecordBatch::try_from_iter(vec![
        ("device", Arc::new(StringArray::from(vec![Some("toaster"), Some("sensor"), None])) as ArrayRef),
        ("protocol", Arc::new(StringArray::from(vec!["mqtt", "gopher", "mqtt"])) as ArrayRef),
        ("encrypted", Arc::new(arrow::array::BooleanArray::from(vec![false, false, true])) as ArrayRef),
        ("log_bytes", Arc::new(arrow::array::Float32Array::from(vec![2.0, 2.1, 1.9])) as ArrayRef),
        ("log_packets", Arc::new(arrow::array::Float32Array::from(vec![0.6, 0.7, 0.5])) as ArrayRef),
        ("duration", Arc::new(arrow::array::Float32Array::from(vec![0.5, 0.5, 0.6])) as ArrayRef),
    ])
    .unwrap();
    let unseen = dir.path().join("unseen.parquet");
    write_table(&unseen, &new_rows).unwrap();
    let scored = dir.path().join("scored.parquet");
    let printed = ok(&["score", p(&model), p(&unseen), "--out", p(&scored)]);
    assert!(printed.contains("scored as other: device 1, protocol 1"), "{printed}");
    let out = read_table(&scored).unwrap();
    let counts = out.schema().metadata().get("autoenc.unknown_categories").cloned().unwrap();
    let counts: serde_json::Value = serde_json::from_str(&counts).unwrap();
    assert_eq!(counts, serde_json::json!({"device": 1, "protocol": 1, "encrypted": 0}));
    assert!(scores_of(&scored).iter().all(|s| s.is_finite()));
}

#[test]
fn time_columns_are_refused_when_named_and_skipped_when_picked() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("seen_at,kind,value\n");
    for i in 0..200 {
        text.push_str(&format!("2026-01-{:02},{},{}\n", 1 + i % 28, ["a", "b"][i % 2], i % 7));
    }
    let csv = dir.path().join("times.csv");
    std::fs::write(&csv, text).unwrap();
    let model = dir.path().join("m.ae");
    let err = fails(&["train", p(&csv), "--features", "seen_at,value", "--out", p(&model)]);
    assert!(err.contains("'seen_at' is a date or time column") && err.contains("--exclude seen_at"), "{err}");
    let out = autoenc(&["train", p(&csv), "--out", p(&model), "--epochs", "2", "--latent", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let trained = Autoencoder::load(&model).unwrap();
    assert_eq!(trained.feature_names(), ["kind", "value"]);
}

#[test]
fn an_identifier_column_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let rows = autoenc::limits::MAX_DISTINCT_VALUES + 1;
    let mut text = String::with_capacity(rows * 16);
    text.push_str("user_id,value\n");
    for i in 0..rows {
        text.push_str(&format!("u{i},{}\n", i % 5));
    }
    let csv = dir.path().join("ids.csv");
    std::fs::write(&csv, text).unwrap();
    let err = fails(&["train", p(&csv), "--out", p(&dir.path().join("m.ae"))]);
    assert!(err.contains("'user_id' has more than 100000 distinct values") && err.contains("--exclude"), "{err}");
}

/// Penguins (tests/data/mixed): all Adelie and Gentoo penguins and the first 14 Chinstraps (5 % of the
/// rows, a minority as anomalies are); the Chinstraps live on an island with Adelies and stand out when
/// the island and the bill are read together.
#[test]
fn penguins_chinstraps_are_found_among_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mixed/penguins.csv")).unwrap();
    let mut lines = text.lines();
    let mut kept = vec![lines.next().unwrap().to_string()];
    let mut chinstraps = 0;
    for line in lines {
        let chinstrap = line.ends_with(",Chinstrap");
        if !chinstrap || chinstraps < 14 {
            kept.push(line.to_string());
            chinstraps += usize::from(chinstrap);
        }
    }
    let data = dir.path().join("penguins.csv");
    std::fs::write(&data, kept.join("\n") + "\n").unwrap();
    let batch = read_table(&data).unwrap();
    let species = batch.column_by_name("label").unwrap().as_string::<i32>().clone();
    let labels: Vec<bool> = (0..batch.num_rows()).map(|i| species.value(i) == "Chinstrap").collect();
    assert_eq!((labels.len(), labels.iter().filter(|&&l| l).count()), (290, 14));
    let model = dir.path().join("m.ae");
    let printed =
        ok(&["train", p(&data), "--exclude", "label,year", "--out", p(&model), "--epochs", "200", "--latent", "3"]);
    assert!(printed.contains("island (categorical, 3 values)") && printed.contains("sex (categorical, 2 values)"));
    let scored = dir.path().join("scored.parquet");
    ok(&["score", p(&model), p(&data), "--out", p(&scored)]);
    let auc = roc_auc(&scores_of(&scored), &labels).unwrap();
    assert!(auc > 0.85, "penguins ROC-AUC {auc}");

    // The report's flagged rows name a categorical feature's value seen and the one expected, and its
    // per-feature errors include the categorical features.
    let report = dir.path().join("report.html");
    ok(&["report", p(&model), p(&data), "--out", p(&report)]);
    let html = std::fs::read_to_string(&report).unwrap();
    let flagged = &html[html.find("id=\"flagged-rows\"").expect("a flagged-rows table")..];
    let flagged = &flagged[..flagged.find("</table>").unwrap()];
    assert!(flagged.contains("; got ") && flagged.contains(", expected "), "{flagged}");
    assert!(html.matches("island").count() >= 2 && html.matches("sex").count() >= 2);
}
