//! Train and score from Rust: the library door in one program. Reads the ODDS cardio set the repository
//! ships, trains the default model, flags the rows above its threshold, embeds them, saves the model
//! file every other door reads, loads it back and checks it scores the same.
//!
//! Run with `cargo run --example train_and_score [-- path/to/table.csv]`.

use std::path::PathBuf;

use autoenc::Autoencoder;
use autoenc::io::table::{FeatureSelection, feature_matrix, read_table};
use autoenc::metrics::roc_auc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/odds/cardio.csv"));

    // Every numeric column but the label is a feature.
    let table = read_table(&path)?;
    let (rows, names) = feature_matrix(&table, &FeatureSelection::AllNumericExcept(vec!["label".into()]))?;

    // Hyper-parameters are checked once (`check`), then the validated set trains.
    let params = Autoencoder::params().contamination(0.1).seed(0).check()?;
    let model = params.fit_with(rows.view(), names, &mut |_| {})?;

    let scores = model.score(rows.view())?; // one f64 per row: the mean squared reconstruction error
    let flagged = scores.iter().filter(|&&s| model.is_anomaly(s)).count();
    let codes = model.encode(rows.view())?; // (rows, latent)
    println!(
        "{}: {} rows, {} features -> latent {}; {} rows flagged (threshold {:.4})",
        path.display(),
        rows.nrows(),
        rows.ncols(),
        codes.ncols(),
        flagged,
        model.threshold().value
    );

    // With labels at hand, how well the scores rank the anomalies.
    if let Ok((labels, _)) = feature_matrix(&table, &FeatureSelection::Columns(vec!["label".into()])) {
        let labels: Vec<bool> = labels.column(0).iter().map(|&l| l == 1.0).collect();
        println!("ROC-AUC against the label column: {:.3}", roc_auc(&scores.to_vec(), &labels)?);
    }

    // The model file: what the SQL functions, the Polars expressions and the stream load.
    let file = std::env::temp_dir().join(format!("autoenc-example-{}.ae", std::process::id()));
    model.save(&file)?;
    let loaded = Autoencoder::load(&file)?;
    std::fs::remove_file(&file)?;
    let again = loaded.score(rows.view())?;
    if again != scores {
        return Err("the loaded model scores differently".into());
    }
    println!("saved, loaded and re-scored: identical scores");
    Ok(())
}
