//! What stops the stream: the errors [`run`](super::run) returns. A bad message never does (it becomes
//! a dead letter, see `decode`); these are the conditions no message-level handling can get past: a
//! configuration the pipeline cannot start with, a model it cannot load, a broker that refuses or stops
//! answering past the configured give-up time, a delivery that fails for good.
//!
//! The core's [`AutoencError`] knows nothing of Kafka; it reaches here through `Model`.

use rdkafka::error::KafkaError;

use super::config::ConfigError;
use crate::AutoencError;

/// Why the stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The configuration is incomplete or contradicts itself.
    #[error("stream: {0}")]
    Config(#[from] ConfigError),
    /// The configuration and the model do not go together (feature names, threshold rules).
    #[error("stream: {0}")]
    Setup(String),
    /// A Kafka client call failed; `context` says which.
    #[error("stream: {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: KafkaError,
    },
    /// The output topic does not exist; the pipeline does not create topics.
    #[error("stream: output topic '{0}' does not exist (create it first)")]
    MissingTopic(String),
    /// A record was not delivered, or the broker did not answer in time.
    #[error("stream: {0}")]
    Delivery(String),
    /// The scoring task on the blocking pool failed.
    #[error("stream: scoring task failed: {0}")]
    ScoringTask(String),
    /// Loading, scoring or saving the model failed.
    #[error(transparent)]
    Model(#[from] AutoencError),
}

impl StreamError {
    /// A Kafka failure with what the pipeline was doing when it happened.
    pub fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        StreamError::Kafka { context: context.into(), source }
    }
}

/// `Result` with [`StreamError`] unless said otherwise.
pub type Result<T, E = StreamError> = std::result::Result<T, E>;
