//! `autoenc demo`: a demonstration of the whole pipeline with nothing to configure. It starts an in-process Kafka
//! (librdkafka's mock cluster), trains the default model on a clean prefix of a synthetic multi-sensor
//! stream, produces the rest of the stream (with injected anomalies and a few malformed messages) to an
//! input topic while the real pipeline (`autoenc stream`'s code) scores it into an output topic, shows
//! live progress, and ends with throughput, batch latency and the precision/recall of the flags.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use autoenc::Autoencoder;
use autoenc::metrics::{FlagCounts, average_precision, roc_auc};
use autoenc::stream::{Metrics, StreamConfig};
use autoenc::synthetic::sensor_stream;
use ndarray::s;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Rows in the synthetic stream (the clean training prefix included).
    #[arg(long, default_value_t = 220_000)]
    pub rows: usize,
    /// Sensors (features) per row.
    #[arg(long, default_value_t = 32)]
    pub sensors: usize,
    /// Clean rows used for training.
    #[arg(long, default_value_t = 20_000)]
    pub train_rows: usize,
    /// Partitions of the input and output topics.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Micro-batch limits of the pipeline.
    #[arg(long, default_value_t = 1000)]
    pub max_rows: usize,
    #[arg(long, default_value_t = 20)]
    pub max_wait_ms: u64,
    /// Malformed messages mixed into the stream (they go to the dead-letter topic).
    #[arg(long, default_value_t = 5)]
    pub bad_messages: usize,
    /// Seed for the synthetic data and the model.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

const INPUT: &str = "sensors";
const OUTPUT: &str = "sensors-scored";
const ALERTS: &str = "sensors-alerts";
const DEAD_LETTERS: &str = "sensors-dead-letters";

pub fn run(args: DemoArgs, progress: bool) -> anyhow::Result<()> {
    anyhow::ensure!(args.train_rows > 10 && args.train_rows < args.rows, "--train-rows must be between 10 and --rows");
    anyhow::ensure!(
        args.sensors > 1 && args.partitions > 0 && args.max_rows > 0,
        "--sensors, --partitions, --max-rows"
    );
    let data = sensor_stream(args.rows, args.sensors, args.train_rows, 0.01, args.seed);
    let stream_rows = args.rows - args.train_rows;
    println!(
        "autoenc demo: {} sensors; {} clean rows to train on, then {} rows streamed through Kafka (1 % anomalies)",
        args.sensors, args.train_rows, stream_rows
    );

    // 1. Train on the clean prefix, as a team would before going live.
    let started = Instant::now();
    let params = Autoencoder::params().contamination(0.001).seed(args.seed).check()?;
    let bar = progress_bar(progress, params.epochs() as u64, "training {pos}/{len} epochs {bar:30} {elapsed}");
    let mut on_epoch = |_: &autoenc::EpochRecord| bar.inc(1);
    let model = params.fit_with(data.rows.slice(s![..args.train_rows, ..]), data.names.clone(), &mut on_epoch)?;
    bar.finish_and_clear();
    println!(
        "trained {} ({}) in {:.1} s",
        model.params_used().variant().name(),
        model.architecture().describe(),
        started.elapsed().as_secs_f64()
    );
    let dir = tempfile_dir()?;
    let model_path = dir.join("sensors.ae");
    model.save(&model_path)?;

    // 2. An in-process Kafka with the four topics.
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(INPUT, args.partitions, 1)?;
    cluster.create_topic(OUTPUT, args.partitions, 1)?;
    cluster.create_topic(ALERTS, 1, 1)?;
    cluster.create_topic(DEAD_LETTERS, 1, 1)?;
    let brokers = cluster.bootstrap_servers();
    println!(
        "in-process Kafka (librdkafka mock cluster) at {brokers}; topics {INPUT} -> {OUTPUT}, {ALERTS}, {DEAD_LETTERS}"
    );

    let config = StreamConfig {
        brokers: brokers.clone(),
        group_id: "autoenc-demo".into(),
        input_topics: vec![INPUT.into()],
        output_topic: OUTPUT.into(),
        alerts_topic: Some(ALERTS.into()),
        dead_letter_topic: Some(DEAD_LETTERS.into()),
        model: model_path.clone(),
        max_rows: args.max_rows,
        max_wait_ms: args.max_wait_ms,
        metrics_addr: "127.0.0.1:0".into(),
        ..Default::default()
    };
    let labels: Vec<bool> = data.labels[args.train_rows..].to_vec();
    let stream = data.rows.slice(s![args.train_rows.., ..]).to_owned();
    let names = data.names.clone();

    super::stream::runtime()?.block_on(async move {
        let metrics = Metrics::new();
        let (address, _server) = autoenc::stream::metrics::serve(metrics.clone(), "127.0.0.1:0".parse()?).await?;
        println!("pipeline metrics at http://{address}/metrics");
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let pipeline = tokio::spawn(autoenc::stream::run(config, metrics, shutdown));

        // 3. Produce the stream while the pipeline runs.
        let producing_started = Instant::now();
        let producer_brokers = brokers.clone();
        let bad = args.bad_messages;
        let collected = Arc::new(AtomicUsize::new(0));
        let seen = collected.clone();
        let producer = tokio::task::spawn_blocking(move || produce(&producer_brokers, &stream, &names, bad, &seen));

        // 4. Read the output topic until every good row is back.
        let collector: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "demo-collector")
            .set("auto.offset.reset", "earliest")
            .create()?;
        collector.subscribe(&[OUTPUT])?;
        let bar = progress_bar(progress, stream_rows as u64, "scored {pos}/{len} rows {bar:30} {per_sec} {elapsed}");
        let mut scores: HashMap<usize, (f64, bool)> = HashMap::with_capacity(stream_rows);
        let deadline = Instant::now() + Duration::from_secs(600);
        while scores.len() < stream_rows && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), collector.recv()).await {
                Ok(Ok(message)) => {
                    let record: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
                    let id = record["id"].as_u64().unwrap_or(u64::MAX) as usize;
                    let score = record["score"].as_f64().unwrap_or(f64::NAN);
                    let flagged = record["is_anomaly"].as_bool().unwrap_or(false);
                    if scores.insert(id, (score, flagged)).is_none() {
                        bar.inc(1);
                        collected.store(scores.len(), Ordering::Relaxed);
                    }
                }
                Ok(Err(error)) => tracing::warn!("collector: {error}"),
                Err(_) if pipeline.is_finished() => break,
                Err(_) => {}
            }
        }
        let elapsed = producing_started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        producer.await??;
        let _ = stop.send(true);
        let summary = pipeline.await??;
        anyhow::ensure!(scores.len() == stream_rows, "only {} of {stream_rows} rows came back", scores.len());

        let quantile = |q: f64| summary.latency_quantile_ms(q);
        println!(
            "streamed {} messages through Kafka in {:.2} s: {:.0} msgs/s end to end; {} batches, batch latency \
             p50 {:.1} ms / p99 {:.1} ms",
            summary.messages_in,
            elapsed,
            stream_rows as f64 / elapsed,
            summary.batches,
            quantile(0.5),
            quantile(0.99)
        );
        let ordered: Vec<f64> = (0..stream_rows).map(|i| scores[&i].0).collect();
        let flagged: Vec<bool> = (0..stream_rows).map(|i| scores[&i].1).collect();
        let counts = FlagCounts::of(&flagged, &labels);
        println!(
            "dead letters {} (malformed messages injected: {bad}); anomalies injected {}, flagged {} \
             (alerts topic)",
            summary.dead_letters, counts.labelled, counts.flagged
        );
        println!(
            "precision {:.3}  recall {:.3}  ROC-AUC {:.4}  average precision {:.4}",
            counts.precision(),
            counts.recall(),
            roc_auc(&ordered, &labels)?,
            average_precision(&ordered, &labels)?
        );
        // Clients first, then the broker: a client outliving its broker retries for a long time at exit.
        drop(collector);
        drop(cluster);
        Ok(())
    })
}

