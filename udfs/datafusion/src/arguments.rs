//! The argument conventions every `ae_*` scalar function shares.
//!
//! A call is `ae_fn([model,] features... [, threshold])`:
//! - `model` is a string literal naming a registered model, or a binary value/column holding a model
//!   file (e.g. what `ae_train` returns); without it the registry's default model is used. The first
//!   argument's type decides: text is a name, binary is a model, anything else is already a feature.
//! - `features` is one list column (`List`, `LargeList`, `FixedSizeList` of numbers), one struct of
//!   numeric fields, or several numeric columns (any integer, float or decimal type, or a `NULL`
//!   literal), in the model's order. What is numeric, and how columns become the feature matrix, is the
//!   core's Arrow bridge (`autoenc::io::arrow_matrix`), shared with the CLI and the stream; what is left
//!   here is SQL's own: the model argument, NULL results for unobserved rows, grouping rows by model.
//! - NULL and NaN are the same thing in a row: a missing value. A row with no observed value (a null
//!   list or struct, or every value NULL or NaN, in any mix) gives a NULL result in every function and
//!   is skipped by `ae_train`, as SQL aggregates skip NULLs; a row with some observed values has the
//!   others imputed by the model. A wrong dimension is an error naming expected and got.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use autoenc::Autoencoder;
use autoenc::io::arrow_categories::{is_categorical, kinds_matrix};
pub(crate) use autoenc::io::arrow_matrix::is_numeric;
use autoenc::io::arrow_matrix::{
    columns_matrix, holds_no_value, is_list_of_numbers, is_struct_of_numbers, list_matrix, struct_matrix,
};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};
use ndarray::Array2;

use crate::registry::ModelRegistry;

/// What the first argument says about the model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ModelSource {
    /// No model argument: the registry's default.
    Default,
    /// A string naming a registered model (known at planning when it is a literal).
    Named(Option<String>),
    /// Binary model files, one per row or one literal.
    Bytes,
}

