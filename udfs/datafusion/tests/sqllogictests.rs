//! Runs the SQL golden files in `tests/slt/*.slt` (sqllogictest, DataFusion's own convention) against a
//! `SessionContext` with the autoenc functions registered.
//!
//! Each file gets a fresh context with:
//! - a model `sensors` (also the default), trained here with a fixed seed on the clean first half of a
//!   synthetic 4-sensor stream and saved to a temporary model directory, so it is loaded by name;
//! - a variational model `vae` on the same rows (for `ae_generate`), saved beside it;
//! - a table `readings(id, s0, s1, s2, s3, features, label)` holding all 2000 rows of that stream
//!   (anomalies injected in the second half, `label` = 1).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use autoenc::Autoencoder;
use autoenc_datafusion::{ModelRegistry, register};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Database {
    ctx: SessionContext,
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Database {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let frame = self.ctx.sql(sql).await?;
        let schema = frame.schema().as_arrow().clone();
        let batches = frame.collect().await?;
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for i in 0..batch.num_rows() {
                rows.push(formatters.iter().map(|f| f.value(i).to_string()).collect());
            }
        }
        let types = vec![DefaultColumnType::Any; schema.fields().len()];
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "autoenc-datafusion"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// A small variational model over the same features, for `ae_generate`.
fn variational(rows: ndarray::ArrayView2<f32>) -> Autoencoder {
    Autoencoder::params()
        .seed(4)
        .epochs(5)
        .record_timings(false)
        .variant(autoenc::Variant::Variational { beta: 1.0 })
        .check()
        .and_then(|p| p.fit_with(rows, (0..4).map(|j| format!("s{j}")).collect(), &mut |_| {}))
        .expect("the variational test model trains")
}

fn readings() -> (RecordBatch, Autoencoder, Autoencoder) {
    let data = autoenc::synthetic::sensor_stream(2000, 4, 1000, 0.05, 11);
    let model = Autoencoder::params()
        .seed(3)
        .record_timings(false)
        .contamination(0.01)
        .check()
        .and_then(|p| {
            p.fit_with(data.rows.slice(ndarray::s![..1000, ..]), (0..4).map(|j| format!("s{j}")).collect(), &mut |_| {})
        })
        .expect("the test model trains");
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(0..2000))];
    let mut fields = vec![Field::new("id", DataType::Int64, false)];
    for j in 0..4 {
        columns.push(Arc::new(Float64Array::from_iter_values(data.rows.column(j).iter().map(|&v| v as f64))));
        fields.push(Field::new(format!("s{j}"), DataType::Float64, false));
    }
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let values = Float32Array::from_iter_values(data.rows.iter().copied());
    let list = FixedSizeListArray::try_new(item, 4, Arc::new(values), None).expect("list of four");
    fields.push(Field::new("features", list.data_type().clone(), false));
    columns.push(Arc::new(list));
    columns.push(Arc::new(Int64Array::from_iter_values(data.labels.iter().map(|&l| i64::from(l)))));
    fields.push(Field::new("label", DataType::Int64, false));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("consistent columns");
    let vae = variational(data.rows.slice(ndarray::s![..1000, ..]));
    (batch, model, vae)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    // `cargo test --test sqllogictests -- generate nulls` runs only the files whose names contain one of
    // the words, for quick iterations on one file.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() {
        files.retain(|f| {
            f.file_name().is_some_and(|n| filters.iter().any(|w| n.to_string_lossy().contains(w.as_str())))
        });
    }
    let (batch, model, vae) = readings();
    let models = tempfile::tempdir()?;
    model.save(models.path().join("sensors.ae"))?;
    vae.save(models.path().join("vae.ae"))?;
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let (batch, dir) = (batch.clone(), models.path().to_path_buf());
        let mut runner = sqllogictest::Runner::new(move || {
            let (batch, dir) = (batch.clone(), dir.clone());
            async move {
                let ctx = SessionContext::new();
                let registry = Arc::new(ModelRegistry::with_directory(dir));
                registry.set_default("sensors");
                register(&ctx, registry);
                let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
                ctx.register_table("readings", Arc::new(table))?;
                Ok::<_, DataFusionError>(Database { ctx })
            }
        });
        match runner.run_file_async(file).await {
            Ok(()) => {
                passed += 1;
                println!("ok   {}", file.display());
            }
            Err(err) => {
                failed += 1;
                println!("FAIL {}\n{err}", file.display());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
    Ok(())
}
