//! The Arrow bridge every door uses: Arrow columns to the row-major `f32` feature matrix the model
//! computes in, and a matrix back to an Arrow `FixedSizeList<Float32>` column. The CLI (`io::table`),
//! the SQL functions and the Kafka stream all go through here, so one input gives one matrix whichever
//! door it comes through.
//!
//! The rules, decided once:
//! - **Numeric** ([`is_numeric`]) means any integer or float type, `Decimal128`/`Decimal256` (cast to
//!   `f64`, then to `f32`, as any other number), and `Null`.
//! - **Null and NaN are one thing: a missing value**, which the model imputes. A column of type `Null`
//!   (SQL's `NULL` literal, a CSV column left empty in every row) is therefore a feature column whose
//!   every value is missing: scoring a file in which one sensor was down must not fail where a file in
//!   which it was down for all but one row succeeds.
//! - **No matrix from `Null` alone.** When every feature column is of type `Null` (or a list's values
//!   are), no row has an observed value, and nothing in the arrays' buffers bounds the row count they
//!   declare: a damaged file could make the matrix allocate without limit. Such input is refused here
//!   as not numeric; the SQL door, whose row count comes from the engine, answers NULL for every row
//!   instead (see [`holds_no_value`]).
//! - A finite value beyond `f32`'s range is refused ([`AutoencError::OutOfF32Range`]) rather than
//!   becoming an infinity the user never wrote.
//! - Features come as named numeric columns ([`columns_matrix`]), one list column ([`list_matrix`]:
//!   `List`, `LargeList` or `FixedSizeList` of numbers) or one struct of numeric fields
//!   ([`struct_matrix`]); a null list or struct row is a row of missing values.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float32Type, Float64Type};
use ndarray::{Array2, ArrayView2};

use crate::error::{AutoencError, Result};
use crate::io::arrow_categories::{is_time, time_column_error};

/// Whether a column of this type can be a feature column: integers, floats, decimals, and `Null` (a
/// column of missing values; see the module documentation).
pub fn is_numeric(dt: &DataType) -> bool {
    dt.is_integer()
        || dt.is_floating()
        || matches!(dt, DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Null)
}

/// Whether this is a list of numbers ([`list_matrix`] takes it). A zero-width fixed-size list holds no
/// feature, and its row count rests on no buffer.
pub fn is_list_of_numbers(dt: &DataType) -> bool {
    match dt {
        DataType::List(f) | DataType::LargeList(f) => is_numeric(f.data_type()),
        DataType::FixedSizeList(f, width) => *width > 0 && is_numeric(f.data_type()),
        _ => false,
    }
}

/// Whether this is a struct of numeric fields ([`struct_matrix`] takes it).
pub fn is_struct_of_numbers(dt: &DataType) -> bool {
    matches!(dt, DataType::Struct(fields) if !fields.is_empty() && fields.iter().all(|f| is_numeric(f.data_type())))
}

/// Whether a value of this type can only be missing: `Null`, or a list or struct of nothing but
/// `Null`. A matrix is never built from such columns alone (see the module documentation).
pub fn holds_no_value(dt: &DataType) -> bool {
    match dt {
        DataType::Null => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => holds_no_value(f.data_type()),
        DataType::Struct(fields) => fields.iter().all(|f| holds_no_value(f.data_type())),
        _ => false,
    }
}

/// Named numeric columns of one length as a `(rows, columns)` matrix, NULL and NaN as NaN. The names
/// are used in errors only.
pub fn columns_matrix(columns: &[(&str, &ArrayRef)]) -> Result<Array2<f32>> {
    let Some(&(first_name, _)) = columns.first() else {
        return Err(AutoencError::NoFeatures);
    };
    // Every column is checked before the matrix is allocated: a numeric column's buffers hold its rows,
    // so the row count is then real.
    for (name, column) in columns {
        if is_time(column.data_type()) {
            return Err(time_column_error(name, column.data_type()));
        }
        if !is_numeric(column.data_type()) {
            return Err(AutoencError::NonNumericColumn { name: name.to_string(), dtype: describe_non_numeric(column) });
        }
    }
    let Some(&(_, counted)) = columns.iter().find(|(_, c)| !holds_no_value(c.data_type())) else {
        return Err(no_value(first_name, "every feature column is"));
    };
    let rows = counted.len();
    if let Some((name, column)) = columns.iter().find(|(_, c)| c.len() != rows) {
        return Err(AutoencError::InvalidInput(format!(
            "feature column '{name}' has {} rows where the others have {rows}",
            column.len()
        )));
    }
    let mut matrix = Array2::zeros((rows, columns.len()));
    for (j, (name, column)) in columns.iter().enumerate() {
        let values =
            f32_values(column, |row, value| AutoencError::OutOfF32Range { row, feature: name.to_string(), value })?;
        for (i, slot) in matrix.column_mut(j).iter_mut().enumerate() {
            *slot = if values.is_null(i) { f32::NAN } else { values.value(i) };
        }
    }
    Ok(matrix)
}

