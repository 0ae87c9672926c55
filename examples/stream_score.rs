//! Consume, score and produce with the stream library: the Kafka door embedded in a program of your
//! own instead of run as `autoenc stream`. Everything is in-process — a model trained on synthetic
//! sensor rows and librdkafka's mock cluster as the broker — so the example runs with nothing to set up;
//! point `brokers` at a real cluster and the same code serves it.
//!
//! Run with `cargo run --example stream_score`.

use std::time::Duration;

use autoenc::Autoencoder;
use autoenc::stream::{Metrics, StreamConfig};
use autoenc::synthetic::sensor_stream;
use ndarray::s;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

const TRAIN_ROWS: usize = 2_000;
const STREAM_ROWS: usize = 500;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A model trained on clean rows of 8 correlated sensors; the streamed rows hold 2 % anomalies.
    let data = sensor_stream(TRAIN_ROWS + STREAM_ROWS, 8, TRAIN_ROWS, 0.02, 7);
    let model = Autoencoder::params().contamination(0.01).seed(7).check()?.fit_with(
        data.rows.slice(s![..TRAIN_ROWS, ..]),
        data.names.clone(),
        &mut |_| {},
    )?;
    let model_path = std::env::temp_dir().join(format!("autoenc-stream-example-{}.ae", std::process::id()));
    model.save(&model_path)?;

    // The broker: an in-process mock cluster with an input and an output topic.
    let cluster = MockCluster::new(1)?;
    cluster.create_topic("sensors", 2, 1)?;
    cluster.create_topic("sensors-scored", 2, 1)?;
    let brokers = cluster.bootstrap_servers();

    // The pipeline: the same configuration `autoenc stream --config` reads from TOML.
    let config = StreamConfig {
        brokers: brokers.clone(),
        group_id: "stream-example".into(),
        input_topics: vec!["sensors".into()],
        output_topic: "sensors-scored".into(),
        model: model_path.clone(),
        ..Default::default()
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let pipeline = tokio::spawn(autoenc::stream::run(config, Metrics::new(), shutdown));

    // Produce the rows as JSON messages, one field per sensor plus an id that passes through.
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create()?;
    for (i, row) in data.rows.slice(s![TRAIN_ROWS.., ..]).rows().into_iter().enumerate() {
        let mut record = serde_json::Map::new();
        record.insert("id".into(), i.into());
        for (name, value) in data.names.iter().zip(row) {
            record.insert(name.clone(), f64::from(*value).into());
        }
        let payload = serde_json::Value::Object(record).to_string();
        let key = i.to_string();
        producer
            .send(FutureRecord::to("sensors").key(&key).payload(&payload), Duration::from_secs(10))
            .await
            .map_err(|(error, _)| error)?;
    }

    // Read the scored records back: each input record plus embedding, score, percentile, is_anomaly.
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "stream-example-reader")
        .set("auto.offset.reset", "earliest")
        .create()?;
    reader.subscribe(&["sensors-scored"])?;
    let labels = &data.labels[TRAIN_ROWS..];
    let (mut received, mut flagged, mut flagged_anomalies) = (0, 0, 0);
    while received < STREAM_ROWS {
        let message = tokio::time::timeout(Duration::from_secs(60), reader.recv()).await??;
        let record: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
        let id = record["id"].as_u64().ok_or("a scored record without its id")? as usize;
        if record["is_anomaly"].as_bool() == Some(true) {
            flagged += 1;
            flagged_anomalies += usize::from(labels[id]);
            if flagged <= 3 {
                let (score, percentile) = (record["score"].as_f64(), record["percentile"].as_f64());
                println!(
                    "flagged: id {id}, score {:.3}, percentile {:.3}",
                    score.unwrap_or(f64::NAN),
                    percentile.unwrap_or(f64::NAN)
                );
            }
        }
        received += 1;
    }

    // Stop: the pipeline finishes its batch, commits and returns what it did.
    stop.send(true)?;
    let summary = pipeline.await??;
    std::fs::remove_file(&model_path)?;
    let anomalies = labels.iter().filter(|&&l| l).count();
    println!(
        "{} messages in, {} out in {} batches; {flagged} flagged, {flagged_anomalies} of them among the {anomalies} \
         injected anomalies",
        summary.messages_in, summary.messages_out, summary.batches
    );
    Ok(())
}
