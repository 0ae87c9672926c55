//! Tables in and out: Parquet, CSV and Arrow IPC files as Arrow record batches, and the feature
//! matrix the model needs pulled out of them.
//!
//! Features come either from named numeric columns (any integer or float type) or from one list column
//! (`List`, `LargeList` or `FixedSizeList` of numbers). Nulls become NaN, which the model treats as
//! missing. Anything else is an error naming the column.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float32Array, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Float32Type, Schema, SchemaRef};
use ndarray::Array2;

use crate::error::{AutoencError, Result};

/// File formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
    ArrowIpc,
}

impl FileFormat {
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "parquet" | "pq" => Ok(FileFormat::Parquet),
            "csv" => Ok(FileFormat::Csv),
            "arrow" | "ipc" | "feather" | "arrows" => Ok(FileFormat::ArrowIpc),
            _ => Err(AutoencError::UnsupportedFileType(path.display().to_string())),
        }
    }
}

/// All rows of a file as one record batch.
pub fn read_table(path: &Path) -> Result<RecordBatch> {
    read_table_inner(path).map_err(|e| match e {
        AutoencError::Arrow(err) => AutoencError::InvalidInput(format!("{}: {err}", path.display())),
        AutoencError::Parquet(err) => AutoencError::InvalidInput(format!("{}: {err}", path.display())),
        other => other,
    })
}

