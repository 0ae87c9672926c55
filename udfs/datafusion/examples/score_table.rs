//! Train an autoencoder in SQL and score a table with it, as a DataFusion program would.
//!
//! ```text
//! cargo run -p autoenc-datafusion --example score_table    # or `cargo run --example score_table` in udfs/datafusion
//! ```
//!
//! The table is the ODDS cardio set the repository ships (`tests/data/odds/cardio.csv`: 1831
//! cardiotocography records, 21 features `f0`..`f20`, and a `label` column, 1 for the 176 pathologic
//! ones). The model is trained without the labels, as an anomaly detector would be; the labels only
//! show afterwards how well the flagged rows match them.
//!
//! Steps: register autoenc's functions on a `SessionContext`, read the CSV as a table, train a model
//! with the `ae_train` aggregate, register the model under a name, then score, flag and explain rows.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;

use autoenc::Autoencoder;
use autoenc_datafusion::{ModelRegistry, register};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::prelude::{CsvReadOptions, SessionContext};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The functions resolve model names in a registry: empty here, filled below with the model trained in
    // SQL. `ModelRegistry::with_directory("models")` would instead load `models/<name>.ae` files on demand.
    let ctx = SessionContext::new();
    let models = Arc::new(ModelRegistry::new());
    register(&ctx, models.clone());

    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/odds/cardio.csv");
    ctx.register_csv("cardio", data.to_string_lossy().as_ref(), CsvReadOptions::new()).await?;
    let features = (0..21).map(|j| format!("f{j}")).collect::<Vec<_>>().join(", ");

    // Training is an aggregate: one model per group (here one group, the whole table), returned as the
    // bytes of a model file. `contamination` sets the anomaly threshold to flag about that share of the
    // training rows; the seed makes the run repeatable.
    let options = r#"{"epochs": 30, "seed": 0, "contamination": 0.1}"#;
    let trained =
        ctx.sql(&format!("SELECT ae_train({features}, '{options}') AS model FROM cardio")).await?.collect().await?;
    let bytes = trained
        .first()
        .filter(|batch| batch.num_rows() == 1)
        .map(|batch| batch.column(0).as_binary::<i32>())
        .filter(|column| column.is_valid(0))
        .map(|column| column.value(0))
        .ok_or("ae_train returned no model")?;
    // The bytes are a model file: they could be written to `models/cardio.ae`, or passed as the model
    // argument directly (`ae_score(m.model, ...)` in a join). Registered, the model has a name in SQL.
    models.register("cardio", Autoencoder::from_bytes(bytes)?);

    println!("The ten most anomalous records:");
    ctx.sql(&format!(
        "SELECT label,
                round(ae_score('cardio', {features}), 3) AS score,
                round(ae_percentile('cardio', {features}), 3) AS percentile,
                ae_is_anomaly('cardio', {features}) AS flagged,
                ae_explain('cardio', {features}, 2) AS why
         FROM cardio ORDER BY score DESC LIMIT 10"
    ))
    .await?
    .show()
    .await?;

    println!("Flagged records against the labels (label 1 = pathologic):");
    ctx.sql(&format!(
        "SELECT ae_is_anomaly('cardio', {features}) AS flagged, count(*) AS records, sum(label) AS pathologic
         FROM cardio GROUP BY flagged ORDER BY flagged"
    ))
    .await?
    .show()
    .await?;
    Ok(())
}
