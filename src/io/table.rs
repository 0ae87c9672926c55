//! Tables in and out: Parquet, CSV and Arrow IPC files as Arrow record batches, and the feature
//! matrix the model needs pulled out of them.
//!
//! Features come either from named columns — numeric, or categorical (text, boolean, dictionary) — or
//! from one list column (`List`, `LargeList` or `FixedSizeList` of numbers), converted by the Arrow
//! bridge every door shares ([`crate::io::arrow_matrix`], which states what is numeric and what is
//! missing, and [`crate::io::arrow_categories`], which codes categories). Anything else is an error
//! naming the column; a date or time column named as a feature is refused with what to do instead.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float32Array, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Float32Type, Schema, SchemaRef};
use ndarray::Array2;

use crate::error::{AutoencError, Result};
use crate::io::arrow_categories::{fit_vocabulary, is_categorical, kinds_matrix};
use crate::io::arrow_matrix::{self, holds_no_value, is_numeric};
use crate::io::atomic::{AtomicFile, io_error_at};
use crate::io::contain::contain;
use crate::io::ipc::decode_ipc;
use crate::limits::MAX_TABLE_BYTES;
use crate::model::features::FeatureKind;

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
    let damaged = |message: String| {
        AutoencError::InvalidInput(format!("{}: damaged file (the reader failed: {message})", path.display()))
    };
    contain(|| read_table_inner(path), damaged).map_err(|e| name_path(path, e))
}

/// The most bytes a table file may have, and the most memory its decoded rows may take:
/// [`MAX_TABLE_BYTES`](crate::limits::MAX_TABLE_BYTES), or `AUTOENC_MAX_INPUT_BYTES` when set.
pub fn max_table_bytes() -> u64 {
    std::env::var("AUTOENC_MAX_INPUT_BYTES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(MAX_TABLE_BYTES)
}

fn too_large(path: &Path, what: &str, limit: u64) -> AutoencError {
    AutoencError::InvalidInput(format!(
        "{}: {what} more than {limit} bytes (the input limit; set AUTOENC_MAX_INPUT_BYTES to raise it)",
        path.display()
    ))
}

/// A reader that fails, instead of going on, once more than `left` bytes have been read: a CSV "file"
/// that is a pipe or a device has no length to check beforehand.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::FileTooLarge, "input is larger than the input limit")
        })?;
        Ok(n)
    }
}

fn read_table_inner(path: &Path) -> Result<RecordBatch> {
    let format = FileFormat::from_path(path)?;
    let open = || File::open(path).map_err(|e| io_error_at(path, e));
    let file = open()?;
    let limit = max_table_bytes();
    let metadata = file.metadata().map_err(|e| io_error_at(path, e))?;
    if metadata.is_file() && metadata.len() > limit {
        return Err(too_large(path, &format!("the file has {} bytes,", metadata.len()), limit));
    }
    if !metadata.is_file() && format != FileFormat::Csv {
        return Err(AutoencError::InvalidInput(format!(
            "{}: not a regular file (Parquet and Arrow files are read with seeks)",
            path.display()
        )));
    }
    let bounded = |file: File| Bounded { inner: file, left: limit };
    let (schema, batches): (
        SchemaRef,
        Box<dyn Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>>>,
    ) = match format {
        FileFormat::Parquet => {
            use arrow::record_batch::RecordBatchReader;
            let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?;
            // The reader's own schema drops the file's key-value metadata (where scoring records values
            // outside the vocabularies, for one); the builder's keeps it.
            let metadata = builder.schema().metadata().clone();
            let reader = builder.build()?;
            (Arc::new(reader.schema().as_ref().clone().with_metadata(metadata)), Box::new(reader))
        }
        FileFormat::Csv => {
            // Types are inferred from every row (a float after a million integers must not fail the
            // read), so the file is read twice; both passes are bounded.
            let (schema, _) = arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(std::io::BufReader::new(bounded(open()?)), None)?;
            let schema = Arc::new(schema);
            let reader = arrow::csv::ReaderBuilder::new(schema.clone()).with_header(true).build(bounded(file))?;
            (schema, Box::new(reader))
        }
        FileFormat::ArrowIpc => {
            // Read whole (bounded), then decoded without trusting the lengths inside (see `ipc`); the
            // file format and the stream format (`.arrows`) both.
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut bounded(file), &mut bytes).map_err(|e| io_error_at(path, e))?;
            let (schema, batches) = decode_ipc(arrow::buffer::Buffer::from(bytes))?;
            (schema, Box::new(batches.into_iter().map(Ok)))
        }
    };
    // Compressed formats can decode to far more than their size on disk: count what the rows take.
    let mut kept = Vec::new();
    let mut decoded = 0u64;
    for batch in batches {
        let batch = batch?;
        decoded += batch.get_array_memory_size() as u64;
        if decoded > limit {
            return Err(too_large(path, "its rows take", limit));
        }
        kept.push(batch);
    }
    Ok(concat_batches(&schema, &kept)?)
}

