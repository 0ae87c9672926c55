//! `Expr` builders for Rust Polars users: `score(&model, [col("a"), col("b")])` and friends.
//!
//! Each builder wraps one [`Operation`] in an elementwise anonymous function over the feature
//! expressions, so it works in `with_columns`, `select`, `filter` and inside `group_by().agg` (where
//! it runs per group). The output dtype is decided at planning from the model and the input schema,
//! which is also where dtype and dimension errors surface for lazy queries.
//!
//! The model is shared (`Arc`) because a lazy plan may outlive the caller's borrow and run on several
//! threads at once.

use std::sync::Arc;

use autoenc::Autoencoder;
use polars::prelude::*;

use crate::operation::Operation;

/// `operation` over `features` (one Array/List column or several numeric columns).
pub fn model_expr<E: AsRef<[Expr]>>(model: &Arc<Autoencoder>, features: E, operation: Operation) -> Expr {
    let (run, plan) = (Arc::clone(model), Arc::clone(model));
    map_multiple(
        move |columns: &mut [Column]| {
            let inputs: Vec<Series> = columns.iter().map(|c| c.as_materialized_series().clone()).collect();
            Ok(operation.evaluate(&run, &inputs)?.into_column())
        },
        features,
        move |_schema: &Schema, fields: &[Field]| operation.output_field(&plan, fields),
    )
}

/// The code of each row: `Array(Float32, latent)`.
pub fn encode<E: AsRef<[Expr]>>(model: &Arc<Autoencoder>, features: E) -> Expr {
    model_expr(model, features, Operation::Encode)
}

/// Rows in original units from codes (one Array/List column or `latent` numeric columns).
pub fn decode<E: AsRef<[Expr]>>(model: &Arc<Autoencoder>, codes: E) -> Expr {
    model_expr(model, codes, Operation::Decode)
}

/// The reconstruction of each row in original units, missing values filled in.
pub fn reconstruct<E: AsRef<[Expr]>>(model: &Arc<Autoencoder>, features: E) -> Expr {
    model_expr(model, features, Operation::Reconstruct)
}

/// The anomaly score: mean squared reconstruction error over the observed features, scaled units.
pub fn score<E: AsRef<[Expr]>>(model: &Arc<Autoencoder>, features: E) -> Expr {
    model_expr(model, features, Operation::Score)
}

/// The fraction of training rows that scored lower than the row.
pub fn percentile<E: AsRef<[Expr]>>(model: &Arc<Autoencoder>, features: E) -> Expr {
    model_expr(model, features, Operation::Percentile)
}

/// Whether the row's score is above `threshold`, or the model's threshold when `None`.
pub fn is_anomaly<E: AsRef<[Expr]>>(model: &Arc<Autoencoder>, features: E, threshold: Option<f64>) -> Expr {
    model_expr(model, features, Operation::IsAnomaly { threshold })
}

/// The `k` features with the largest squared error, largest first: `List(Struct{feature, error})`.
pub fn explain<E: AsRef<[Expr]>>(model: &Arc<Autoencoder>, features: E, k: usize) -> Expr {
    model_expr(model, features, Operation::Explain { k })
}