fn is_text(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_binary(dt: &DataType) -> bool {
    matches!(dt, DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
}

/// The model argument's kind and the index of the first feature argument.
pub(crate) fn model_source(types: &[DataType], literal_name: Option<&ScalarValue>) -> (ModelSource, usize) {
    match types.first() {
        Some(dt) if is_text(dt) => {
            let name = literal_name.and_then(|v| match v {
                ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
                    Some(s.clone())
                }
                _ => None,
            });
            (ModelSource::Named(name), 1)
        }
        Some(dt) if is_binary(dt) => (ModelSource::Bytes, 1),
        _ => (ModelSource::Default, 0),
    }
}

/// Whether a struct's fields are all features: numbers, or (with `categories`) categorical values.
fn is_struct_of_features(dt: &DataType, categories: bool) -> bool {
    match dt {
        DataType::Struct(fields) if categories && !fields.is_empty() => {
            fields.iter().all(|f| is_numeric(f.data_type()) || is_categorical(f.data_type()))
        }
        _ => is_struct_of_numbers(dt),
    }
}

/// Plan-time checks of the feature arguments' types; returns how many feature columns there are (0
/// for the list and struct forms). With `categories`, text, boolean and dictionary-of-text columns (and
/// struct fields) are features too: the scalar functions code them in the model's vocabularies,
/// `ae_train` learns the vocabularies.
pub(crate) fn check_feature_types(function: &str, types: &[DataType], categories: bool) -> Result<usize> {
    let what = if categories {
        "features must be numeric or categorical (text, boolean) columns, one list of numbers or one struct of such fields"
    } else {
        "features must be numeric columns, one list of numbers or one struct of numeric fields"
    };
    match types {
        [] => plan_err!("{function}: no feature arguments; pass a list column, a struct, or numeric columns"),
        [one] if is_list_of_numbers(one) || is_struct_of_features(one, categories) => Ok(0),
        many => {
            for (i, dt) in many.iter().enumerate() {
                if !(is_numeric(dt) || (categories && is_categorical(dt))) {
                    return plan_err!("{function}: feature argument {} has type {dt}; {what}", i + 1);
                }
            }
            Ok(many.len())
        }
    }
}

/// Resolves the model at planning time when the call allows it (named literal or default).
pub(crate) fn planned_model(registry: &ModelRegistry, source: &ModelSource) -> Result<Option<Arc<Autoencoder>>> {
    let model = match source {
        ModelSource::Default => registry.default_model().map_err(|e| DataFusionError::Plan(e.to_string()))?,
        ModelSource::Named(Some(name)) => registry.get(name).map_err(|e| DataFusionError::Plan(e.to_string()))?,
        _ => return Ok(None),
    };
    Ok(Some(model))
}

/// Feature rows of a batch: the matrix (NaN for missing values) and which rows are NULL as a whole.
pub(crate) struct Features {
    pub matrix: Array2<f32>,
    pub valid: Vec<bool>,
}

/// Builds the feature matrix for `expected` features from the evaluated feature arguments (`names`
/// are theirs, for errors; `argument N` where none is given), through the core's Arrow bridge. Rows with no observed value are marked not
/// valid whatever their form: the core cannot impute a row from nothing (its `AllMissing` error), and
/// failing a whole query for one such row while a NULL row gives NULL would make NaN and NULL mean
/// different things.
pub(crate) fn features(function: &str, names: &[String], arrays: &[ArrayRef], expected: usize) -> Result<Features> {
    let matrix = feature_rows(function, names, arrays, expected)?;
    // A NULL list or struct row is a row of NaN in the bridge's matrix, so this covers it too.
    let valid = matrix.outer_iter().map(|row| row.iter().any(|v| !v.is_nan())).collect();
    Ok(Features { matrix, valid })
}

/// [`features`] for `model`'s features: a model with categorical features takes their values as text
/// (or booleans), in columns or struct fields, coded in its vocabularies; a numeric model takes numbers.
pub(crate) fn model_features(
    function: &str,
    names: &[String],
    arrays: &[ArrayRef],
    model: &Autoencoder,
) -> Result<Features> {
    let in_function = |e: autoenc::AutoencError| DataFusionError::Execution(format!("{function}: {e}"));
    let expected = model.n_features();
    let categorical_argument = |dt: &DataType| {
        is_categorical(dt)
            || matches!(dt, DataType::Struct(fields) if fields.iter().any(|f| is_categorical(f.data_type())))
    };
    if !model.has_categories() {
        if let Some(i) = arrays.iter().position(|a| categorical_argument(a.data_type())) {
            return exec_err!(
                "{function}: feature argument {} is {}, but this model's features are all numeric",
                i + 1,
                arrays[i].data_type()
            );
        }
        return features(function, names, arrays, expected);
    }
    let (columns, column_names, nulls): (Vec<ArrayRef>, Vec<String>, Option<arrow::buffer::NullBuffer>) = match arrays {
        [one] if matches!(one.data_type(), DataType::Struct(_)) => {
            let fields = one.as_struct();
            let prefix = names.first().map_or("features", String::as_str);
            let named = fields.fields().iter().map(|f| format!("{prefix}.{}", f.name())).collect();
            (fields.columns().to_vec(), named, one.logical_nulls())
        }
        [one] if is_list_of_numbers(one.data_type()) => {
            return exec_err!(
                "{function}: this model has categorical features, which a list of numbers cannot hold; pass \
                     its features as columns or a struct"
            );
        }
        many => {
            let named = (0..many.len()).map(|j| names.get(j).cloned().unwrap_or_else(|| format!("argument {}", j + 1)));
            (many.to_vec(), named.collect(), None)
        }
    };
    if columns.len() != expected {
        return exec_err!("{function}: wrong dimension: expected {expected} features, got {}", columns.len());
    }
    let named: Vec<(&str, &ArrayRef)> = column_names.iter().map(String::as_str).zip(&columns).collect();
    let (matrix, _) = kinds_matrix(&named, model.feature_kinds()).map_err(in_function)?;
    // A NULL struct row is NULL as a whole; otherwise a row always holds its categories (NULL is one).
    let valid = (0..matrix.nrows()).map(|i| nulls.as_ref().is_none_or(|n| n.is_valid(i))).collect();
    Ok(Features { matrix, valid })
}

fn feature_rows(function: &str, names: &[String], arrays: &[ArrayRef], expected: usize) -> Result<Array2<f32>> {
    let rows = arrays.first().map_or(0, |a| a.len());
    // DataFusion hands over arguments of one length; a mismatch would be a bug here, not bad data.
    if arrays.iter().any(|a| a.len() != rows) {
        return internal_err!("{function}: feature arguments of different lengths");
    }
    let in_function = |e: autoenc::AutoencError| DataFusionError::Execution(format!("{function}: {e}"));
    // The bridge builds no matrix from NULL alone (its row count would rest on no buffer); here the
    // engine gives the row count, and every such row is simply unobserved, so NULL.
    let unobserved = || Array2::from_elem((rows, expected), f32::NAN);
    match arrays {
        [one] if is_list_of_numbers(one.data_type()) => {
            if holds_no_value(one.data_type()) {
                return Ok(unobserved());
            }
            list_matrix(one, "features", Some(expected)).map_err(in_function)
        }
        [one] if is_struct_of_numbers(one.data_type()) => {
            let fields = one.as_struct().num_columns();
            if fields != expected {
                return exec_err!("{function}: wrong dimension: expected {expected} features, got {fields}");
            }
            if holds_no_value(one.data_type()) {
                return Ok(unobserved());
            }
            struct_matrix(one, names.first().map_or("features", String::as_str)).map_err(in_function)
        }
        many => {
            if many.len() != expected {
                return exec_err!("{function}: wrong dimension: expected {expected} features, got {}", many.len());
            }
            if many.iter().all(|a| holds_no_value(a.data_type())) {
                return Ok(unobserved());
            }
            let names: Vec<String> = (0..many.len())
                .map(|j| names.get(j).cloned().unwrap_or_else(|| format!("argument {}", j + 1)))
                .collect();
            let named: Vec<(&str, &ArrayRef)> = names.iter().map(String::as_str).zip(many).collect();
            columns_matrix(&named).map_err(in_function)
        }
    }
}

/// The value of an argument that planning checked to be a literal (a model name, a threshold, `k`).
/// DataFusion passes a literal as a scalar; a host calling through datafusion-ffi (Python DataFusion)
/// passes every argument as an array of `number_rows` copies, and the literal is then that array's one
/// repeated value. `None` for an empty array, and for one whose values differ (a column).
pub(crate) fn literal_argument(value: &ColumnarValue) -> Result<Option<ScalarValue>> {
    let array = match value {
        ColumnarValue::Scalar(scalar) => return Ok(Some(scalar.clone())),
        ColumnarValue::Array(array) => array,
    };
    if array.is_empty() {
        return Ok(None);
    }
    let first = array.slice(0, 1);
    let repeated = match array.null_count() {
        0 => arrow::compute::kernels::cmp::not_distinct(array, &arrow::array::Scalar::new(&first))?.true_count(),
        nulls => nulls,
    };
    if repeated != array.len() {
        return Ok(None);
    }
    Ok(Some(ScalarValue::try_from_array(&first, 0)?))
}

/// What an input row holds for a model: its features, or a code to decode (`ae_decode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowInput {
    Features,
    Codes,
}

