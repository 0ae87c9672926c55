//! The pipeline's configuration: one flat serde struct, read from a TOML file and overridden key by key
//! from the command line (every key is also a flag of `autoenc stream`).
//!
//! Kafka client settings are not modelled one by one: `kafka` is a map of librdkafka properties
//! (security, timeouts, compression, ...) handed to both clients as they are, and `consumer` /
//! `producer` add properties for one client only. The few properties the delivery guarantees depend on
//! (auto commit off, idempotence, isolation level, transactional id) are set by the pipeline and a
//! user value for them is refused rather than silently overridden.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// How outputs and input offsets are tied together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// An input offset is committed only after every output of its batch is acknowledged by the broker.
    /// A crash replays the uncommitted batch: no loss, possible duplicates.
    #[default]
    AtLeastOnce,
    /// Outputs and input offsets are written in one Kafka transaction per batch; downstream consumers
    /// reading with `isolation.level=read_committed` see each output once.
    ExactlyOnce,
}

/// The encoding of input messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// One JSON object per message: the features by field name, or one array field.
    #[default]
    Json,
    /// One CSV line per message, columns named by `csv_columns` (default: the model's features).
    Csv,
    /// One Arrow IPC stream (schema + one record batch) per message.
    Arrow,
}

/// The encoding of output messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The input record as a JSON object plus the result fields (newline-delimited objects for a
    /// multi-row Arrow input).
    #[default]
    Json,
    /// An Arrow IPC stream: the input columns plus the result columns.
    Arrow,
}

/// Everything `autoenc stream` needs. Defaults are stated on each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// `bootstrap.servers` (default `localhost:9092`).
    pub brokers: String,
    /// Consumer group (default `autoenc`). Instances with the same group share the partitions.
    pub group_id: String,
    /// Topics to consume (required).
    pub input_topics: Vec<String>,
    /// Topic for every scored record (required).
    pub output_topic: String,
    /// Optional topic receiving only the records flagged as anomalies.
    pub alerts_topic: Option<String>,
    /// Topic for messages that cannot be scored. Without it a bad message is logged, counted and skipped.
    pub dead_letter_topic: Option<String>,
    /// The model file (required). Watched for changes unless `reload` is false.
    pub model: PathBuf,
    /// `at-least-once` (default) or `exactly-once`.
    pub delivery: Delivery,
    /// `json` (default), `csv` or `arrow`.
    pub input_format: InputFormat,
    /// Feature field names in the model's order (default: the model's feature names).
    pub features: Vec<String>,
    /// For JSON input: one array field holding all features, instead of one field per feature.
    pub features_field: Option<String>,
    /// For CSV input: the column names of each line (default: the model's features).
    pub csv_columns: Vec<String>,
    /// `json` (default) or `arrow`.
    pub output_format: OutputFormat,
    /// A micro-batch closes at this many messages (default 1000)...
    pub max_rows: usize,
    /// ...or this many payload bytes (default 4 MiB)...
    pub max_bytes: usize,
    /// ...or this long after its first message (default 20 ms), whichever comes first.
    pub max_wait_ms: u64,
    /// At-least-once: how many sent batches may await the broker's acknowledgements at once while the
    /// next ones are read and scored (default 1). They are committed strictly in order, each after all
    /// of its outputs are acknowledged. Raise it when acknowledgements take longer than scoring a batch
    /// (a remote or replicated cluster); on the local test broker 4 gave no steady gain over 1 (68-84k
    /// messages/s either way, run to run) and a higher p99 batch latency (about 60 ms against 40 ms).
    /// Exactly-once always has one batch per transaction.
    pub max_in_flight_batches: usize,
    /// Sliding-window threshold: the `1 - contamination` quantile of the last N scores replaces the
    /// model's fixed threshold once the window is full (default 0 = off).
    pub threshold_window: usize,
    /// Contamination for the sliding window (default: the model's own).
    pub contamination: Option<f64>,
    /// Continual learning: `partial_fit` on the rows of each batch that scored as normal (default false).
    pub learn: bool,
    /// With `learn`, write the model file (atomically) every N batches (default 100) and at shutdown.
    pub checkpoint_every: usize,
    /// Swap in a changed model file between batches (default true).
    pub reload: bool,
    /// How often to look at the model file (default 1000 ms).
    pub reload_interval_ms: u64,
    /// Address of the Prometheus `/metrics` and `/health` endpoint (default `127.0.0.1:9464`; empty = off).
    pub metrics_addr: String,
    /// Keep each record's input partition number in the output topic (modulo its partition count), so
    /// per-partition order carries over (default true). Off: the producer partitions by key.
    pub keep_partition: bool,
    /// librdkafka properties for both clients (e.g. `security.protocol`, `sasl.mechanisms`).
    pub kafka: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only.
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for the producer only.
    pub producer: BTreeMap<String, String>,
    /// Transactional id for `exactly-once` (default `autoenc-<group_id>-<hostname/pid>`); it must be
    /// stable across restarts of one instance and different between instances.
    pub transactional_id: Option<String>,
    /// How long outputs may wait for the broker's acknowledgement before the pipeline gives up and exits
    /// with an error, in seconds (default 300). It sets the producer's `message.timeout.ms` (and, for
    /// exactly-once, `transaction.timeout.ms`, which bounds it); a `message.timeout.ms` under
    /// `[producer]` or `[kafka]` wins. Until then a broker that comes back is resumed from by itself.
    pub broker_give_up_seconds: u64,
    /// After this many seconds without an acknowledgement the pipeline is waiting for, or without any
    /// response from the broker, `/health` answers 503 and a warning is logged (again at this interval)
    /// until the broker answers (default 5).
    pub broker_stall_seconds: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            brokers: "localhost:9092".into(),
            group_id: "autoenc".into(),
            input_topics: Vec::new(),
            output_topic: String::new(),
            alerts_topic: None,
            dead_letter_topic: None,
            model: PathBuf::new(),
            delivery: Delivery::AtLeastOnce,
            input_format: InputFormat::Json,
            features: Vec::new(),
            features_field: None,
            csv_columns: Vec::new(),
            output_format: OutputFormat::Json,
            max_rows: 1000,
            max_bytes: 4 << 20,
            max_wait_ms: 20,
            max_in_flight_batches: 1,
            threshold_window: 0,
            contamination: None,
            learn: false,
            checkpoint_every: 100,
            reload: true,
            reload_interval_ms: 1000,
            metrics_addr: "127.0.0.1:9464".into(),
            keep_partition: true,
            kafka: BTreeMap::new(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
            transactional_id: None,
            broker_give_up_seconds: 300,
            broker_stall_seconds: 5,
        }
    }
}

