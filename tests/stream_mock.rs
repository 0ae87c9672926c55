//! The Kafka pipeline against librdkafka's in-process mock cluster: scores equal the CLI's, bad
//! messages become dead letters with their reason, order per partition, headers and keys are kept,
//! offsets are committed after the outputs (graceful shutdown, SIGKILL and restart), two instances
//! share a group across a rebalance, and a hot reload changes `model_version` without losing or
//! duplicating rows; every metric the Grafana dashboard queries is served by the live `/metrics`
//! endpoint. The mock's transactions are a stub, so exactly-once is tested on tansu
//! (tests/stream_tansu.rs).

#[path = "stream/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use autoenc::stream::{InputFormat, Metrics, StreamConfig, Summary};
use harness::*;
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;

const IN: &str = "in";
const OUT: &str = "out";
const ALERTS: &str = "alerts";
const DLQ: &str = "dlq";

fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(IN, 4, 1).unwrap();
    cluster.create_topic(OUT, 4, 1).unwrap();
    cluster.create_topic(ALERTS, 1, 1).unwrap();
    cluster.create_topic(DLQ, 1, 1).unwrap();
    cluster
}

fn config(brokers: &str, model: &std::path::Path, group: &str) -> StreamConfig {
    StreamConfig {
        brokers: brokers.into(),
        group_id: group.into(),
        input_topics: vec![IN.into()],
        output_topic: OUT.into(),
        alerts_topic: Some(ALERTS.into()),
        dead_letter_topic: Some(DLQ.into()),
        model: model.into(),
        max_rows: 256,
        max_wait_ms: 10,
        metrics_addr: String::new(),
        reload_interval_ms: 50,
        kafka: [("session.timeout.ms".to_string(), "6000".to_string())].into(),
        ..Default::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(3).enable_all().build().unwrap()
}

/// A pipeline running on `runtime` until the returned sender says stop.
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<Summary, autoenc::stream::StreamError>>,
}

fn start(runtime: &tokio::runtime::Runtime, config: StreamConfig, metrics: Metrics) -> Running {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = runtime.spawn(autoenc::stream::run(config, metrics, shutdown));
    Running { stop, task }
}

impl Running {
    fn finish(self, runtime: &tokio::runtime::Runtime) -> Summary {
        let _ = self.stop.send(true);
        runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), self.task).await })
            .expect("the pipeline stops within 60 s")
            .expect("task")
            .expect("pipeline result")
    }
}

fn messages(data: &ndarray::Array2<f32>, first_id: usize) -> Vec<Outgoing> {
    data.rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let id = first_id + i;
            let headers = (id % 2 == 0).then(|| header("trace", &format!("t{id}")));
            (Some((id % 4) as i32), format!("k{id}"), json_row(id, row).into_bytes(), headers)
        })
        .collect()
}

fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// The CLI's scores for `data` (through a CSV file and `autoenc score`).
fn cli_scores(dir: &std::path::Path, model: &std::path::Path, data: &ndarray::Array2<f32>) -> Vec<f64> {
    let input = dir.join("rows.csv");
    let mut text = (0..FEATURES).map(|j| format!("f{j}")).collect::<Vec<_>>().join(",") + "\n";
    for row in data.rows() {
        text += &row.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(",");
        text += "\n";
    }
    std::fs::write(&input, text).unwrap();
    let output = dir.join("scored.parquet");
    let status = Command::new(env!("CARGO_BIN_EXE_autoenc"))
        .args(["-q", "score"])
        .arg(model)
        .arg(&input)
        .arg("--out")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let batch = autoenc::io::table::read_table(&output).unwrap();
    use arrow::array::AsArray;
    batch.column_by_name("score").unwrap().as_primitive::<arrow::datatypes::Float64Type>().values().to_vec()
}

