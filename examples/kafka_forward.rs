//! The leanest Kafka forwarder we can write with the same client library as `autoenc stream`: it
//! consumes the benchmark's input topic and produces every message unchanged to the output topic, with
//! no parsing, no scoring and no waiting (offsets committed asynchronously per 1000 messages, one flush
//! at the end). `benches/kafka/broker_ceiling.sh` runs it on a fresh broker and reports its CPU and the
//! broker's: what moving a message through Kafka costs on the machine it runs on before any work is done on it,
//! which bounds what any pipeline here can reach.
//!
//! Usage: `kafka_forward BOOTSTRAP N [EXTRA_BYTES]` (topics `in` and `out`, as the shared benchmark
//! creates them). With EXTRA_BYTES each copy is that much longer (spaces before its last byte), as long
//! as the pipeline's outputs, which carry the input plus the result fields.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

/// Counts the outputs the broker did not accept, so that a run with losses reports failure.
#[derive(Default)]
struct FailedDeliveries(AtomicUsize);

impl ClientContext for FailedDeliveries {}

impl ProducerContext for FailedDeliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(bootstrap), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: kafka_forward BOOTSTRAP N [EXTRA_BYTES]".into());
    };
    let n: usize = n.parse()?;
    let extra: usize = args.next().map_or(Ok(0), |e| e.parse())?;
    let mut padded = Vec::new();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "ceiling-rust-forward")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    // The Python forwarder's producer settings (broker_ceiling.py), idempotent like autoenc's.
    let producer: BaseProducer<FailedDeliveries> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(FailedDeliveries::default())?;
    consumer.subscribe(&["in"])?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut forwarded, mut first) = (0usize, None);
    while forwarded < n && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let message = message?;
        first.get_or_insert_with(Instant::now);
        let payload = message.payload().unwrap_or(&[]);
        let payload = if extra == 0 || payload.is_empty() {
            payload
        } else {
            padded.clear();
            padded.extend_from_slice(&payload[..payload.len() - 1]);
            padded.resize(payload.len() - 1 + extra, b' ');
            padded.push(payload[payload.len() - 1]);
            &padded[..]
        };
        loop {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to("out").payload(payload);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
        forwarded += 1;
        if forwarded % 1000 == 0 {
            producer.poll(Duration::ZERO);
            consumer.commit_consumer_state(CommitMode::Async)?;
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let failed = producer.context().0.load(Ordering::Relaxed);
    if forwarded < n || failed > 0 {
        return Err(format!("forwarded {forwarded} of {n} messages, {failed} not delivered").into());
    }
    let seconds = first.map_or(f64::NAN, |t| t.elapsed().as_secs_f64());
    println!(
        "{{\"mode\": \"rust-forward\", \"extra_bytes\": {extra}, \"messages\": {forwarded}, \"msgs_per_s\": {:.0}}}",
        forwarded as f64 / seconds
    );
    Ok(())
}