fn read_table_inner(path: &Path) -> Result<RecordBatch> {
    let format = FileFormat::from_path(path)?;
    let file = File::open(path)
        .map_err(|e| AutoencError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
    let (schema, batches): (SchemaRef, Vec<RecordBatch>) = match format {
        FileFormat::Parquet => {
            use arrow::record_batch::RecordBatchReader;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
            let schema = reader.schema();
            (schema, reader.collect::<std::result::Result<_, _>>()?)
        }
        FileFormat::Csv => {
            let mut sniff = File::open(path)?;
            let (schema, _) = arrow::csv::reader::Format::default().with_header(true).infer_schema(&mut sniff, None)?;
            let schema = Arc::new(schema);
            let reader = arrow::csv::ReaderBuilder::new(schema.clone()).with_header(true).build(file)?;
            (schema, reader.collect::<std::result::Result<_, _>>()?)
        }
        FileFormat::ArrowIpc => match arrow::ipc::reader::FileReader::try_new(file, None) {
            Ok(reader) => {
                let schema = reader.schema();
                (schema, reader.collect::<std::result::Result<_, _>>()?)
            }
            Err(_) => {
                // Not the file format: try the streaming format, which `.arrows` files use.
                let reader = arrow::ipc::reader::StreamReader::try_new(File::open(path)?, None)?;
                let schema = reader.schema();
                (schema, reader.collect::<std::result::Result<_, _>>()?)
            }
        },
    };
    Ok(concat_batches(&schema, &batches)?)
}

/// Writes `batch` in the format of `path`'s extension. CSV has no list type, so fixed-size list columns
/// are written as one column per element (`embedding_0`, `embedding_1`, ...).
pub fn write_table(path: &Path, batch: &RecordBatch) -> Result<()> {
    let format = FileFormat::from_path(path)?;
    let file = File::create(path)?;
    match format {
        FileFormat::Parquet => {
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
            writer.write(batch)?;
            writer.close()?;
        }
        FileFormat::Csv => {
            let flat = flatten_lists(batch)?;
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(file);
            writer.write(&flat)?;
        }
        FileFormat::ArrowIpc => {
            let mut writer = arrow::ipc::writer::FileWriter::try_new(file, &batch.schema())?;
            writer.write(batch)?;
            writer.finish()?;
        }
    }
    Ok(())
}

/// Replaces every fixed-size list column by one Float32 column per element.
pub fn flatten_lists(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match column.data_type() {
            DataType::FixedSizeList(_, width) => {
                let list = column.as_fixed_size_list();
                let values = cast(list.values(), &DataType::Float32)?;
                let values = values.as_primitive::<Float32Type>();
                let width = *width as usize;
                for j in 0..width {
                    let element: Float32Array =
                        (0..list.len()).map(|i| (!list.is_null(i)).then(|| values.value(i * width + j))).collect();
                    fields.push(Field::new(format!("{}_{j}", field.name()), DataType::Float32, true));
                    columns.push(Arc::new(element));
                }
            }
            _ => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Which columns hold the features.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureSelection {
    /// These numeric columns, in this order.
    Columns(Vec<String>),
    /// One list column of numbers per row.
    ListColumn(String),
    /// Every numeric column except the ones named.
    AllNumericExcept(Vec<String>),
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_integer() || dt.is_floating() || matches!(dt, DataType::Decimal128(..) | DataType::Decimal256(..))
}

fn column_by_name<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| AutoencError::UnknownColumn {
        name: name.to_string(),
        available: batch.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
    })
}

/// The column's type, and for text the first value that is not a number (a CSV column with one stray
/// word is read as text, and the user needs to know where the word is).
fn describe_non_numeric(column: &ArrayRef) -> String {
    let dtype = column.data_type().to_string();
    if let Ok(text) = cast(column, &DataType::Utf8) {
        let text = text.as_string::<i32>();
        for i in 0..text.len() {
            if text.is_valid(i) && text.value(i).trim().parse::<f64>().is_err() {
                return format!("{dtype}; row {i} holds '{}'", text.value(i));
            }
        }
    }
    dtype
}

/// Columns that [`FeatureSelection::AllNumericExcept`] leaves out because they are not numeric.
pub fn non_numeric_columns(batch: &RecordBatch) -> Vec<String> {
    batch.schema().fields().iter().filter(|f| !is_numeric(f.data_type())).map(|f| f.name().clone()).collect()
}

/// The feature matrix (`(rows, features)`, nulls as NaN) and the feature names.
pub fn feature_matrix(batch: &RecordBatch, selection: &FeatureSelection) -> Result<(Array2<f32>, Vec<String>)> {
    match selection {
        FeatureSelection::Columns(names) => columns_matrix(batch, names),
        FeatureSelection::AllNumericExcept(excluded) => {
            for name in excluded {
                column_by_name(batch, name)?;
            }
            let names: Vec<String> = batch
                .schema()
                .fields()
                .iter()
                .filter(|f| is_numeric(f.data_type()) && !excluded.contains(f.name()))
                .map(|f| f.name().clone())
                .collect();
            if names.is_empty() {
                return Err(AutoencError::NoFeatures);
            }
            columns_matrix(batch, &names)
        }
        FeatureSelection::ListColumn(name) => {
            let matrix = list_matrix(column_by_name(batch, name)?, name, None)?;
            let names = (0..matrix.ncols()).map(|j| format!("{name}[{j}]")).collect();
            Ok((matrix, names))
        }
    }
}

fn columns_matrix(batch: &RecordBatch, names: &[String]) -> Result<(Array2<f32>, Vec<String>)> {
    if names.is_empty() {
        return Err(AutoencError::NoFeatures);
    }
    let mut matrix = Array2::zeros((batch.num_rows(), names.len()));
    for (j, name) in names.iter().enumerate() {
        let column = column_by_name(batch, name)?;
        if !is_numeric(column.data_type()) {
            return Err(AutoencError::NonNumericColumn { name: name.clone(), dtype: describe_non_numeric(column) });
        }
        let values = cast(column, &DataType::Float32)?;
        let values = values.as_primitive::<Float32Type>();
        for (i, slot) in matrix.column_mut(j).iter_mut().enumerate() {
            *slot = if values.is_null(i) { f32::NAN } else { values.value(i) };
        }
    }
    Ok((matrix, names.to_vec()))
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
        DataType::FixedSizeList(_, width) => {
            let list = column.as_fixed_size_list();
            let w = *width as usize;
            (list.values().clone(), (0..=rows).map(|i| (i + list.offset()) * w).collect())
        }
        other => {
            return Err(AutoencError::NonNumericColumn { name: name.to_string(), dtype: other.to_string() });
        }
    };
    if !is_numeric(values.data_type()) {
        return Err(AutoencError::NonNumericColumn { name: name.to_string(), dtype: column.data_type().to_string() });
    }
    let values = cast(&values, &DataType::Float32)?;
    let values = values.as_primitive::<Float32Type>();
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
