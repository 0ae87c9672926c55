//! What the stream tests share: a small trained model, messages to produce, and readers for the output,
//! alert and dead-letter topics. Every wait is bounded, so a broken pipeline fails a test instead of
//! hanging it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use autoenc::Autoencoder;
use ndarray::Array2;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

pub const FEATURES: usize = 6;

/// Rows with a low-dimensional structure (so the model learns something) and a few planted outliers.
pub fn rows(n: usize, seed: u64) -> Array2<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) as f32 - 0.5
    };
    let mut out = Array2::zeros((n, FEATURES));
    for i in 0..n {
        let (a, b) = (uniform() * 4.0, uniform() * 4.0);
        for j in 0..FEATURES {
            out[[i, j]] = a * (j as f32 + 1.0) / 3.0 + b * ((j % 2) as f32) + 0.05 * uniform();
        }
        if i % 97 == 13 {
            out[[i, i % FEATURES]] += 12.0;
        }
    }
    out
}

/// A small model trained on clean rows; saved to `path`.
pub fn train_model(path: &Path, seed: u64) -> Autoencoder {
    let data = rows(2000, 99 + seed);
    let model = Autoencoder::params()
        .latent(autoenc::LatentSize::Fixed(2))
        .hidden(Some(vec![4]))
        .epochs(5)
        .contamination(0.02)
        .seed(seed)
        .fit(data.view())
        .expect("training");
    model.save(path).expect("saving");
    model
}

/// A row as a JSON object with one field per feature (`f0`, `f1`, ...) and an `id`.
pub fn json_row(id: usize, row: ndarray::ArrayView1<f32>) -> String {
    let mut text = format!("{{\"id\":{id}");
    for (j, v) in row.iter().enumerate() {
        text.push_str(&format!(",\"f{j}\":{v}"));
    }
    text.push('}');
    text
}

/// A message to produce: partition (or the producer's choice), key, payload, headers.
pub type Outgoing = (Option<i32>, String, Vec<u8>, Option<OwnedHeaders>);

pub fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "1").create().expect("producer")
}

/// Sends and waits for the broker's acknowledgement of everything.
pub fn produce(brokers: &str, topic: &str, messages: &[Outgoing]) {
    send_and_flush(&producer(brokers), topic, messages);
}

/// As [`produce`], with a producer that takes records up to `max_bytes` (for oversized input).
pub fn produce_large(brokers: &str, topic: &str, messages: &[Outgoing], max_bytes: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "1")
        .set("message.max.bytes", max_bytes.to_string())
        .create()
        .expect("producer");
    send_and_flush(&producer, topic, messages);
}

fn send_and_flush(producer: &BaseProducer, topic: &str, messages: &[Outgoing]) {
    for (partition, key, payload, headers) in messages {
        let mut record = BaseRecord::to(topic).key(key.as_bytes()).payload(&payload[..]);
        if let Some(p) = partition {
            record = record.partition(*p);
        }
        if let Some(h) = headers {
            record = record.headers(h.clone());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => panic!("producing a test message: {error}"),
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// The HTTP status of `GET path` on a local endpoint, or `None` if it does not answer within 2 s.
pub fn http_status(address: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let address: std::net::SocketAddr = address.parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1)?.parse().ok()
}

/// One header, for tests that check headers are carried over.
pub fn header(key: &str, value: &str) -> OwnedHeaders {
    OwnedHeaders::new().insert(Header { key, value: Some(value) })
}

pub fn header_value(message: &OwnedMessage, key: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .filter(|h| h.key == key)
        .last()
        .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// Reads `topic` from the beginning (all partitions, no group) until `done` says so or `limit` passes.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    limit: Duration,
    read_committed: bool,
    mut done: impl FnMut(&[OwnedMessage]) -> bool,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", if read_committed { "read_committed" } else { "read_uncommitted" })
        .create()
        .expect("reader");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning).expect("offset");
    }
    consumer.assign(&assignment).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !done(&out) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            out.push(message.detach());
        }
    }
    drop(assignment);
    out
}

/// The parsed JSON output records by `id`, counting duplicates.
pub fn by_id(messages: &[OwnedMessage]) -> HashMap<u64, Vec<serde_json::Value>> {
    let mut map: HashMap<u64, Vec<serde_json::Value>> = HashMap::new();
    for m in messages {
        let value: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default()).expect("JSON output");
        map.entry(value["id"].as_u64().expect("id")).or_default().push(value);
    }
    map
}

/// Distinct ids among JSON messages.
pub fn distinct_ids(messages: &[OwnedMessage]) -> usize {
    by_id(messages).len()
}

/// The group's committed offset per partition of `topic`.
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10)).expect("committed offsets");
    (0..partitions)
        .map(|p| match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

/// The high watermark per partition.
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().expect("consumer");
    (0..partitions)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1)
        .collect()
}

/// A `done` condition for [`read_topic`]: `n` distinct JSON ids seen, checked incrementally (parsing
/// everything again at every poll would make the reader the bottleneck).
pub fn distinct_reached(n: usize) -> impl FnMut(&[OwnedMessage]) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut parsed = 0;
    move |messages| {
        for m in &messages[parsed..] {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
                && let Some(id) = value["id"].as_u64()
            {
                seen.insert(id);
            }
        }
        parsed = messages.len();
        seen.len() >= n
    }
}
