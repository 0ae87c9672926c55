//! Properties across the SQL door and the core: the SQL functions return, for every row, the numbers
//! the core (and so the CLI) computes for the same model and rows; a literal row agrees with the same
//! row read from a table.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use autoenc::Autoencoder;
use autoenc_datafusion::{ModelRegistry, register};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

async fn context(rows: usize) -> (SessionContext, Autoencoder, ndarray::Array2<f32>) {
    let data = autoenc::synthetic::sensor_stream(rows, 5, rows / 2, 0.05, 21);
    let names: Vec<String> = (0..5).map(|j| format!("c{j}")).collect();
    let model = Autoencoder::params()
        .seed(5)
        .epochs(10)
        .check()
        .unwrap()
        .fit_with(data.rows.view(), names.clone(), &mut |_| {})
        .unwrap();
    let registry = Arc::new(ModelRegistry::new());
    registry.register("m", model.clone());
    let ctx = SessionContext::new();
    register(&ctx, registry);
    let fields: Vec<Field> = names.iter().map(|n| Field::new(n, DataType::Float64, false)).collect();
    let columns = (0..5)
        .map(|j| Arc::new(Float64Array::from_iter_values(data.rows.column(j).iter().map(|&v| v as f64))) as _)
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    ctx.register_table("t", Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap())).unwrap();
    (ctx, model, data.rows)
}

#[tokio::test]
async fn sql_scores_equal_core_scores_for_every_row() {
    let (ctx, model, rows) = context(3000).await;
    let batches =
        ctx.sql("SELECT ae_score('m', c0, c1, c2, c3, c4) AS s FROM t").await.unwrap().collect().await.unwrap();
    let sql: Vec<f64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec()).collect();
    let expected = model.score(rows.view()).unwrap().to_vec();
    assert_eq!(sql.len(), expected.len());
    for (i, (a, b)) in sql.iter().zip(&expected).enumerate() {
        // Values are cast f64 -> f32 like the CLI reads them; blocks may differ, so f32 precision.
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-6), "row {i}: SQL {a} vs core {b}");
    }
}

#[tokio::test]
async fn a_literal_row_scores_like_the_same_row_in_a_table() {
    let (ctx, _, rows) = context(200).await;
    for i in [0usize, 57, 199] {
        let r = rows.row(i);
        let sql = format!(
            "SELECT ae_score('m', {}, {}, {}, {}, {}) AS literal, (SELECT s FROM (SELECT row_number() OVER () - 1 AS i, ae_score('m', c0, c1, c2, c3, c4) AS s FROM t) WHERE i = {i}) AS from_table",
            r[0], r[1], r[2], r[3], r[4]
        );
        let batch = &ctx.sql(&sql).await.unwrap().collect().await.unwrap()[0];
        let literal = batch.column(0).as_primitive::<Float64Type>().value(0);
        let table = batch.column(1).as_primitive::<Float64Type>();
        assert!(table.is_valid(0));
        let from_table = table.value(0);
        assert!(
            (literal - from_table).abs() <= 1e-5 * from_table.abs().max(1e-6),
            "row {i}: {literal} vs {from_table}"
        );
    }
}
