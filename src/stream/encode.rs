//! Scored rows to output messages: the input record plus `embedding`, `score`, `percentile`,
//! `is_anomaly` and `model_version`, as JSON or as an Arrow IPC stream.
//!
//! A JSON input object is not parsed into a tree and written again: the result fields are appended to
//! its text, so every input field comes out byte for byte as it went in (numbers keep their digits).
//! Only when the object already has a field of the same name is it rebuilt, the result replacing it.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::writer::StreamWriter;
use ndarray::ArrayView2;

use super::config::OutputFormat;
use super::decode::InputRecord;
use crate::io::arrow_matrix::fixed_size_list;

/// The fields every output record gains.
pub const OUTPUT_FIELDS: [&str; 5] = ["embedding", "score", "percentile", "is_anomaly", "model_version"];

/// The results for a run of consecutive rows (one message's rows).
#[derive(Debug, Clone, Copy)]
pub struct RowResults<'a> {
    pub embedding: ArrayView2<'a, f32>,
    pub scores: &'a [f64],
    pub percentiles: &'a [f64],
    pub flags: &'a [bool],
    pub model_version: &'a str,
}

/// Builds the output message of one input message.
pub fn encode(
    format: OutputFormat,
    payload: &[u8],
    record: &InputRecord,
    csv_columns: &[String],
    results: RowResults<'_>,
) -> Result<Vec<u8>, String> {
    match (format, record) {
        (OutputFormat::Json, InputRecord::Json { splice: true }) => Ok(splice_json(payload, results)),
        (OutputFormat::Json, InputRecord::Json { splice: false }) => rebuilt_json(payload, results),
        (OutputFormat::Json, InputRecord::Csv(fields)) => Ok(splice_json(&csv_as_json(csv_columns, fields)?, results)),
        (OutputFormat::Json, InputRecord::Arrow(batch)) => {
            let batch = with_results(batch, results)?;
            let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
            writer.write(&batch).map_err(|e| e.to_string())?;
            writer.finish().map_err(|e| e.to_string())?;
            Ok(writer.into_inner())
        }
        (OutputFormat::Arrow, InputRecord::Arrow(batch)) => ipc_bytes(&with_results(batch, results)?),
        (OutputFormat::Arrow, InputRecord::Json { .. }) => ipc_bytes(&with_results(&json_row(payload)?, results)?),
        (OutputFormat::Arrow, InputRecord::Csv(fields)) => {
            ipc_bytes(&with_results(&json_row(&csv_as_json(csv_columns, fields)?)?, results)?)
        }
    }
}

/// The result fields of row 0 as JSON text, starting with a comma: `,"embedding":[...],...`.
fn result_fields(out: &mut Vec<u8>, results: RowResults<'_>) {
    use std::io::Write;
    let embedding: Vec<f32> = results.embedding.row(0).to_vec();
    // serde_json writes shortest round-trip numbers, and null for a NaN score (a row with every
    // feature missing has no observed error to average).
    let _ = write!(out, ",\"embedding\":");
    let _ = serde_json::to_writer(&mut *out, &embedding);
    let _ = write!(out, ",\"score\":");
    let _ = serde_json::to_writer(&mut *out, &results.scores[0]);
    let _ = write!(out, ",\"percentile\":");
    let _ = serde_json::to_writer(&mut *out, &results.percentiles[0]);
    let _ = write!(out, ",\"is_anomaly\":{}", results.flags[0]);
    let _ = write!(out, ",\"model_version\":");
    let _ = serde_json::to_writer(&mut *out, results.model_version);
}

fn splice_json(payload: &[u8], results: RowResults<'_>) -> Vec<u8> {
    let end = payload.iter().rposition(|&b| b == b'}').unwrap_or(payload.len());
    let body = &payload[..end];
    let empty_object = body.iter().skip(1).all(u8::is_ascii_whitespace);
    let mut out = Vec::with_capacity(payload.len() + 64 + 16 * results.embedding.ncols());
    out.extend_from_slice(body);
    let start = out.len();
    result_fields(&mut out, results);
    if empty_object {
        out.remove(start); // no field before ours: drop the leading comma
    }
    out.push(b'}');
    out
}

fn rebuilt_json(payload: &[u8], results: RowResults<'_>) -> Result<Vec<u8>, String> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    for name in OUTPUT_FIELDS {
        object.remove(name);
    }
    let text = serde_json::to_vec(&object).map_err(|e| e.to_string())?;
    Ok(splice_json(&text, results))
}

/// A CSV line as a JSON object: numbers where the text is a finite number, null where empty, text otherwise.
fn csv_as_json(columns: &[String], fields: &[String]) -> Result<Vec<u8>, String> {
    let object: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .zip(fields)
        .map(|(name, text)| {
            let text = text.trim();
            let value = if text.is_empty() {
                serde_json::Value::Null
            } else {
                match text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                    Some(number) => serde_json::Value::Number(number),
                    None => serde_json::Value::String(text.to_string()),
                }
            };
            (name.clone(), value)
        })
        .collect();
    serde_json::to_vec(&object).map_err(|e| e.to_string())
}

