//! # autoenc-datafusion
//!
//! SQL functions over autoenc models for Apache DataFusion. Register them on a `SessionContext` with a
//! [`ModelRegistry`] (models loaded by name from a directory, or registered in code):
//!
//! ```no_run
//! # async fn demo() -> datafusion::error::Result<()> {
//! use std::sync::Arc;
//! use datafusion::prelude::SessionContext;
//! use autoenc_datafusion::{ModelRegistry, register};
//!
//! let ctx = SessionContext::new();
//! let models = Arc::new(ModelRegistry::with_directory("models"));
//! register(&ctx, models);
//! ctx.sql("SELECT ae_score('sensors', s0, s1, s2) FROM 'readings.parquet'").await?.show().await?;
//! # Ok(()) }
//! ```
//!
//! Scalar functions `ae_encode`, `ae_decode`, `ae_score`, `ae_percentile`, `ae_is_anomaly`, `ae_explain`,
//! `ae_reconstruct`, `ae_model_info` (see `functions/` and the argument conventions in `arguments.rs`),
//! the training aggregate `ae_train` and the table function `ae_generate`. Scores are computed by the
//! same core call as the CLI's, so they agree with `autoenc score` for the same rows. `FUNCTIONS.md`
//! (rendered by `reference.rs`) is the user reference; the `autoenc-sql` binary (its own crate,
//! `udfs/sql-shell`, so that this library compiles no shell dependencies) is a shell with all of them
//! registered.

#![forbid(unsafe_code)]

mod arguments;
pub mod expr_fn;
pub mod functions;
#[cfg(test)]
mod fuzz;
pub mod reference;
pub mod registry;

use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use registry::{ModelRegistry, RegistryError};

/// Every scalar function, bound to `registry`.
pub fn scalar_functions(registry: Arc<ModelRegistry>) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(functions::ae_decode::AeDecodeFunc::new(registry.clone())),
        ScalarUDF::from(functions::ae_encode::AeEncodeFunc::new(registry.clone())),
        ScalarUDF::from(functions::ae_score::AeScoreFunc::new(registry.clone())),
        ScalarUDF::from(functions::ae_percentile::AePercentileFunc::new(registry.clone())),
        ScalarUDF::from(functions::ae_is_anomaly::AeIsAnomalyFunc::new(registry.clone())),
        ScalarUDF::from(functions::ae_explain::AeExplainFunc::new(registry.clone())),
        ScalarUDF::from(functions::ae_reconstruct::AeReconstructFunc::new(registry.clone())),
        ScalarUDF::from(functions::ae_model_info::AeModelInfoFunc::new(registry)),
    ]
}

/// The training aggregate, `ae_train`.
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    vec![AggregateUDF::from(functions::ae_train::AeTrainFunc::default())]
}

/// Every table function, with the name SQL calls it by, bound to `registry`.
pub fn table_functions(registry: Arc<ModelRegistry>) -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![(functions::ae_generate::NAME, Arc::new(functions::ae_generate::AeGenerateFunc::new(registry)))]
}

/// Adds every function to `ctx`: [`scalar_functions`], [`aggregate_functions`] and [`table_functions`].
/// Hosts with their own registration (Python DataFusion, a Ballista cluster) take the three lists.
pub fn register(ctx: &SessionContext, registry: Arc<ModelRegistry>) {
    for function in scalar_functions(registry.clone()) {
        ctx.register_udf(function);
    }
    for function in aggregate_functions() {
        ctx.register_udaf(function);
    }
    for (name, function) in table_functions(registry) {
        ctx.register_udtf(name, function);
    }
}
