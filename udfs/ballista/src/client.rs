//! The client side: a `SessionContext` whose queries run on a Ballista cluster.
//!
//! SQL is parsed and planned here, against the same functions the nodes know, and the logical plan goes
//! to the scheduler; results come back over Arrow Flight from the executors. Tables by path
//! (`FROM 'data.parquet'`) are resolved here for their schema and read by the executors, so a path must
//! name the same file on every node (absolute paths on a shared volume). A query whose job had to re-run
//! a stage after losing an executor fails instead of answering ([`crate::job_guard`]).

use std::sync::Arc;

use autoenc_datafusion::functions::ae_generate;
use autoenc_datafusion::{ModelRegistry, register};
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::common::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::functions::LocalOnlyGenerate;
use crate::job_guard::{GuardedPlanner, SchedulerApi};

/// A session on the cluster whose scheduler listens at `url` (`df://host:50050`), with every autoenc
/// function registered and files queryable by path. `models` resolves model names while planning; the
/// nodes resolve them again from their own `--models` directory, which should hold the same files.
///
/// Connecting is lazy: an unreachable scheduler is reported by the first query.
pub async fn cluster_context(url: &str, models: Arc<ModelRegistry>) -> Result<SessionContext> {
    let config = SessionConfig::new_with_ballista().with_information_schema(true);
    let state = SessionStateBuilder::new().with_config(config).with_default_features().build();
    // Registered after the upgrade to a Ballista session, which resets the function lists to
    // Ballista's own.
    let ballista = SessionContext::remote_with_state(url, state).await?.state();
    // Every distributed query runs under the job guard, which fails it rather than return what a
    // re-run stage produced (src/job_guard.rs).
    let planner = GuardedPlanner::new(ballista.query_planner().clone(), SchedulerApi::new(url)?);
    let state = SessionStateBuilder::new_from_existing(ballista).with_query_planner(Arc::new(planner)).build();
    let ctx = SessionContext::new_with_state(state).enable_url_table();
    // Ballista's static planner: with the adaptive one (Ballista 55's default) an executor lost in the
    // middle of a stage can leave the job waiting for ever (docs/cluster.md, "Failures"); with the static
    // one its tasks are re-run on the others. A session may still `SET` it back.
    ctx.sql("SET ballista.planner.adaptive.enabled = false").await?.collect().await?;
    register(&ctx, models);
    ctx.register_udtf(ae_generate::NAME, Arc::new(LocalOnlyGenerate));
    Ok(ctx)
}