/// A struct column of numeric fields as a `(rows, fields)` matrix; a null struct row is a row of NaN.
/// Errors name the field as `column.field`.
pub fn struct_matrix(column: &ArrayRef, name: &str) -> Result<Array2<f32>> {
    let Some(fields) = column.as_struct_opt() else {
        return Err(AutoencError::NonNumericColumn { name: name.to_string(), dtype: column.data_type().to_string() });
    };
    let names: Vec<String> = fields.fields().iter().map(|field| format!("{name}.{}", field.name())).collect();
    if names.is_empty() {
        return Err(AutoencError::InvalidInput(format!("column '{name}' is a struct of no fields")));
    }
    if holds_no_value(column.data_type()) {
        return Err(no_value(name, "every field of the struct is"));
    }
    let named: Vec<(&str, &ArrayRef)> = names.iter().map(String::as_str).zip(fields.columns()).collect();
    let mut matrix = columns_matrix(&named)?;
    if matrix.nrows() != column.len() {
        return Err(AutoencError::InvalidInput(format!(
            "struct column '{name}' has {} rows but its fields have {}",
            column.len(),
            matrix.nrows()
        )));
    }
    for (i, mut row) in matrix.outer_iter_mut().enumerate() {
        if column.is_null(i) {
            row.fill(f32::NAN);
        }
    }
    Ok(matrix)
}

/// Rows of a list column as a matrix. Every non-null row must have the same length (`expected` if
/// given, else the first non-null row's); null rows become all-NaN rows.
pub fn list_matrix(column: &ArrayRef, name: &str, expected: Option<usize>) -> Result<Array2<f32>> {
    let rows = column.len();
    let (values, offsets): (ArrayRef, Vec<usize>) = match column.data_type() {
        DataType::List(_) => {
            let list = column.as_list::<i32>();
            (list.values().clone(), list.value_offsets().iter().map(|&o| o as usize).collect())
        }
        DataType::LargeList(_) => {
            let list = column.as_list::<i64>();
            (list.values().clone(), list.value_offsets().iter().map(|&o| o as usize).collect())
        }
        // A zero-width list holds no values for any number of rows, so its row count is unchecked by its
        // buffers (a damaged message may declare any); it has no features either.
        DataType::FixedSizeList(_, 0) => {
            return Err(AutoencError::InvalidInput(format!("column '{name}' is a list of zero width")));
        }
        DataType::FixedSizeList(_, width) => {
            let list = column.as_fixed_size_list();
            let w = *width as usize;
            (list.values().clone(), (0..=rows).map(|i| (i + list.offset()) * w).collect())
        }
        other => {
            return Err(AutoencError::NonNumericColumn { name: name.to_string(), dtype: other.to_string() });
        }
    };
    // A list of `Null` has no value in any row and, for a fixed-size list, no buffer bounding its rows.
    if !is_numeric(values.data_type()) || holds_no_value(values.data_type()) {
        return Err(AutoencError::NonNumericColumn { name: name.to_string(), dtype: column.data_type().to_string() });
    }
    let values = f32_values(&values, |k, value| {
        // The row holding flat element k: the last row whose list starts at or before it.
        let row = offsets.partition_point(|&o| o <= k).saturating_sub(1);
        let index = k.saturating_sub(offsets.get(row).copied().unwrap_or(0));
        AutoencError::OutOfF32Range { row, feature: format!("{name}[{index}]"), value }
    })?;
    let width = match expected {
        Some(w) => w,
        None => (0..rows)
            .find(|&i| column.is_valid(i))
            .map(|i| offsets[i + 1] - offsets[i])
            .ok_or(AutoencError::EmptyInput)?,
    };
    let mut matrix = Array2::from_elem((rows, width), f32::NAN);
    for i in 0..rows {
        if column.is_null(i) {
            continue;
        }
        let (start, end) = (offsets[i], offsets[i + 1]);
        if end - start != width {
            return Err(AutoencError::InvalidInput(format!(
                "wrong dimension in column '{name}' at row {i}: expected {width} features, got {}",
                end - start
            )));
        }
        for (j, k) in (start..end).enumerate() {
            matrix[(i, j)] = if values.is_null(k) { f32::NAN } else { values.value(k) };
        }
    }
    Ok(matrix)
}