#[test]
fn scores_equal_the_cli_and_bad_messages_become_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    let model = train_model(&model_path, 1);
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let data = rows(3000, 5);
    let mut input = messages(&data, 0);
    let bad = [
        ("unparseable", "{\"id\": 1, \"f0\": ".to_string()),
        ("non_numeric", "{\"f0\": \"high\", \"f1\": 1}".to_string()),
        ("infinite", "{\"f0\": 1e39, \"f1\": 1}".to_string()),
        ("no_features", "{\"id\": 5, \"temperature\": 1}".to_string()),
    ];
    for (i, (code, payload)) in bad.iter().enumerate() {
        let at = 500 * (i + 1);
        input
            .insert(at, (Some(1), format!("bad-{code}"), payload.clone().into_bytes(), Some(header("origin", "test"))));
    }
    produce(&brokers, IN, &input);

    let runtime = runtime();
    let metrics = Metrics::new();
    let (address, _server) =
        runtime.block_on(autoenc::stream::metrics::serve(metrics.clone(), "127.0.0.1:0".parse().unwrap())).unwrap();
    let running = start(&runtime, config(&brokers, &model_path, "g1"), metrics);
    let output = read_topic(&brokers, OUT, Duration::from_secs(60), false, |m| m.len() >= data.nrows());
    let health = http_get(address, "/health");
    // Every metric the Grafana dashboard queries is served by this live endpoint. Labelled metrics
    // appear with their first value: the lag gauge with librdkafka's first statistics (every second).
    let wanted = dashboard_metrics();
    assert!(wanted.len() >= 8, "the dashboard queries {wanted:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let missing = loop {
        let served = served_metrics(&http_get(address, "/metrics"));
        let missing: Vec<String> = wanted.difference(&served).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(missing.is_empty(), "the dashboard queries metrics that /metrics does not serve: {missing:?}");
    let summary = running.finish(&runtime);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(http_get(address, "/health").starts_with("HTTP/1.1 503"), "not consuming after shutdown");

    // Every row once, with the CLI's score, the model's flag and version, the input's key and headers.
    let records = by_id(&output);
    assert_eq!(records.len(), data.nrows());
    assert!(records.values().all(|v| v.len() == 1), "no duplicates without a crash or rebalance");
    let expected = cli_scores(dir.path(), &model_path, &data);
    let version = autoenc::stream::model_source::version_of(&std::fs::read(&model_path).unwrap());
    let mut flagged = 0;
    for (id, values) in &records {
        let record = &values[0];
        let score = record["score"].as_f64().unwrap();
        let want = expected[*id as usize];
        assert!((score - want).abs() <= 1e-6 * want.abs().max(1.0), "row {id}: stream {score} vs CLI {want}");
        assert_eq!(record["is_anomaly"].as_bool().unwrap(), model.is_anomaly(score));
        assert_eq!(record["percentile"].as_f64().unwrap(), model.percentile(score));
        assert_eq!(record["embedding"].as_array().unwrap().len(), model.latent_size());
        assert_eq!(record["model_version"], version.as_str());
        assert_eq!(record["f0"].as_f64().unwrap() as f32, data[[*id as usize, 0]], "input fields pass through");
        flagged += usize::from(model.is_anomaly(score));
    }
    assert!(flagged > 0, "the planted outliers are flagged");
    for message in &output {
        let record: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        let id = record["id"].as_u64().unwrap();
        assert_eq!(message.key(), Some(format!("k{id}").as_bytes()));
        assert_eq!(message.partition() as u64, id % 4, "the input partition is kept");
        assert_eq!(header_value(message, "trace"), (id % 2 == 0).then(|| format!("t{id}")));
    }
    // Per-partition order: ids were produced increasing within each partition.
    for partition in 0..4 {
        let ids: Vec<u64> = output
            .iter()
            .filter(|m| m.partition() == partition)
            .map(|m| serde_json::from_slice::<serde_json::Value>(m.payload().unwrap()).unwrap()["id"].as_u64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "partition {partition} out of order");
    }

    let alerts = read_topic(&brokers, ALERTS, Duration::from_secs(20), false, |m| m.len() >= flagged);
    assert_eq!(distinct_ids(&alerts), flagged, "the alerts topic holds exactly the flagged rows");

    let dead = read_topic(&brokers, DLQ, Duration::from_secs(20), false, |m| m.len() >= bad.len());
    assert_eq!(dead.len(), bad.len());
    for (code, payload) in &bad {
        let letter = dead
            .iter()
            .find(|m| m.key() == Some(format!("bad-{code}").as_bytes()))
            .unwrap_or_else(|| panic!("no dead letter for {code}"));
        assert_eq!(header_value(letter, "autoenc.error").as_deref(), Some(*code));
        assert_eq!(letter.payload(), Some(payload.as_bytes()), "the original payload");
        assert_eq!(header_value(letter, "origin").as_deref(), Some("test"), "the original headers");
        assert_eq!(header_value(letter, "autoenc.topic").as_deref(), Some(IN));
        assert_eq!(header_value(letter, "autoenc.partition").as_deref(), Some("1"));
        let offset: i64 = header_value(letter, "autoenc.offset").unwrap().parse().unwrap();
        assert!(offset >= 0);
        assert!(!header_value(letter, "autoenc.error.message").unwrap().is_empty());
    }

    // Graceful shutdown committed everything it consumed.
    assert_eq!(committed(&brokers, "g1", IN, 4), end_offsets(&brokers, IN, 4));
    assert_eq!(summary.messages_in as usize, input.len());
    assert_eq!(summary.dead_letters as usize, bad.len());
    let text = http_get(address, "/metrics");
    assert!(text.contains(&format!("autoenc_messages_in_total {}", input.len())), "{text}");
    assert!(text.contains("autoenc_dead_letters_total{reason=\"infinite\"} 1"), "{text}");
    assert!(text.contains("autoenc_batch_latency_seconds_bucket"), "{text}");
}

