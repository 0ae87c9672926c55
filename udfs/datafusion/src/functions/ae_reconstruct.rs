//! `ae_reconstruct([model,] features...)`: each row as the model reconstructs it.

use std::sync::LazyLock;

use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs};

use super::common::{plan_call, row_function_documentation, vector_type, vectors};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::registry::ModelRegistry;

/// `ae_reconstruct`: the reconstruction of each row in original units, as a fixed-size list of f32 of
/// the model's feature count (a variable list for a binary model column); missing inputs come back
/// filled in.
pub type AeReconstructFunc = AeScalarFunc<Reconstruct>;

/// What [`AeReconstructFunc`] computes: the model's `reconstruct`.
#[derive(Debug)]
pub struct Reconstruct;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    row_function_documentation(
        "The row as the model reconstructs it, in original units (a fixed-size list of f32); missing \
         values come back filled in.",
        "ae_reconstruct([model,] features...)",
    )
    .with_sql_example("SELECT id, ae_reconstruct('sensors', features) AS filled FROM readings;")
    .build()
});

impl AeFunction for Reconstruct {
    const NAME: &'static str = "ae_reconstruct";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn return_type() -> DataType {
        vector_type(None)
    }
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        let model = plan_call(Self::NAME, registry, args.arg_fields, args.scalar_arguments, false)?;
        Ok(vector_type(model.map(|m| m.n_features())))
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        vectors(Self::NAME, registry, args, |m| m.n_features(), |model, rows| model.reconstruct(rows))
    }
}
