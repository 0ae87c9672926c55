//! `ae_score([model,] features...)`: the anomaly score of each row.

use std::sync::{Arc, LazyLock};

use arrow::array::Float64Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarFunctionArgs};

use super::common::{from_scores, row_function_documentation};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::registry::ModelRegistry;

/// `ae_score`: mean squared reconstruction error over the row's observed features, in the model's scaled
/// units — the same number `autoenc score` writes.
pub type AeScoreFunc = AeScalarFunc<Score>;

/// What [`AeScoreFunc`] computes: the model's `score`.
#[derive(Debug)]
pub struct Score;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    row_function_documentation(
        "Anomaly score of a row: the mean squared reconstruction error over its observed features, in the \
         model's scaled units. NaN or NULL features are imputed and left out; a row with no observed feature \
         (all NULL or NaN) gives NULL.",
        "ae_score([model,] features...)",
    )
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
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = from_scores(Self::NAME, registry, &args, Self::THRESHOLD_ALLOWED, |_, score, _| score)?;
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(values))))
    }
}
