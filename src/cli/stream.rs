//! `autoenc stream`: runs the Kafka pipeline. Settings come from `--config FILE` (TOML, the keys of
//! [`StreamConfig`]) and every key is also a flag; a flag wins over the file.

use std::path::PathBuf;

use autoenc::stream::{Delivery, InputFormat, Metrics, OutputFormat, StreamConfig};

#[derive(clap::Args, Debug, Default)]
pub struct StreamArgs {
    /// TOML file with the pipeline's settings (keys as the flags below, with underscores).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Consumer group id.
    #[arg(long = "group-id", visible_alias = "group")]
    pub group_id: Option<String>,
    /// Input topic (repeat or comma-separate for several).
    #[arg(long = "input-topic", value_delimiter = ',')]
    pub input_topics: Vec<String>,
    #[arg(long)]
    pub output_topic: Option<String>,
    #[arg(long)]
    pub alerts_topic: Option<String>,
    #[arg(long)]
    pub dead_letter_topic: Option<String>,
    /// Model file.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub delivery: Option<Delivery>,
    #[arg(long, value_enum)]
    pub input_format: Option<InputFormat>,
    /// Feature field names, comma-separated (default: the model's feature names).
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// JSON input: one array field holding every feature.
    #[arg(long)]
    pub features_field: Option<String>,
    /// CSV input: the column names of each line, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub csv_columns: Vec<String>,
    #[arg(long, value_enum)]
    pub output_format: Option<OutputFormat>,
    #[arg(long)]
    pub max_rows: Option<usize>,
    #[arg(long)]
    pub max_bytes: Option<usize>,
    #[arg(long)]
    pub max_wait_ms: Option<u64>,
    /// At-least-once: sent batches that may await acknowledgements at once (more: throughput, latency).
    #[arg(long)]
    pub max_in_flight_batches: Option<usize>,
    /// Sliding-window threshold over the last N scores (0 = the model's fixed threshold).
    #[arg(long)]
    pub threshold_window: Option<usize>,
    #[arg(long)]
    pub contamination: Option<f64>,
    /// Continual learning on rows scored as normal.
    #[arg(long)]
    pub learn: bool,
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Do not watch the model file for changes.
    #[arg(long)]
    pub no_reload: bool,
    #[arg(long)]
    pub reload_interval_ms: Option<u64>,
    /// Address for /metrics and /health ("" turns the endpoint off).
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Let the producer partition outputs by key instead of keeping the input partition.
    #[arg(long)]
    pub no_keep_partition: bool,
    #[arg(long)]
    pub transactional_id: Option<String>,
    /// Seconds outputs may wait for the broker before the pipeline gives up and exits with an error.
    #[arg(long)]
    pub broker_give_up_seconds: Option<u64>,
    /// Seconds without an answer from the broker before /health reports not ready and the log warns.
    #[arg(long)]
    pub broker_stall_seconds: Option<u64>,
    /// A librdkafka property for both clients, KEY=VALUE (repeatable), e.g. -X security.protocol=SSL.
    #[arg(short = 'X', value_parser = key_value)]
    pub kafka: Vec<(String, String)>,
    /// A librdkafka property for the consumer only, KEY=VALUE.
    #[arg(long = "consumer-property", value_parser = key_value)]
    pub consumer: Vec<(String, String)>,
    /// A librdkafka property for the producer only, KEY=VALUE.
    #[arg(long = "producer-property", value_parser = key_value)]
    pub producer: Vec<(String, String)>,
    /// Print the merged configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

impl StreamArgs {
    /// The file's settings with every given flag applied over them.
    pub fn merged(&self) -> anyhow::Result<StreamConfig> {
        let mut c = match &self.config {
            Some(path) => StreamConfig::from_file(path)?,
            None => StreamConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { c.$field = v.clone(); } )* };
        }
        set!(brokers, group_id, model, delivery, input_format, output_format, max_rows, max_bytes, max_wait_ms);
        set!(threshold_window, checkpoint_every, reload_interval_ms, metrics_addr, output_topic, max_in_flight_batches);
        set!(broker_give_up_seconds, broker_stall_seconds);
        macro_rules! set_option {
            ($($field:ident),*) => { $( if self.$field.is_some() { c.$field = self.$field.clone(); } )* };
        }
        set_option!(alerts_topic, dead_letter_topic, features_field, contamination, transactional_id);
        if !self.input_topics.is_empty() {
            c.input_topics = self.input_topics.clone();
        }
        if !self.features.is_empty() {
            c.features = self.features.clone();
        }
        if !self.csv_columns.is_empty() {
            c.csv_columns = self.csv_columns.clone();
        }
        c.learn |= self.learn;
        c.reload &= !self.no_reload;
        c.keep_partition &= !self.no_keep_partition;
        c.kafka.extend(self.kafka.iter().cloned());
        c.consumer.extend(self.consumer.iter().cloned());
        c.producer.extend(self.producer.iter().cloned());
        Ok(c)
    }
}

