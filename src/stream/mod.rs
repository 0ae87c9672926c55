//! The stream door: `autoenc stream`, a Kafka consumer that micro-batches messages, scores them with
//! the core in one pass per batch, and produces the records with `embedding`, `score`, `percentile`,
//! `is_anomaly` and `model_version` to an output topic.
//!
//! Reading order for a newcomer: [`config`] (what a user sets), [`batcher`] (when a batch closes),
//! [`decode`] and [`encode`] (messages to rows and back), [`scorer`] (one batch through the model),
//! [`pipeline`] (the loop, delivery guarantees, shutdown). Around them: [`model_source`] (hot reload,
//! versions, continual learning), [`threshold`] (sliding-window threshold), [`metrics`] and
//! [`context`] (Prometheus, lag, rebalances).
//!
//! Compiled with the default-on `stream` cargo feature; library users of the core or the SQL door turn
//! it off and do not build librdkafka.

pub mod batcher;
pub mod config;
pub mod context;
pub mod decode;
pub mod encode;
pub mod error;
mod json_features;
pub mod metrics;
pub mod model_source;
pub mod pipeline;
pub mod scorer;
pub mod threshold;

pub use config::{Delivery, InputFormat, OutputFormat, StreamConfig};
pub use error::StreamError;
pub use metrics::Metrics;
pub use pipeline::{Summary, run};