impl RowInput {
    /// How many values a row holds for `model`.
    pub(crate) fn width(self, model: &Autoencoder) -> usize {
        match self {
            RowInput::Features => model.n_features(),
            RowInput::Codes => model.latent_size(),
        }
    }
}

/// Runs `compute` for every non-NULL row, grouping rows by model, and returns one result per row
/// (`None` for NULL rows). `input` says what a row holds for a model (its features, or a code for
/// `ae_decode`). `threshold_allowed` lets a trailing numeric literal be a threshold when the
/// feature count is one more than the model's.
pub(crate) fn evaluate<T: Clone>(
    function: &str,
    registry: &ModelRegistry,
    args: &ScalarFunctionArgs,
    threshold_allowed: bool,
    input: RowInput,
    compute: impl Fn(&Autoencoder, &Array2<f32>, Option<f64>) -> Result<Vec<T>>,
) -> Result<Vec<Option<T>>> {
    let rows = args.number_rows;
    if rows == 0 {
        return Ok(Vec::new());
    }
    let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
    let (source, first_feature) = model_source(&types, None);
    let names: Vec<String> = args.arg_fields.iter().map(|f| f.name().clone()).collect();
    // Every argument as `rows` values: `values_to_arrays` would make one-value arrays when all the
    // arguments are literals, whatever `number_rows` says, and the loops below index up to `rows`.
    let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<_>>()?;
    if arrays.iter().any(|a| a.len() != rows) {
        return internal_err!("{function}: arguments of {rows} rows expected");
    }
    // Group rows by model: one group for a name or the default; one per distinct model file otherwise.
    let groups: Vec<(Arc<Autoencoder>, Vec<usize>)> = match source {
        ModelSource::Default => vec![(
            registry.default_model().map_err(|e| DataFusionError::Execution(e.to_string()))?,
            (0..rows).collect(),
        )],
        ModelSource::Named(_) => {
            let Some(value) = literal_argument(&args.args[0])? else {
                return exec_err!("{function}: the model name must be a literal");
            };
            let name = match &value {
                ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s,
                _ => return exec_err!("{function}: the model name is NULL"),
            };
            vec![(registry.get(name).map_err(|e| DataFusionError::Execution(e.to_string()))?, (0..rows).collect())]
        }
        ModelSource::Bytes => {
            let column = cast(&arrays[0], &DataType::LargeBinary)?;
            let column = column.as_binary::<i64>();
            let mut by_bytes: HashMap<&[u8], Vec<usize>> = HashMap::new();
            for i in 0..rows {
                if column.is_valid(i) {
                    by_bytes.entry(column.value(i)).or_default().push(i);
                }
            }
            let mut groups = Vec::with_capacity(by_bytes.len());
            for (bytes, members) in by_bytes {
                let model = Autoencoder::from_bytes(bytes)
                    .map_err(|e| DataFusionError::Execution(format!("{function}: {e}")))?;
                groups.push((Arc::new(model), members));
            }
            groups
        }
    };

    let mut out: Vec<Option<T>> = vec![None; rows];
    for (model, members) in groups {
        let mut feature_arrays: Vec<ArrayRef> = arrays[first_feature..].to_vec();
        let mut threshold = None;
        let expected = input.width(&model);
        let numeric_columns =
            feature_arrays.len() > 1 || feature_arrays.first().is_some_and(|a| is_numeric(a.data_type()));
        let whole_row = |dt: &DataType| is_list_of_numbers(dt) || matches!(dt, DataType::Struct(_));
        let list_then_threshold = feature_arrays.len() == 2 && whole_row(feature_arrays[0].data_type());
        if threshold_allowed && ((numeric_columns && feature_arrays.len() == expected + 1) || list_then_threshold) {
            let Some(value) = args.args.last().map(literal_argument).transpose()?.flatten() else {
                return exec_err!("{function}: the threshold must be a literal");
            };
            threshold = Some(match value.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(t)) if t.is_finite() => t,
                other => return exec_err!("{function}: the threshold must be a finite number, got {other}"),
            });
            feature_arrays.pop();
        }
        let features = match input == RowInput::Features {
            true => model_features(function, &names[first_feature..], &feature_arrays, &model)?,
            false => features(function, &names[first_feature..], &feature_arrays, expected)?,
        };
        let wanted: Vec<usize> = members.into_iter().filter(|&i| features.valid[i]).collect();
        if wanted.is_empty() {
            continue;
        }
        // The common case is every row: score the matrix as built rather than copying it.
        let results = if wanted.len() == features.matrix.nrows() {
            compute(&model, &features.matrix, threshold)?
        } else {
            compute(&model, &features.matrix.select(ndarray::Axis(0), &wanted), threshold)?
        };
        for (i, value) in wanted.into_iter().zip(results) {
            out[i] = Some(value);
        }
    }
    Ok(out)
}

