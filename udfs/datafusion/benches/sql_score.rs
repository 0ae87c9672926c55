//! `SELECT ae_score('m', features) FROM 'rows.parquet'` against the core scoring the same rows, in rows
//! per second, on 1 and 2 threads (DataFusion partitions / `score_parallel` threads).
//!
//! The model is the reference network 64 -> 32 -> 8 -> 32 -> 64 of `benches/throughput.rs`; the data,
//! 262,144 rows of 64 f32 features as one fixed-size list column, is written to a temporary Parquet file
//! in row groups of 32,768 rows so both partitions get work. Three measurements per thread count:
//! - `sql`: the query, reading and decoding the Parquet file, collecting the scores;
//! - `sql_read`: `SELECT features FROM 'rows.parquet'`, the same scan without scoring, so `sql` minus
//!   `sql_read` is what the function itself costs;
//! - `core_parquet`: the CLI's path — read the same file with `autoenc::io::table`, then `score_parallel`;
//! - `core_memory`: `score_parallel` on the matrix already in memory (the floor: scoring alone).
//!
//! ```text
//! cargo bench -p autoenc-datafusion --bench sql_score -- --warm-up-time 1 --measurement-time 5
//! ```

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{Array, FixedSizeListArray, Float32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use autoenc::{Activation, Autoencoder, LatentSize, Variant};
use autoenc_datafusion::{ModelRegistry, register};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::prelude::{SessionConfig, SessionContext};
use ndarray::Array2;
use rand::{Rng, SeedableRng};

const ROWS: usize = 262_144;
const FEATURES: usize = 64;

fn rows(n: usize, seed: u64) -> Array2<f32> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, FEATURES), || rng.random::<f32>() * 2.0 - 1.0)
}

fn write_parquet(path: &std::path::Path, data: &Array2<f32>) {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let values = Float32Array::from_iter_values(data.iter().copied());
    let list = FixedSizeListArray::try_new(item, FEATURES as i32, Arc::new(values), None).expect("list column");
    let schema = Arc::new(Schema::new(vec![Field::new("features", list.data_type().clone(), false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(list)]).expect("batch");
    let file = std::fs::File::create(path).expect("create the bench file");
    let props =
        parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(32_768)).build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).expect("parquet writer");
    writer.write(&batch).expect("write rows");
    writer.close().expect("close the bench file");
}

fn bench(c: &mut Criterion) {
    let model = Autoencoder::params()
        .variant(Variant::Plain)
        .latent(LatentSize::Fixed(8))
        .hidden(Some(vec![32]))
        .activation(Activation::Relu)
        .epochs(1)
        .record_timings(false)
        .fit(rows(4096, 1).view())
        .expect("reference model trains");
    let data = rows(ROWS, 2);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("rows.parquet");
    write_parquet(&path, &data);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");

    let mut group = c.benchmark_group("sql_score");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    for threads in [1usize, 2] {
        let registry = Arc::new(ModelRegistry::new());
        registry.register("m", model.clone());
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(threads));
        register(&ctx, registry);
        let query = format!("SELECT ae_score('m', features) FROM '{}'", path.display());
        let ctx = ctx.enable_url_table();
        group.bench_function(BenchmarkId::new("sql", threads), |b| {
            b.iter(|| {
                let batches = runtime.block_on(async { ctx.sql(&query).await?.collect().await }).expect("query runs");
                let scored: usize = batches.iter().map(RecordBatch::num_rows).sum();
                assert_eq!(scored, ROWS);
                black_box(batches)
            })
        });
        let read = format!("SELECT features FROM '{}'", path.display());
        group.bench_function(BenchmarkId::new("sql_read", threads), |b| {
            b.iter(|| black_box(runtime.block_on(async { ctx.sql(&read).await?.collect().await }).expect("scan runs")))
        });
        group.bench_function(BenchmarkId::new("core_parquet", threads), |b| {
            b.iter(|| {
                let table = autoenc::io::table::read_table(&path).expect("read the bench file");
                let column = table.column_by_name("features").expect("features column").clone();
                let matrix =
                    autoenc::io::arrow_matrix::list_matrix(&column, "features", Some(FEATURES)).expect("matrix");
                black_box(model.score_parallel(matrix.view(), threads).expect("score"))
            })
        });
        group.bench_function(BenchmarkId::new("core_memory", threads), |b| {
            b.iter(|| black_box(model.score_parallel(data.view(), threads).expect("score")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
