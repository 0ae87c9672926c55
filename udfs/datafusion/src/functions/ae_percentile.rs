//! `ae_percentile([model,] features...)`: where each row's score falls among the training scores.

use std::sync::{Arc, LazyLock};

use arrow::array::Float64Array;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::common::{DOC_SECTION, identity_by_registry, plan_call};
use crate::arguments::{evaluate, exec};
use crate::registry::ModelRegistry;

/// `ae_percentile`: the fraction of training rows that scored lower, in [0, 1].
#[derive(Debug)]
pub struct AePercentileFunc {
    signature: Signature,
    registry: Arc<ModelRegistry>,
}
identity_by_registry!(AePercentileFunc);

impl AePercentileFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        AePercentileFunc { signature: Signature::variadic_any(Volatility::Immutable), registry }
    }
}

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

impl ScalarUDFImpl for AePercentileFunc {
    fn name(&self) -> &str {
        "ae_percentile"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        plan_call(self.name(), &self.registry, args.arg_fields, args.scalar_arguments, false)?;
        Ok(Arc::new(Field::new(self.name(), DataType::Float64, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = evaluate(
            self.name(),
            &self.registry,
            &args,
            false,
            |m| m.n_features(),
            |model, rows, _| {
                let scores = model.score(rows.view()).map_err(exec(self.name()))?;
                Ok(scores.iter().map(|&s| model.percentile(s)).collect())
            },
        )?;
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(values))))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
