//! Models with categorical features in a frame: `String` and `Boolean` columns are categorical
//! features, numeric columns numbers, one column per feature in the model's order.
//!
//! The rules are the core's (docs/model.md, "Categorical features"), as in the SQL door and the CLI:
//! a value is coded in the model's vocabulary (`Vocabulary::code`: a value never seen is "other",
//! null is a category of its own), so a row always has something observed and is never null as a
//! whole; booleans are the texts `true` and `false`; at training each categorical column's vocabulary
//! is learned by `Vocabulary::fit_text` (a `String` column) or `Vocabulary::fit` (a `Boolean` one). A
//! number where a category belongs, or text where a number does, is an error naming the column.
//! Polars `Categorical` and `Enum` columns are categorical features too with this crate's `categorical`
//! feature, which the Python wheel turns on; without it, cast them to `String` first.

use autoenc::{Autoencoder, AutoencoderValidParams, EpochRecord, FeatureKind, Vocabulary};
use ndarray::Array2;
use polars::prelude::*;

use crate::features::is_numeric;

/// Whether a column of this dtype is a categorical feature: `String`, `Boolean`, and with this
/// crate's `categorical` feature (on in the Python wheel) `Categorical` and `Enum`.
pub fn is_categorical(dtype: &DataType) -> bool {
    match dtype {
        DataType::String | DataType::Boolean => true,
        #[cfg(feature = "categorical")]
        DataType::Categorical(..) | DataType::Enum(..) => true,
        _ => false,
    }
}

/// Whether any input is a categorical column: training then learns vocabularies.
pub fn any_categorical(fields: &[Field]) -> bool {
    fields.iter().any(|f| is_categorical(f.dtype()))
}

/// Planning checks for a model with categorical features: one column per feature, of its kind.
pub fn check_fields(function: &str, fields: &[Field], model: &Autoencoder) -> PolarsResult<()> {
    let kinds = model.feature_kinds();
    if fields.len() != kinds.len() {
        polars_bail!(
            ComputeError: "{function}: wrong dimension: expected {} feature columns, got {} (a model with categorical \
            features takes one column per feature)",
            kinds.len(),
            fields.len()
        );
    }
    for (field, kind) in fields.iter().zip(kinds) {
        check_kind(function, field.name(), field.dtype(), kind)?;
    }
    Ok(())
}

fn check_kind(function: &str, name: &str, dtype: &DataType, kind: &FeatureKind) -> PolarsResult<()> {
    match kind {
        FeatureKind::Categorical { .. } if !is_categorical(dtype) => polars_bail!(
            ComputeError: "{function}: column '{name}' is {dtype}, but its feature is categorical: it takes String, \
            Boolean, Categorical or Enum values"
        ),
        FeatureKind::Numeric if !is_numeric(dtype) => polars_bail!(
            ComputeError: "{function}: column '{name}' is {dtype}, but its feature is numeric"
        ),
        _ => Ok(()),
    }
}

/// A categorical column's values as text, null for null.
fn texts(series: &Series) -> PolarsResult<StringChunked> {
    Ok(series.cast(&DataType::String)?.str()?.clone())
}

/// A numeric column's values, NaN for null.
fn numbers(series: &Series) -> PolarsResult<Vec<f32>> {
    let values = series.cast(&DataType::Float32)?;
    Ok(values.f32()?.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
}

/// The model's feature matrix of `inputs`: numbers, and codes in the model's vocabularies.
pub fn matrix(function: &str, inputs: &[Series], model: &Autoencoder) -> PolarsResult<Array2<f32>> {
    let fields: Vec<Field> = inputs.iter().map(|s| s.field().into_owned()).collect();
    check_fields(function, &fields, model)?;
    let rows = inputs.first().map_or(0, |s| s.len());
    if inputs.iter().any(|s| s.len() != rows) {
        polars_bail!(ComputeError: "{function}: feature columns have different lengths");
    }
    coded(inputs, model.feature_kinds())
}

/// Columns of the kinds `kinds` as one matrix: numbers (NaN for null), and codes in the vocabularies.
fn coded(columns: &[Series], kinds: &[FeatureKind]) -> PolarsResult<Array2<f32>> {
    let rows = columns.first().map_or(0, |s| s.len());
    let mut matrix = Array2::from_elem((rows, columns.len()), f32::NAN);
    for (j, (series, kind)) in columns.iter().zip(kinds).enumerate() {
        let column = matrix.column_mut(j);
        match kind.vocabulary() {
            Some(vocabulary) => {
                let values = texts(series)?;
                column.into_iter().zip(values.iter()).for_each(|(slot, value)| *slot = vocabulary.code(value) as f32);
            }
            None => column.into_iter().zip(numbers(series)?).for_each(|(slot, value)| *slot = value),
        }
    }
    Ok(matrix)
}

/// Fits a model on `columns` (numeric, `String` and `Boolean`), learning each categorical column's
/// vocabulary first.
pub fn fit(
    columns: &[Series],
    params: &AutoencoderValidParams,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> PolarsResult<Autoencoder> {
    let mut kinds = Vec::with_capacity(columns.len());
    for series in columns {
        let name = series.name().as_str();
        kinds.push(match series.dtype() {
            DataType::String => {
                let values: Vec<Option<&str>> = series.str()?.iter().collect();
                let dtype = series.dtype().to_string();
                let vocabulary = Vocabulary::fit_text(name, &dtype, values.iter().copied(), params.max_categories());
                FeatureKind::Categorical { vocabulary: vocabulary.map_err(crate::to_polars)? }
            }
            // Booleans, and Polars' own categories (whose values are text chosen as categories).
            dtype if is_categorical(dtype) => {
                let values = texts(series)?;
                let vocabulary = Vocabulary::fit(name, values.iter(), params.max_categories());
                FeatureKind::Categorical { vocabulary: vocabulary.map_err(crate::to_polars)? }
            }
            dtype if is_numeric(dtype) => FeatureKind::Numeric,
            dtype => polars_bail!(
                ComputeError: "train: column '{name}' has type {dtype}; features must be numeric, String or Boolean"
            ),
        });
    }
    let names: Vec<String> = columns.iter().map(|s| s.name().to_string()).collect();
    let matrix = coded(columns, &kinds)?;
    params.fit_with_kinds(matrix.view(), names, kinds, on_epoch).map_err(crate::to_polars)
}
