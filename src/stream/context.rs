//! The Kafka client context of the pipeline's consumer: it records partitions taken away by a
//! rebalance (so the batch waiting in the batcher can drop their messages) and turns librdkafka's
//! statistics into the consumer-lag gauge and the broker's health.
//!
//! A paused or cut-off broker keeps its TCP connections open, so librdkafka reports nothing wrong
//! until its request timeout (a minute); the statistics' `rxidle` (time since the connection last
//! received anything) shows the silence within a second. A consuming client hears from its brokers
//! at least every `fetch.wait.max.ms` (500 ms by default), so no connection heard from for
//! `broker_stall_seconds` means the broker is not answering.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::statistics::Statistics;

use super::metrics::Metrics;

pub struct PipelineContext {
    metrics: Metrics,
    revoked: Mutex<HashSet<(String, i32)>>,
    /// Silence from every broker this long marks the broker as not answering.
    stall: Duration,
    /// When the silence began and when it was last logged.
    silence: Mutex<Option<(Instant, Instant)>>,
}

impl PipelineContext {
    pub fn new(metrics: Metrics, stall: Duration) -> Self {
        // At least 5 s: a consumer between assignments hears only the group coordinator's answers to
        // its heartbeats, every 3 s by default.
        let stall = stall.max(Duration::from_secs(5));
        Self { metrics, revoked: Mutex::new(HashSet::new()), stall, silence: Mutex::new(None) }
    }

    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> HashSet<(String, i32)> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Whether the statistics show no broker connection that received anything within `stall`; `None`
/// before any broker is known (only the bootstrap address, whose node id is -1).
fn broker_silent(statistics: &Statistics, stall: Duration) -> Option<bool> {
    let stall_us = stall.as_micros() as i64;
    let mut known = false;
    let mut answering = false;
    for broker in statistics.brokers.values().filter(|b| b.nodeid >= 0) {
        known = true;
        // rxidle is -1 before the first response on a new connection: just connected counts as answering.
        answering |= broker.state == "UP" && broker.rxidle < stall_us;
    }
    known.then_some(!answering)
}

impl ClientContext for PipelineContext {
    fn stats(&self, statistics: Statistics) {
        let current = !self.metrics.broker.outdated(statistics.time);
        if let Some(silent) = broker_silent(&statistics, self.stall).filter(|_| current) {
            let was_silent = self.metrics.broker.set_silent(silent);
            let mut silence = self.silence.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            match (silent, *silence) {
                (true, None) => {
                    tracing::warn!(
                        "no response from the broker for {} s; /health reports not ready until it answers",
                        self.stall.as_secs()
                    );
                    *silence = Some((now, now));
                }
                (true, Some((since, logged))) if now - logged >= self.stall => {
                    tracing::warn!(
                        "still no response from the broker ({} s); waiting for it to come back",
                        (now - since).as_secs() + self.stall.as_secs()
                    );
                    *silence = Some((since, now));
                }
                (false, _) if was_silent => {
                    tracing::info!("the broker answers again");
                    *silence = None;
                }
                _ => {}
            }
        }
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // librdkafka reports -1 for partitions it does not consume (and the internal -1 partition).
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                self.metrics
                    .consumer_lag
                    .with_label_values(&[topic.as_str(), &partition.to_string()])
                    .set(p.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            for element in partitions.elements() {
                revoked.insert((element.topic().to_string(), element.partition()));
                let _ =
                    self.metrics.consumer_lag.remove_label_values(&[element.topic(), &element.partition().to_string()]);
            }
            tracing::info!("partitions revoked: {}", partitions.count());
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!("partitions assigned: {}", partitions.count());
        }
        if let Rebalance::Error(error) = rebalance {
            tracing::warn!("rebalance error: {error}");
        }
        use rdkafka::consumer::Consumer;
        if let Ok(assignment) = consumer.assignment() {
            self.metrics.assigned_partitions.set(assignment.count() as i64);
        }
    }
}
