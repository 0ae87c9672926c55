//! `ae_encode([model,] features...)`: each row's code (embedding).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::common::{DOC_SECTION, identity_by_registry, plan_call, rows_to_list};
use crate::arguments::{evaluate, exec};
use crate::registry::ModelRegistry;

/// `ae_encode`: the code of each row as a fixed-size list of f32 (a variable list when the model is a
/// binary column, whose code size is unknown until execution).
#[derive(Debug)]
pub struct AeEncodeFunc {
    signature: Signature,
    registry: Arc<ModelRegistry>,
}
identity_by_registry!(AeEncodeFunc);

impl AeEncodeFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        AeEncodeFunc { signature: Signature::variadic_any(Volatility::Immutable), registry }
    }
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The row's code (embedding): a fixed-size list of f32 of the model's latent size. For a variational \
         model, the posterior mean.",
        "ae_encode([model,] features...)",
    )
    .with_argument("model", "Model name (string literal), model file (binary), or omitted for the default model.")
    .with_argument("features", "One list column, one struct, or numeric columns in the model's feature order.")
    .with_sql_example("SELECT id, ae_encode('sensors', features) AS embedding FROM readings;")
    .build()
});

fn item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Float32, false))
}

impl ScalarUDFImpl for AeEncodeFunc {
    fn name(&self) -> &str {
        "ae_encode"
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
            Some(model) => DataType::FixedSizeList(item(), model.latent_size() as i32),
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
                let code = model.encode(rows.view()).map_err(exec(self.name()))?;
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
