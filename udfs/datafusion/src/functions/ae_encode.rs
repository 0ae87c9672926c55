//! `ae_encode([model,] features...)`: each row's code (embedding).

use std::sync::LazyLock;

use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs};

use super::common::{plan_call, row_function_documentation, vector_type, vectors};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::registry::ModelRegistry;

/// `ae_encode`: the code of each row as a fixed-size list of f32 (a variable list when the model is a
/// binary column, whose code size is unknown until execution).
pub type AeEncodeFunc = AeScalarFunc<Encode>;

/// What [`AeEncodeFunc`] computes: the model's `encode`.
#[derive(Debug)]
pub struct Encode;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    row_function_documentation(
        "The row's code (embedding): a fixed-size list of f32 of the model's latent size. For a variational \
         model, the posterior mean.",
        "ae_encode([model,] features...)",
    )
    .with_sql_example("SELECT id, ae_encode('sensors', features) AS embedding FROM readings;")
    .build()
});

impl AeFunction for Encode {
    const NAME: &'static str = "ae_encode";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn return_type() -> DataType {
        vector_type(None)
    }
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        let model = plan_call(Self::NAME, registry, args.arg_fields, args.scalar_arguments, false)?;
        Ok(vector_type(model.map(|m| m.latent_size())))
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        vectors(Self::NAME, registry, args, |m| m.n_features(), |model, rows| model.encode(rows))
    }
}
