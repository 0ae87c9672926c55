//! `autoenc-sql --cluster` end to end: the shell binary against a Ballista cluster that knows the
//! autoenc functions (a scheduler and two executors run in this test's process by the
//! `autoenc-ballista` library, on 127.0.0.1 and free ports). `-c`, `-f`, piped prompt input and
//! `COPY ... TO` give what they give locally; `COPY` writes where the shell runs.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoenc_datafusion::ModelRegistry;
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_scheduler::config::SchedulerConfig;

mod common;

use common::fixture;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// Starts a scheduler and two executors on this process's runtime; returns the scheduler's port. They
/// stop with the test's runtime.
async fn start_cluster(models: &Path, work: &Path) -> u16 {
    let registry = Arc::new(ModelRegistry::with_directory(models));
    let port = free_port();
    let scheduler = SchedulerConfig {
        bind_host: "127.0.0.1".into(),
        external_host: "127.0.0.1".into(),
        bind_port: port,
        ..Default::default()
    };
    tokio::spawn(autoenc_ballista::scheduler::run(scheduler, registry.clone()));
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the scheduler did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..2 {
        let work_dir = work.join(format!("executor-{i}"));
        std::fs::create_dir_all(&work_dir).expect("work directory");
        let executor = ExecutorProcessConfig {
            executor_id: format!("executor-{i}"),
            bind_host: "127.0.0.1".into(),
            external_host: Some("127.0.0.1".into()),
            port: free_port(),
            grpc_port: free_port(),
            scheduler_host: "127.0.0.1".into(),
            scheduler_port: port,
            vcores: 1,
            work_dir: Some(work_dir.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let health = format!("127.0.0.1:{}", free_port());
        let registry = registry.clone();
        tokio::spawn(async move { autoenc_ballista::executor::run(executor, &health, registry).await });
    }
    port
}

/// Runs the shell in `dir` on a blocking thread (the cluster needs this runtime meanwhile).
async fn shell(dir: &Path, args: Vec<String>, stdin: Option<&str>) -> Output {
    let (dir, stdin) = (dir.to_path_buf(), stdin.map(str::to_string));
    tokio::task::spawn_blocking(move || common::shell(&dir, &args, stdin.as_deref())).await.expect("the shell thread")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shell_on_a_cluster_prints_what_it_prints_locally_and_copies_to_the_client() {
    let dir = fixture();
    let port = start_cluster(&dir.path().join("models"), &dir.path().join("work")).await;
    let cluster = format!("df://127.0.0.1:{port}");
    let query = "SELECT count(*) AS n, sum(CAST(ae_is_anomaly('sensors', s0, s1, s2, s3) AS INT)) AS flagged, \
                 max(ae_score('sensors', s0, s1, s2, s3)) AS top FROM 'rows.csv' AS r";

    // -c: the same CSV text as a local run (scores equal bit for bit, printed in full).
    let local = shell(dir.path(), args(&["--format", "csv", "-c", query]), None).await;
    assert!(local.status.success(), "local: {}", text(&local.stderr));
    let remote = shell(dir.path(), args(&["--cluster", &cluster, "--format", "csv", "-c", query]), None).await;
    assert!(remote.status.success(), "cluster: {}", text(&remote.stderr));
    assert_eq!(text(&remote.stdout), text(&local.stdout));
    assert!(text(&remote.stdout).starts_with("n,flagged,top\n300,"), "{}", text(&remote.stdout));

    // -f with COPY: a relative path is the client's, as locally; the last query reads the file back
    // through the cluster.
    std::fs::write(
        dir.path().join("session.sql"),
        "COPY (SELECT s0, ae_score('sensors', s0, s1, s2, s3) AS score FROM 'rows.csv' AS r) TO 'scored.parquet';\n\
         SELECT count(*) AS n, bool_and(score >= 0) AS ok FROM 'scored.parquet' AS s;\n",
    )
    .expect("script");
    let out = shell(dir.path(), args(&["--cluster", &cluster, "--format", "csv", "-f", "session.sql"]), None).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "count\n300\nn,ok\n300,true\n");
    assert!(dir.path().join("scored.parquet").is_file(), "COPY wrote into the shell's directory");

    // Piped statements, as the prompt reads them.
    let out = shell(dir.path(), args(&["--cluster", &cluster, "--format", "csv"]), Some("SELECT 40 + 2 AS x;\n")).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("x\n42\n"), "{}", text(&out.stdout));

    // An error on the cluster: the autoenc message, exit status 1.
    let bad = "SELECT ae_score('nope', s0, s1, s2, s3) FROM 'rows.csv' AS r";
    let out = shell(dir.path(), args(&["--cluster", &cluster, "-c", bad]), None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown model 'nope'"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_a_clear_error_not_a_hang() {
    let dir = fixture();
    let nobody = format!("df://127.0.0.1:{}", free_port());
    let start = Instant::now();
    let out = shell(dir.path(), args(&["--cluster", &nobody, "-c", "SELECT 1"]), None).await;
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    assert!(text(&out.stderr).starts_with("error: "), "{}", text(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(30), "gave up in {:?}", start.elapsed());
}