/// The metric names in the Grafana dashboard's queries (identifiers with the `autoenc_` prefix).
fn dashboard_metrics() -> BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/grafana/dashboards/autoenc.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            for (start, _) in expr.match_indices("autoenc_") {
                let name = expr[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                names.insert(name);
            }
        }
    }
    names
}

/// The metric names in a Prometheus text exposition (histograms give `_bucket`, `_sum`, `_count`).
fn served_metrics(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn csv_arrow_and_array_field_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    let model = train_model(&model_path, 2);
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let data = rows(40, 9);
    let runtime = runtime();

    // JSON with one array field; a wrong-length array is a dead letter.
    let mut input: Vec<_> = data
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| (None, format!("{i}"), format!("{{\"id\":{i},\"x\":{:?}}}", row.to_vec()).into_bytes(), None))
        .collect();
    input.push((None, "short".into(), b"{\"id\": 99, \"x\": [1, 2]}".to_vec(), None));
    produce(&brokers, IN, &input);
    let mut c = config(&brokers, &model_path, "array");
    c.features_field = Some("x".into());
    let running = start(&runtime, c, Metrics::new());
    let output = read_topic(&brokers, OUT, Duration::from_secs(30), false, |m| m.len() >= data.nrows());
    let dead = read_topic(&brokers, DLQ, Duration::from_secs(10), false, |m| !m.is_empty());
    running.finish(&runtime);
    let scores = model.score(data.view()).unwrap();
    for (id, values) in by_id(&output) {
        let got = values[0]["score"].as_f64().unwrap();
        assert!((got - scores[id as usize]).abs() <= 1e-6 * scores[id as usize].max(1.0));
    }
    assert_eq!(header_value(&dead[0], "autoenc.error").as_deref(), Some("wrong_dimension"));
    assert!(header_value(&dead[0], "autoenc.error.message").unwrap().contains("expected 6 features, got 2"));

    // CSV lines, other columns passed through, and Arrow IPC messages of several rows each, through
    // fresh topics.
    for topic in ["csv-in", "csv-out", "arrow-in", "arrow-out"] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let lines: Vec<_> = data
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let values: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            (None, format!("{i}"), format!("dev{i},{}", values.join(",")).into_bytes(), None)
        })
        .collect();
    produce(&brokers, "csv-in", &lines);
    let mut c = config(&brokers, &model_path, "csv");
    c.input_topics = vec!["csv-in".into()];
    c.output_topic = "csv-out".into();
    c.input_format = InputFormat::Csv;
    c.csv_columns = std::iter::once("device".to_string()).chain((0..FEATURES).map(|j| format!("f{j}"))).collect();
    let running = start(&runtime, c, Metrics::new());
    let output = read_topic(&brokers, "csv-out", Duration::from_secs(30), false, |m| m.len() >= data.nrows());
    running.finish(&runtime);
    assert_eq!(output.len(), data.nrows());
    for message in &output {
        let record: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        let i: usize = std::str::from_utf8(message.key().unwrap()).unwrap().parse().unwrap();
        assert_eq!(record["device"], format!("dev{i}"));
        assert!((record["score"].as_f64().unwrap() - scores[i]).abs() <= 1e-6 * scores[i].max(1.0));
    }

    use arrow::array::{AsArray, Float32Array, RecordBatch};
    use std::sync::Arc;
    let chunks: Vec<_> = (0..4)
        .map(|c| {
            let range = c * 10..(c + 1) * 10;
            let mut columns: Vec<(String, arrow::array::ArrayRef)> = vec![(
                "row".into(),
                Arc::new(arrow::array::Int64Array::from_iter_values(range.clone().map(|i| i as i64))),
            )];
            for j in 0..FEATURES {
                let values: Vec<f32> = range.clone().map(|i| data[[i, j]]).collect();
                columns.push((format!("f{j}"), Arc::new(Float32Array::from(values))));
            }
            let batch = RecordBatch::try_from_iter(columns).unwrap();
            (None, format!("chunk{c}"), autoenc::stream::encode::ipc_bytes(&batch).unwrap(), None)
        })
        .collect();
    produce(&brokers, "arrow-in", &chunks);
    let mut c = config(&brokers, &model_path, "arrow");
    c.input_topics = vec!["arrow-in".into()];
    c.output_topic = "arrow-out".into();
    c.input_format = InputFormat::Arrow;
    c.output_format = autoenc::stream::OutputFormat::Arrow;
    let running = start(&runtime, c, Metrics::new());
    let output = read_topic(&brokers, "arrow-out", Duration::from_secs(30), false, |m| m.len() >= 4);
    running.finish(&runtime);
    assert_eq!(output.len(), 4, "one output message per input message");
    for message in &output {
        let reader =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(message.payload().unwrap()), None).unwrap();
        let batch = reader.into_iter().next().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 10);
        let row = batch.column_by_name("row").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
        let score = batch.column_by_name("score").unwrap().as_primitive::<arrow::datatypes::Float64Type>();
        for k in 0..10 {
            let i = row.value(k) as usize;
            assert!((score.value(k) - scores[i]).abs() <= 1e-6 * scores[i].max(1.0));
        }
        assert!(batch.column_by_name("embedding").is_some() && batch.column_by_name("model_version").is_some());
    }
}

