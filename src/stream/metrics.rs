//! Prometheus metrics and the `/metrics` + `/health` endpoint of a running pipeline.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds` histograms). Consumer lag comes
//! from librdkafka's own statistics (per assigned partition), refreshed every second.
//!
//! `/health` answers 200 only while the pipeline can make progress: it is consuming, no acknowledgement
//! it waits for is overdue, and the broker answered recently. A broker that stops answering (killed,
//! paused, cut off) turns it to 503 within `broker_stall_seconds`, and back to 200 once the broker
//! answers again, so an orchestrator sees the truth instead of a live process that does nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the pipeline serves.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub messages_in: IntCounter,
    pub messages_out: IntCounter,
    pub rows_scored: IntCounter,
    pub batches: IntCounter,
    pub batch_latency: Histogram,
    pub anomalies: IntCounter,
    pub dead_letters: IntCounterVec,
    pub unknown_categories: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub model_reloads: IntCounter,
    pub model_reload_failures: IntCounter,
    pub checkpoints: IntCounter,
    pub assigned_partitions: IntGauge,
    /// True once the pipeline consumes; `/health` answers 503 before and after.
    pub running: Arc<AtomicBool>,
    /// What the pipeline knows of the broker; `/health` answers 503 while it is not answering.
    pub broker: Arc<BrokerHealth>,
}

/// Signs that the broker is not answering, set by the pipeline and read by `/health`.
#[derive(Debug, Default)]
pub struct BrokerHealth {
    /// Waits for acknowledgements that have lasted longer than `broker_stall_seconds` (a count, not a
    /// flag, because several batches may wait at once and each clears only its own).
    overdue_waits: AtomicUsize,
    /// The consumer's last statistics showed no broker connection that answered recently.
    silent: AtomicBool,
    /// When a wait on the broker last ended (Unix ms): statistics from before it are out of date.
    last_answer_ms: AtomicU64,
}

impl BrokerHealth {
    /// Marks one wait as overdue until the returned guard is dropped (also when the wait is abandoned).
    pub fn overdue(self: &Arc<Self>) -> OverdueGuard {
        self.overdue_waits.fetch_add(1, Ordering::Relaxed);
        OverdueGuard(self.clone())
    }

    /// Notes that the broker just answered a wait.
    pub fn answered(&self) {
        self.last_answer_ms.store(unix_ms(), Ordering::Relaxed);
    }

    /// Whether statistics taken at `time_s` (Unix seconds) are older than the broker's last answer.
    /// Statistics queue up while the pipeline waits on the broker and arrive together when it polls
    /// again, so the last report of a pause comes after the broker is back.
    pub fn outdated(&self, time_s: i64) -> bool {
        time_s.saturating_mul(1000) < self.last_answer_ms.load(Ordering::Relaxed) as i64
    }

    /// Records whether the broker is silent; returns what was recorded before (to log changes only).
    pub fn set_silent(&self, silent: bool) -> bool {
        self.silent.swap(silent, Ordering::Relaxed)
    }

    /// Why the pipeline cannot make progress, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.overdue_waits.load(Ordering::Relaxed) > 0 {
            Some("waiting for the broker to acknowledge outputs\n")
        } else if self.silent.load(Ordering::Relaxed) {
            Some("the broker is not answering\n")
        } else {
            None
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Keeps a wait counted as overdue while it lives.
pub struct OverdueGuard(Arc<BrokerHealth>);

impl Drop for OverdueGuard {
    fn drop(&mut self) {
        self.0.overdue_waits.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The metric names, for the dashboard test and the docs.
pub const METRIC_NAMES: &[&str] = &[
    "autoenc_messages_in_total",
    "autoenc_messages_out_total",
    "autoenc_rows_scored_total",
    "autoenc_batches_total",
    "autoenc_batch_latency_seconds",
    "autoenc_anomalies_total",
    "autoenc_dead_letters_total",
    "autoenc_consumer_lag",
    "autoenc_model_reloads_total",
    "autoenc_model_reload_failures_total",
    "autoenc_checkpoints_total",
    "autoenc_assigned_partitions",
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let messages_in = counter("autoenc_messages_in_total", "Input messages consumed");
        let messages_out = counter("autoenc_messages_out_total", "Scored messages acknowledged by the output topic");
        let rows_scored = counter("autoenc_rows_scored_total", "Rows scored (an Arrow message may hold many)");
        let batches = counter("autoenc_batches_total", "Micro-batches processed");
        let anomalies = counter("autoenc_anomalies_total", "Rows flagged as anomalies");
        let model_reloads = counter("autoenc_model_reloads_total", "Model files swapped in while running");
        let model_reload_failures =
            counter("autoenc_model_reload_failures_total", "Changed model files that could not be loaded");
        let checkpoints = counter("autoenc_checkpoints_total", "Model checkpoints written by continual learning");
        let batch_latency = Histogram::with_opts(
            HistogramOpts::new(
                "autoenc_batch_latency_seconds",
                "From a batch's first message arriving to its outputs acknowledged and offsets committed",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        )
        .expect("valid metric");
        registry.register(Box::new(batch_latency.clone())).expect("unique metric");
        let dead_letters = IntCounterVec::new(
            Opts::new("autoenc_dead_letters_total", "Messages sent to the dead-letter topic, by reason"),
            &["reason"],
        )
        .expect("valid metric");
        registry.register(Box::new(dead_letters.clone())).expect("unique metric");
        let unknown_categories = IntCounterVec::new(
            Opts::new(
                "autoenc_unknown_categories_total",
                "Categorical values outside the model's vocabulary (scored as other), by feature",
            ),
            &["feature"],
        )
        .expect("valid metric");
        registry.register(Box::new(unknown_categories.clone())).expect("unique metric");
        let consumer_lag = IntGaugeVec::new(
            Opts::new("autoenc_consumer_lag", "Messages behind the high watermark, per assigned partition"),
            &["topic", "partition"],
        )
        .expect("valid metric");
        registry.register(Box::new(consumer_lag.clone())).expect("unique metric");
        let assigned_partitions =
            IntGauge::new("autoenc_assigned_partitions", "Input partitions assigned here").expect("valid metric");
        registry.register(Box::new(assigned_partitions.clone())).expect("unique metric");
        Self {
            registry,
            messages_in,
            messages_out,
            rows_scored,
            batches,
            batch_latency,
            anomalies,
            dead_letters,
            unknown_categories,
            consumer_lag,
            model_reloads,
            model_reload_failures,
            checkpoints,
            assigned_partitions,
            running: Arc::new(AtomicBool::new(false)),
            broker: Arc::new(BrokerHealth::default()),
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `/metrics` and `/health` until the task is dropped. Returns the bound address (port 0 picks one).
pub async fn serve(
    metrics: Metrics,
    address: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let for_metrics = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = for_metrics.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], metrics.render()) }
            }),
        )
        .route(
            "/health",
            get(move || {
                let running = metrics.running.load(Ordering::Relaxed);
                let problem = metrics.broker.problem();
                async move {
                    match (running, problem) {
                        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "not consuming\n"),
                        (true, Some(problem)) => (StatusCode::SERVICE_UNAVAILABLE, problem),
                        (true, None) => (StatusCode::OK, "ok\n"),
                    }
                }
            }),
        );
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!("metrics endpoint stopped: {error}");
        }
    });
    Ok((bound, handle))
}