/// The refusal of a matrix built from `Null` columns alone.
fn no_value(name: &str, what: &str) -> AutoencError {
    AutoencError::NonNumericColumn {
        name: name.to_string(),
        dtype: format!("Null; {what} of type Null, so no row holds a value"),
    }
}

/// The column's type, and for text the first value that is not a number (a CSV column with one stray
/// word is read as text, and the user needs to know where the word is).
fn describe_non_numeric(column: &ArrayRef) -> String {
    let dtype = column.data_type().to_string();
    // Only text is searched: casting other types to text could allocate for rows that have no buffers
    // (a Null column of a damaged message may declare any length).
    let is_text = matches!(column.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    if is_text && let Ok(text) = cast(column, &DataType::Utf8) {
        let text = text.as_string::<i32>();
        for i in 0..text.len() {
            if text.is_valid(i) && text.value(i).trim().parse::<f64>().is_err() {
                return format!("{dtype}; row {i} holds '{}'", text.value(i));
            }
        }
    }
    dtype
}

/// A numeric array as `f32`, which the model computes in. A finite value beyond `f32`'s range would
/// become infinite in the cast and then be blamed as an "infinite value" the user never wrote, so it is
/// refused here with its index and value.
fn f32_values(values: &ArrayRef, out_of_range: impl Fn(usize, f64) -> AutoencError) -> Result<Float32Array> {
    let wide = cast(values, &DataType::Float64)?;
    let wide = wide.as_primitive::<Float64Type>();
    let overflows =
        |i: &usize| wide.is_valid(*i) && wide.value(*i).is_finite() && (wide.value(*i) as f32).is_infinite();
    if let Some(i) = (0..wide.len()).find(overflows) {
        return Err(out_of_range(i, wide.value(i)));
    }
    Ok(cast(values, &DataType::Float32)?.as_primitive::<Float32Type>().clone())
}

/// The element of every vector column the doors write (embeddings, reconstructions): `item`, `Float32`,
/// not nullable — a missing vector is a null list row, never a null element.
pub fn float_item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Float32, false))
}

/// A matrix as a `FixedSizeList<Float32>` column, one row per list; `nulls` marks rows that are NULL
/// as a whole (their values are kept as given, and hidden by the null buffer).
pub fn fixed_size_list(matrix: ArrayView2<f32>, nulls: Option<NullBuffer>) -> Result<FixedSizeListArray> {
    let (rows, width) = matrix.dim();
    let values = match matrix.as_slice() {
        Some(flat) => Float32Array::from(flat.to_vec()),
        None => Float32Array::from_iter_values(matrix.iter().copied()),
    };
    // With the row count given, a zero-width matrix keeps its rows (Arrow cannot count them from values).
    Ok(FixedSizeListArray::try_new_with_length(float_item(), list_width(width)?, Arc::new(values), nulls, rows)?)
}

