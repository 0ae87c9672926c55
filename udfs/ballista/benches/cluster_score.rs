//! `ae_score` rows/s over the same Parquet files on local DataFusion, a Ballista cluster of one
//! executor and of two executors (pulling their tasks, and pushed them as Ballista's default policy does), side by side in one run:
//!
//! ```text
//! cargo bench -p autoenc-ballista --bench cluster_score
//! ```
//!
//! The data is ODDS cardio (tests/data/odds) repeated to `AUTOENC_BENCH_COPIES` copies (default 256,
//! about 470 k rows) in four Parquet files; the model is trained on cardio by local SQL. Each cluster is
//! separate `autoenc-ballista` processes on 127.0.0.1 (the bench's own build of the binary) with the
//! same total task slots as the local session has partitions: one executor with two slots, or two with
//! one. Two queries per setup: `count(*)` (scan, plan shipping, task scheduling: the cluster's fixed
//! cost) and `sum(ae_score(...))` (the same plus scoring every row), both returning one row so that
//! moving results to the client is not what is measured.

#[path = "../tests/cluster/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "../tests/cluster/harness.rs"]
mod harness;

use std::sync::Arc;

use autoenc_ballista::cluster_context;
use autoenc_datafusion::{ModelRegistry, register};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::prelude::SessionContext;
use harness::Cluster;

const SLOTS: usize = 2;

async fn setup_ctx(ctx: &SessionContext, data: &std::path::Path) {
    for statement in [
        format!("CREATE EXTERNAL TABLE cardio STORED AS PARQUET LOCATION '{}/'", data.display()),
        format!("SET datafusion.execution.target_partitions = {SLOTS}"),
    ] {
        ctx.sql(&statement).await.expect(&statement).collect().await.expect(&statement);
    }
}

fn bench(c: &mut Criterion) {
    let copies: usize = std::env::var("AUTOENC_BENCH_COPIES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let dir = tempfile::tempdir().expect("temporary directory");
    let (data_dir, models) = (dir.path().join("data"), dir.path().join("models"));
    std::fs::create_dir_all(&data_dir).expect("data directory");
    std::fs::create_dir_all(&models).expect("models directory");
    let rows = data::write_parquet_copies(&data_dir, copies).len();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");

    let registry = Arc::new(ModelRegistry::with_directory(&models));
    let local = SessionContext::new();
    register(&local, registry.clone());
    runtime.block_on(async {
        // Trained on one copy of cardio, so training time does not grow with the bench's size.
        let one = tempfile::tempdir().expect("temporary directory");
        data::write_parquet(one.path());
        let train = SessionContext::new();
        register(&train, registry.clone());
        setup_ctx(&train, one.path()).await;
        let query = format!("SELECT ae_train({}, '{{\"epochs\": 10, \"seed\": 1}}') FROM cardio", data::feature_list());
        let batches = train.sql(&query).await.expect("train").collect().await.expect("train");
        use arrow::array::AsArray;
        let model =
            batches.iter().find(|b| b.num_rows() == 1).expect("a model").column(0).as_binary::<i32>().value(0).to_vec();
        std::fs::write(models.join("cardio.ae"), model).expect("write the model");
        setup_ctx(&local, &data_dir).await;
    });

    let one = Cluster::start_with(1, SLOTS, &models);
    let two = Cluster::start_with(2, SLOTS / 2, &models);
    // Ballista's own default policy beside autoenc-ballista's, to show what pulling tasks costs.
    let two_pushed = Cluster::start_with_policy(2, SLOTS / 2, &models, Some("push-staged"));
    let setups: Vec<(&str, SessionContext)> = runtime.block_on(async {
        let mut setups = vec![("local", local)];
        let clusters = [("1 executor", &one), ("2 executors", &two), ("2 executors, push-staged", &two_pushed)];
        for (name, cluster) in clusters {
            let ctx = cluster_context(&cluster.url(), registry.clone()).await.expect("cluster session");
            setup_ctx(&ctx, &data_dir).await;
            setups.push((name, ctx));
        }
        setups
    });

    let queries = [
        ("count", "SELECT count(*) FROM cardio".to_string()),
        ("ae_score", format!("SELECT sum(ae_score('cardio', {})) FROM cardio", data::feature_list())),
    ];
    for (query_name, query) in &queries {
        let mut group = c.benchmark_group(format!("cluster_{query_name}"));
        group.throughput(Throughput::Elements(rows as u64));
        group.sample_size(10);
        for (setup_name, ctx) in &setups {
            group.bench_function(*setup_name, |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        let batches = ctx.sql(query).await.expect("plan").collect().await.expect("run");
                        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
                    })
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
