//! The pipeline loop: consume, micro-batch, score off the async runtime, produce, and only then commit.
//!
//! One task owns the consumer and scores one batch at a time. A batch's offsets are committed only
//! after every output of that batch is acknowledged (at-least-once; with `max_in_flight_batches` above 1
//! a few sent batches may await their acknowledgements at once, committed strictly in order), or inside
//! the same transaction (exactly-once, one batch per transaction). Partitions revoked by a rebalance
//! lose their waiting messages from the batcher: those offsets were never committed, so the partitions'
//! new owner reads them again. Shutdown (SIGINT, SIGTERM or the caller's signal) is the one cancellation
//! path: stop consuming, finish the batch in hand, commit synchronously, checkpoint a learning model, and
//! return.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::batcher::{BatchLimits, MicroBatcher};
use super::config::{Delivery, StreamConfig};
use super::context::PipelineContext;
use super::decode::Decoder;
use super::metrics::Metrics;
use super::model_source::ModelSource;
use super::scorer::{BatchContext, Outgoing, Processed, process_batch};
use super::threshold::SlidingThreshold;
use crate::AutoencError;

/// What a run did, for the caller (the demo prints it).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub messages_in: u64,
    pub messages_out: u64,
    pub rows_scored: u64,
    pub anomalies: u64,
    pub dead_letters: u64,
    pub batches: u64,
    pub model_reloads: u64,
    /// Per batch: from its first message's arrival to its offsets committed, in milliseconds.
    pub batch_latencies_ms: Vec<f64>,
    /// From the first message received to the last batch committed, in seconds (the throughput window).
    pub active_seconds: f64,
}

impl Summary {
    /// The `q` quantile of the batch latencies (nearest rank), in milliseconds; NaN with no batches.
    pub fn latency_quantile_ms(&self, q: f64) -> f64 {
        let mut sorted = self.batch_latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n => sorted[((n - 1) as f64 * q).round() as usize],
        }
    }
}

fn kafka(context: &str) -> impl Fn(KafkaError) -> AutoencError + '_ {
    move |e| AutoencError::Stream(format!("{context}: {e}"))
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the CPU side of a batch needs, moved to a blocking thread and back.
struct ScoringState {
    source: ModelSource,
    decoder: Decoder,
    window: Option<SlidingThreshold>,
    batches_since_checkpoint: usize,
}