/// A runtime with a few workers: the consumer loop, the metrics endpoint and the blocking scorer.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// A watch channel that turns true on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> tokio::sync::watch::Receiver<bool> {
    let (sender, receiver) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match terminate.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
            _ = term => tracing::info!("SIGTERM: stopping"),
        }
        let _ = sender.send(true);
    });
    receiver
}

pub fn run(args: StreamArgs) -> anyhow::Result<()> {
    let config = args.merged()?;
    if args.print_config {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    }
    config.validate()?;
    runtime()?.block_on(async move {
        let metrics = Metrics::new();
        if !config.metrics_addr.is_empty() {
            let (address, _server) =
                autoenc::stream::metrics::serve(metrics.clone(), config.metrics_addr.parse()?).await?;
            tracing::info!("metrics on http://{address}/metrics");
        }
        let shutdown = shutdown_on_signals();
        let summary = autoenc::stream::run(config, metrics, shutdown).await?;
        eprintln!(
            "stopped: {} messages in, {} out, {} dead letters, {} anomalies, {} batches; {:.0} msgs/s over {:.2} s \
             of activity; batch latency p50 {:.1} ms / p99 {:.1} ms",
            summary.messages_in,
            summary.messages_out,
            summary.dead_letters,
            summary.anomalies,
            summary.batches,
            summary.messages_in as f64 / summary.active_seconds.max(1e-9),
            summary.active_seconds,
            summary.latency_quantile_ms(0.5),
            summary.latency_quantile_ms(0.99)
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: StreamArgs,
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "input_topics = [\"a\"]\noutput_topic = \"o\"\nmodel = \"m.ae\"\nmax_rows = 10\n[kafka]\n\"socket.timeout.ms\" = \"1000\"\n").unwrap();
        let w = Wrapper::parse_from([
            "x",
            "--config",
            file.to_str().unwrap(),
            "--max-rows",
            "20",
            "--input-topic",
            "b,c",
            "-X",
            "client.id=me",
            "--no-reload",
            "--delivery",
            "exactly-once",
            "--max-in-flight-batches",
            "3",
            "--broker-give-up-seconds",
            "90",
        ]);
        let c = w.args.merged().unwrap();
        assert_eq!(c.max_rows, 20);
        assert_eq!(c.input_topics, ["b", "c"]);
        assert_eq!(c.output_topic, "o");
        assert_eq!(c.kafka.get("client.id").map(String::as_str), Some("me"));
        assert_eq!(c.kafka.get("socket.timeout.ms").map(String::as_str), Some("1000"));
        assert!(!c.reload);
        assert_eq!(c.delivery, Delivery::ExactlyOnce);
        assert_eq!(c.max_in_flight_batches, 3);
        assert_eq!(c.broker_give_up_seconds, 90);
        assert_eq!(c.broker_stall_seconds, 5, "unset: the default");
        assert!(Wrapper::try_parse_from(["x", "-X", "novalue"]).is_err());
    }
}
