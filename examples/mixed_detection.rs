//! Anomaly detection on mixed tables: autoenc on the raw columns (categories inside the model) against
//! autoenc on the same data one-hot encoded by hand, on two data sets:
//! - **devices**: the synthetic device events (`autoenc::synthetic_devices`), 5,000 rows with 5 %
//!   anomalies that only the categories show (a wrong device type, a protocol the device never uses);
//!   three seeds;
//! - **penguins**: the Palmer penguins (`tests/data/mixed/penguins.csv`), Adelie and Gentoo plus 14
//!   Chinstraps drawn at random (5 % of the rows) as the anomalies; five draws.
//!
//! Both models get the same settings and, as in the ODDS benchmarks, are trained on all rows (anomalies
//! included) and scored on them. With a directory argument the example also writes each one-hot table
//! (`<data set>_<draw>.csv`, with a `label` column) and its results (`results.json`), which
//! `benches/mixed_detection.py` reads to run IsolationForest on the same one-hot rows.
//!
//! Run: `cargo run --release --example mixed_detection [-- OUT_DIR]`

use std::path::{Path, PathBuf};

use autoenc::io::table::{FeatureSelection, read_table, training_features};
use autoenc::metrics::roc_auc;
use autoenc::synthetic_devices::{DeviceEvents, device_events};
use autoenc::{Autoencoder, AutoencoderParams, FeatureKind};
use ndarray::{Array2, Axis};

/// One draw of a data set: rows with categorical columns as codes, their kinds, names, labels.
struct Draw {
    name: String,
    rows: Array2<f32>,
    kinds: Vec<FeatureKind>,
    names: Vec<String>,
    labels: Vec<bool>,
}

fn params(epochs: usize) -> AutoencoderParams {
    Autoencoder::params().epochs(epochs).record_timings(false).seed(0)
}

/// The rows one-hot encoded by hand: each categorical feature as one 0/1 column per vocabulary value
/// (other and NULL: all zeros), numeric features as they are.
fn one_hot(draw: &Draw) -> (Array2<f32>, Vec<String>) {
    let mut names = Vec::new();
    for (name, kind) in draw.names.iter().zip(&draw.kinds) {
        match kind.vocabulary() {
            Some(vocabulary) => names.extend(vocabulary.values().iter().map(|v| format!("{name}={v}"))),
            None => names.push(name.clone()),
        }
    }
    let mut out = Array2::zeros((draw.rows.nrows(), names.len()));
    for (i, row) in draw.rows.outer_iter().enumerate() {
        let mut column = 0;
        for (value, kind) in row.iter().zip(&draw.kinds) {
            match kind.vocabulary() {
                Some(vocabulary) => {
                    if (*value as usize) < vocabulary.len() {
                        out[(i, column + *value as usize)] = 1.0;
                    }
                    column += vocabulary.len();
                }
                None => {
                    out[(i, column)] = *value;
                    column += 1;
                }
            }
        }
    }
    (out, names)
}

fn devices(seed: u64) -> autoenc::Result<Draw> {
    let events = device_events(5000, 0.05, seed);
    let vocabularies = events.vocabularies(64)?;
    let (rows, kinds) = events.coded(&vocabularies);
    let names = DeviceEvents::NAMES.iter().map(|n| n.to_string()).collect();
    Ok(Draw { name: format!("devices_{seed}"), rows, kinds, names, labels: events.labels })
}

/// Adelie and Gentoo penguins and 14 Chinstraps chosen by `seed`.
fn penguins(all: &arrow::array::RecordBatch, seed: u64) -> autoenc::Result<Draw> {
    use arrow::array::AsArray;
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let species = all.column_by_name("label").expect("a label column").as_string::<i32>().clone();
    let mut chinstraps: Vec<usize> = (0..all.num_rows()).filter(|&i| species.value(i) == "Chinstrap").collect();
    chinstraps.shuffle(&mut rand_pcg::Pcg64Mcg::seed_from_u64(seed));
    let mut keep: Vec<usize> = (0..all.num_rows()).filter(|&i| species.value(i) != "Chinstrap").collect();
    keep.extend(&chinstraps[..14]);
    keep.sort_unstable();
    let indices = arrow::array::UInt32Array::from(keep.iter().map(|&i| i as u32).collect::<Vec<_>>());
    let batch = arrow::compute::take_record_batch(all, &indices)?;
    let selection = FeatureSelection::AllNumericExcept(vec!["label".into(), "year".into()]);
    let features = training_features(&batch, &selection, 64)?;
    let labels = keep.iter().map(|&i| species.value(i) == "Chinstrap").collect();
    Ok(Draw {
        name: format!("penguins_{seed}"),
        rows: features.matrix,
        kinds: features.kinds,
        names: features.names,
        labels,
    })
}

/// ROC-AUC of autoenc on the raw columns and on the one-hot table.
fn evaluate(draw: &Draw, epochs: usize, out: Option<&Path>) -> autoenc::Result<(f64, f64)> {
    let fit = params(epochs).check()?;
    let native = fit.fit_with_kinds(draw.rows.view(), draw.names.clone(), draw.kinds.clone(), &mut |_| {})?;
    let native_auc = roc_auc(native.score(draw.rows.view())?.as_slice().unwrap_or(&[]), &draw.labels)?;
    let (encoded, names) = one_hot(draw);
    let by_hand = fit.fit_with(encoded.view(), names.clone(), &mut |_| {})?;
    let by_hand_auc = roc_auc(by_hand.score(encoded.view())?.as_slice().unwrap_or(&[]), &draw.labels)?;
    if let Some(dir) = out {
        let mut text = names.join(",") + ",label\n";
        for (row, label) in encoded.axis_iter(Axis(0)).zip(&draw.labels) {
            let values: Vec<String> =
                row.iter().map(|v| if v.is_nan() { String::new() } else { v.to_string() }).collect();
            text.push_str(&format!("{},{}\n", values.join(","), u8::from(*label)));
        }
        std::fs::write(dir.join(format!("{}.csv", draw.name)), text)?;
    }
    Ok((native_auc, by_hand_auc))
}

fn main() -> autoenc::Result<()> {
    let out: Option<PathBuf> = std::env::args().nth(1).map(PathBuf::from);
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir)?;
    }
    let penguin_table = read_table(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mixed/penguins.csv"))?;
    let mut draws: Vec<(Draw, usize)> = Vec::new();
    for seed in 1..=3 {
        draws.push((devices(seed)?, 100));
    }
    for seed in 1..=5 {
        draws.push((penguins(&penguin_table, seed)?, 200));
    }
    let mut results = serde_json::Map::new();
    println!("{:<12} {:>14} {:>16}", "draw", "autoenc mixed", "autoenc one-hot");
    for (draw, epochs) in &draws {
        let (native, by_hand) = evaluate(draw, *epochs, out.as_deref())?;
        println!("{:<12} {:>14.4} {:>16.4}", draw.name, native, by_hand);
        results.insert(draw.name.clone(), serde_json::json!({"autoenc_mixed": native, "autoenc_one_hot": by_hand}));
    }
    if let Some(dir) = &out {
        std::fs::write(dir.join("results.json"), serde_json::Value::Object(results).to_string())?;
    }
    Ok(())
}
