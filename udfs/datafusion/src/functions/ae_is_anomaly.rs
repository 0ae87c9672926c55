//! `ae_is_anomaly([model,] features... [, threshold])`: whether each row's score is above the threshold.

use std::sync::{Arc, LazyLock};

use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarFunctionArgs};

use super::common::{from_scores, row_function_documentation};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::registry::ModelRegistry;

/// `ae_is_anomaly`: the model's flag, or a comparison with an explicit threshold given as a last literal
/// argument (after a list/struct feature argument, or as one more than the model's feature columns).
pub type AeIsAnomalyFunc = AeScalarFunc<IsAnomaly>;

/// What [`AeIsAnomalyFunc`] computes: each row's score against the model's or the given threshold.
#[derive(Debug)]
pub struct IsAnomaly;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    row_function_documentation(
        "True when the row's score is above the model's threshold (calibrated at training from the \
         contamination), or above an explicit threshold given as the last argument.",
        "ae_is_anomaly([model,] features... [, threshold])",
    )
    .with_argument("threshold", "Optional score threshold (a numeric literal) overriding the model's.")
    .with_sql_example(
        "SELECT device, avg(CAST(ae_is_anomaly('sensors', features) AS DOUBLE)) FROM readings GROUP BY device;",
    )
    .build()
});

impl AeFunction for IsAnomaly {
    const NAME: &'static str = "ae_is_anomaly";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn return_type() -> DataType {
        DataType::Boolean
    }
    const THRESHOLD_ALLOWED: bool = true;
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = from_scores(Self::NAME, registry, &args, Self::THRESHOLD_ALLOWED, |model, score, threshold| {
            threshold.map_or_else(|| model.is_anomaly(score), |t| score > t)
        })?;
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(values))))
    }
}
