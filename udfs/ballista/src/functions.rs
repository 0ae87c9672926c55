//! What every process of the cluster registers: the autoenc scalar functions and the `ae_train`
//! aggregate, beside DataFusion's and Ballista's own. One place builds both shapes Ballista asks for —
//! a [`SessionState`] (client and scheduler plan with it) and a [`BallistaFunctionRegistry`] (executors
//! decode task plans with it) — so the three roles cannot drift apart.

use std::sync::Arc;

use autoenc_datafusion::ModelRegistry;
use autoenc_datafusion::functions::ae_generate;
use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::execution::SessionState;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionConfig;

/// Opens the model directory of a node, failing early when it is not a directory: a typo there would
/// otherwise surface only as "model not found" on the first query, on some executor's log.
pub fn model_registry(
    directory: Option<&std::path::Path>,
    default_model: Option<&str>,
) -> std::result::Result<Arc<ModelRegistry>, String> {
    let registry = match directory {
        Some(directory) if !directory.is_dir() => {
            return Err(format!("--models {}: not a directory", directory.display()));
        }
        Some(directory) => ModelRegistry::with_directory(directory),
        None => ModelRegistry::new(),
    };
    if let Some(name) = default_model {
        registry.get(name).map_err(|e| format!("--default-model: {e}"))?;
        registry.set_default(name);
    }
    Ok(Arc::new(registry))
}

fn scalar_functions(models: &Arc<ModelRegistry>) -> Vec<Arc<ScalarUDF>> {
    autoenc_datafusion::scalar_functions(models.clone()).into_iter().map(Arc::new).collect()
}

fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    autoenc_datafusion::aggregate_functions().into_iter().map(Arc::new).collect()
}

/// Ballista's default session (its optimizer rules and functions) with the autoenc functions added: the
/// session builder of the scheduler.
pub fn session_state(config: SessionConfig, models: &Arc<ModelRegistry>) -> Result<SessionState> {
    let mut state = ballista_core::utils::default_session_builder(config)?;
    for function in scalar_functions(models) {
        state.register_udf(function)?;
    }
    for function in aggregate_functions() {
        state.register_udaf(function)?;
    }
    Ok(state)
}

/// Ballista's default executor registry with the autoenc functions added.
pub fn function_registry(models: &Arc<ModelRegistry>) -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for function in scalar_functions(models) {
        registry.scalar_functions.insert(function.name().to_string(), function);
    }
    for function in aggregate_functions() {
        registry.aggregate_functions.insert(function.name().to_string(), function);
    }
    registry
}

/// `ae_generate` on a cluster session: a plan error instead of a plan the scheduler cannot decode.
///
/// The local `ae_generate` returns an in-memory table provider; shipping it would mean a custom
/// extension codec on all three roles for a function whose output is a few thousand synthetic rows. On
/// a cluster, generate locally and write a file the executors can read.
#[derive(Debug, Default)]
pub struct LocalOnlyGenerate;

impl TableFunctionImpl for LocalOnlyGenerate {
    fn call_with_args(&self, _args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        plan_err!(
            "{} is not available on a Ballista cluster (its rows live in the client's memory, which \
             executors cannot read): run it in a local autoenc-sql and COPY the rows to a file every node can read",
            ae_generate::NAME
        )
    }
}
