//! ODDS cardio (shipped in `tests/data/odds`) as a Parquet data set split into four files, with a row
//! id to line results up and the label kept for ROC-AUC.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

pub const FEATURES: usize = 21;
pub const FILES: usize = 4;

/// `f0, ..., f20` for SQL.
pub fn feature_list() -> String {
    (0..FEATURES).map(|i| format!("f{i}")).collect::<Vec<_>>().join(", ")
}

/// The rows of cardio: features and labels.
pub fn cardio() -> (Vec<Vec<f64>>, Vec<bool>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/odds/cardio.csv");
    let text = std::fs::read_to_string(&path).expect("tests/data/odds/cardio.csv");
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for line in text.lines().skip(1) {
        let values: Vec<f64> = line.split(',').map(|v| v.parse().expect("a number")).collect();
        assert_eq!(values.len(), FEATURES + 1, "cardio has 21 features and a label");
        labels.push(values[FEATURES] != 0.0);
        rows.push(values[..FEATURES].to_vec());
    }
    (rows, labels)
}

/// Writes cardio to `dir/part-{0..FILES}.parquet` (consecutive row ranges); returns the labels by id.
pub fn write_parquet(dir: &Path) -> Vec<bool> {
    write_parquet_copies(dir, 1)
}

/// [`write_parquet`] with the rows repeated `copies` times (ids stay unique), for benchmarks that need
/// more rows than cardio has; returns the labels by id.
pub fn write_parquet_copies(dir: &Path, copies: usize) -> Vec<bool> {
    let (one_rows, one_labels) = cardio();
    let rows: Vec<Vec<f64>> = (0..copies).flat_map(|_| one_rows.iter().cloned()).collect();
    let labels: Vec<bool> = (0..copies).flat_map(|_| one_labels.iter().copied()).collect();
    let mut fields = vec![Field::new("id", DataType::Int64, false)];
    fields.extend((0..FEATURES).map(|i| Field::new(format!("f{i}"), DataType::Float64, false)));
    fields.push(Field::new("label", DataType::Int64, false));
    let schema = Arc::new(Schema::new(fields));
    let per_file = rows.len().div_ceil(FILES);
    for (part, start) in (0..rows.len()).step_by(per_file).enumerate() {
        let end = (start + per_file).min(rows.len());
        let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(start as i64..end as i64))];
        for f in 0..FEATURES {
            columns.push(Arc::new(Float64Array::from_iter_values(rows[start..end].iter().map(|r| r[f]))));
        }
        columns.push(Arc::new(Int64Array::from_iter_values(labels[start..end].iter().map(|&l| l as i64))));
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("a batch");
        let file = std::fs::File::create(dir.join(format!("part-{part}.parquet"))).expect("create a Parquet file");
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).expect("a writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }
    labels
}
