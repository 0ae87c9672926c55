//! Training from a frame: the feature columns go to the core as one matrix, read with the same rules
//! as inference ([`crate::features`]) and the CLI's for files (null rows become all-missing rows, one
//! Array/List column names its features `name[j]`).

use autoenc::{Autoencoder, AutoencoderValidParams, EpochRecord};
use polars::prelude::*;

use crate::features::prepare;

/// Fits a model on the `features` columns of `df` (one Array/List column, or numeric columns, or
/// numeric, `String` and `Boolean` columns: `crate::categories`), calling `on_epoch` after every epoch.
pub fn fit_frame(
    df: &DataFrame,
    features: &[&str],
    params: &AutoencoderValidParams,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> PolarsResult<Autoencoder> {
    if features.is_empty() {
        polars_bail!(ComputeError: "train: no features given");
    }
    let columns: Vec<Series> = features
        .iter()
        .map(|&name| Ok(df.column(name)?.as_materialized_series().clone()))
        .collect::<PolarsResult<_>>()?;
    let fields: Vec<Field> = columns.iter().map(|s| s.field().into_owned()).collect();
    if crate::categories::any_categorical(&fields) {
        return crate::categories::fit(&columns, params, on_epoch);
    }
    let prepared = prepare("train", &columns, None)?;
    let matrix = prepared.matrix("train", None)?.with_nan_rows();
    let names: Vec<String> = match columns.as_slice() {
        [one] if !one.dtype().is_primitive_numeric() => {
            (0..matrix.ncols()).map(|j| format!("{}[{j}]", one.name())).collect()
        }
        many => many.iter().map(|s| s.name().to_string()).collect(),
    };
    params.fit_with(matrix.view(), names, on_epoch).map_err(crate::to_polars)
}