fn spawn_stream(brokers: &str, model: &std::path::Path, group: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_autoenc"))
        .args(["-q", "stream", "--brokers", brokers, "--group-id", group, "--input-topic", IN, "--output-topic", OUT])
        .args(["--dead-letter-topic", DLQ, "--max-rows", "200", "--max-wait-ms", "10", "--metrics-addr", ""])
        .args(["-X", "session.timeout.ms=6000"])
        // Several batches awaiting acknowledgements at once: a kill must still lose nothing, and
        // SIGTERM must still commit everything.
        .args(["--max-in-flight-batches", "3"])
        .arg("--model")
        .arg(model)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("autoenc stream")
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killed_mid_stream_and_restarted_loses_nothing_and_sigterm_commits() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    train_model(&model_path, 3);
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let data = rows(20_000, 11);
    let all = messages(&data, 0);
    // The stream arrives over a few seconds, so the kill lands in the middle of it.
    let feeder = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            for chunk in all.chunks(500) {
                produce(&brokers, IN, chunk);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let mut first = spawn_stream(&brokers, &model_path, "crash");
    let partial = read_topic(&brokers, OUT, Duration::from_secs(60), false, |m| m.len() >= 2000);
    assert!(partial.len() >= 2000, "the first instance made progress");
    first.kill().unwrap(); // SIGKILL: no shutdown path at all
    first.wait().unwrap();
    let committed_at_kill: i64 = committed(&brokers, "crash", IN, 4).iter().map(|&c| c.max(0)).sum();
    assert!(committed_at_kill < data.nrows() as i64, "killed mid-stream ({committed_at_kill} committed)");
    feeder.join().unwrap();

    let mut second = spawn_stream(&brokers, &model_path, "crash");
    let output = read_topic(&brokers, OUT, Duration::from_secs(120), false, distinct_reached(data.nrows()));
    assert_eq!(distinct_ids(&output), data.nrows(), "every input key reaches the output");
    // SIGTERM: finish the batch in hand, commit, exit 0.
    let status = Command::new("kill").args(["-TERM", &second.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(wait_exit(&mut second, Duration::from_secs(60)).success(), "exit code 0 after SIGTERM");
    assert_eq!(committed(&brokers, "crash", IN, 4), end_offsets(&brokers, IN, 4));
}

#[test]
fn two_instances_in_one_group_share_partitions_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    train_model(&model_path, 4);
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let data = rows(12_000, 13);
    let all = messages(&data, 0);
    let runtime = runtime();
    produce(&brokers, IN, &all[..6000]);
    let first = start(&runtime, config(&brokers, &model_path, "shared"), Metrics::new());
    read_topic(&brokers, OUT, Duration::from_secs(60), false, |m| m.len() >= 1000);
    // The second instance joins mid-stream: a rebalance moves partitions while the first is working.
    let second_metrics = Metrics::new();
    let second = start(&runtime, config(&brokers, &model_path, "shared"), second_metrics.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while second_metrics.assigned_partitions.get() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(second_metrics.assigned_partitions.get() > 0, "the second instance got partitions");
    produce(&brokers, IN, &all[6000..]);
    let output = read_topic(&brokers, OUT, Duration::from_secs(120), false, distinct_reached(data.nrows()));
    let a = first.finish(&runtime);
    let b = second.finish(&runtime);
    assert_eq!(distinct_ids(&output), data.nrows(), "nothing lost across the rebalance");
    assert!(
        a.rows_scored > 0 && b.rows_scored > 0,
        "both instances scored rows: {} and {}",
        a.rows_scored,
        b.rows_scored
    );
    assert!(a.rows_scored + b.rows_scored >= data.nrows() as u64);
    assert_eq!(committed(&brokers, "shared", IN, 4), end_offsets(&brokers, IN, 4));
}

#[test]
fn hot_reload_stamps_the_new_version_without_losing_or_duplicating_rows() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    train_model(&model_path, 5);
    let old_version = autoenc::stream::model_source::version_of(&std::fs::read(&model_path).unwrap());
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let data = rows(2000, 17);
    let all = messages(&data, 0);
    let runtime = runtime();
    let metrics = Metrics::new();
    let running = start(&runtime, config(&brokers, &model_path, "reload"), metrics.clone());
    produce(&brokers, IN, &all[..1000]);
    read_topic(&brokers, OUT, Duration::from_secs(60), false, |m| m.len() >= 1000);

    // A retrained model replaces the file (atomically, as `Autoencoder::save` writes).
    let other = dir.path().join("other.ae");
    let new_model = train_model(&other, 6);
    new_model.save(&model_path).unwrap();
    let new_version = autoenc::stream::model_source::version_of(&std::fs::read(&model_path).unwrap());
    assert_ne!(old_version, new_version);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.model_reloads.get() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(metrics.model_reloads.get(), 1, "the change is picked up between batches");
    produce(&brokers, IN, &all[1000..]);
    let output = read_topic(&brokers, OUT, Duration::from_secs(60), false, |m| m.len() >= data.nrows());
    let summary = running.finish(&runtime);
    assert_eq!(summary.model_reloads, 1);
    let records = by_id(&output);
    assert_eq!(records.len(), data.nrows());
    assert!(records.values().all(|v| v.len() == 1), "no duplicates");
    let new_scores = new_model.score(data.view()).unwrap();
    for (id, values) in records {
        let expected = if id < 1000 { &old_version } else { &new_version };
        assert_eq!(values[0]["model_version"], expected.as_str(), "row {id}");
        if id >= 1000 {
            let got = values[0]["score"].as_f64().unwrap();
            assert!((got - new_scores[id as usize]).abs() <= 1e-6 * new_scores[id as usize].max(1.0));
        }
    }
}

#[test]
fn a_bad_config_or_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let missing = config("127.0.0.1:1", &dir.path().join("absent.ae"), "g");
    let error = runtime.block_on(autoenc::stream::run(missing, Metrics::new(), shutdown.clone())).unwrap_err();
    assert!(error.to_string().contains("absent.ae"), "{error}");
    let mut no_output = config("127.0.0.1:1", &dir.path().join("m.ae"), "g");
    no_output.output_topic.clear();
    let error = runtime.block_on(autoenc::stream::run(no_output, Metrics::new(), shutdown)).unwrap_err();
    assert!(error.to_string().contains("output_topic"), "{error}");
    let status = Command::new(env!("CARGO_BIN_EXE_autoenc"))
        .args(["stream", "--input-topic", "a", "--output-topic", "b", "--model", "m.ae", "--max-rows", "0"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("max_rows"));
}

#[test]
fn an_oversized_message_becomes_a_cut_dead_letter_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    train_model(&model_path, 9);
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let first = rows(300, 31);
    let later = rows(100, 32);
    // Over the producer's default message.max.bytes (1,000,000) on its own: a valid row whose output
    // would be too large, and an unparseable message whose dead letter would be.
    let blob = "x".repeat(1_200_000);
    let mut valid = json_row(9999, first.row(0));
    valid.insert_str(valid.len() - 1, &format!(",\"blob\":\"{blob}\""));
    let bad = format!("{{\"id\": 9998, \"blob\": \"{blob}");
    let mut input = messages(&first, 0);
    input.insert(150, (Some(1), "huge-valid".into(), valid.clone().into_bytes(), Some(header("origin", "test"))));
    input.insert(200, (Some(1), "huge-bad".into(), bad.clone().into_bytes(), None));
    produce_large(&brokers, IN, &input, 4_000_000);

    let runtime = runtime();
    let running = start(&runtime, config(&brokers, &model_path, "large"), Metrics::new());
    let output = read_topic(&brokers, OUT, Duration::from_secs(30), false, |m| {
        m.len() >= first.nrows() || running.task.is_finished()
    });
    assert!(!running.task.is_finished(), "the pipeline stopped on the oversized message");
    assert_eq!(distinct_ids(&output), first.nrows(), "the normal messages around it are scored and produced");
    let dead = read_topic(&brokers, DLQ, Duration::from_secs(20), false, |m| m.len() >= 2);

    // The pipeline goes on with later messages.
    produce(&brokers, IN, &messages(&later, first.nrows()));
    let total = first.nrows() + later.nrows();
    let output = read_topic(&brokers, OUT, Duration::from_secs(30), false, distinct_reached(total));
    let summary = running.finish(&runtime);
    let records = by_id(&output);
    assert_eq!(records.len(), total, "every normal message is in the output");
    assert!(records.values().all(|v| v.len() == 1), "nothing duplicated");
    assert_eq!(summary.dead_letters, 2);

    assert_eq!(dead.len(), 2, "one dead letter each");
    for (key, code, original) in [("huge-valid", "too_large", &valid), ("huge-bad", "unparseable", &bad)] {
        let letter = dead.iter().find(|m| m.key() == Some(key.as_bytes())).unwrap_or_else(|| panic!("no {key}"));
        assert_eq!(header_value(letter, "autoenc.error").as_deref(), Some(code), "{key}");
        assert!(!header_value(letter, "autoenc.error.message").unwrap().is_empty());
        assert_eq!(header_value(letter, "autoenc.original.size"), Some(original.len().to_string()), "{key}");
        assert_eq!(header_value(letter, "autoenc.truncated").as_deref(), Some("payload"), "{key}");
        let payload = letter.payload().unwrap();
        assert!(payload.len() < 1_000_000 && payload.len() > 900_000, "{key}: cut to fit, {} bytes", payload.len());
        assert!(original.as_bytes().starts_with(payload), "{key}: the payload is the original's beginning");
        assert_eq!(header_value(letter, "autoenc.partition").as_deref(), Some("1"));
    }
    let letter = dead.iter().find(|m| m.key() == Some(&b"huge-valid"[..])).unwrap();
    assert_eq!(header_value(letter, "origin").as_deref(), Some("test"), "small original headers are kept");
    assert!(header_value(letter, "autoenc.error.message").unwrap().contains("bytes"));
    assert_eq!(committed(&brokers, "large", IN, 4), end_offsets(&brokers, IN, 4), "everything committed");
}

#[test]
fn learning_checkpoints_atomically_and_a_kill_mid_checkpoint_leaves_a_loadable_model() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    train_model(&model_path, 14);
    let before = std::fs::read(&model_path).unwrap();
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let data = rows(2000, 33);
    produce(&brokers, IN, &messages(&data, 0));

    let runtime = runtime();
    let metrics = Metrics::new();
    let mut c = config(&brokers, &model_path, "learn");
    c.learn = true;
    c.checkpoint_every = 2;
    let running = start(&runtime, c, metrics.clone());
    let output = read_topic(&brokers, OUT, Duration::from_secs(60), false, |m| m.len() >= data.nrows());
    let summary = running.finish(&runtime);
    assert_eq!(distinct_ids(&output), data.nrows());
    let after = std::fs::read(&model_path).unwrap();
    assert_ne!(before, after, "the learned model was written back");
    let learned = autoenc::Autoencoder::load(&model_path).expect("the checkpoint loads");
    assert_eq!(learned.n_features(), FEATURES);
    assert!(metrics.checkpoints.get() >= 1, "checkpoints during the run and at shutdown");
    assert_eq!(summary.model_reloads, 0, "its own checkpoints are not taken for a new model");
    // Rows scored after learning batches carry `<version>+<n>` or a checkpoint's version.
    let initial = autoenc::stream::model_source::version_of(&before);
    let versions: BTreeSet<String> =
        by_id(&output).values().map(|v| v[0]["model_version"].as_str().unwrap().to_string()).collect();
    assert!(versions.contains(&initial), "{versions:?}");
    assert!(versions.len() > 1, "the version moves as the model learns: {versions:?}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left after a clean run");

    // SIGKILL at various moments of a run that checkpoints after every batch: whenever the process
    // dies, the model file is a complete model (written to a temporary file, then renamed).
    let more = rows(20_000, 34);
    produce(&brokers, IN, &messages(&more, data.nrows()));
    let before_kills = std::fs::read(&model_path).unwrap();
    for (round, wait_ms) in [1500u64, 2100, 2700, 3300].into_iter().enumerate() {
        // A group per round: a killed member would hold its partitions until its session expires.
        let group = format!("learn-kill-{round}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_autoenc"))
            .args(["-q", "stream", "--brokers", &brokers, "--group-id", &group, "--input-topic", IN])
            .args(["--output-topic", OUT, "--max-rows", "50", "--max-wait-ms", "5", "--metrics-addr", ""])
            .args(["--learn", "--checkpoint-every", "1", "-X", "session.timeout.ms=6000"])
            .arg("--model")
            .arg(&model_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        autoenc::Autoencoder::load(&model_path)
            .unwrap_or_else(|e| panic!("round {round}: the model file does not load after a kill: {e}"));
    }
    assert_ne!(std::fs::read(&model_path).unwrap(), before_kills, "the killed runs were checkpointing");
}

