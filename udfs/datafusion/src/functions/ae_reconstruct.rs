//! `ae_reconstruct([model,] features...)`: each row as the model reconstructs it.

use std::sync::LazyLock;

use autoenc::Autoencoder;
use datafusion::logical_expr::Documentation;
use ndarray::{Array2, ArrayView2};

use super::common::{RowToVector, row_function_documentation};
use super::scalar::AeScalarFunc;

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

impl RowToVector for Reconstruct {
    const NAME: &'static str = "ae_reconstruct";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn output_width(model: &Autoencoder) -> usize {
        model.n_features()
    }
    fn compute(model: &Autoencoder, rows: ArrayView2<f32>) -> autoenc::Result<Array2<f32>> {
        model.reconstruct(rows)
    }
}