fn list_width(width: usize) -> Result<i32> {
    i32::try_from(width).map_err(|_| AutoencError::InvalidInput(format!("a list of {width} values is too wide")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Decimal128Array, FixedSizeListBuilder, Float32Builder, Float64Array, Int8Array, Int64Array,
        ListArray, NullArray, StringArray, StructArray, UInt16Array,
    };
    use arrow::datatypes::{Fields, Float32Type as F32, i256};
    use ndarray::array;

    fn arc(array: impl Array + 'static) -> ArrayRef {
        Arc::new(array)
    }

    fn same(a: &Array2<f32>, b: &Array2<f32>) -> bool {
        a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn the_numeric_rule_accepts_numbers_decimals_and_null_and_nothing_else() {
        for dt in [
            DataType::Int8,
            DataType::UInt64,
            DataType::Float16,
            DataType::Float64,
            DataType::Decimal128(10, 2),
            DataType::Decimal256(40, 3),
            DataType::Null,
        ] {
            assert!(is_numeric(&dt), "{dt}");
        }
        for dt in [
            DataType::Utf8,
            DataType::Boolean,
            DataType::Binary,
            DataType::Date32,
            DataType::new_list(DataType::Float32, true),
        ] {
            assert!(!is_numeric(&dt), "{dt}");
        }
        assert!(is_list_of_numbers(&DataType::new_fixed_size_list(DataType::Decimal128(5, 1), 3, true)));
        assert!(!is_list_of_numbers(&DataType::new_fixed_size_list(DataType::Float32, 0, true)));
        assert!(!is_list_of_numbers(&DataType::new_list(DataType::Utf8, true)));
        let fields = Fields::from(vec![Field::new("a", DataType::Int32, true), Field::new("b", DataType::Null, true)]);
        assert!(is_struct_of_numbers(&DataType::Struct(fields)));
        assert!(!is_struct_of_numbers(&DataType::Struct(Fields::empty())));
    }

    #[test]
    fn columns_of_any_numeric_type_become_one_matrix_with_nulls_and_nan_missing() {
        let a = arc(Int64Array::from(vec![Some(1), None, Some(-3)]));
        let b = arc(Float64Array::from(vec![0.5, f64::NAN, 2.25]));
        let c = arc(UInt16Array::from(vec![7, 8, 9]));
        let d = arc(Decimal128Array::from(vec![Some(125), Some(-5), None]).with_precision_and_scale(6, 2).unwrap());
        let m = columns_matrix(&[("a", &a), ("b", &b), ("c", &c), ("d", &d)]).unwrap();
        let nan = f32::NAN;
        assert!(same(&m, &array![[1.0, 0.5, 7.0, 1.25], [nan, nan, 8.0, -0.05], [-3.0, 2.25, 9.0, nan]]), "{m}");
        // Decimal256 too, by the same cast.
        let wide = arc(arrow::array::Decimal256Array::from(vec![i256::from_i128(15), i256::from_i128(-20)])
            .with_precision_and_scale(40, 1)
            .unwrap());
        assert!(same(&columns_matrix(&[("w", &wide)]).unwrap(), &array![[1.5], [-2.0]]));
    }

    #[test]
    fn a_null_column_is_missing_values_beside_others_but_never_alone() {
        let a = arc(Float64Array::from(vec![1.0, 2.0]));
        let n = arc(NullArray::new(2));
        let m = columns_matrix(&[("a", &a), ("n", &n)]).unwrap();
        assert_eq!(m.column(0).to_vec(), vec![1.0, 2.0]);
        assert!(m.column(1).iter().all(|v| v.is_nan()));
        // Alone, its declared length rests on no buffer: refused before anything is allocated.
        let huge = arc(NullArray::new(1 << 60));
        let error = columns_matrix(&[("n", &huge)]).unwrap_err();
        assert!(matches!(error, AutoencError::NonNumericColumn { .. }), "{error}");
        assert!(error.to_string().contains("no row holds a value"), "{error}");
    }

    #[test]
    fn non_numeric_columns_are_refused_by_name_and_type() {
        let a = arc(Float64Array::from(vec![1.0, 2.0]));
        let flag = arc(BooleanArray::from(vec![true, false]));
        let error = columns_matrix(&[("a", &a), ("flag", &flag)]).unwrap_err().to_string();
        assert_eq!(error, "column 'flag' is not numeric (type Boolean)");
        let text = arc(StringArray::from(vec!["1.5", "oops"]));
        let error = columns_matrix(&[("t", &text)]).unwrap_err().to_string();
        assert!(error.contains("row 1 holds 'oops'"), "{error}");
        assert!(matches!(columns_matrix(&[]), Err(AutoencError::NoFeatures)));
    }

    #[test]
    fn values_beyond_f32_are_refused_with_row_and_feature() {
        let a = arc(Float64Array::from(vec![1.0, -1e300]));
        match columns_matrix(&[("a", &a)]) {
            Err(AutoencError::OutOfF32Range { row: 1, feature, value }) => {
                assert_eq!(feature, "a");
                assert_eq!(value, -1e300);
            }
            other => panic!("{other:?}"),
        }
        // Infinity itself is not out of range: it is passed on for the model to refuse as infinite.
        let inf = arc(Float64Array::from(vec![f64::INFINITY]));
        assert!(columns_matrix(&[("i", &inf)]).unwrap()[(0, 0)].is_infinite());
        let list = arc(ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
            Some(vec![Some(1.0), Some(2.0)]),
            Some(vec![Some(3.0), Some(4e39)]),
        ]));
        match list_matrix(&list, "v", None) {
            Err(AutoencError::OutOfF32Range { row: 1, feature, .. }) => assert_eq!(feature, "v[1]"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_rows_become_matrix_rows_and_null_rows_missing() {
        let list = arc(ListArray::from_iter_primitive::<arrow::datatypes::Int8Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![Some(3), Some(4)]),
        ]));
        let m = list_matrix(&list, "v", None).unwrap();
        let nan = f32::NAN;
        assert!(same(&m, &array![[1.0, nan], [nan, nan], [3.0, 4.0]]), "{m}");
        let error = list_matrix(&list, "v", Some(3)).unwrap_err().to_string();
        assert!(error.contains("expected 3 features, got 2"), "{error}");
        let mut fixed = FixedSizeListBuilder::new(Float32Builder::new(), 2);
        fixed.values().append_slice(&[0.5, 1.5]);
        fixed.append(true);
        let fixed = arc(fixed.finish());
        assert_eq!(list_matrix(&fixed, "f", Some(2)).unwrap(), array![[0.5, 1.5]]);
        let nulls = arc(FixedSizeListArray::new_null(Arc::new(Field::new("item", DataType::Null, true)), 2, 3));
        assert!(matches!(list_matrix(&nulls, "f", None), Err(AutoencError::NonNumericColumn { .. })));
        let text = arc(StringArray::from(vec!["x"]));
        assert!(matches!(list_matrix(&text, "t", None), Err(AutoencError::NonNumericColumn { .. })));
    }

    #[test]
    fn struct_fields_become_columns_and_null_rows_missing() {
        let fields = StructArray::from(vec![
            (Arc::new(Field::new("x", DataType::Int8, true)), arc(Int8Array::from(vec![1, 2]))),
            (Arc::new(Field::new("y", DataType::Float64, true)), arc(Float64Array::from(vec![0.25, 1e300]))),
        ]);
        let error = struct_matrix(&arc(fields.clone()), "s").unwrap_err();
        assert!(matches!(&error, AutoencError::OutOfF32Range { row: 1, feature, .. } if feature == "s.y"), "{error}");
        let (f, columns, _) = fields.into_parts();
        let columns = vec![columns[0].clone(), arc(Float64Array::from(vec![0.25, 0.5]))];
        let with_null = StructArray::new(f, columns, Some(NullBuffer::from(vec![true, false])));
        let m = struct_matrix(&arc(with_null), "s").unwrap();
        assert!(same(&m, &array![[1.0, 0.25], [f32::NAN, f32::NAN]]), "{m}");
        let only_null =
            StructArray::from(vec![(Arc::new(Field::new("n", DataType::Null, true)), arc(NullArray::new(3)))]);
        assert!(matches!(struct_matrix(&arc(only_null), "s"), Err(AutoencError::NonNumericColumn { .. })));
    }

    #[test]
    fn zero_rows_give_an_empty_matrix_and_an_empty_list_column() {
        let a = arc(Float64Array::from(Vec::<f64>::new()));
        let b = arc(Int64Array::from(Vec::<i64>::new()));
        assert_eq!(columns_matrix(&[("a", &a), ("b", &b)]).unwrap().dim(), (0, 2));
        let column = fixed_size_list(Array2::<f32>::zeros((0, 3)).view(), None).unwrap();
        assert_eq!(column.len(), 0);
        assert_eq!(column.data_type(), &DataType::FixedSizeList(float_item(), 3));
    }

    #[test]
    fn a_matrix_becomes_a_fixed_size_list_row_by_row_with_its_nulls() {
        let m = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let column = fixed_size_list(m.view(), Some(NullBuffer::from(vec![true, false, true]))).unwrap();
        assert_eq!(column.data_type(), &DataType::new_fixed_size_list(DataType::Float32, 2, false));
        assert_eq!(column.len(), 3);
        assert!(column.is_null(1));
        assert_eq!(column.value(2).as_primitive::<F32>().values().to_vec(), vec![5.0, 6.0]);
        // A transposed (not row-major) view is written in its logical row order.
        let t = m.t();
        let column = fixed_size_list(t, None).unwrap();
        assert_eq!(column.value(0).as_primitive::<F32>().values().to_vec(), vec![1.0, 3.0, 5.0]);
        // The round trip through the bridge gives the matrix back.
        let back = list_matrix(&arc(fixed_size_list(m.view(), None).unwrap()), "m", None).unwrap();
        assert_eq!(back, m);
        let error = fixed_size_list(m.view(), Some(NullBuffer::from(vec![true]))).unwrap_err();
        assert!(matches!(error, AutoencError::Arrow(_)), "{error}");
    }
}