/// Turns a core error into an execution error naming the function.
pub(crate) fn exec(function: &str) -> impl Fn(autoenc::AutoencError) -> DataFusionError + '_ {
    move |e| DataFusionError::Execution(format!("{function}: {e}"))
}

#[cfg(test)]
mod literal_tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn a_literal_is_read_from_a_scalar_or_from_an_array_repeating_it() {
        let name = ScalarValue::Utf8(Some("sensors".into()));
        assert_eq!(literal_argument(&ColumnarValue::Scalar(name.clone())).unwrap(), Some(name.clone()));
        let repeated = ColumnarValue::Array(Arc::new(StringArray::from(vec!["sensors"; 5])));
        assert_eq!(literal_argument(&repeated).unwrap(), Some(name));
        let nulls = ColumnarValue::Array(Arc::new(Int64Array::from(vec![None, None])));
        assert_eq!(literal_argument(&nulls).unwrap(), Some(ScalarValue::Int64(None)));
    }

    #[test]
    fn a_column_of_different_values_or_no_rows_is_not_a_literal() {
        let column = ColumnarValue::Array(Arc::new(StringArray::from(vec!["a", "a", "b"])));
        assert_eq!(literal_argument(&column).unwrap(), None);
        let partly_null = ColumnarValue::Array(Arc::new(Int64Array::from(vec![Some(3), None])));
        assert_eq!(literal_argument(&partly_null).unwrap(), None);
        let empty = ColumnarValue::Array(Arc::new(Int64Array::from(Vec::<i64>::new())));
        assert_eq!(literal_argument(&empty).unwrap(), None);
    }
}