/// One JSON object as a one-row record batch, its schema inferred from the object (fields in name order).
fn json_row(payload: &[u8]) -> Result<RecordBatch, String> {
    let (schema, _) =
        arrow::json::reader::infer_json_schema(Cursor::new(payload), Some(1)).map_err(|e| e.to_string())?;
    let mut reader =
        arrow::json::ReaderBuilder::new(Arc::new(schema)).build(Cursor::new(payload)).map_err(|e| e.to_string())?;
    reader.next().ok_or("empty JSON record")?.map_err(|e| e.to_string())
}

/// The input batch without any column named like a result field, plus the result columns.
fn with_results(batch: &RecordBatch, results: RowResults<'_>) -> Result<RecordBatch, String> {
    let rows = batch.num_rows();
    let mut fields: Vec<Arc<Field>> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !OUTPUT_FIELDS.contains(&field.name().as_str()) {
            fields.push(field.clone());
            columns.push(column.clone());
        }
    }
    let embedding = fixed_size_list(results.embedding, None).map_err(|e| e.to_string())?;
    fields.push(Arc::new(Field::new("embedding", embedding.data_type().clone(), false)));
    columns.push(Arc::new(embedding));
    fields.push(Arc::new(Field::new("score", DataType::Float64, true)));
    columns.push(Arc::new(Float64Array::from(results.scores[..rows].to_vec())));
    fields.push(Arc::new(Field::new("percentile", DataType::Float64, true)));
    columns.push(Arc::new(Float64Array::from(results.percentiles[..rows].to_vec())));
    fields.push(Arc::new(Field::new("is_anomaly", DataType::Boolean, false)));
    columns.push(Arc::new(BooleanArray::from(results.flags[..rows].to_vec())));
    fields.push(Arc::new(Field::new("model_version", DataType::Utf8, false)));
    columns.push(Arc::new(StringArray::from(vec![results.model_version; rows])));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

/// A record batch as the bytes of an Arrow IPC stream (schema + the batch).
pub fn ipc_bytes(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn one_row<'a>(embedding: &'a ndarray::Array2<f32>) -> RowResults<'a> {
        RowResults {
            embedding: embedding.view(),
            scores: &[0.25],
            percentiles: &[0.5],
            flags: &[false],
            model_version: "abc",
        }
    }

    #[test]
    fn json_output_keeps_the_input_text_and_adds_the_results() {
        let e = array![[1.5f32, -2.0]];
        let out = encode(
            OutputFormat::Json,
            br#"{"id": 10000000000000000001, "a": 1.10} "#,
            &InputRecord::Json { splice: true },
            &[],
            one_row(&e),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id": 10000000000000000001, "a": 1.10,"embedding":[1.5,-2.0],"score":0.25,"percentile":0.5,"is_anomaly":false,"model_version":"abc"}"#
        );
        let out = encode(
            OutputFormat::Json,
            br#"{"score": 3, "a": 1}"#,
            &InputRecord::Json { splice: false },
            &[],
            one_row(&e),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["score"], 0.25, "the result replaces an input field of the same name");
        assert_eq!(value["a"], 1);
    }

    #[test]
    fn csv_input_becomes_a_json_object() {
        let e = array![[0.0f32]];
        let columns = vec!["id".to_string(), "a".to_string(), "b".to_string()];
        let fields = vec!["x7".to_string(), "2".to_string(), "".to_string()];
        let out = encode(OutputFormat::Json, b"", &InputRecord::Csv(fields), &columns, one_row(&e)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["id"], "x7");
        assert_eq!(value["a"], 2.0);
        assert!(value["b"].is_null());
        assert_eq!(value["model_version"], "abc");
    }

    #[test]
    fn arrow_output_appends_result_columns() {
        use arrow::array::AsArray;
        let e = array![[1.0f32, 2.0]];
        let out = encode(
            OutputFormat::Arrow,
            br#"{"k": "p", "a": 1.5}"#,
            &InputRecord::Json { splice: true },
            &[],
            one_row(&e),
        )
        .unwrap();
        let reader = arrow::ipc::reader::StreamReader::try_new(Cursor::new(out), None).unwrap();
        let batch = reader.into_iter().next().unwrap().unwrap();
        let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        // Arrow's JSON schema inference orders the input fields by name; the results come last.
        assert_eq!(names, ["a", "k", "embedding", "score", "percentile", "is_anomaly", "model_version"]);
        assert_eq!(batch.column(3).as_primitive::<arrow::datatypes::Float64Type>().value(0), 0.25);
        // Arrow input with JSON output: one line per row.
        let two = ndarray::Array2::<f32>::zeros((2, 1));
        let input =
            RecordBatch::try_from_iter([("a", Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef)]).unwrap();
        let results = RowResults {
            embedding: two.view(),
            scores: &[1.0, 2.0],
            percentiles: &[0.1, 0.2],
            flags: &[false, true],
            model_version: "v",
        };
        let out = encode(OutputFormat::Json, b"", &InputRecord::Arrow(input), &[], results).unwrap();
        let lines: Vec<serde_json::Value> =
            out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["is_anomaly"], true);
        assert_eq!(lines[1]["a"], 2.0);
    }
}
