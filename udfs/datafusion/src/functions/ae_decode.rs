//! `ae_decode([model,] embedding)`: rows back from codes, in original units.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, ListArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::common::{DOC_SECTION, identity_by_registry};
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
        "Decodes a code (embedding) back to a row in original units, as a fixed-size list of f32.",
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
        let is_list = matches!(embedding, [DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)]
            if f.data_type().is_floating() || f.data_type().is_integer());
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
        let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<bool>>());
        let array: ArrayRef = match return_type {
            DataType::FixedSizeList(_, width) => {
                let w = width as usize;
                let mut values = Vec::with_capacity(rows.len() * w);
                for row in &rows {
                    match row {
                        Some(r) if r.len() == w => values.extend_from_slice(r),
                        Some(r) => return exec_err!("ae_decode: row of {} values for a {width}-wide result", r.len()),
                        None => values.extend(std::iter::repeat_n(0.0, w)),
                    }
                }
                Arc::new(FixedSizeListArray::try_new(item(), width, Arc::new(Float32Array::from(values)), Some(nulls))?)
            }
            _ => {
                let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.as_ref().map_or(0, Vec::len)));
                let values: Vec<f32> = rows.iter().flatten().flatten().copied().collect();
                Arc::new(ListArray::try_new(item(), offsets, Arc::new(Float32Array::from(values)), Some(nulls))?)
            }
        };
        Ok(ColumnarValue::Array(array))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
