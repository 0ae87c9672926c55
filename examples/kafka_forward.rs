//! The leanest Kafka forwarder we can write with the same client library as `autoenc stream`: it
//! consumes the benchmark's input topic and produces every message unchanged to the output topic, with
//! no parsing, no scoring and no waiting (offsets committed asynchronously per 1000 messages, one flush
//! at the end). `benches/kafka/broker_ceiling.sh` runs it on a fresh broker and reports its CPU and the
//! broker's: what moving a message through Kafka costs on this machine before any work is done on it,
//! which bounds what any pipeline here can reach.
//!
//! Usage: `kafka_forward BOOTSTRAP N` (topics `in` and `out`, as the shared benchmark creates them).

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(bootstrap), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: kafka_forward BOOTSTRAP N".into());
    };
    let n: usize = n.parse()?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "ceiling-rust-forward")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    // The Python forwarder's producer settings (broker_ceiling.py), idempotent like autoenc's.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    consumer.subscribe(&["in"])?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut forwarded, mut first) = (0usize, None);
    while forwarded < n && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let message = message?;
        first.get_or_insert_with(Instant::now);
        loop {
            let mut record: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to("out").payload(message.payload().unwrap_or(&[]));
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
    let seconds = first.map_or(f64::NAN, |t| t.elapsed().as_secs_f64());
    println!(
        "{{\"mode\": \"rust-forward\", \"messages\": {forwarded}, \"msgs_per_s\": {:.0}}}",
        forwarded as f64 / seconds
    );
    Ok(())
}
