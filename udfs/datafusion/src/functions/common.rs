//! What the scalar functions share besides their shape (`scalar.rs`): the documentation section,
//! plan-time argument checks, and the list results of the functions that map a row to a vector.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, ListArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, FieldRef};
use autoenc::Autoencoder;
use autoenc::io::arrow_matrix::{fixed_size_list, float_item};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, DocumentationBuilder, ReturnFieldArgs, ScalarFunctionArgs,
};
use ndarray::{Array2, ArrayView1, ArrayView2};

use super::scalar::AeFunction;
use crate::arguments::{
    ModelSource, RowInput, check_feature_types, evaluate, exec, is_numeric, model_source, planned_model,
};
use crate::registry::ModelRegistry;

pub(crate) const DOC_SECTION: DocSection = DocSection {
    include: true,
    label: "Autoencoder Functions",
    description: Some(
        "Encode, reconstruct, score and flag rows with autoenc models. The first argument is a model name \
         (string literal), a model file (binary, e.g. from ae_train), or absent for the default model; the \
         features follow as one list column, one struct, or several numeric columns. NULL and NaN both mean \
         a missing value: a row with some features missing has them imputed by the model, and a row with none \
         observed (NULL row, or every feature NULL or NaN) gives NULL in every function.",
    ),
};

/// The documentation of a function over rows: its description and syntax, then the `model` and `features`
/// arguments every such function takes. The caller adds its own arguments and its example.
pub(crate) fn row_function_documentation(description: &str, syntax: &str) -> DocumentationBuilder {
    Documentation::builder(DOC_SECTION, description, syntax)
        .with_argument("model", MODEL_ARGUMENT)
        .with_argument("features", "One list column, one struct, or numeric columns in the model's feature order.")
}

/// The `model` argument's documentation, shared by every function that takes one.
pub(crate) const MODEL_ARGUMENT: &str =
    "Model name (string literal), model file (binary), or omitted for the default model.";

/// Per-row values computed from each row's score (`ae_score`, `ae_percentile`, `ae_is_anomaly`): one
/// scoring pass per model, then `of_score(model, score, threshold)` for every row.
pub(crate) fn from_scores<T: Clone>(
    function: &'static str,
    registry: &ModelRegistry,
    args: &ScalarFunctionArgs,
    threshold_allowed: bool,
    of_score: impl Fn(&Autoencoder, f64, Option<f64>) -> T,
) -> Result<Vec<Option<T>>> {
    evaluate(function, registry, args, threshold_allowed, RowInput::Features, |model, rows, threshold| {
        let scores = model.score(rows.view()).map_err(exec(function))?;
        Ok(scores.iter().map(|&score| of_score(model, score, threshold)).collect())
    })
}

/// Checks a call's argument types at planning and resolves the model when it is known then (a named
/// literal or the default). With a known model, the feature count is checked too.
pub(crate) fn plan_call(
    function: &str,
    registry: &ModelRegistry,
    arg_fields: &[FieldRef],
    scalar_arguments: &[Option<&ScalarValue>],
    threshold_allowed: bool,
) -> Result<Option<Arc<Autoencoder>>> {
    let types: Vec<DataType> = arg_fields.iter().map(|f| f.data_type().clone()).collect();
    let (source, first_feature) = model_source(&types, scalar_arguments.first().copied().flatten());
    if let ModelSource::Named(None) = source
        && scalar_arguments.first().copied().flatten().is_none()
    {
        return plan_err!("{function}: the model name must be a string literal");
    }
    let model = planned_model(registry, &source)?;
    let features = &types[first_feature..];
    // Text and booleans are features of a model with categorical features; a model known at planning
    // to be numeric refuses them here, as it always has.
    let categories = model.as_ref().is_none_or(|m| m.has_categories());
    let numeric_columns = check_feature_types(function, features, categories).or_else(|err| {
        // `list, threshold` is the one mixed form, for ae_is_anomaly.
        // Only a list or struct (0 numeric columns) then a number: `column, anything` is no such form.
        if threshold_allowed
            && features.len() == 2
            && matches!(check_feature_types(function, &features[..1], categories), Ok(0))
            && is_numeric(&features[1])
        {
            Ok(0)
        } else {
            Err(err)
        }
    })?;
    if let (Some(model), true) = (&model, numeric_columns > 0) {
        let d = model.n_features();
        let fits = numeric_columns == d || (threshold_allowed && numeric_columns == d + 1);
        if !fits {
            return plan_err!("{function}: wrong dimension: the model expects {d} features, got {numeric_columns}");
        }
    }
    Ok(model)
}

