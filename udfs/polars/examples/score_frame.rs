//! A Polars program: train a model on a DataFrame, then score, flag, explain and embed its rows with
//! autoenc expressions in a lazy query. The frame is synthetic sensor readings with a few anomalies,
//! so the example needs no files.
//!
//! Run with `cargo run -p autoenc-polars --example score_frame`.

use std::sync::Arc;

use autoenc::Autoencoder;
use autoenc::synthetic::sensor_stream;
use polars::prelude::*;

fn main() -> PolarsResult<()> {
    // 3,000 rows of 8 sensors: the first 2,000 are clean, the rest hold 3 % anomalies.
    let data = sensor_stream(3_000, 8, 2_000, 0.03, 11);
    let columns: Vec<Column> = data
        .names
        .iter()
        .zip(data.rows.columns())
        .map(|(name, values)| Column::new(name.as_str().into(), values.to_vec()))
        .collect();
    let mut df = DataFrame::new(data.rows.nrows(), columns)?;
    df.with_column(Column::new("anomaly".into(), data.labels.clone()))?;

    // Train on the clean prefix; the model keeps the feature names.
    let features: Vec<&str> = data.names.iter().map(String::as_str).collect();
    let params = Autoencoder::params().contamination(0.01).seed(11).check().map_err(autoenc_polars::to_polars)?;
    let model = Arc::new(autoenc_polars::train::fit_frame(&df.head(Some(2_000)), &features, &params, &mut |_| {})?);

    // Score the rest: expressions take the feature columns and work in any eager or lazy frame.
    let inputs: Vec<Expr> = features.iter().map(|&name| col(name)).collect();
    let scored = df
        .slice(2_000, 1_000)
        .lazy()
        .with_columns([
            autoenc_polars::score(&model, &inputs).alias("score"),
            autoenc_polars::is_anomaly(&model, &inputs, None).alias("flagged"),
            autoenc_polars::explain(&model, &inputs, 2).alias("why"),
            autoenc_polars::encode(&model, &inputs).alias("embedding"),
        ])
        .collect()?;

    // The five highest scores, with whether each was flagged and whether it was an injected anomaly.
    let top = scored
        .clone()
        .lazy()
        .sort(["score"], SortMultipleOptions::default().with_order_descending(true))
        .limit(5)
        .collect()?;
    let (score, flagged, anomaly) =
        (top.column("score")?.f64()?, top.column("flagged")?.bool()?, top.column("anomaly")?.bool()?);
    println!("score    flagged  anomaly");
    for i in 0..top.height() {
        let (s, f, a) = (score.get(i).unwrap_or(f64::NAN), flagged.get(i), anomaly.get(i));
        println!("{s:<8.3} {:<8} {}", f.unwrap_or(false), a.unwrap_or(false));
    }

    // How the flags line up with the injected anomalies, and the size of each row's embedding.
    let flagged = scored.column("flagged")?.bool()?;
    let anomaly = scored.column("anomaly")?.bool()?;
    let caught = (flagged & anomaly).sum().unwrap_or(0);
    let embedding = scored.column("embedding")?.dtype().clone();
    println!(
        "{} rows scored: {} flagged, {caught} of the {} injected anomalies; embedding column {embedding}",
        scored.height(),
        flagged.sum().unwrap_or(0),
        anomaly.sum().unwrap_or(0)
    );
    Ok(())
}
