//! `ae_score([model,] features...)`: the anomaly score of each row.

use std::sync::{Arc, LazyLock};

use arrow::array::Float64Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs};

use super::common::{DOC_SECTION, plan_call};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::arguments::{evaluate, exec};
use crate::registry::ModelRegistry;

/// `ae_score`: mean squared reconstruction error over the row's observed features, in the model's scaled
/// units — the same number `autoenc score` writes.
pub type AeScoreFunc = AeScalarFunc<Score>;

/// What [`AeScoreFunc`] computes: the model's `score`.
#[derive(Debug)]
pub struct Score;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Anomaly score of a row: the mean squared reconstruction error over its observed features, in the \
         model's scaled units. NaN or NULL features are imputed and left out; a row with no observed feature \
         (all NULL or NaN) gives NULL.",
        "ae_score([model,] features...)",
    )
    .with_argument("model", "Model name (string literal), model file (binary), or omitted for the default model.")
    .with_argument("features", "One list column, one struct, or numeric columns in the model's feature order.")
    .with_sql_example("SELECT ae_score('sensors', s0, s1, s2) AS score FROM readings;")
    .build()
});

impl AeFunction for Score {
    const NAME: &'static str = "ae_score";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn return_type() -> DataType {
        DataType::Float64
    }
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        plan_call(Self::NAME, registry, args.arg_fields, args.scalar_arguments, false)?;
        Ok(DataType::Float64)
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scores = evaluate(
            Self::NAME,
            registry,
            &args,
            false,
            |m| m.n_features(),
            |model, rows, _| model.score(rows.view()).map(|s| s.to_vec()).map_err(exec(Self::NAME)),
        )?;
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(scores))))
    }
}
