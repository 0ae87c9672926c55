//! `ae_score([model,] features...)`: the anomaly score of each row.

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

/// `ae_score`: mean squared reconstruction error over the row's observed features, in the model's scaled
/// units — the same number `autoenc score` writes.
#[derive(Debug)]
pub struct AeScoreFunc {
    signature: Signature,
    registry: Arc<ModelRegistry>,
}
identity_by_registry!(AeScoreFunc);

impl AeScoreFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        AeScoreFunc { signature: Signature::variadic_any(Volatility::Immutable), registry }
    }
}

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

impl ScalarUDFImpl for AeScoreFunc {
    fn name(&self) -> &str {
        "ae_score"
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
        let scores = evaluate(
            self.name(),
            &self.registry,
            &args,
            false,
            |m| m.n_features(),
            |model, rows, _| model.score(rows.view()).map(|s| s.to_vec()).map_err(exec(self.name())),
        )?;
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(scores))))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