/// Runs the pipeline until `shutdown` turns true (or its sender is dropped).
pub async fn run(
    config: StreamConfig,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> crate::Result<Summary> {
    config.validate().map_err(|e| AutoencError::Stream(e.to_string()))?;
    let source = ModelSource::open(&config.model)?;
    let decoder = Decoder::new(&config, source.model.feature_names()).map_err(AutoencError::Stream)?;
    let contamination = config.contamination.or(match source.model.threshold().rule {
        crate::ThresholdRule::Contamination { contamination } => Some(contamination),
        crate::ThresholdRule::Explicit => None,
    });
    let window = match (config.threshold_window, contamination) {
        (0, _) => None,
        (n, Some(c)) => Some(SlidingThreshold::new(n, c)),
        (_, None) => {
            return Err(AutoencError::Stream(
                "threshold_window needs a contamination (the model has an explicit threshold; set `contamination`)"
                    .into(),
            ));
        }
    };
    let mut state = Some(ScoringState { source, decoder, window, batches_since_checkpoint: 0 });

    let consumer: StreamConsumer<PipelineContext> = config
        .consumer_config()
        .create_with_context(PipelineContext::new(metrics.clone()))
        .map_err(kafka("creating the consumer"))?;
    let topics: Vec<&str> = config.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(kafka("subscribing"))?;
    let producer: FutureProducer = config.producer_config().create().map_err(kafka("creating the producer"))?;
    let output_partitions = tokio::task::block_in_place(|| {
        if config.delivery == Delivery::ExactlyOnce {
            producer.init_transactions(CLIENT_TIMEOUT).map_err(kafka("initialising transactions"))?;
        }
        partition_count(&producer, &config.output_topic)
    })?;

    let limits = BatchLimits {
        max_rows: config.max_rows,
        max_bytes: config.max_bytes,
        max_wait: Duration::from_millis(config.max_wait_ms),
    };
    let mut batcher: MicroBatcher<OwnedMessage> = MicroBatcher::new(limits);
    let mut summary = Summary::default();
    let mut first_message: Option<Instant> = None;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let reload_interval = Duration::from_millis(config.reload_interval_ms);
    let idle_wait = reload_interval.min(Duration::from_millis(200));
    let sink = Sink { config: &config, producer: &producer, consumer: &consumer, output_partitions, metrics: &metrics };
    metrics.running.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("consuming {:?} -> {} ({:?})", config.input_topics, config.output_topic, config.delivery);

    loop {
        let deadline = batcher.deadline().unwrap_or_else(|| Instant::now() + idle_wait);
        let received = tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() { break; }
                continue;
            }
            acked = async { in_flight.front_mut().expect("guarded").acks.as_mut().await }, if !in_flight.is_empty() => {
                acked?;
                let batch = in_flight.pop_front().expect("guarded");
                commit_acknowledged(&sink, &batch.offsets, batch.done, &mut summary);
                summary.active_seconds = first_message.map_or(0.0, |t| t.elapsed().as_secs_f64());
                continue;
            }
            received = tokio::time::timeout_at(deadline.into(), consumer.recv()) => received.ok(),
        };
        let revoked = consumer.context().take_revoked();
        if !revoked.is_empty() {
            let before = batcher.len();
            batcher.retain(|m| !revoked.contains(&(m.topic().to_string(), m.partition())), |m| m.payload_len());
            if batcher.len() < before {
                tracing::info!("dropped {} uncommitted messages of revoked partitions", before - batcher.len());
            }
        }
        let now = Instant::now();
        let opened = batcher.deadline().map(|d| d - limits.max_wait);
        let batch = match received {
            Some(Ok(message)) => {
                metrics.messages_in.inc();
                summary.messages_in += 1;
                first_message.get_or_insert(now);
                let message = message.detach();
                let size = message.payload_len();
                let opened = opened.unwrap_or(now);
                batcher.push(message, size, now).map(|batch| (batch, opened))
            }
            Some(Err(error)) => {
                // Broker and network errors surface here; librdkafka keeps retrying on its own.
                tracing::warn!("consumer: {error}");
                batcher.poll_expired(now).map(|batch| (batch, opened.unwrap_or(now)))
            }
            None => batcher.poll_expired(now).map(|batch| (batch, opened.unwrap_or(now))),
        };
        if let Some((batch, opened)) = batch {
            let taken = state.take().expect("state is returned after each batch");
            state = Some(handle_batch(&sink, batch, taken, opened, &mut summary, &mut in_flight).await?);
            summary.active_seconds = first_message.map_or(0.0, |t| t.elapsed().as_secs_f64());
        }
        if config.reload
            && let Some(current) = state.as_mut()
        {
            reload(&config, current, &metrics, reload_interval, &mut summary);
        }
    }

    // The one shutdown path: the batch in hand, a synchronous commit, the learned model saved.
    tracing::info!("shutting down: finishing the batch in hand");
    if let Some(batch) = batcher.flush() {
        let taken = state.take().expect("state is returned after each batch");
        state = Some(handle_batch(&sink, batch, taken, Instant::now(), &mut summary, &mut in_flight).await?);
    }
    finish_in_flight(&sink, &mut in_flight, &mut summary).await?;
    summary.active_seconds = first_message.map_or(0.0, |t| t.elapsed().as_secs_f64());
    metrics.running.store(false, std::sync::atomic::Ordering::Relaxed);
    if let Some(mut last) = state
        && config.learn
        && last.source.learned_since_file > 0
    {
        last.source.checkpoint()?;
        metrics.checkpoints.inc();
    }
    tokio::task::block_in_place(|| {
        if config.delivery == Delivery::AtLeastOnce
            && let Err(error) = consumer.commit_consumer_state(CommitMode::Sync)
        {
            // Nothing stored since the last commit is reported as an error too; only log it.
            tracing::debug!("final commit: {error}");
        }
        let _ = producer.flush(Duration::from_secs(10));
        consumer.unsubscribe();
    });
    // Closing a librdkafka client waits for its brokers; with a broker gone that can take minutes.
    // Close them on a thread and give it a bound, so a stop always ends.
    let closing = std::thread::spawn(move || drop((consumer, producer)));
    let give_up = Instant::now() + Duration::from_secs(10);
    while !closing.is_finished() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !closing.is_finished() {
        tracing::warn!("the Kafka clients did not close within 10 s (broker unreachable?); not waiting for them");
    }
    Ok(summary)
}

fn partition_count(producer: &FutureProducer, topic: &str) -> crate::Result<i32> {
    let metadata =
        producer.client().fetch_metadata(Some(topic), CLIENT_TIMEOUT).map_err(kafka("reading the output topic"))?;
    let count = metadata.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()).unwrap_or(0);
    if count == 0 {
        return Err(AutoencError::Stream(format!("output topic '{topic}' does not exist (create it first)")));
    }
    Ok(count as i32)
}

fn reload(
    config: &StreamConfig,
    state: &mut ScoringState,
    metrics: &Metrics,
    interval: Duration,
    summary: &mut Summary,
) {
    match state.source.reload_if_changed(interval, |model| Decoder::new(config, model.feature_names())) {
        Ok(Some(decoder)) => {
            state.decoder = decoder;
            metrics.model_reloads.inc();
            summary.model_reloads += 1;
        }
        Ok(None) => {}
        Err(reason) => {
            tracing::warn!("model file changed but was not loaded (keeping the current model): {reason}");
            metrics.model_reload_failures.inc();
        }
    }
}

