//! `ae_is_anomaly([model,] features... [, threshold])`: whether each row's score is above the threshold.

use std::sync::{Arc, LazyLock};

use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs};

use super::common::{DOC_SECTION, plan_call};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::arguments::{evaluate, exec};
use crate::registry::ModelRegistry;

/// `ae_is_anomaly`: the model's flag, or a comparison with an explicit threshold given as a last literal
/// argument (after a list/struct feature argument, or as one more than the model's feature columns).
pub type AeIsAnomalyFunc = AeScalarFunc<IsAnomaly>;

/// What [`AeIsAnomalyFunc`] computes: each row's score against the model's or the given threshold.
#[derive(Debug)]
pub struct IsAnomaly;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "True when the row's score is above the model's threshold (calibrated at training from the \
         contamination), or above an explicit threshold given as the last argument.",
        "ae_is_anomaly([model,] features... [, threshold])",
    )
    .with_argument("model", "Model name (string literal), model file (binary), or omitted for the default model.")
    .with_argument("features", "One list column, one struct, or numeric columns in the model's feature order.")
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
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        plan_call(Self::NAME, registry, args.arg_fields, args.scalar_arguments, true)?;
        Ok(DataType::Boolean)
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let flags = evaluate(
            Self::NAME,
            registry,
            &args,
            true,
            |m| m.n_features(),
            |model, rows, threshold| {
                let scores = model.score(rows.view()).map_err(exec(Self::NAME))?;
                Ok(scores.iter().map(|&s| threshold.map_or_else(|| model.is_anomaly(s), |t| s > t)).collect())
            },
        )?;
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(flags))))
    }
}
