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
//!
//! Nothing in the data stops the loop: bad and oversized messages become dead letters (see [`scorer`]),
//! and a record the broker still refuses as too large is sent to the dead-letter topic as a cut copy.
//! A broker that stops answering does not stop it either: the loop waits for the acknowledgements,
//! says so in the log every `broker_stall_seconds` and on `/health`, and goes on when the broker
//! answers again. Only after `broker_give_up_seconds` without an acknowledgement does it give up and
//! return an error, leaving the batch uncommitted for the next run.
//!
//! [`scorer`]: super::scorer

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
use super::error::{Result, StreamError};
use super::metrics::Metrics;
use super::model_source::ModelSource;
use super::scorer::{BatchContext, Outgoing, Processed, process_batch, refused_copy};
use super::threshold::SlidingThreshold;

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
    /// The `q` quantile of the batch latencies (the model's quantile rule), in milliseconds; NaN with
    /// no batches.
    pub fn latency_quantile_ms(&self, q: f64) -> f64 {
        crate::anomaly::quantile_unsorted(&mut self.batch_latencies_ms.clone(), q)
    }
}

fn kafka(context: &str) -> impl Fn(KafkaError) -> StreamError + '_ {
    move |e| StreamError::kafka(context, e)
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
pub async fn run(config: StreamConfig, metrics: Metrics, mut shutdown: watch::Receiver<bool>) -> Result<Summary> {
    config.validate()?;
    let source = ModelSource::open(&config.model)?;
    let decoder = Decoder::new(&config, source.model.feature_names(), source.model.feature_kinds())
        .map_err(StreamError::Setup)?;
    let contamination = config.contamination.or(match source.model.threshold().rule {
        crate::ThresholdRule::Contamination { contamination } => Some(contamination),
        crate::ThresholdRule::Explicit => None,
    });
    let window = match (config.threshold_window, contamination) {
        (0, _) => None,
        (n, Some(c)) => Some(SlidingThreshold::new(n, c)),
        (_, None) => {
            return Err(StreamError::Setup(
                "threshold_window needs a contamination (the model has an explicit threshold; set `contamination`)"
                    .into(),
            ));
        }
    };
    let mut state = Some(ScoringState { source, decoder, window, batches_since_checkpoint: 0 });

    let stall = Duration::from_secs(config.broker_stall_seconds);
    let give_up = Duration::from_millis(config.broker_give_up_ms());
    let consumer: StreamConsumer<PipelineContext> = config
        .consumer_config()
        .create_with_context(PipelineContext::new(metrics.clone(), stall))
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
    let refusals = Refusals {
        producer: producer.clone(),
        dead_letter_topic: config.dead_letter_topic.clone(),
        keep: REFUSED_KEEP.min(config.max_record_bytes() / 4),
        metrics: metrics.clone(),
    };
    let sink = Sink {
        config: &config,
        producer: &producer,
        consumer: &consumer,
        output_partitions,
        metrics: &metrics,
        wait: BrokerWait { metrics: metrics.clone(), stall, give_up },
        refusals,
    };
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

fn partition_count(producer: &FutureProducer, topic: &str) -> Result<i32> {
    let metadata =
        producer.client().fetch_metadata(Some(topic), CLIENT_TIMEOUT).map_err(kafka("reading the output topic"))?;
    let count = metadata.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()).unwrap_or(0);
    if count == 0 {
        return Err(StreamError::MissingTopic(topic.to_string()));
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
    match state
        .source
        .reload_if_changed(interval, |model| Decoder::new(config, model.feature_names(), model.feature_kinds()))
    {
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
    wait: BrokerWait,
    refusals: Refusals,
}

/// How much of a record the broker refused as too large its dead-letter copy keeps: enough to find the
/// message again (key, headers, the start of the payload), small enough for any broker's limit.
const REFUSED_KEEP: usize = 16 << 10;

/// Waiting on the broker: past `stall` the wait shows on `/health` and in the log, at that interval.
#[derive(Clone)]
struct BrokerWait {
    metrics: Metrics,
    stall: Duration,
    give_up: Duration,
}

impl BrokerWait {
    /// Awaits `future`, which waits on the broker (`what`, `detail` for the log). librdkafka retries on
    /// its own until `give_up`, silently: without this the pipeline would look alive and say nothing.
    async fn wait<T>(self, what: &'static str, detail: String, future: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let mut future = std::pin::pin!(future);
        let mut ticks = tokio::time::interval_at((started + self.stall).into(), self.stall);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut overdue = None;
        loop {
            tokio::select! {
                biased;
                out = &mut future => {
                    if overdue.is_some() {
                        self.metrics.broker.answered();
                        tracing::info!("the broker answered after {:.1} s ({what}); going on", started.elapsed().as_secs_f64());
                    }
                    return out;
                }
                _ = ticks.tick() => {
                    overdue.get_or_insert_with(|| self.metrics.broker.overdue());
                    tracing::warn!(
                        "waiting for {what} for {} s ({detail}); /health reports not ready; giving up after {} s",
                        started.elapsed().as_secs(),
                        self.give_up.as_secs()
                    );
                }
            }
        }
    }
}

impl BrokerWait {
    /// The same watch over a blocking call (a transactional API, which waits up to its own timeout):
    /// it runs on another worker until the returned guard is dropped.
    fn watch(&self, what: &'static str) -> AbortOnDrop {
        let this = self.clone();
        AbortOnDrop(tokio::spawn(this.wait("the broker", what.into(), std::future::pending::<()>())))
    }
}

/// Ends a watch when the call it watches returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where a record the broker refused as too large goes instead: a cut copy to the dead-letter topic.
#[derive(Clone)]
struct Refusals {
    producer: FutureProducer,
    dead_letter_topic: Option<String>,
    keep: usize,
    metrics: Metrics,
}

impl Refusals {
    /// Sends the cut copy of `refused`; returns its acknowledgement to wait for, if there is a topic.
    async fn dead_letter(&self, refused: &OwnedMessage, detail: &str) -> Result<Option<DeliveryFuture>> {
        let letter = refused_copy(refused, detail, self.keep);
        self.metrics.dead_letters.with_label_values(&["too_large"]).inc();
        let Some(topic) = &self.dead_letter_topic else {
            tracing::warn!(
                "a {}-byte record for {} was refused as too large and skipped; set dead_letter_topic to keep a copy",
                refused.payload_len(),
                refused.topic()
            );
            return Ok(None);
        };
        tracing::warn!(
            "a {}-byte record for {} was refused as too large; its first {} bytes go to {topic}",
            refused.payload_len(),
            refused.topic(),
            letter.payload.len()
        );
        match send(&self.producer, topic, &letter, None).await? {
            Sent::Queued(delivery) => Ok(Some(delivery)),
            Sent::TooLarge(error) => {
                Err(StreamError::Delivery(format!("the dead-letter copy of a refused record was refused too: {error}")))
            }
        }
    }
}

/// A sent batch of the at-least-once mode whose acknowledgements are still coming in. The loop goes on
/// consuming and scoring the next batch meanwhile; the offsets are stored only once all are in, and
/// batches complete in order (a new batch waits for the one in flight before it is sent).
struct InFlight {
    acks: std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>,
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
    /// Per categorical feature with values outside its vocabulary: its name and how many.
    unknown_categories: Vec<(String, u64)>,
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
        for (feature, count) in &self.unknown_categories {
            metrics.unknown_categories.with_label_values(&[feature.as_str()]).inc_by(*count);
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
async fn finish_oldest(sink: &Sink<'_>, in_flight: &mut VecDeque<InFlight>, summary: &mut Summary) -> Result<()> {
    if let Some(batch) = in_flight.pop_front() {
        batch.acks.await?;
        commit_acknowledged(sink, &batch.offsets, batch.done, summary);
    }
    Ok(())
}

/// Waits for every batch in flight, oldest first, committing each.
async fn finish_in_flight(sink: &Sink<'_>, in_flight: &mut VecDeque<InFlight>, summary: &mut Summary) -> Result<()> {
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
) -> Result<ScoringState> {
    let config = sink.config;
    let output_format = config.output_format;
    let learn = config.learn;
    let checkpoint_every = config.checkpoint_every;
    let max_record_bytes = config.max_record_bytes();
    let (state_back, mut processed, messages, checkpointed) = tokio::task::spawn_blocking(move || {
        let version = state.source.version();
        let mut checkpointed = false;
        let processed = process_batch(
            &messages,
            BatchContext {
                model: &state.source.model,
                decoder: &state.decoder,
                model_version: &version,
                output_format,
                window: state.window.as_mut(),
                collect_normal: learn,
                max_record_bytes,
            },
        );
        if learn && let Some(rows) = &processed.normal_rows {
            if let Err(error) = state.source.learn(rows.view()) {
                tracing::warn!("continual learning skipped a batch: {error}");
            }
            state.batches_since_checkpoint += 1;
            if state.batches_since_checkpoint >= checkpoint_every {
                state.batches_since_checkpoint = 0;
                match state.source.checkpoint() {
                    Ok(()) => checkpointed = true,
                    Err(error) => tracing::warn!("checkpoint failed: {error}"),
                }
            }
        }
        (state, processed, messages, checkpointed)
    })
    .await
    .map_err(|e| StreamError::ScoringTask(e.to_string()))?;
    if checkpointed {
        sink.metrics.checkpoints.inc();
    }

    let offsets = next_offsets(&messages)?;
    let done = BatchDone {
        opened,
        outputs: processed.outputs.len() as u64,
        rows: processed.rows as u64,
        anomalies: processed.anomalies as u64,
        dead_letters: processed.dead_letters.iter().map(|(_, reason)| *reason).collect(),
        unknown_categories: std::mem::take(&mut processed.unknown_categories),
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
            let records = pending.len();
            let acks = acknowledged(pending, Some(sink.refusals.clone()), sink.wait.give_up);
            let detail = format!("batch of {records}, at-least-once");
            let acks = sink.wait.clone().wait("broker acknowledgements", detail, acks);
            in_flight.push_back(InFlight { acks: Box::pin(acks), offsets, done });
        }
        Delivery::ExactlyOnce => {
            let give_up_at = Instant::now() + sink.wait.give_up;
            loop {
                retrying("beginning a transaction", give_up_at, &sink.wait, || {
                    tokio::task::block_in_place(|| sink.producer.begin_transaction())
                })
                .map_err(kafka("beginning a transaction"))?;
                let error = match transaction(sink, &processed, &offsets, give_up_at).await {
                    Ok(()) => break,
                    Err(error) => error,
                };
                let abort = retrying("aborting the transaction", give_up_at, &sink.wait, || {
                    tokio::task::block_in_place(|| sink.producer.abort_transaction(CLIENT_TIMEOUT))
                });
                match (error, abort) {
                    // The broker ended the transaction (it took longer than the transaction timeout, or
                    // the coordinator moved): nothing of it is visible, so the batch is sent again.
                    (Failure::Abortable(error), Ok(())) if Instant::now() < give_up_at => {
                        tracing::warn!("the transaction failed ({error}); aborted, sending the batch again");
                    }
                    (Failure::Abortable(error) | Failure::Fatal(error), _) => return Err(error),
                }
            }
            done.record(sink.metrics, summary);
        }
    }
    Ok(state_back)
}

/// How a transaction failed: `Abortable` if aborting it and sending the batch again may succeed.
enum Failure {
    Abortable(StreamError),
    Fatal(StreamError),
}

/// One batch in the transaction just begun: send, wait for the acknowledgements, add the input offsets,
/// commit. Calls the broker does not answer in time are retried until `give_up_at`.
async fn transaction(
    sink: &Sink<'_>,
    processed: &Processed,
    offsets: &TopicPartitionList,
    give_up_at: Instant,
) -> Result<(), Failure> {
    let kafka_failure = |context: &'static str| {
        move |error: KafkaError| match &error {
            KafkaError::Transaction(e) if e.txn_requires_abort() => {
                Failure::Abortable(StreamError::kafka(context, error))
            }
            _ => Failure::Fatal(StreamError::kafka(context, error)),
        }
    };
    let pending = send_all(sink, processed).await.map_err(Failure::Fatal)?;
    let records = pending.len();
    // No refused-record copies here: a refused record has already doomed the transaction.
    let acks = acknowledged(pending, None, sink.wait.give_up);
    let detail = format!("batch of {records}, exactly-once");
    sink.wait.clone().wait("broker acknowledgements", detail, acks).await.map_err(Failure::Fatal)?;
    let group = sink.consumer.group_metadata().ok_or_else(|| {
        Failure::Fatal(StreamError::Delivery("the consumer has no group metadata for the transaction".into()))
    })?;
    retrying("adding offsets to the transaction", give_up_at, &sink.wait, || {
        tokio::task::block_in_place(|| sink.producer.send_offsets_to_transaction(offsets, &group, CLIENT_TIMEOUT))
    })
    .map_err(kafka_failure("adding offsets to the transaction"))?;
    retrying("committing the transaction", give_up_at, &sink.wait, || {
        tokio::task::block_in_place(|| sink.producer.commit_transaction(CLIENT_TIMEOUT))
    })
    .map_err(kafka_failure("committing the transaction"))
}

/// Calls a transactional API again while it fails with a retriable error (librdkafka's answer when the
/// broker did not respond within the call's timeout) and `give_up_at` has not passed; a call that takes
/// longer than `broker_stall_seconds` shows on `/health` and in the log.
fn retrying<T>(
    what: &'static str,
    give_up_at: Instant,
    wait: &BrokerWait,
    mut call: impl FnMut() -> Result<T, KafkaError>,
) -> Result<T, KafkaError> {
    let _watch = wait.watch(what);
    let started = Instant::now();
    loop {
        let result = call();
        if started.elapsed() >= wait.stall {
            wait.metrics.broker.answered();
        }
        match result {
            Err(KafkaError::Transaction(error)) if error.is_retriable() && Instant::now() < give_up_at => {
                tracing::warn!("{what}: {error}; trying again until the broker answers");
                // Most retriable errors come after the call's own timeout; a pause keeps the others from
                // spinning.
                tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(100)));
            }
            other => return other,
        }
    }
}