/// Writes `batch` in the format of `path`'s extension, atomically (see [`TableWriter`]).
pub fn write_table(path: &Path, batch: &RecordBatch) -> Result<()> {
    let mut writer = TableWriter::create(path, batch.schema())?;
    writer.write(batch)?;
    writer.finish()
}

/// A table file written batch by batch, in the format of its extension. CSV has no list type, so
/// fixed-size list columns are written as one column per element (`embedding_0`, `embedding_1`, ...).
/// The file appears at its path only when [`TableWriter::finish`] succeeds; a failed or abandoned write
/// leaves whatever was there before (see [`crate::io::atomic`]). Errors name the path.
pub struct TableWriter {
    path: std::path::PathBuf,
    format: FormatWriter,
    file: AtomicFile,
}

enum FormatWriter {
    Parquet(parquet::arrow::ArrowWriter<File>),
    Csv(arrow::csv::Writer<File>),
    ArrowIpc(arrow::ipc::writer::FileWriter<File>),
}

impl TableWriter {
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let kind = FileFormat::from_path(path)?;
        let mut file = AtomicFile::create(path)?;
        let handle = file.file().try_clone().map_err(|e| io_error_at(path, e))?;
        let format = match kind {
            FileFormat::Parquet => FormatWriter::Parquet(parquet::arrow::ArrowWriter::try_new(handle, schema, None)?),
            FileFormat::Csv => FormatWriter::Csv(arrow::csv::WriterBuilder::new().with_header(true).build(handle)),
            FileFormat::ArrowIpc => FormatWriter::ArrowIpc(arrow::ipc::writer::FileWriter::try_new(handle, &schema)?),
        };
        Ok(TableWriter { path: path.to_path_buf(), format, file })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let written = match &mut self.format {
            FormatWriter::Parquet(writer) => writer.write(batch).map_err(AutoencError::from),
            FormatWriter::Csv(writer) => flatten_lists(batch).and_then(|flat| Ok(writer.write(&flat)?)),
            FormatWriter::ArrowIpc(writer) => writer.write(batch).map_err(AutoencError::from),
        };
        written.map_err(|e| self.at_path(e))
    }

    /// Completes the file and moves it into place.
    pub fn finish(self) -> Result<()> {
        let TableWriter { path, format, file } = self;
        let finished = match format {
            FormatWriter::Parquet(writer) => writer.close().map(|_| ()).map_err(AutoencError::from),
            FormatWriter::Csv(writer) => writer.into_inner().sync_all().map_err(AutoencError::from),
            FormatWriter::ArrowIpc(mut writer) => writer.finish().map_err(AutoencError::from),
        };
        finished.map_err(|e| name_path(&path, e))?;
        file.commit()
    }

    fn at_path(&self, error: AutoencError) -> AutoencError {
        name_path(&self.path, error)
    }
}

/// Puts the path in front of a read or write error that does not name it yet.
fn name_path(path: &Path, error: AutoencError) -> AutoencError {
    let shown = path.display().to_string();
    match error {
        AutoencError::Io(e) if !e.to_string().contains(&shown) => io_error_at(path, e),
        AutoencError::Arrow(e) => AutoencError::InvalidInput(format!("{shown}: {e}")),
        AutoencError::Parquet(e) => AutoencError::InvalidInput(format!("{shown}: {e}")),
        other => other,
    }
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
    /// These columns, in this order.
    Columns(Vec<String>),
    /// One list column of numbers per row.
    ListColumn(String),
    /// Every numeric column except the ones named ([`feature_matrix`]); with
    /// [`training_features`], every numeric and categorical column except the ones named.
    AllNumericExcept(Vec<String>),
}

/// Whether [`FeatureSelection::AllNumericExcept`] takes a column: numeric and able to hold a number.
/// A column of type `Null` is a valid feature column when named (its values are missing), but one
/// picked without being named would be a feature with nothing to learn from.
fn holds_numbers(dt: &DataType) -> bool {
    is_numeric(dt) && !holds_no_value(dt)
}

fn column_by_name<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| AutoencError::UnknownColumn {
        name: name.to_string(),
        available: batch.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
    })
}

/// Columns that [`FeatureSelection::AllNumericExcept`] leaves out because they are not numeric.
pub fn non_numeric_columns(batch: &RecordBatch) -> Vec<String> {
    batch.schema().fields().iter().filter(|f| !holds_numbers(f.data_type())).map(|f| f.name().clone()).collect()
}

