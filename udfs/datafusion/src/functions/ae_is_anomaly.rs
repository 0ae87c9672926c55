//! `ae_is_anomaly([model,] features... [, threshold])`: whether each row's score is above the threshold.

use std::sync::{Arc, LazyLock};

use arrow::array::BooleanArray;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::common::{DOC_SECTION, identity_by_registry, plan_call};
use crate::arguments::{evaluate, exec};
use crate::registry::ModelRegistry;

/// `ae_is_anomaly`: the model's flag, or a comparison with an explicit threshold given as a last literal
/// argument (after a list/struct feature argument, or as one more than the model's feature columns).
#[derive(Debug)]
pub struct AeIsAnomalyFunc {
    signature: Signature,
    registry: Arc<ModelRegistry>,
}
identity_by_registry!(AeIsAnomalyFunc);

impl AeIsAnomalyFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        AeIsAnomalyFunc { signature: Signature::variadic_any(Volatility::Immutable), registry }
    }
}

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

impl ScalarUDFImpl for AeIsAnomalyFunc {
    fn name(&self) -> &str {
        "ae_is_anomaly"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        plan_call(self.name(), &self.registry, args.arg_fields, args.scalar_arguments, true)?;
        Ok(Arc::new(Field::new(self.name(), DataType::Boolean, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let flags = evaluate(
            self.name(),
            &self.registry,
            &args,
            true,
            |m| m.n_features(),
            |model, rows, threshold| {
                let scores = model.score(rows.view()).map_err(exec(self.name()))?;
                Ok(scores.iter().map(|&s| threshold.map_or_else(|| model.is_anomaly(s), |t| s > t)).collect())
            },
        )?;
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(flags))))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