/// The offset to commit per input partition: one past the last message of the batch.
fn next_offsets(messages: &[OwnedMessage]) -> Result<TopicPartitionList> {
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
async fn send_all(sink: &Sink<'_>, processed: &Processed) -> Result<Vec<DeliveryFuture>> {
    let config = sink.config;
    let mut pending = Vec::with_capacity(processed.outputs.len() + processed.alerts.len());
    for outgoing in &processed.outputs {
        let partition = config.keep_partition.then(|| outgoing.input_partition.rem_euclid(sink.output_partitions));
        send_or_dead_letter(sink, &config.output_topic, outgoing, partition, &mut pending).await?;
    }
    if let Some(alerts) = &config.alerts_topic {
        for outgoing in &processed.alerts {
            send_or_dead_letter(sink, alerts, outgoing, None, &mut pending).await?;
        }
    }
    for (outgoing, reason) in &processed.dead_letters {
        match &config.dead_letter_topic {
            Some(topic) => send_or_dead_letter(sink, topic, outgoing, None, &mut pending).await?,
            None => tracing::warn!(
                "bad message skipped ({reason}); set dead_letter_topic to keep such messages: {}",
                String::from_utf8_lossy(&outgoing.payload).chars().take(120).collect::<String>()
            ),
        }
    }
    Ok(pending)
}

/// Sends one record; if the producer refuses it as too large (the size check before sending should
/// have caught it, so this is a backstop), sends its cut copy to the dead-letter topic instead.
async fn send_or_dead_letter(
    sink: &Sink<'_>,
    topic: &str,
    outgoing: &Outgoing,
    partition: Option<i32>,
    pending: &mut Vec<DeliveryFuture>,
) -> Result<()> {
    match send(sink.producer, topic, outgoing, partition).await? {
        Sent::Queued(delivery) => pending.push(delivery),
        Sent::TooLarge(error) => {
            let refused = OwnedMessage::new(
                Some(outgoing.payload.clone()),
                outgoing.key.clone(),
                topic.to_string(),
                rdkafka::Timestamp::NotAvailable,
                partition.unwrap_or(outgoing.input_partition),
                -1,
                outgoing.headers.clone(),
            );
            pending.extend(sink.refusals.dead_letter(&refused, &error.to_string()).await?);
        }
    }
    Ok(())
}

/// Waits until the broker acknowledged every record; the first failure is the error, except a record
/// refused as too large, whose cut copy goes to the dead-letter topic when `refusals` is given.
async fn acknowledged(pending: Vec<DeliveryFuture>, refusals: Option<Refusals>, give_up: Duration) -> Result<()> {
    let mut copies = Vec::new();
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error @ KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), refused))) => {
                match &refusals {
                    Some(refusals) => copies.extend(refusals.dead_letter(&refused, &error.to_string()).await?),
                    None => {
                        return Err(StreamError::Delivery(format!(
                            "the broker refused a {}-byte record for {} as too large ({error}); lower the \
                             producer's message.max.bytes to the topics' max.message.bytes so that such records \
                             become dead letters before they are sent",
                            refused.payload_len(),
                            refused.topic()
                        )));
                    }
                }
            }
            Ok(Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), refused))) => {
                return Err(StreamError::Delivery(format!(
                    "the broker did not acknowledge a record for {} within {} s (broker_give_up_seconds, or the \
                     producer's message.timeout.ms): giving up; the batch's input offsets are not committed, so \
                     the next run processes it again",
                    refused.topic(),
                    give_up.as_secs()
                )));
            }
            Ok(Err((error, _))) => return Err(StreamError::Delivery(format!("an output was not delivered: {error}"))),
            Err(_) => return Err(StreamError::Delivery("the producer dropped a delivery".into())),
        }
    }
    for copy in copies {
        match copy.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => {
                return Err(StreamError::Delivery(format!("the dead-letter copy of a refused record failed: {error}")));
            }
            Err(_) => return Err(StreamError::Delivery("the producer dropped a delivery".into())),
        }
    }
    Ok(())
}

/// What became of a record handed to the producer.
enum Sent {
    Queued(DeliveryFuture),
    /// Refused before sending: larger than the producer's `message.max.bytes`.
    TooLarge(KafkaError),
}

async fn send(producer: &FutureProducer, topic: &str, outgoing: &Outgoing, partition: Option<i32>) -> Result<Sent> {
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
            Ok(delivery) => return Ok(Sent::Queued(delivery)),
            // The local queue is full: the background thread is sending; wait a moment and retry.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((error @ KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                return Ok(Sent::TooLarge(error));
            }
            Err((error, _)) => return Err(StreamError::Delivery(format!("producing to {topic}: {error}"))),
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
