//! The Kafka client context of the pipeline's consumer: it records partitions taken away by a
//! rebalance (so the batch waiting in the batcher can drop their messages) and turns librdkafka's
//! statistics into the consumer-lag gauge.

use std::collections::HashSet;
use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::statistics::Statistics;

use super::metrics::Metrics;

pub struct PipelineContext {
    metrics: Metrics,
    revoked: Mutex<HashSet<(String, i32)>>,
}

impl PipelineContext {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics, revoked: Mutex::new(HashSet::new()) }
    }

    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> HashSet<(String, i32)> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for PipelineContext {
    fn stats(&self, statistics: Statistics) {
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
