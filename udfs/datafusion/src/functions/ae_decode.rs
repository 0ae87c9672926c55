//! `ae_decode([model,] embedding)`: rows back from codes, in original units.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::common::{DOC_SECTION, identity_by_registry, rows_to_list};
use crate::arguments::{evaluate, exec, model_source, planned_model};
use crate::registry::ModelRegistry;

/// `ae_decode`: the decoder applied to a code (a list of the model's latent size), giving a row in
/// original units as a fixed-size list of f32.
#[derive(Debug)]
pub struct AeDecodeFunc {
    signature: Signature,
    registry: Arc<ModelRegistry>,
}
identity_by_registry!(AeDecodeFunc);

impl AeDecodeFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        AeDecodeFunc { signature: Signature::variadic_any(Volatility::Immutable), registry }
    }
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Decodes a code (embedding) back to a row in original units, as a fixed-size list of f32. A NULL code, \
         or one whose values are all NULL or NaN, gives NULL like a row with no observed feature; a code with \
         only some values missing is an error, since a code has nothing to impute them from.",
        "ae_decode([model,] embedding)",
    )
    .with_argument("model", "Model name (string literal), model file (binary), or omitted for the default model.")
    .with_argument("embedding", "A list of the model's latent size, e.g. from ae_encode.")
    .with_sql_example("SELECT ae_decode('sensors', ae_encode('sensors', features)) FROM readings;")
    .build()
});

fn item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Float32, false))
}

impl ScalarUDFImpl for AeDecodeFunc {
    fn name(&self) -> &str {
        "ae_decode"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(item()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let (source, first) = model_source(&types, args.scalar_arguments.first().copied().flatten());
        let embedding = &types[first..];
        // A zero-width list is no code (and arrow repeats a zero-width literal to no rows at all).
        let is_list = matches!(embedding, [DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)]
            if f.data_type().is_floating() || f.data_type().is_integer())
            && !matches!(embedding, [DataType::FixedSizeList(_, 0)]);
        if !is_list {
            return plan_err!("ae_decode: expected one embedding argument, a list of numbers (e.g. from ae_encode)");
        }
        let data_type = match planned_model(&self.registry, &source)? {
            Some(model) => {
                if let DataType::FixedSizeList(_, width) = &embedding[0]
                    && *width as usize != model.latent_size()
                {
                    return plan_err!(
                        "ae_decode: wrong dimension: the model's code has {} values, got {width}",
                        model.latent_size()
                    );
                }
                DataType::FixedSizeList(item(), model.n_features() as i32)
            }
            None => DataType::List(item()),
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_type().clone();
        let rows = evaluate(
            self.name(),
            &self.registry,
            &args,
            false,
            |m| m.latent_size(),
            |model, codes, _| {
                let decoded = model.decode(codes.view()).map_err(exec(self.name()))?;
                Ok(decoded.outer_iter().map(|r| r.to_vec()).collect::<Vec<Vec<f32>>>())
            },
        )?;
        let array = rows_to_list(self.name(), &return_type, &rows)?;
        Ok(ColumnarValue::Array(array))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