#[test]
fn a_sliding_threshold_follows_a_drift_in_the_scores() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    let model = train_model(&model_path, 15);
    let cluster = cluster();
    cluster.create_topic("drift-in", 1, 1).unwrap();
    cluster.create_topic("drift-out", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    // 1000 rows like the training data, then 1000 with extra noise: their scores move up together.
    let clean = rows(1000, 35);
    let mut drifted = rows(1000, 36);
    for ((i, j), value) in drifted.indexed_iter_mut() {
        *value += 3.0 * ((i * 7 + j * 3) as f32).sin();
    }
    let mut input = messages(&clean, 0);
    input.extend(messages(&drifted, 1000));
    for message in &mut input {
        message.0 = Some(0); // one partition: the window sees the rows in order
    }
    produce(&brokers, "drift-in", &input);

    let runtime = runtime();
    let mut c = config(&brokers, &model_path, "drift");
    c.input_topics = vec!["drift-in".into()];
    c.output_topic = "drift-out".into();
    c.alerts_topic = None;
    c.threshold_window = 400;
    c.contamination = Some(0.02);
    let running = start(&runtime, c, Metrics::new());
    let output = read_topic(&brokers, "drift-out", Duration::from_secs(60), false, |m| m.len() >= 2000);
    running.finish(&runtime);
    let records = by_id(&output);
    assert_eq!(records.len(), 2000);
    // The last 500 drifted rows: the model's fixed threshold flags most of them, the window (full of
    // drifted scores by then) about its contamination.
    let tail: Vec<&serde_json::Value> = (1500..2000).map(|id| &records[&id][0]).collect();
    let fixed = tail.iter().filter(|r| model.is_anomaly(r["score"].as_f64().unwrap())).count();
    let sliding = tail.iter().filter(|r| r["is_anomaly"].as_bool().unwrap()).count();
    eprintln!("last 500 drifted rows flagged: fixed threshold {fixed}, sliding window {sliding}");
    assert!(fixed > 150, "the drift raises the scores past the model's threshold ({fixed} of 500)");
    assert!(sliding < 50, "the window's threshold follows the drift ({sliding} of 500 flagged)");
    // Before the drift the window flags about the contamination too.
    let early = (600..1000).filter(|id| records[id][0]["is_anomaly"].as_bool().unwrap()).count();
    assert!(early < 40, "{early} of 400 clean rows flagged");
}

