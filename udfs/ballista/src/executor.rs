//! The executor role: Ballista's executor whose function registry holds the autoenc functions, so that
//! task plans naming them decode and run here.

use std::net::SocketAddr;
use std::sync::Arc;

use autoenc_datafusion::ModelRegistry;
use ballista_core::error::{BallistaError, Result};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_executor::health::spawn_health_server;

use crate::functions::function_registry;

/// Runs the executor until the process is stopped, with Ballista's health probes (`/healthz`,
/// `/readyz`) on `health_addr` as its own binary serves them.
pub async fn run(mut config: ExecutorProcessConfig, health_addr: &str, models: Arc<ModelRegistry>) -> Result<()> {
    let health_addr: SocketAddr =
        health_addr.parse().map_err(|e| BallistaError::General(format!("invalid --bind-health-port address: {e}")))?;
    config.override_function_registry = Some(Arc::new(function_registry(&models)));
    let (stop_health, health_stopped) = tokio::sync::oneshot::channel();
    let health = spawn_health_server(health_addr, config.health.clone(), health_stopped);
    let result = start_executor_process(Arc::new(config)).await;
    let _ = stop_health.send(());
    let _ = health.await;
    result
}