/// How far the producer may run ahead of the rows read back. The mock cluster keeps only the last 5 MB
/// of each partition (a real broker keeps days), so an unpaced producer would have old messages deleted
/// before they are read.
const MAX_LEAD: usize = 8_000;

/// The stream as JSON messages keyed by row id, with `bad` malformed messages spread through it.
fn produce(
    brokers: &str,
    rows: &ndarray::Array2<f32>,
    names: &[String],
    bad: usize,
    collected: &AtomicUsize,
) -> anyhow::Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .create()?;
    let malformed = [r#"{"id": "x", "sensor_00": "#, r#"{"id": "y", "sensor_00": "broken"}"#, "not json at all"];
    let every = rows.nrows().checked_div(bad).unwrap_or(usize::MAX).max(1);
    let mut text = String::with_capacity(64 + 24 * names.len());
    for (i, row) in rows.rows().into_iter().enumerate() {
        use std::fmt::Write;
        text.clear();
        let _ = write!(text, "{{\"id\":{i}");
        for (name, value) in names.iter().zip(row) {
            let _ = write!(text, ",\"{name}\":{value}");
        }
        text.push('}');
        let key = i.to_string();
        let give_up = Instant::now() + Duration::from_secs(120);
        while i > collected.load(Ordering::Relaxed) + MAX_LEAD {
            anyhow::ensure!(Instant::now() < give_up, "the pipeline stopped reading (no progress for 120 s)");
            producer.poll(Duration::from_millis(1));
        }
        send(&producer, &key, text.as_bytes())?;
        if i % every == every / 2 && (i / every) < bad {
            send(&producer, "bad", malformed[(i / every) % malformed.len()].as_bytes())?;
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

fn send(producer: &BaseProducer, key: &str, payload: &[u8]) -> anyhow::Result<()> {
    let mut record = BaseRecord::to(INPUT).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}

fn progress_bar(show: bool, len: u64, template: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A directory for the demo's model file, removed at exit by the OS's temp cleaning; its path is printed.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("autoenc-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