/// Per-row f32 vectors (None = NULL row) as the planned list type: a fixed-size list when the width
/// was known at planning (built by the core's Arrow bridge, as the CLI and the stream build theirs), a
/// variable list otherwise. Shared by ae_encode, ae_decode, ae_reconstruct.
fn rows_to_list(function: &str, return_type: &DataType, rows: &[Option<Vec<f32>>]) -> Result<ArrayRef> {
    let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<bool>>());
    Ok(match return_type {
        DataType::FixedSizeList(_, width) => {
            let w = *width as usize;
            // NULL rows stay zeros under the null buffer.
            let mut matrix = Array2::zeros((rows.len(), w));
            for (row, mut slot) in rows.iter().zip(matrix.outer_iter_mut()) {
                match row {
                    Some(r) if r.len() == w => slot.assign(&ArrayView1::from(r.as_slice())),
                    Some(r) => return exec_err!("{function}: row of {} values for a {width}-wide result", r.len()),
                    None => {}
                }
            }
            Arc::new(fixed_size_list(matrix.view(), Some(nulls)).map_err(exec(function))?)
        }
        _ => {
            let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.as_ref().map_or(0, Vec::len)));
            let values: Vec<f32> = rows.iter().flatten().flatten().copied().collect();
            Arc::new(ListArray::try_new(float_item(), offsets, Arc::new(Float32Array::from(values)), Some(nulls))?)
        }
    })
}

/// The type of a per-row vector result: a fixed-size list of `width` f32 when the model is known at
/// planning, a variable list otherwise (a binary model column, whose width is unknown until execution).
pub(crate) fn vector_type(width: Option<usize>) -> DataType {
    match width {
        Some(width) => DataType::FixedSizeList(float_item(), width as i32),
        None => DataType::List(float_item()),
    }
}

/// One batch of a function that maps each row to a vector with a model method (`encode`, `decode`,
/// `reconstruct`), as the list type planned for it. `input` says what an input row holds for a model
/// (its features, or a code for `ae_decode`).
pub(crate) fn vectors(
    function: &str,
    registry: &ModelRegistry,
    args: ScalarFunctionArgs,
    input: RowInput,
    method: impl Fn(&Autoencoder, ArrayView2<f32>) -> autoenc::Result<Array2<f32>>,
) -> Result<ColumnarValue> {
    let rows = evaluate(function, registry, &args, false, input, |model, rows, _| {
        let out = method(model, rows.view()).map_err(exec(function))?;
        Ok(out.outer_iter().map(|r| r.to_vec()).collect::<Vec<Vec<f32>>>())
    })?;
    let array = rows_to_list(function, args.return_type(), &rows)?;
    Ok(ColumnarValue::Array(array))
}

/// A function that maps each row of features to a vector (`ae_encode`, `ae_reconstruct`): what differs
/// between them is the model method and the width of its result; planning, evaluation and the list
/// result are shared (the `AeFunction` implementation below).
pub(crate) trait RowToVector: std::fmt::Debug + Send + Sync + 'static {
    const NAME: &'static str;
    fn documentation() -> &'static Documentation;
    /// How many values the result of a row holds for `model`.
    fn output_width(model: &Autoencoder) -> usize;
    /// The model method, on a batch of rows.
    fn compute(model: &Autoencoder, rows: ArrayView2<f32>) -> autoenc::Result<Array2<f32>>;
}

// The one planning and evaluation of every `RowToVector` function.
impl<F: RowToVector> AeFunction for F {
    const NAME: &'static str = <F as RowToVector>::NAME;
    fn documentation() -> &'static Documentation {
        <F as RowToVector>::documentation()
    }
    fn return_type() -> DataType {
        vector_type(None)
    }
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        let model = plan_call(Self::NAME, registry, args.arg_fields, args.scalar_arguments, false)?;
        Ok(vector_type(model.map(|m| F::output_width(&m))))
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        vectors(Self::NAME, registry, args, RowInput::Features, F::compute)
    }
}
