//! `ae_reconstruct([model,] features...)`: each row as the model reconstructs it.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::common::{DOC_SECTION, identity_by_registry, plan_call, rows_to_list};
use crate::arguments::{evaluate, exec};
use crate::registry::ModelRegistry;

/// `ae_reconstruct`: the reconstruction of each row in original units, as a fixed-size list of f32 of
/// the model's feature count (a variable list for a binary model column); missing inputs come back
/// filled in.
#[derive(Debug)]
pub struct AeReconstructFunc {
    signature: Signature,
    registry: Arc<ModelRegistry>,
}
identity_by_registry!(AeReconstructFunc);

impl AeReconstructFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        AeReconstructFunc { signature: Signature::variadic_any(Volatility::Immutable), registry }
    }
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The row as the model reconstructs it, in original units (a fixed-size list of f32); missing \
         values come back filled in.",
        "ae_reconstruct([model,] features...)",
    )
    .with_argument("model", "Model name (string literal), model file (binary), or omitted for the default model.")
    .with_argument("features", "One list column, one struct, or numeric columns in the model's feature order.")
    .with_sql_example("SELECT id, ae_reconstruct('sensors', features) AS filled FROM readings;")
    .build()
});

fn item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Float32, false))
}

impl ScalarUDFImpl for AeReconstructFunc {
    fn name(&self) -> &str {
        "ae_reconstruct"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(item()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let model = plan_call(self.name(), &self.registry, args.arg_fields, args.scalar_arguments, false)?;
        let data_type = match model {
            Some(model) => DataType::FixedSizeList(item(), model.n_features() as i32),
            None => DataType::List(item()),
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_type().clone();
        let codes = evaluate(
            self.name(),
            &self.registry,
            &args,
            false,
            |m| m.n_features(),
            |model, rows, _| {
                let code = model.reconstruct(rows.view()).map_err(exec(self.name()))?;
                Ok(code.outer_iter().map(|r| r.to_vec()).collect::<Vec<Vec<f32>>>())
            },
        )?;
        let array = rows_to_list(self.name(), &return_type, &codes)?;
        Ok(ColumnarValue::Array(array))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