/// Properties the pipeline sets itself because its guarantees depend on them.
const OWNED_PROPERTIES: &[&str] = &[
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "transactional.id",
    "enable.idempotence",
    "group.id",
    "bootstrap.servers",
];

/// Bytes kept free below `message.max.bytes` for what librdkafka adds around a record (length, offset and
/// timestamp varints, attributes; at most about 30 bytes) and the record batch's header (61 bytes), with
/// a margin.
pub const RECORD_HEADROOM: usize = 512;

/// The smallest record limit that still leaves a dead letter room for its headers and a payload excerpt.
pub const MIN_DEAD_LETTER: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("missing setting `{0}` (in the config file or as a flag)")]
    Missing(&'static str),
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("the pipeline sets `{0}` itself (its delivery guarantee depends on it); remove it from the config")]
    Owned(String),
}

impl StreamConfig {
    /// Reads a TOML file; unknown keys are an error (a typo must not be silently ignored).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let file_error = |message: String| ConfigError::File { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        toml::from_str(&text).map_err(|e| file_error(e.to_string()))
    }

    /// Checks everything that can be checked before connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.input_topics.is_empty() || self.input_topics.iter().any(|t| t.is_empty()) {
            return Err(ConfigError::Missing("input_topics"));
        }
        if self.output_topic.is_empty() {
            return Err(ConfigError::Missing("output_topic"));
        }
        if self.model.as_os_str().is_empty() {
            return Err(ConfigError::Missing("model"));
        }
        if self.input_topics.contains(&self.output_topic) {
            return Err(ConfigError::Invalid {
                key: "output_topic",
                message: "is also an input topic; the pipeline would consume its own output".into(),
            });
        }
        let positive = |key: &'static str, value: usize| {
            if value == 0 { Err(ConfigError::Invalid { key, message: "must be at least 1".into() }) } else { Ok(()) }
        };
        positive("max_rows", self.max_rows)?;
        positive("max_bytes", self.max_bytes)?;
        positive("checkpoint_every", self.checkpoint_every)?;
        positive("max_in_flight_batches", self.max_in_flight_batches)?;
        positive("broker_stall_seconds", self.broker_stall_seconds as usize)?;
        positive("broker_give_up_seconds", self.broker_give_up_seconds as usize)?;
        // librdkafka keeps a timeout in an i32 of milliseconds.
        if self.broker_give_up_seconds > i32::MAX as u64 / 1000 {
            return Err(ConfigError::Invalid {
                key: "broker_give_up_seconds",
                message: format!("{} is more than librdkafka can wait", self.broker_give_up_seconds),
            });
        }
        if let Some(bytes) = self.user_property("message.max.bytes") {
            match bytes.parse::<usize>() {
                Ok(n) if n > RECORD_HEADROOM + MIN_DEAD_LETTER => {}
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "producer.message.max.bytes",
                        message: format!(
                            "{bytes:?}: needs a number above {} (room for a dead letter)",
                            RECORD_HEADROOM + MIN_DEAD_LETTER
                        ),
                    });
                }
            }
        }
        if let Some(c) = self.contamination
            && !(c > 0.0 && c < 0.5)
        {
            return Err(ConfigError::Invalid { key: "contamination", message: format!("{c} is not in (0, 0.5)") });
        }
        if self.threshold_window == 1 {
            return Err(ConfigError::Invalid { key: "threshold_window", message: "needs at least 2 scores".into() });
        }
        if self.features_field.is_some() && self.input_format != InputFormat::Json {
            return Err(ConfigError::Invalid { key: "features_field", message: "applies to JSON input only".into() });
        }
        if !self.metrics_addr.is_empty() {
            self.metrics_addr.parse::<std::net::SocketAddr>().map_err(|e| ConfigError::Invalid {
                key: "metrics_addr",
                message: format!("{:?}: {e}", self.metrics_addr),
            })?;
        }
        for key in self.kafka.keys().chain(self.consumer.keys()).chain(self.producer.keys()) {
            if OWNED_PROPERTIES.contains(&key.as_str()) {
                return Err(ConfigError::Owned(key.clone()));
            }
        }
        Ok(())
    }

    fn base_client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.kafka {
            config.set(key, value);
        }
        config
    }

    /// The consumer's librdkafka configuration.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.base_client();
        config
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            // Offsets are committed explicitly, per batch, after the outputs are acknowledged.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("statistics.interval.ms", "1000")
            // librdkafka stops fetching a partition while its local queue is over `queued.min.messages`
            // or `queued.max.messages.kbytes`, and then waits this long (default 1000 ms) before it
            // fetches again. A pipeline that reads a little slower than the broker delivers fills the
            // queue, then idles a second at a time: in the Kafka benchmark (docs/speed.md), 58k messages/s
            // with the default and 68-84k with 10 ms across runs on the same broker. (A setting under [consumer] still wins.)
            .set("fetch.queue.backoff.ms", "10");
        if self.delivery == Delivery::ExactlyOnce {
            config.set("isolation.level", "read_committed");
        }
        for (key, value) in &self.consumer {
            config.set(key, value);
        }
        config
    }

    /// The producer's librdkafka configuration.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.base_client();
        // Idempotence keeps the order of each partition through retries, which per-partition order needs.
        config.set("enable.idempotence", "true").set("linger.ms", "2");
        let give_up = (self.broker_give_up_seconds * 1000).to_string();
        if self.delivery == Delivery::ExactlyOnce {
            config.set("transactional.id", self.transactional_id());
            // librdkafka refuses a message timeout above the transaction timeout and derives the message
            // timeout from it when unset, so the give-up time is the transaction's.
            if self.user_property("transaction.timeout.ms").is_none() {
                config.set("transaction.timeout.ms", &give_up);
            }
        } else {
            config.set("message.timeout.ms", &give_up);
        }
        for (key, value) in &self.producer {
            config.set(key, value);
        }
        config
    }

    /// A property the user set for the producer (`[producer]` wins over `[kafka]`).
    fn user_property(&self, key: &str) -> Option<&str> {
        self.producer.get(key).or_else(|| self.kafka.get(key)).map(String::as_str)
    }

    /// How long the producer waits for an acknowledgement before the pipeline gives up, in ms: the
    /// user's `message.timeout.ms` (or, for exactly-once, `transaction.timeout.ms`) if set, else
    /// `broker_give_up_seconds`.
    pub fn broker_give_up_ms(&self) -> u64 {
        let user = |key| self.user_property(key).and_then(|v| v.parse::<u64>().ok());
        let transaction = (self.delivery == Delivery::ExactlyOnce).then(|| user("transaction.timeout.ms")).flatten();
        user("message.timeout.ms").or(transaction).unwrap_or(self.broker_give_up_seconds * 1000)
    }

    /// The largest record (payload, key and headers) the pipeline produces: the producer's
    /// `message.max.bytes` (librdkafka's default 1,000,000) less room for the record's framing. A
    /// larger output or dead letter is cut to fit instead of being refused by the producer.
    pub fn max_record_bytes(&self) -> usize {
        let limit = self.user_property("message.max.bytes").and_then(|v| v.parse::<usize>().ok());
        limit.unwrap_or(1_000_000).saturating_sub(RECORD_HEADROOM).max(MIN_DEAD_LETTER)
    }

    /// The transactional id used in exactly-once mode.
    pub fn transactional_id(&self) -> String {
        self.transactional_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
            let host = if host.is_empty() { std::process::id().to_string() } else { host };
            format!("autoenc-{}-{host}", self.group_id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> StreamConfig {
        StreamConfig {
            input_topics: vec!["in".into()],
            output_topic: "out".into(),
            model: "m.ae".into(),
            ..Default::default()
        }
    }

    #[test]
    fn toml_file_with_every_section_parses() {
        let text = r#"
            brokers = "k1:9092,k2:9092"
            input_topics = ["a", "b"]
            output_topic = "scored"
            dead_letter_topic = "dlq"
            model = "m.ae"
            delivery = "exactly-once"
            input_format = "csv"
            output_format = "arrow"
            max_wait_ms = 5
            max_in_flight_batches = 3
            [kafka]
            "security.protocol" = "SASL_SSL"
            [producer]
            "compression.type" = "zstd"
            [consumer]
            "fetch.queue.backoff.ms" = "50"
        "#;
        let config: StreamConfig = toml::from_str(text).unwrap();
        assert_eq!(config.delivery, Delivery::ExactlyOnce);
        assert_eq!(config.input_format, InputFormat::Csv);
        assert_eq!(config.max_wait_ms, 5);
        assert_eq!(config.max_rows, 1000, "unset keys keep their defaults");
        config.validate().unwrap();
        let producer = config.producer_config();
        assert_eq!(producer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(producer.get("compression.type"), Some("zstd"));
        assert!(producer.get("transactional.id").is_some());
        let consumer = config.consumer_config();
        assert_eq!(consumer.get("isolation.level"), Some("read_committed"));
        assert_eq!(consumer.get("compression.type"), None, "producer-only settings stay on the producer");
        assert_eq!(consumer.get("fetch.queue.backoff.ms"), Some("50"), "the user's setting wins over ours");
        assert_eq!(minimal().consumer_config().get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(config.max_in_flight_batches, 3);
        assert_eq!(minimal().max_in_flight_batches, 1);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<StreamConfig>("max_row = 5").unwrap_err().to_string().contains("max_row"));
        assert!(toml::from_str::<StreamConfig>("delivery = \"twice\"").is_err());
        let mut config = minimal();
        config.max_rows = 0;
        assert!(config.validate().unwrap_err().to_string().contains("max_rows"));
        let mut config = minimal();
        config.max_in_flight_batches = 0;
        assert!(config.validate().unwrap_err().to_string().contains("max_in_flight_batches"));
        let mut config = minimal();
        config.output_topic = "in".into();
        assert!(config.validate().unwrap_err().to_string().contains("own output"));
        let mut config = minimal();
        config.kafka.insert("enable.auto.commit".into(), "true".into());
        assert!(matches!(config.validate(), Err(ConfigError::Owned(_))));
        let mut config = minimal();
        config.metrics_addr = "nowhere".into();
        assert!(config.validate().unwrap_err().to_string().contains("metrics_addr"));
        assert!(matches!(StreamConfig::default().validate(), Err(ConfigError::Missing("input_topics"))));
    }

    #[test]
    fn broker_give_up_and_record_limit_reach_the_producer() {
        let config = minimal();
        assert_eq!(config.producer_config().get("message.timeout.ms"), Some("300000"));
        assert_eq!(config.broker_give_up_ms(), 300_000);
        assert_eq!(config.max_record_bytes(), 1_000_000 - RECORD_HEADROOM);
        let mut eos = minimal();
        eos.delivery = Delivery::ExactlyOnce;
        eos.broker_give_up_seconds = 60;
        // librdkafka bounds the message timeout by the transaction timeout and derives it from it.
        assert_eq!(eos.producer_config().get("transaction.timeout.ms"), Some("60000"));
        assert_eq!(eos.producer_config().get("message.timeout.ms"), None);
        assert_eq!(eos.broker_give_up_ms(), 60_000);
        let mut user = minimal();
        user.producer.insert("message.timeout.ms".into(), "1234".into());
        user.kafka.insert("message.max.bytes".into(), "200000".into());
        assert_eq!(user.producer_config().get("message.timeout.ms"), Some("1234"), "the user's setting wins");
        assert_eq!(user.broker_give_up_ms(), 1234);
        assert_eq!(user.max_record_bytes(), 200_000 - RECORD_HEADROOM);
        user.validate().unwrap();
        user.producer.insert("message.max.bytes".into(), "100".into());
        assert!(user.validate().unwrap_err().to_string().contains("message.max.bytes"));
        let mut zero = minimal();
        zero.broker_stall_seconds = 0;
        assert!(zero.validate().unwrap_err().to_string().contains("broker_stall_seconds"));
    }
}
