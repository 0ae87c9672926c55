//! `ae_score` in SQL gives the CLI's score for every row of an ODDS set, to f32 precision.
//!
//! The fixture comes from the CLI itself (`tests/fixtures/make_odds_fixture.sh`): `autoenc train` on the
//! ODDS thyroid set (3772 rows, 6 features) wrote `thyroid.ae`, and `autoenc score` wrote every input row
//! with its score to `thyroid_scored.parquet`. The query reads that file by path and scores its feature
//! columns with the model loaded by name from the fixture directory.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::Float64Type;
use autoenc_datafusion::{ModelRegistry, register};
use datafusion::prelude::SessionContext;

#[tokio::test]
async fn sql_scores_equal_the_cli_scores_of_an_odds_set() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ctx = SessionContext::new().enable_url_table();
    register(&ctx, Arc::new(ModelRegistry::with_directory(&fixtures)));
    let scored = fixtures.join("thyroid_scored.parquet");
    let query =
        format!("SELECT score AS cli, ae_score('thyroid', f0, f1, f2, f3, f4, f5) AS sql FROM '{}'", scored.display());
    let batches = ctx.sql(&query).await.expect("plan").collect().await.expect("run");
    let mut rows = 0;
    let mut anomalies = 0;
    for batch in &batches {
        let (cli, sql) = (batch.column(0).as_primitive::<Float64Type>(), batch.column(1).as_primitive::<Float64Type>());
        for i in 0..batch.num_rows() {
            let (cli, sql) = (cli.value(i), sql.value(i));
            assert!((cli - sql).abs() <= 1e-6 * cli.abs().max(1e-6), "row {}: CLI {cli} vs SQL {sql}", rows + i);
            anomalies += usize::from(cli > 0.085);
        }
        rows += batch.num_rows();
    }
    assert_eq!(rows, 3772, "every row of thyroid");
    // The fixture is a real model's output, not constant scores.
    assert!(anomalies > 10 && anomalies < rows / 2, "{anomalies} rows above the threshold");
}

#[tokio::test]
async fn the_fixture_holds_every_odds_row_unchanged() {
    // Ties the fixture to the data set: the CLI wrote the ODDS rows as it read them.
    let odds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/odds/thyroid.csv");
    // A copy of the ODDS set lives in the repository (tests/data/odds).
    assert!(odds.exists(), "{} is missing", odds.display());
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ctx = SessionContext::new().enable_url_table();
    let query = format!(
        "SELECT count(*) FROM (SELECT f0, f1, f2, f3, f4, f5 FROM '{}' EXCEPT ALL SELECT f0, f1, f2, f3, f4, f5 FROM '{}')",
        odds.display(),
        fixtures.join("thyroid_scored.parquet").display()
    );
    let batches = ctx.sql(&query).await.expect("plan").collect().await.expect("run");
    assert_eq!(batches[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 0);
}
