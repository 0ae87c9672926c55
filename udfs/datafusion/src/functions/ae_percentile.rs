//! `ae_percentile([model,] features...)`: where each row's score falls among the training scores.

use std::sync::{Arc, LazyLock};

use arrow::array::Float64Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs};

use super::common::{DOC_SECTION, plan_call};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::arguments::{evaluate, exec};
use crate::registry::ModelRegistry;

/// `ae_percentile`: the fraction of training rows that scored lower, in [0, 1].
pub type AePercentileFunc = AeScalarFunc<Percentile>;

/// What [`AePercentileFunc`] computes: the model's `percentile` of each row's score.
#[derive(Debug)]
pub struct Percentile;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The fraction of the model's training rows whose score was lower than this row's, in [0, 1].",
        "ae_percentile([model,] features...)",
    )
    .with_argument("model", "Model name (string literal), model file (binary), or omitted for the default model.")
    .with_argument("features", "One list column, one struct, or numeric columns in the model's feature order.")
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
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        plan_call(Self::NAME, registry, args.arg_fields, args.scalar_arguments, false)?;
        Ok(DataType::Float64)
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = evaluate(
            Self::NAME,
            registry,
            &args,
            false,
            |m| m.n_features(),
            |model, rows, _| {
                let scores = model.score(rows.view()).map_err(exec(Self::NAME))?;
                Ok(scores.iter().map(|&s| model.percentile(s)).collect())
            },
        )?;
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(values))))
    }
}
