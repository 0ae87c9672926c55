//! Hostile model files through the SQL door: an edited or crafted model, given as a binary column or
//! found in the models directory, is a clear error for that query — the session goes on and the next
//! query with an honest model answers.

use std::sync::Arc;

use arrow::array::{BinaryArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use autoenc::io::model_file::metadata_checksum;
use autoenc::{Autoencoder, LatentSize, Variant};
use autoenc_datafusion::{ModelRegistry, register};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

fn honest() -> Vec<u8> {
    let x = ndarray::Array2::from_shape_fn((150, 3), |(i, j)| ((i * 5 + j * 3) % 13) as f32);
    Autoencoder::params()
        .variant(Variant::Plain)
        .latent(LatentSize::Fixed(2))
        .epochs(2)
        .record_timings(false)
        .fit(x.view())
        .unwrap()
        .to_bytes()
        .unwrap()
}

/// Replaces `from` by `to` (same length) in the file's metadata; with `sign`, recomputes the metadata
/// checksum as a forger would.
fn edit(bytes: &[u8], from: &str, to: &str, sign: bool) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes.windows(from.len()).position(|w| w == from.as_bytes()).expect("pattern present");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    if sign {
        let header_len = u64::from_le_bytes(out[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&out[8..8 + header_len]).unwrap();
        let text = header["__metadata__"]["autoenc"].as_str().unwrap();
        let stored = &text[text.len() - 10..text.len() - 2];
        let digits = format!("{:08x}", metadata_checksum(text).unwrap());
        let at = out.windows(8).position(|w| w == stored.as_bytes()).unwrap();
        out[at..at + 8].copy_from_slice(digits.as_bytes());
    }
    out
}

async fn context(models: &std::path::Path, blobs: Vec<Vec<u8>>) -> SessionContext {
    let ctx = SessionContext::new();
    register(&ctx, Arc::new(ModelRegistry::with_directory(models)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("m", DataType::Binary, false),
        Field::new("a", DataType::Float64, false),
        Field::new("b", DataType::Float64, false),
        Field::new("c", DataType::Float64, false),
    ]));
    let rows = blobs.len();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(BinaryArray::from_iter_values(blobs)),
            Arc::new(Float64Array::from(vec![1.0; rows])),
            Arc::new(Float64Array::from(vec![2.0; rows])),
            Arc::new(Float64Array::from(vec![3.0; rows])),
        ],
    )
    .unwrap();
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
    ctx
}

async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    match ctx.sql(sql).await {
        Err(e) => e.to_string(),
        Ok(frame) => frame.collect().await.expect_err("a hostile model must fail the query").to_string(),
    }
}

#[tokio::test]
async fn edited_and_crafted_models_fail_the_query_not_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let honest = honest();
    std::fs::write(dir.path().join("good.ae"), &honest).unwrap();
    let edited = edit(&honest, "\\\"contamination\\\":0.1", "\\\"contamination\\\":0.2", false);
    let latent_forged = edit(&honest, "\\\"latent\\\":2,", "\\\"latent\\\":9,", true);
    std::fs::write(dir.path().join("edited.ae"), &edited).unwrap();
    std::fs::write(dir.path().join("forged.ae"), &latent_forged).unwrap();

    let ctx = context(dir.path(), vec![honest.clone()]).await;
    for (model, expected) in [("edited", "metadata was changed"), ("forged", "hyper-parameters give")] {
        let message = error_of(&ctx, &format!("SELECT ae_score('{model}', a, b, c) FROM t")).await;
        assert!(message.contains(expected), "{model}: {message}");
    }
    for (blob, expected) in [(edited, "metadata was changed"), (latent_forged, "hyper-parameters give")] {
        let ctx = context(dir.path(), vec![blob]).await;
        let message = error_of(&ctx, "SELECT ae_score(m, a, b, c) FROM t").await;
        assert!(message.contains(expected), "{message}");
        // The same session answers the next query with an honest model.
        let scored = ctx.sql("SELECT ae_score('good', a, b, c) FROM t").await.unwrap().collect().await.unwrap();
        assert_eq!(scored[0].num_rows(), 1);
    }
}
