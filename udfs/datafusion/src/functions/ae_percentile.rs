//! `ae_percentile([model,] features...)`: where each row's score falls among the training scores.

use std::sync::{Arc, LazyLock};

use arrow::array::Float64Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarFunctionArgs};

use super::common::{from_scores, row_function_documentation};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::registry::ModelRegistry;

/// `ae_percentile`: the fraction of training rows that scored lower, in [0, 1].
pub type AePercentileFunc = AeScalarFunc<Percentile>;

/// What [`AePercentileFunc`] computes: the model's `percentile` of each row's score.
#[derive(Debug)]
pub struct Percentile;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    row_function_documentation(
        "The fraction of the model's training rows whose score was lower than this row's, in [0, 1].",
        "ae_percentile([model,] features...)",
    )
    .with_sql_example("SELECT * FROM readings WHERE ae_percentile('sensors', features) > 0.99;")
    .build()
});

impl AeFunction for Percentile {
    const NAME: &'static str = "ae_percentile";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn return_type() -> DataType {
        DataType::Float64
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = from_scores(Self::NAME, registry, &args, Self::THRESHOLD_ALLOWED, |model, score, _| {
            model.percentile(score)
        })?;
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(values))))
    }
}