/// Where outputs go and how offsets are committed.
struct Sink<'a> {
    config: &'a StreamConfig,
    producer: &'a FutureProducer,
    consumer: &'a StreamConsumer<PipelineContext>,
    output_partitions: i32,
    metrics: &'a Metrics,
}

/// A sent batch of the at-least-once mode whose acknowledgements are still coming in. The loop goes on
/// consuming and scoring the next batch meanwhile; the offsets are stored only once all are in, and
/// batches complete in order (a new batch waits for the one in flight before it is sent).
struct InFlight {
    acks: std::pin::Pin<Box<dyn std::future::Future<Output = crate::Result<()>> + Send>>,
    offsets: TopicPartitionList,
    done: BatchDone,
}

/// What a finished batch adds to the metrics and the summary.
struct BatchDone {
    opened: Instant,
    outputs: u64,
    rows: u64,
    anomalies: u64,
    dead_letters: Vec<&'static str>,
}

impl BatchDone {
    fn record(self, metrics: &Metrics, summary: &mut Summary) {
        let latency = self.opened.elapsed();
        metrics.batches.inc();
        metrics.batch_latency.observe(latency.as_secs_f64());
        metrics.messages_out.inc_by(self.outputs);
        metrics.rows_scored.inc_by(self.rows);
        metrics.anomalies.inc_by(self.anomalies);
        for reason in &self.dead_letters {
            metrics.dead_letters.with_label_values(&[reason]).inc();
        }
        summary.batches += 1;
        summary.messages_out += self.outputs;
        summary.rows_scored += self.rows;
        summary.anomalies += self.anomalies;
        summary.dead_letters += self.dead_letters.len() as u64;
        summary.batch_latencies_ms.push(latency.as_secs_f64() * 1e3);
    }
}

/// Stores and commits a batch whose outputs are all acknowledged.
fn commit_acknowledged(sink: &Sink<'_>, offsets: &TopicPartitionList, done: BatchDone, summary: &mut Summary) {
    // A partition revoked meanwhile cannot be stored; its new owner replays it (at-least-once).
    if let Err(error) = sink.consumer.store_offsets(offsets) {
        tracing::warn!("storing offsets: {error}");
    } else if let Err(error) = sink.consumer.commit_consumer_state(CommitMode::Async) {
        tracing::warn!("committing offsets: {error}");
    }
    done.record(sink.metrics, summary);
}

/// Waits for the oldest batch in flight (if any) and commits it.
async fn finish_oldest(
    sink: &Sink<'_>,
    in_flight: &mut VecDeque<InFlight>,
    summary: &mut Summary,
) -> crate::Result<()> {
    if let Some(batch) = in_flight.pop_front() {
        batch.acks.await?;
        commit_acknowledged(sink, &batch.offsets, batch.done, summary);
    }
    Ok(())
}

/// Waits for every batch in flight, oldest first, committing each.
async fn finish_in_flight(
    sink: &Sink<'_>,
    in_flight: &mut VecDeque<InFlight>,
    summary: &mut Summary,
) -> crate::Result<()> {
    while !in_flight.is_empty() {
        finish_oldest(sink, in_flight, summary).await?;
    }
    Ok(())
}

