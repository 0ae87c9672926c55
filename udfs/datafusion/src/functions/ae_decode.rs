//! `ae_decode([model,] embedding)`: rows back from codes, in original units.

use std::sync::LazyLock;

use arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs};

use super::common::{DOC_SECTION, MODEL_ARGUMENT, vector_type, vectors};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::arguments::{model_source, planned_model};
use crate::registry::ModelRegistry;

/// `ae_decode`: the decoder applied to a code (a list of the model's latent size), giving a row in
/// original units as a fixed-size list of f32.
pub type AeDecodeFunc = AeScalarFunc<Decode>;

/// What [`AeDecodeFunc`] computes: the model's `decode`.
#[derive(Debug)]
pub struct Decode;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Decodes a code (embedding) back to a row in original units, as a fixed-size list of f32. A NULL code, \
         or one whose values are all NULL or NaN, gives NULL like a row with no observed feature; a code with \
         only some values missing is an error, since a code has nothing to impute them from.",
        "ae_decode([model,] embedding)",
    )
    .with_argument("model", MODEL_ARGUMENT)
    .with_argument("embedding", "A list of the model's latent size, e.g. from ae_encode.")
    .with_sql_example("SELECT ae_decode('sensors', ae_encode('sensors', features)) FROM readings;")
    .build()
});

impl AeFunction for Decode {
    const NAME: &'static str = "ae_decode";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn return_type() -> DataType {
        vector_type(None)
    }
    // The input is one code, not features, so the feature conventions (`plan_call`) do not apply.
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
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
        Ok(match planned_model(registry, &source)? {
            Some(model) => {
                if let DataType::FixedSizeList(_, width) = &embedding[0]
                    && *width as usize != model.latent_size()
                {
                    return plan_err!(
                        "ae_decode: wrong dimension: the model's code has {} values, got {width}",
                        model.latent_size()
                    );
                }
                vector_type(Some(model.n_features()))
            }
            None => vector_type(None),
        })
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        vectors(Self::NAME, registry, args, crate::arguments::RowInput::Codes, |model, codes| model.decode(codes))
    }
}