#[test]
fn records_the_broker_refuses_as_too_large_become_dead_letters_and_the_stream_goes_on() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    train_model(&model_path, 16);
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let first = rows(200, 37);
    let later = rows(100, 38);
    produce(&brokers, IN, &messages(&first, 0));
    // The next produce request fails as a broker with a lower limit than the producer's would answer:
    // every record of that request is refused, whatever its size.
    cluster.request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE]);

    let runtime = runtime();
    let metrics = Metrics::new();
    let running = start(&runtime, config(&brokers, &model_path, "refused"), metrics.clone());
    let refused_ids = |dead: &[rdkafka::message::OwnedMessage]| -> BTreeSet<u64> {
        dead.iter()
            .filter(|m| header_value(m, "autoenc.error").as_deref() == Some("too_large"))
            .map(|m| serde_json::from_slice::<serde_json::Value>(m.payload().unwrap()).unwrap()["id"].as_u64().unwrap())
            .collect()
    };
    // Wait until every first-round id is either in the output or a dead letter.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (output, dead) = loop {
        let output = read_topic(&brokers, OUT, Duration::from_secs(2), false, |_| false);
        let dead = read_topic(&brokers, DLQ, Duration::from_secs(1), false, |_| false);
        let seen: BTreeSet<u64> = by_id(&output).keys().copied().chain(refused_ids(&dead)).collect();
        if seen.len() >= first.nrows() || Instant::now() > deadline || running.task.is_finished() {
            break (output, dead);
        }
    };
    assert!(!running.task.is_finished(), "the pipeline stopped on the refusal");
    let refused = refused_ids(&dead);
    assert!(!refused.is_empty(), "the injected refusal reached the pipeline");
    let scored: BTreeSet<u64> = by_id(&output).keys().copied().collect();
    let all: BTreeSet<u64> = scored.union(&refused).copied().collect();
    assert_eq!(all.len(), first.nrows(), "each record is in the output or a dead letter");
    for letter in dead.iter().filter(|m| header_value(m, "autoenc.error").as_deref() == Some("too_large")) {
        // The refused produce request may be the output's or the alerts' (whichever librdkafka sent
        // first): the dead letter names the topic that refused it.
        let refused_topic = header_value(letter, "autoenc.refused.topic");
        assert!(matches!(refused_topic.as_deref(), Some(OUT) | Some(ALERTS)), "{refused_topic:?}");
        assert!(header_value(letter, "autoenc.original.size").is_some());
    }
    produce(&brokers, IN, &messages(&later, first.nrows()));
    let output = read_topic(&brokers, OUT, Duration::from_secs(30), false, |m| {
        by_id(m).keys().filter(|&&id| id >= first.nrows() as u64).count() >= later.nrows()
    });
    running.finish(&runtime);
    let late = by_id(&output).keys().filter(|&&id| id >= first.nrows() as u64).count();
    assert_eq!(late, later.nrows(), "later messages are scored after the refusal");
    eprintln!(
        "{} of {} records refused by the injected error went to the dead-letter topic",
        refused.len(),
        first.nrows()
    );
}