async fn handle_batch(
    sink: &Sink<'_>,
    messages: Vec<OwnedMessage>,
    mut state: ScoringState,
    opened: Instant,
    summary: &mut Summary,
    in_flight: &mut VecDeque<InFlight>,
) -> crate::Result<ScoringState> {
    let config = sink.config;
    let output_format = config.output_format;
    let learn = config.learn;
    let checkpoint_every = config.checkpoint_every;
    let (state_back, processed, messages) = tokio::task::spawn_blocking(move || {
        let version = state.source.version();
        let processed = process_batch(
            &messages,
            BatchContext {
                model: &state.source.model,
                decoder: &state.decoder,
                model_version: &version,
                output_format,
                window: state.window.as_mut(),
                collect_normal: learn,
            },
        );
        if learn && let Some(rows) = &processed.normal_rows {
            if let Err(error) = state.source.learn(rows.view()) {
                tracing::warn!("continual learning skipped a batch: {error}");
            }
            state.batches_since_checkpoint += 1;
            if state.batches_since_checkpoint >= checkpoint_every {
                state.batches_since_checkpoint = 0;
                if let Err(error) = state.source.checkpoint() {
                    tracing::warn!("checkpoint failed: {error}");
                }
            }
        }
        (state, processed, messages)
    })
    .await
    .map_err(|e| AutoencError::Stream(format!("scoring task failed: {e}")))?;

    let offsets = next_offsets(&messages)?;
    let done = BatchDone {
        opened,
        outputs: processed.outputs.len() as u64,
        rows: processed.rows as u64,
        anomalies: processed.anomalies as u64,
        dead_letters: processed.dead_letters.iter().map(|(_, reason)| *reason).collect(),
    };
    match config.delivery {
        Delivery::AtLeastOnce => {
            // Up to `max_in_flight_batches` batches wait for their acknowledgements while the next
            // ones are read and scored; they are committed strictly in order, each only once all of
            // its outputs are acknowledged, so a commit never covers an unacknowledged output. Outputs
            // keep their order per partition however many are in flight: the producer is idempotent.
            while in_flight.len() >= config.max_in_flight_batches {
                finish_oldest(sink, in_flight, summary).await?;
            }
            let pending = send_all(sink, &processed).await?;
            in_flight.push_back(InFlight { acks: Box::pin(acknowledged(pending)), offsets, done });
        }
        Delivery::ExactlyOnce => {
            tokio::task::block_in_place(|| sink.producer.begin_transaction())
                .map_err(kafka("beginning a transaction"))?;
            let result = async {
                acknowledged(send_all(sink, &processed).await?).await?;
                tokio::task::block_in_place(|| {
                    let group = sink.consumer.group_metadata().ok_or_else(|| {
                        AutoencError::Stream("the consumer has no group metadata for the transaction".into())
                    })?;
                    sink.producer
                        .send_offsets_to_transaction(&offsets, &group, CLIENT_TIMEOUT)
                        .map_err(kafka("adding offsets to the transaction"))?;
                    sink.producer.commit_transaction(CLIENT_TIMEOUT).map_err(kafka("committing the transaction"))
                })
            }
            .await;
            if let Err(error) = result {
                let _ = tokio::task::block_in_place(|| sink.producer.abort_transaction(CLIENT_TIMEOUT));
                return Err(error);
            }
            done.record(sink.metrics, summary);
        }
    }
    Ok(state_back)
}

/// The offset to commit per input partition: one past the last message of the batch.
fn next_offsets(messages: &[OwnedMessage]) -> crate::Result<TopicPartitionList> {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for m in messages {
        let slot = next.entry((m.topic(), m.partition())).or_insert(0);
        *slot = (*slot).max(m.offset() + 1);
    }
    let mut list = TopicPartitionList::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset)).map_err(kafka("building offsets"))?;
    }
    Ok(list)
}

/// Sends every output, alert and dead letter; returns the broker's acknowledgements to wait for.
async fn send_all(sink: &Sink<'_>, processed: &Processed) -> crate::Result<Vec<DeliveryFuture>> {
    let config = sink.config;
    let mut pending = Vec::with_capacity(processed.outputs.len() + processed.alerts.len());
    for outgoing in &processed.outputs {
        let partition = config.keep_partition.then(|| outgoing.input_partition.rem_euclid(sink.output_partitions));
        pending.push(send(sink.producer, &config.output_topic, outgoing, partition).await?);
    }
    if let Some(alerts) = &config.alerts_topic {
        for outgoing in &processed.alerts {
            pending.push(send(sink.producer, alerts, outgoing, None).await?);
        }
    }
    for (outgoing, reason) in &processed.dead_letters {
        match &config.dead_letter_topic {
            Some(topic) => pending.push(send(sink.producer, topic, outgoing, None).await?),
            None => tracing::warn!(
                "bad message skipped ({reason}); set dead_letter_topic to keep such messages: {}",
                String::from_utf8_lossy(&outgoing.payload).chars().take(120).collect::<String>()
            ),
        }
    }
    Ok(pending)
}

/// Waits until the broker acknowledged every message; the first failure is the error.
async fn acknowledged(pending: Vec<DeliveryFuture>) -> crate::Result<()> {
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(AutoencError::Stream(format!("an output was not delivered: {error}"))),
            Err(_) => return Err(AutoencError::Stream("the producer dropped a delivery".into())),
        }
    }
    Ok(())
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    outgoing: &Outgoing,
    partition: Option<i32>,
) -> crate::Result<rdkafka::producer::DeliveryFuture> {
    loop {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(&outgoing.payload[..]);
        if let Some(key) = &outgoing.key {
            record = record.key(&key[..]);
        }
        if let Some(headers) = &outgoing.headers {
            record = record.headers(headers.clone());
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            // The local queue is full: the background thread is sending; wait a moment and retry.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((error, _)) => return Err(AutoencError::Stream(format!("producing to {topic}: {error}"))),
        }
    }
}

trait PayloadLen {
    fn payload_len(&self) -> usize;
}

impl PayloadLen for OwnedMessage {
    fn payload_len(&self) -> usize {
        self.payload().map_or(0, <[u8]>::len) + self.key().map_or(0, <[u8]>::len)
    }
}