/// Columns that [`training_features`] leaves out when it picks the features itself: neither numeric
/// nor categorical (dates and times among them).
pub fn non_feature_columns(batch: &RecordBatch) -> Vec<String> {
    let schema = batch.schema();
    let skipped = schema.fields().iter().filter(|f| !holds_numbers(f.data_type()) && !is_categorical(f.data_type()));
    skipped.map(|f| f.name().clone()).collect()
}

/// Features read from a table for training.
#[derive(Debug, Clone)]
pub struct TableFeatures {
    /// `(rows, features)`; a categorical feature's column holds codes in its vocabulary.
    pub matrix: Array2<f32>,
    pub names: Vec<String>,
    pub kinds: Vec<FeatureKind>,
}

impl TableFeatures {
    /// Whether any feature is categorical.
    pub fn has_categories(&self) -> bool {
        self.kinds.iter().any(|k| k.vocabulary().is_some())
    }
}

/// The features to train on: numeric columns as numbers, categorical ones coded in vocabularies
/// learned here from `batch` (the `max_categories` most frequent values of each).
/// [`FeatureSelection::AllNumericExcept`] picks every numeric and categorical column not excluded.
pub fn training_features(
    batch: &RecordBatch,
    selection: &FeatureSelection,
    max_categories: usize,
) -> Result<TableFeatures> {
    let names: Vec<String> = match selection {
        FeatureSelection::ListColumn(_) => {
            let (matrix, names) = feature_matrix(batch, selection)?;
            let kinds = vec![FeatureKind::Numeric; names.len()];
            return Ok(TableFeatures { matrix, names, kinds });
        }
        FeatureSelection::Columns(names) => names.clone(),
        FeatureSelection::AllNumericExcept(excluded) => {
            for name in excluded {
                column_by_name(batch, name)?;
            }
            let schema = batch.schema();
            let picked = schema.fields().iter().filter(|f| {
                (holds_numbers(f.data_type()) || is_categorical(f.data_type())) && !excluded.contains(f.name())
            });
            picked.map(|f| f.name().clone()).collect()
        }
    };
    if names.is_empty() {
        return Err(AutoencError::NoFeatures);
    }
    let mut kinds = Vec::with_capacity(names.len());
    for name in &names {
        let column = column_by_name(batch, name)?;
        kinds.push(match is_categorical(column.data_type()) {
            true => FeatureKind::Categorical { vocabulary: fit_vocabulary(column, name, max_categories)? },
            false => FeatureKind::Numeric,
        });
    }
    let (matrix, _) = model_features(batch, &names, &kinds)?;
    Ok(TableFeatures { matrix, names, kinds })
}

/// A model's features out of `batch`, the columns `names` of the kinds `kinds` (the model's): numbers,
/// or codes in the model's vocabularies. Also gives, per feature, how many values were outside its
/// vocabulary (scored as other; 0 for numeric features).
pub fn model_features(batch: &RecordBatch, names: &[String], kinds: &[FeatureKind]) -> Result<(Array2<f32>, Vec<u64>)> {
    if names.len() != kinds.len() {
        return Err(AutoencError::DimensionMismatch { expected: kinds.len(), got: names.len() });
    }
    let columns: Vec<&ArrayRef> = names.iter().map(|name| column_by_name(batch, name)).collect::<Result<_>>()?;
    if kinds.iter().all(|k| k.vocabulary().is_none()) {
        return Ok((columns_matrix(batch, names)?.0, vec![0; names.len()]));
    }
    let named: Vec<(&str, &ArrayRef)> = names.iter().map(String::as_str).zip(columns).collect();
    kinds_matrix(&named, kinds)
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
                .filter(|f| holds_numbers(f.data_type()) && !excluded.contains(f.name()))
                .map(|f| f.name().clone())
                .collect();
            if names.is_empty() {
                return Err(AutoencError::NoFeatures);
            }
            columns_matrix(batch, &names)
        }
        FeatureSelection::ListColumn(name) => {
            let matrix = arrow_matrix::list_matrix(column_by_name(batch, name)?, name, None)?;
            let names = (0..matrix.ncols()).map(|j| format!("{name}[{j}]")).collect();
            Ok((matrix, names))
        }
    }
}

fn columns_matrix(batch: &RecordBatch, names: &[String]) -> Result<(Array2<f32>, Vec<String>)> {
    let columns: Vec<(&str, &ArrayRef)> =
        names.iter().map(|name| Ok((name.as_str(), column_by_name(batch, name)?))).collect::<Result<_>>()?;
    Ok((arrow_matrix::columns_matrix(&columns)?, names.to_vec()))
}