#[test]
fn a_model_with_categorical_features_scores_json_text_and_booleans_as_the_core_does() {
    use autoenc::synthetic_devices::{DeviceEvents, device_events};
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("devices.ae");
    let training = device_events(1500, 0.0, 11);
    let vocabularies = training.vocabularies(64).unwrap();
    let (x, kinds) = training.coded(&vocabularies);
    let names: Vec<String> = DeviceEvents::NAMES.iter().map(|n| n.to_string()).collect();
    let params = autoenc::Autoencoder::params().epochs(5).seed(3).record_timings(false).check().unwrap();
    let model = params.fit_with_kinds(x.view(), names, kinds, &mut |_| {}).unwrap();
    model.save(&model_path).unwrap();

    // Events as JSON: text and true/false fields; one device never seen, one protocol null, one absent.
    let events = device_events(300, 0.05, 12);
    let mut devices: Vec<Option<String>> = events.device.iter().cloned().map(Some).collect();
    devices[7] = Some("toaster".into());
    let mut protocols: Vec<Option<String>> = events.protocol.iter().cloned().map(Some).collect();
    protocols[8] = None;
    let mut input: Vec<Outgoing> = (0..300)
        .map(|i| {
            let mut record = serde_json::json!({
                "id": i, "device": devices[i], "encrypted": events.encrypted[i],
                "log_bytes": events.log_bytes[i], "log_packets": events.log_packets[i], "duration": events.duration[i],
            });
            if i != 9 {
                record["protocol"] = serde_json::json!(protocols[i]);
            } else {
                protocols[9] = None; // absent: the NULL category, as null is
            }
            (Some((i % 4) as i32), format!("k{i}"), record.to_string().into_bytes(), None)
        })
        .collect();
    let wrong_kind = r#"{"id": 999, "device": 3, "protocol": "tcp", "encrypted": true, "log_bytes": 1}"#;
    input.push((Some(0), "bad".into(), wrong_kind.as_bytes().to_vec(), None));
    let invalid_utf8 = b"{\"id\": 998, \"device\": \"\xff\xfe\", \"log_bytes\": 1}".to_vec();
    input.push((Some(1), "bad-utf8".into(), invalid_utf8, None));
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, IN, &input);

    let runtime = runtime();
    let metrics = Metrics::new();
    let running = start(&runtime, config(&brokers, &model_path, "mixed"), metrics.clone());
    let output = read_topic(&brokers, OUT, Duration::from_secs(60), false, |m| m.len() >= 300);
    let dead = read_topic(&brokers, DLQ, Duration::from_secs(20), false, |m| m.len() >= 2);
    running.finish(&runtime);

    // The core's scores for the same values, coded in the model's vocabularies.
    let vocabulary = |j: usize| model.feature_kinds()[j].vocabulary().unwrap();
    let coded = ndarray::Array2::from_shape_fn((300, 6), |(i, j)| match j {
        0 => vocabulary(0).code(devices[i].as_deref()) as f32,
        1 => vocabulary(1).code(protocols[i].as_deref()) as f32,
        2 => vocabulary(2).code(Some(&events.encrypted[i].to_string())) as f32,
        3 => events.log_bytes[i],
        4 => events.log_packets[i],
        _ => events.duration[i],
    });
    let want = model.score(coded.view()).unwrap();
    let records = by_id(&output);
    assert_eq!(records.len(), 300);
    for (id, values) in &records {
        let score = values[0]["score"].as_f64().unwrap();
        let expected = want[*id as usize];
        assert_eq!(score.to_bits(), expected.to_bits(), "row {id}: {score} vs {expected}");
        assert_eq!(values[0]["device"], serde_json::json!(devices[*id as usize]), "input fields pass through");
    }
    let reason = |key: &str| {
        let letter = dead.iter().find(|m| m.key() == Some(key.as_bytes())).expect("a dead letter");
        header_value(letter, "autoenc.error")
    };
    assert_eq!(reason("bad").as_deref(), Some("wrong_kind"));
    assert_eq!(reason("bad-utf8").as_deref(), Some("unparseable"));
    let served = metrics.render();
    assert!(served.contains("autoenc_unknown_categories_total{feature=\"device\"} 1"), "{served}");
}
