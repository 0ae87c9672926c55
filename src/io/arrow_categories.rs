//! The Arrow bridge for categorical features: text, boolean and dictionary columns to codes in a
//! feature's [`Vocabulary`], which is learned from the columns at fit. Every door that reads Arrow (the
//! CLI's tables, the SQL functions, the stream's record batches) codes a column here, so one value gets
//! one code whichever door it comes through.
//!
//! The rules, decided once:
//! - **Categorical** ([`is_categorical`]) means `Utf8`, `LargeUtf8`, `Utf8View`, `Boolean`, and a
//!   dictionary of text. A boolean's values are the texts `"true"` and `"false"`. Text is taken as it is:
//!   no trimming, no case folding, and the empty string is a value like any other.
//! - NULL is a category of its own (its own code), never a missing value to impute.
//! - A value outside the vocabulary gets the "other" code and is counted ([`CodedColumn::unknown`]), so
//!   a door can report how many values it had never seen.
//! - **Date and time columns** ([`is_time`]) are not features: named as one, they are refused with a
//!   message naming the column and what to do instead ([`AutoencError::TimeColumn`]).

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use ndarray::Array2;

use crate::error::{AutoencError, Result};
use crate::io::arrow_matrix::{columns_matrix, holds_no_value};
use crate::model::features::{CategoryCounts, FeatureKind, Vocabulary};

/// Whether a column of this type is a categorical feature (see the module documentation).
pub fn is_categorical(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => true,
        DataType::Dictionary(_, values) => {
            matches!(values.as_ref(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        }
        _ => false,
    }
}

/// Whether a column of this type holds dates, times or durations, which are not features.
pub fn is_time(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(..)
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Duration(_)
            | DataType::Interval(_)
    )
}

/// The error for a time column named as a feature: every Arrow conversion of a feature column
/// (numeric in `arrow_matrix`, categorical here) gives it.
pub fn time_column_error(name: &str, dt: &DataType) -> AutoencError {
    AutoencError::TimeColumn { name: name.to_string(), dtype: dt.to_string() }
}

