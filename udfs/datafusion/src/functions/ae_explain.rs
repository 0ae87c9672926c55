//! `ae_explain([model,] features..., k)`: the k features that contribute most to each row's score.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Float64Array, ListArray, StringArray, StructArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use autoenc::Contribution;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs};

use super::common::{plan_call, row_function_documentation};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::arguments::{evaluate, exec, literal_argument};
use crate::registry::ModelRegistry;

/// `ae_explain`: a list of `{feature, error, got, expected, probability}` for the k features with the
/// largest reconstruction error (scaled units), largest first; missing features are never listed.
pub type AeExplainFunc = AeScalarFunc<Explain>;

/// What [`AeExplainFunc`] computes: the model's `explain`, with `k` from the last argument.
#[derive(Debug)]
pub struct Explain;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    row_function_documentation(
        "The k features with the largest reconstruction error in the row, largest first, as a list of \
         {feature, error, got, expected, probability} (squared error in the model's scaled units; for a \
         categorical feature its scaled cross-entropy, the value seen, the most likely value and its \
         probability, which are NULL for a numeric feature).",
        "ae_explain([model,] features..., k)",
    )
    .with_argument("k", "How many features to list (a positive integer literal).")
    .with_sql_example(
        "SELECT id, ae_explain('sensors', features, 2) FROM readings WHERE ae_is_anomaly('sensors', features);",
    )
    .build()
});

/// `{feature, error, got, expected, probability}`: the last three only for a categorical feature (the
/// value seen, the most likely value, and the model's probability of it), NULL for a numeric one.
fn entry_fields() -> Fields {
    Fields::from(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("error", DataType::Float64, false),
        Field::new("got", DataType::Utf8, true),
        Field::new("expected", DataType::Utf8, true),
        Field::new("probability", DataType::Float64, true),
    ])
}

fn item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Struct(entry_fields()), false))
}

/// `k` from the last argument: a positive integer literal.
fn k_of(value: Option<&ScalarValue>) -> Option<usize> {
    match value?.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(Some(k)) if k > 0 => usize::try_from(k).ok(),
        _ => None,
    }
}

impl AeFunction for Explain {
    const NAME: &'static str = "ae_explain";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn return_type() -> DataType {
        DataType::List(item())
    }
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        let n = args.arg_fields.len();
        if n < 2 || !args.arg_fields[n - 1].data_type().is_integer() {
            return plan_err!("ae_explain: the last argument must be k, a positive integer literal");
        }
        if k_of(args.scalar_arguments[n - 1]).is_none() {
            return plan_err!("ae_explain: k must be a positive integer literal");
        }
        plan_call(Self::NAME, registry, &args.arg_fields[..n - 1], &args.scalar_arguments[..n - 1], false)?;
        Ok(DataType::List(item()))
    }
    fn invoke(registry: &ModelRegistry, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let k = match args.args.pop() {
            Some(value) => k_of(literal_argument(&value)?.as_ref()),
            None => None,
        };
        // An empty batch carries no value of k to read (through datafusion-ffi every argument is an array).
        let Some(k) = k.or((args.number_rows == 0).then_some(1)) else {
            return exec_err!("ae_explain: k must be a positive integer literal");
        };
        args.arg_fields.pop();
        let lists: Vec<Option<Vec<Contribution>>> =
            evaluate(Self::NAME, registry, &args, false, crate::arguments::RowInput::Features, |model, rows, _| {
                model.explain(rows.view(), k).map_err(exec(Self::NAME))
            })?;
        let lengths = lists.iter().map(|l| l.as_ref().map_or(0, Vec::len));
        let offsets = OffsetBuffer::from_lengths(lengths);
        let entries: Vec<&Contribution> = lists.iter().flatten().flatten().collect();
        let names: StringArray = entries.iter().map(|c| Some(c.feature.as_str())).collect();
        let errors: Float64Array = entries.iter().map(|c| Some(c.error)).collect();
        let got: StringArray = entries.iter().map(|c| c.category.as_ref().map(|m| m.got.as_str())).collect();
        let expected: StringArray = entries.iter().map(|c| c.category.as_ref().map(|m| m.expected.as_str())).collect();
        let probability: Float64Array = entries.iter().map(|c| c.category.as_ref().map(|m| m.probability)).collect();
        let columns: Vec<ArrayRef> =
            vec![Arc::new(names), Arc::new(errors), Arc::new(got), Arc::new(expected), Arc::new(probability)];
        let values = StructArray::try_new(entry_fields(), columns, None)?;
        let nulls = NullBuffer::from(lists.iter().map(Option::is_some).collect::<Vec<bool>>());
        Ok(ColumnarValue::Array(Arc::new(ListArray::try_new(item(), offsets, Arc::new(values), Some(nulls))?)))
    }
}
