//! Expression builders for the DataFrame API: `ae_score(&registry, model, features)` and friends.

use std::sync::Arc;

use datafusion::logical_expr::{Expr, ScalarUDF, lit};

use crate::functions::{
    ae_encode::AeEncodeFunc, ae_is_anomaly::AeIsAnomalyFunc, ae_percentile::AePercentileFunc, ae_score::AeScoreFunc,
};
use crate::registry::ModelRegistry;

fn call(function: ScalarUDF, model: Option<&str>, features: Vec<Expr>) -> Expr {
    let mut args: Vec<Expr> = model.map(|m| vec![lit(m)]).unwrap_or_default();
    args.extend(features);
    function.call(args)
}

/// `ae_score(model, features...)`; `model = None` uses the registry's default.
pub fn ae_score(registry: &Arc<ModelRegistry>, model: Option<&str>, features: Vec<Expr>) -> Expr {
    call(ScalarUDF::from(AeScoreFunc::new(registry.clone())), model, features)
}

/// `ae_encode(model, features...)`.
pub fn ae_encode(registry: &Arc<ModelRegistry>, model: Option<&str>, features: Vec<Expr>) -> Expr {
    call(ScalarUDF::from(AeEncodeFunc::new(registry.clone())), model, features)
}

/// `ae_percentile(model, features...)`.
pub fn ae_percentile(registry: &Arc<ModelRegistry>, model: Option<&str>, features: Vec<Expr>) -> Expr {
    call(ScalarUDF::from(AePercentileFunc::new(registry.clone())), model, features)
}

/// `ae_is_anomaly(model, features...)`.
pub fn ae_is_anomaly(registry: &Arc<ModelRegistry>, model: Option<&str>, features: Vec<Expr>) -> Expr {
    call(ScalarUDF::from(AeIsAnomalyFunc::new(registry.clone())), model, features)
}