/// A categorical column's values as text (`None` for NULL).
fn texts(column: &ArrayRef, name: &str) -> Result<StringArray> {
    if is_time(column.data_type()) {
        return Err(time_column_error(name, column.data_type()));
    }
    if !is_categorical(column.data_type()) {
        return Err(AutoencError::NotCategorical { name: name.to_string(), dtype: column.data_type().to_string() });
    }
    Ok(cast(column, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// Adds a categorical column's values to the counts its vocabulary is learned from.
pub fn count_values(counts: &mut CategoryCounts, column: &ArrayRef, name: &str) -> Result<()> {
    let text = texts(column, name)?;
    counts.add(name, text.iter())
}

/// The vocabulary of one categorical column, learned from its values (see [`Vocabulary::fit`]). A
/// text column of numbers with a few stray words is refused, naming the first word's row.
pub fn fit_vocabulary(column: &ArrayRef, name: &str, max_categories: usize) -> Result<Vocabulary> {
    let text = texts(column, name)?;
    if matches!(column.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        return Vocabulary::fit_text(name, &column.data_type().to_string(), text.iter(), max_categories);
    }
    Vocabulary::fit(name, text.iter(), max_categories)
}

/// A categorical column as codes.
#[derive(Debug, Clone, PartialEq)]
pub struct CodedColumn {
    /// Each row's code, as the `f32` the feature matrix holds.
    pub codes: Vec<f32>,
    /// Rows whose value is outside the vocabulary (coded as other); NULLs are not counted.
    pub unknown: u64,
}

/// Codes a categorical column in `vocabulary`.
pub fn code_column(column: &ArrayRef, name: &str, vocabulary: &Vocabulary) -> Result<CodedColumn> {
    let text = texts(column, name)?;
    let mut unknown = 0;
    let codes = text
        .iter()
        .map(|value| {
            let code = vocabulary.code(value);
            unknown += u64::from(value.is_some() && code == vocabulary.other_code());
            code as f32
        })
        .collect();
    Ok(CodedColumn { codes, unknown })
}

/// Named columns of one length as a model's feature matrix: numeric ones as numbers (the rules of
/// [`crate::io::arrow_matrix`]), categorical ones as codes in their vocabularies. Also gives, per
/// feature, how many values were outside its vocabulary (0 for a numeric feature). At least one
/// column must be categorical; for numeric ones alone use [`columns_matrix`].
pub fn kinds_matrix(columns: &[(&str, &ArrayRef)], kinds: &[FeatureKind]) -> Result<(Array2<f32>, Vec<u64>)> {
    if columns.len() != kinds.len() {
        return Err(AutoencError::DimensionMismatch { expected: kinds.len(), got: columns.len() });
    }
    // The row count comes from a categorical column, whose buffers hold its rows: a numeric column of
    // type Null has none to bound the length it declares.
    let Some(&(_, counted)) = columns.iter().zip(kinds).find(|(_, k)| k.vocabulary().is_some()).map(|(c, _)| c) else {
        return Err(AutoencError::InvalidInput("no categorical feature among the columns".into()));
    };
    let rows = counted.len();
    if let Some((name, column)) = columns.iter().find(|(_, c)| c.len() != rows) {
        return Err(AutoencError::InvalidInput(format!(
            "feature column '{name}' has {} rows where the others have {rows}",
            column.len()
        )));
    }
    let numeric: Vec<(&str, &ArrayRef)> = columns
        .iter()
        .zip(kinds)
        .filter(|((_, c), k)| k.vocabulary().is_none() && !holds_no_value(c.data_type()))
        .map(|(c, _)| *c)
        .collect();
    let numbers = if numeric.is_empty() { None } else { Some(columns_matrix(&numeric)?) };
    let mut matrix = Array2::from_elem((rows, columns.len()), f32::NAN);
    let mut unknown = vec![0; columns.len()];
    let mut next_numeric = 0;
    for (j, ((name, column), kind)) in columns.iter().zip(kinds).enumerate() {
        match kind {
            FeatureKind::Categorical { vocabulary } => {
                let coded = code_column(column, name, vocabulary)?;
                unknown[j] = coded.unknown;
                matrix.column_mut(j).iter_mut().zip(&coded.codes).for_each(|(slot, &code)| *slot = code);
            }
            FeatureKind::Numeric if holds_no_value(column.data_type()) => {}
            FeatureKind::Numeric => {
                if let Some(numbers) = &numbers {
                    matrix.column_mut(j).assign(&numbers.column(next_numeric));
                }
                next_numeric += 1;
            }
        }
    }
    Ok((matrix, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, DictionaryArray, Int32Array, LargeStringArray, StringViewArray};
    use arrow::datatypes::Int8Type;
    use std::sync::Arc;

    fn arc(array: impl Array + 'static) -> ArrayRef {
        Arc::new(array)
    }

    #[test]
    fn every_text_type_codes_alike() {
        let vocabulary = Vocabulary::new(vec!["tcp".into(), "udp".into()]).unwrap();
        let values = [Some("udp"), None, Some("icmp"), Some("tcp"), Some("")];
        let expected = vec![1.0, 3.0, 2.0, 0.0, 2.0];
        let dictionary: DictionaryArray<Int8Type> = values.iter().copied().collect();
        for column in [
            arc(StringArray::from(values.to_vec())),
            arc(LargeStringArray::from(values.to_vec())),
            arc(StringViewArray::from(values.to_vec())),
            arc(dictionary),
        ] {
            let coded = code_column(&column, "protocol", &vocabulary).unwrap();
            assert_eq!(coded.codes, expected, "{}", column.data_type());
            assert_eq!(coded.unknown, 2, "icmp and the empty string were never seen");
        }
    }

    #[test]
    fn booleans_are_the_texts_true_and_false() {
        let column = arc(BooleanArray::from(vec![Some(true), Some(true), None, Some(false), Some(true)]));
        let vocabulary = fit_vocabulary(&column, "flag", 64).unwrap();
        assert_eq!(vocabulary.values(), ["true", "false"]);
        assert_eq!(code_column(&column, "flag", &vocabulary).unwrap().codes, vec![0.0, 0.0, 3.0, 1.0, 0.0]);
    }

    #[test]
    fn a_column_of_numbers_with_a_stray_word_is_refused_not_taken_as_categories() {
        let typo = arc(StringArray::from(vec![Some("1.5"), Some("2"), Some("oops"), None, Some("4")]));
        let err = fit_vocabulary(&typo, "b", 64).unwrap_err().to_string();
        assert!(err.contains("column 'b' is not numeric") && err.contains("row 2 holds 'oops'"), "{err}");
        // Codes that happen to look like numbers now and then are still categories.
        let mostly_words = arc(StringArray::from(vec!["a1", "b2", "7", "c3"]));
        assert_eq!(fit_vocabulary(&mostly_words, "code", 64).unwrap().len(), 4);
    }

    #[test]
    fn numbers_and_times_are_not_categories() {
        let err = fit_vocabulary(&arc(Int32Array::from(vec![1, 2])), "n", 64).unwrap_err();
        assert!(err.to_string().contains("'n'"), "{err}");
        assert!(is_time(&DataType::Date32) && !is_categorical(&DataType::Date32));
        let err = time_column_error("seen_at", &DataType::Date32);
        assert!(err.to_string().contains("seen_at") && err.to_string().contains("--exclude seen_at"), "{err}");
    }
}
