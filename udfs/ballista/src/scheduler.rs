//! The scheduler role: Ballista's scheduler with a session builder that registers the autoenc
//! functions, so that plans naming them decode and plan here.

use std::net::SocketAddr;
use std::sync::Arc;

use autoenc_datafusion::ModelRegistry;
use ballista_core::error::{BallistaError, Result};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::prelude::SessionConfig;

use crate::functions::session_state;

/// Runs the scheduler until the process is stopped.
pub async fn run(config: SchedulerConfig, models: Arc<ModelRegistry>) -> Result<()> {
    let addr: SocketAddr = format!("{}:{}", config.bind_host, config.bind_port)
        .parse()
        .map_err(|e: std::net::AddrParseError| BallistaError::Configuration(e.to_string()))?;
    let config = config.with_override_session_builder(Arc::new(move |session_config: SessionConfig| {
        session_state(session_config, &models)
    }));
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, addr, Arc::new(config)).await
}
