//! `ae_encode([model,] features...)`: each row's code (embedding).

use std::sync::LazyLock;

use autoenc::Autoencoder;
use datafusion::logical_expr::Documentation;
use ndarray::{Array2, ArrayView2};

use super::common::{RowToVector, row_function_documentation};
use super::scalar::AeScalarFunc;

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

impl RowToVector for Encode {
    const NAME: &'static str = "ae_encode";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn output_width(model: &Autoencoder) -> usize {
        model.latent_size()
    }
    fn compute(model: &Autoencoder, rows: ArrayView2<f32>) -> autoenc::Result<Array2<f32>> {
        model.encode(rows)
    }
}
