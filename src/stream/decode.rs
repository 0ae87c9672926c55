//! Input messages to feature rows. Each message decodes on its own, so one bad message becomes a dead
//! letter with a reason and never fails the batch around it.
//!
//! JSON is read without building a tree of values: the top-level fields are borrowed as raw text and
//! only the feature fields are parsed as numbers; the other fields stay untouched for the output.
//!
//! A model with categorical features (docs/model.md, "Categorical features") takes their values as
//! JSON strings or `true`/`false`, CSV fields, or Arrow string, boolean and dictionary columns, coded
//! in the model's vocabularies: a value never seen is "other" (counted in `Decoded::unknown`, then in
//! the `autoenc_unknown_categories_total` metric), null, an absent JSON field and an empty CSV field
//! are the NULL category. A number where a category belongs is a dead letter (`wrong_kind`), as is
//! text that is not UTF-8 (`unparseable`).

use std::borrow::Cow;
use std::collections::HashMap;

use arrow::array::RecordBatch;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::config::{InputFormat, StreamConfig};
use super::encode::OUTPUT_FIELDS;
use super::json_features::{FastRead, Layout, read_features};
use crate::io::table::{FeatureSelection, feature_matrix, model_features};
use crate::model::features::{FeatureKind, Vocabulary};

/// Why a message could not be scored; the `code` goes into the dead letter's headers and the metrics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadInput {
    #[error("unparseable {format} message: {detail}")]
    Unparseable { format: &'static str, detail: String },
    #[error("wrong dimension: expected {expected} features, got {got}")]
    WrongDimension { expected: usize, got: usize },
    #[error("non-numeric value in feature '{feature}': {detail}")]
    NonNumeric { feature: String, detail: String },
    #[error(
        "value in feature '{feature}' (row {row} of the message) is infinite or beyond the range of 32-bit floats \
         (about ±3.4e38): only finite numbers or null/NaN"
    )]
    Infinite { feature: String, row: usize },
    #[error("none of the feature fields is present (expected {expected})")]
    NoFeatures { expected: String },
    #[error("feature '{feature}' is categorical: {detail}")]
    WrongKind { feature: String, detail: String },
}

impl BadInput {
    /// A short stable name for headers and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            BadInput::Unparseable { .. } => "unparseable",
            BadInput::WrongDimension { .. } => "wrong_dimension",
            BadInput::NonNumeric { .. } => "non_numeric",
            BadInput::Infinite { .. } => "infinite",
            BadInput::NoFeatures { .. } => "no_features",
            BadInput::WrongKind { .. } => "wrong_kind",
        }
    }
}

/// A decoded message: its feature rows (row-major, `rows × features`) and what the output needs to
/// rebuild the record.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub values: Vec<f32>,
    pub rows: usize,
    pub record: InputRecord,
    /// Per feature, how many values were outside its vocabulary (scored as other); empty for a model
    /// without categorical features.
    pub unknown: Vec<u64>,
}

/// The input record as the output encoder needs it.
#[derive(Debug, Clone)]
pub enum InputRecord {
    /// A JSON object; `splice` is false when it already has a field the output would add (the output
    /// then rebuilds the object instead of appending to its text).
    Json { splice: bool },
    /// The CSV line's fields, named by the CSV columns.
    Csv(Vec<String>),
    /// The message's Arrow record batch.
    Arrow(RecordBatch),
}

/// Where the features are in a message; built once per model (the names may change on reload).
#[derive(Debug, Clone)]
pub struct Decoder {
    format: InputFormat,
    /// Field (JSON, Arrow) or column (CSV) names of the features, in the model's order.
    fields: Vec<String>,
    features_field: Option<String>,
    csv_columns: Vec<String>,
    /// For each feature, its position in a CSV line.
    csv_positions: Vec<usize>,
    /// For the one-pass JSON reader; `None` when feature names repeat (only the full reader fills
    /// every position of a repeated name) and when a feature is categorical (it reads numbers only).
    json_layout: Option<Layout>,
    /// The model's feature kinds, when any is categorical; empty otherwise.
    kinds: Vec<FeatureKind>,
}

#[derive(Deserialize)]
struct TopLevel<'a>(#[serde(borrow)] HashMap<Cow<'a, str>, &'a RawValue>);

impl Decoder {
    /// `model_features` are the model's feature names (the default field names), `kinds` its feature
    /// kinds.
    pub fn new(config: &StreamConfig, model_features: &[String], kinds: &[FeatureKind]) -> Result<Self, String> {
        let kinds = if kinds.iter().any(|k| k.vocabulary().is_some()) { kinds.to_vec() } else { Vec::new() };
        let fields = if config.features.is_empty() { model_features.to_vec() } else { config.features.clone() };
        if config.features_field.is_none() && fields.len() != model_features.len() {
            return Err(format!(
                "`features` names {} fields but the model has {} features",
                fields.len(),
                model_features.len()
            ));
        }
        let csv_columns = if config.csv_columns.is_empty() { fields.clone() } else { config.csv_columns.clone() };
        let csv_positions = if config.input_format == InputFormat::Csv {
            fields
                .iter()
                .map(|f| {
                    csv_columns.iter().position(|c| c == f).ok_or_else(|| format!("feature '{f}' is not a CSV column"))
                })
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let json_layout = match &config.features_field {
            _ if !kinds.is_empty() => None,
            Some(field) => Some(Layout::Array { field: field.clone() }),
            None => {
                let positions: HashMap<String, usize> =
                    fields.iter().enumerate().map(|(j, name)| (name.clone(), j)).collect();
                (positions.len() == fields.len()).then_some(Layout::Fields { positions })
            }
        };
        Ok(Self {
            json_layout,
            format: config.input_format,
            fields,
            features_field: config.features_field.clone(),
            csv_columns,
            csv_positions,
            kinds,
        })
    }

    /// Feature `j`'s vocabulary, when it is categorical.
    fn vocabulary(&self, j: usize) -> Option<&Vocabulary> {
        self.kinds.get(j).and_then(FeatureKind::vocabulary)
    }

    /// One value per feature of `unknown` counts, or none for a numeric model.
    fn no_unknown(&self) -> Vec<u64> {
        vec![0; self.kinds.len()]
    }

    /// The feature names, for the metrics' labels.
    pub fn feature_fields(&self) -> &[String] {
        &self.fields
    }

    pub fn csv_columns(&self) -> &[String] {
        &self.csv_columns
    }

    /// Number of features per row.
    pub fn width(&self) -> usize {
        self.fields.len()
    }

    pub fn decode(&self, payload: &[u8], expected_width: usize) -> Result<Decoded, BadInput> {
        match self.format {
            InputFormat::Json => self.decode_json(payload, expected_width),
            InputFormat::Csv => self.decode_csv(payload, expected_width),
            InputFormat::Arrow => self.decode_arrow(payload, expected_width),
        }
    }

    /// A healthy message in one pass (`json_features`); anything unusual through the full reader.
    fn decode_json(&self, payload: &[u8], expected: usize) -> Result<Decoded, BadInput> {
        // As in the full reader: an array must hold `expected` values, named fields give one per name.
        let width = |layout: &Layout| if let Layout::Array { .. } = layout { expected } else { self.width() };
        if let Some(layout) = &self.json_layout
            && let Some(FastRead { values, splice }) = read_features(payload, layout, width(layout))
        {
            return Ok(Decoded { values, rows: 1, record: InputRecord::Json { splice }, unknown: Vec::new() });
        }
        self.decode_json_fully(payload, expected)
    }

    /// The full reader: every top-level field borrowed as raw text, then the features parsed, naming
    /// the field at fault when something is wrong.
    fn decode_json_fully(&self, payload: &[u8], expected: usize) -> Result<Decoded, BadInput> {
        let unparseable = |detail: String| BadInput::Unparseable { format: "JSON", detail };
        let TopLevel(object) = serde_json::from_slice(payload).map_err(|e| unparseable(e.to_string()))?;
        let splice = !OUTPUT_FIELDS.iter().any(|name| object.contains_key(*name));
        let record = InputRecord::Json { splice };
        if let Some(field) = &self.features_field {
            let raw = object.get(field.as_str()).ok_or_else(|| BadInput::NoFeatures { expected: field.clone() })?;
            // The common case in one pass: an array of numbers and nulls. Anything else takes the slower
            // path below, which names the element at fault.
            if self.kinds.is_empty()
                && let Ok(numbers) = serde_json::from_str::<Vec<Option<f64>>>(raw.get())
            {
                if numbers.len() != expected {
                    return Err(BadInput::WrongDimension { expected, got: numbers.len() });
                }
                let values = numbers
                    .iter()
                    .enumerate()
                    .map(|(j, v)| match v.map_or(f32::NAN, |v| v as f32) {
                        x if x.is_infinite() => Err(BadInput::Infinite { feature: format!("{field}[{j}]"), row: 0 }),
                        x => Ok(x),
                    })
                    .collect::<Result<_, _>>()?;
                return Ok(Decoded { values, rows: 1, record, unknown: Vec::new() });
            }
            let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| BadInput::NonNumeric {
                feature: field.clone(),
                detail: format!("expected an array of numbers, got {}", truncate(raw.get())),
            })?;
            if items.len() != expected {
                return Err(BadInput::WrongDimension { expected, got: items.len() });
            }
            let mut unknown = self.no_unknown();
            let values = items
                .iter()
                .enumerate()
                .map(|(j, item)| self.json_value(j, Some(item), || format!("{field}[{j}]"), &mut unknown))
                .collect::<Result<_, _>>()?;
            return Ok(Decoded { values, rows: 1, record, unknown });
        }
        let mut values = Vec::with_capacity(self.fields.len());
        let mut unknown = self.no_unknown();
        let mut present = 0;
        for (j, name) in self.fields.iter().enumerate() {
            let raw = object.get(name.as_str());
            present += usize::from(raw.is_some());
            // An absent field is a missing value, like null: the model fills it in (a category's is NULL).
            values.push(self.json_value(j, raw.copied(), || name.clone(), &mut unknown)?);
        }
        if present == 0 {
            return Err(BadInput::NoFeatures { expected: self.fields.join(", ") });
        }
        Ok(Decoded { values, rows: 1, record, unknown })
    }

    /// Feature `j`'s value from JSON (`None`: absent): a number, or a category's code.
    fn json_value(
        &self,
        j: usize,
        raw: Option<&RawValue>,
        feature: impl Fn() -> String,
        unknown: &mut [u64],
    ) -> Result<f32, BadInput> {
        let Some(vocabulary) = self.vocabulary(j) else {
            return raw.map_or(Ok(f32::NAN), |raw| json_number(raw, feature));
        };
        let text = raw.map_or("null", RawValue::get);
        let value = match text {
            "null" => None,
            "true" | "false" => Some(text.to_string()),
            _ => Some(serde_json::from_str::<String>(text).map_err(|_| BadInput::WrongKind {
                feature: feature(),
                detail: format!("expected text or true/false, got {}", truncate(text)),
            })?),
        };
        Ok(code(vocabulary, value.as_deref(), &mut unknown[j]))
    }

    fn decode_csv(&self, payload: &[u8], expected: usize) -> Result<Decoded, BadInput> {
        let unparseable = |detail: String| BadInput::Unparseable { format: "CSV", detail };
        let text = std::str::from_utf8(payload).map_err(|e| unparseable(e.to_string()))?;
        let line = text.trim_end_matches(['\r', '\n']);
        if line.contains('\n') {
            return Err(unparseable("more than one line".into()));
        }
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
        let record = match reader.records().next() {
            Some(Ok(record)) => record,
            Some(Err(e)) => return Err(unparseable(e.to_string())),
            None => return Err(unparseable("empty line".into())),
        };
        if record.len() != self.csv_columns.len() {
            // The columns carry the features; a line with another count cannot be matched to them.
            return Err(BadInput::WrongDimension { expected: self.csv_columns.len(), got: record.len() });
        }
        debug_assert_eq!(self.csv_positions.len(), expected);
        let mut unknown = self.no_unknown();
        let values = self
            .csv_positions
            .iter()
            .enumerate()
            .map(|(j, &position)| {
                // A category's field as it is (an empty one is NULL, as the CLI's CSV reader has it).
                if let Some(vocabulary) = self.vocabulary(j) {
                    let value = Some(&record[position]).filter(|v| !v.is_empty());
                    return Ok(code(vocabulary, value, &mut unknown[j]));
                }
                let text = record[position].trim();
                let feature = &self.csv_columns[position];
                if text.is_empty() {
                    return Ok(f32::NAN);
                }
                let value: f64 = text.parse().map_err(|_| BadInput::NonNumeric {
                    feature: feature.clone(),
                    detail: format!("'{}' is not a number", truncate(text)),
                })?;
                finite(value as f32, feature, 0)
            })
            .collect::<Result<_, _>>()?;
        let record = InputRecord::Csv(record.iter().map(str::to_string).collect());
        Ok(Decoded { values, rows: 1, record, unknown })
    }

    fn decode_arrow(&self, payload: &[u8], expected: usize) -> Result<Decoded, BadInput> {
        let damaged = |detail: String| BadInput::Unparseable { format: "Arrow IPC", detail };
        crate::io::contain::contain(|| self.read_arrow(payload, expected), damaged)
    }

    fn read_arrow(&self, payload: &[u8], expected: usize) -> Result<Decoded, BadInput> {
        let unparseable = |detail: String| BadInput::Unparseable { format: "Arrow IPC", detail };
        // Decoded without trusting the lengths inside the message (see `io::ipc`).
        let (schema, batches) = crate::io::ipc::decode_ipc(arrow::buffer::Buffer::from(payload.to_vec()))
            .map_err(|e| unparseable(e.to_string()))?;
        let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| unparseable(e.to_string()))?;
        let bad = |e: crate::AutoencError| match e {
            crate::AutoencError::UnknownColumn { name, .. } => BadInput::NoFeatures { expected: name },
            crate::AutoencError::NonNumericColumn { name, dtype } => {
                BadInput::NonNumeric { feature: name, detail: dtype }
            }
            crate::AutoencError::OutOfF32Range { feature, row, .. } => BadInput::Infinite { feature, row },
            crate::AutoencError::TimeColumn { name, dtype } => {
                BadInput::NonNumeric { feature: name, detail: format!("{dtype}, a time column") }
            }
            crate::AutoencError::NotCategorical { name, dtype } => BadInput::WrongKind {
                feature: name,
                detail: format!("expected text, booleans or a dictionary, got {dtype}"),
            },
            other => unparseable(other.to_string()),
        };
        let (matrix, unknown) = if self.kinds.is_empty() {
            (feature_matrix(&batch, &FeatureSelection::Columns(self.fields.clone())).map_err(bad)?.0, Vec::new())
        } else {
            model_features(&batch, &self.fields, &self.kinds).map_err(bad)?
        };
        debug_assert_eq!(matrix.ncols(), expected);
        for (row, values) in matrix.rows().into_iter().enumerate() {
            if let Some(j) = values.iter().position(|v| v.is_infinite()) {
                return Err(BadInput::Infinite { feature: self.fields[j].clone(), row });
            }
        }
        let rows = matrix.nrows();
        Ok(Decoded { values: matrix.into_raw_vec_and_offset().0, rows, record: InputRecord::Arrow(batch), unknown })
    }
}

/// A category's code in `vocabulary`, counting a value outside it in `unknown`.
fn code(vocabulary: &Vocabulary, value: Option<&str>, unknown: &mut u64) -> f32 {
    *unknown += u64::from(value.is_some_and(|v| vocabulary.is_unknown(v)));
    vocabulary.code(value) as f32
}

/// A JSON value as a feature: a number (finite in f32), or null for a missing value.
fn json_number(raw: &RawValue, feature: impl Fn() -> String) -> Result<f32, BadInput> {
    let text = raw.get();
    if text == "null" {
        return Ok(f32::NAN);
    }
    let value: f64 = serde_json::from_str(text).map_err(|_| BadInput::NonNumeric {
        feature: feature(),
        detail: format!("{} is not a number", truncate(text)),
    })?;
    finite(value as f32, &feature(), 0)
}

/// Numbers beyond f32's range become infinities, which the model refuses.
fn finite(value: f32, feature: &str, row: usize) -> Result<f32, BadInput> {
    if value.is_infinite() { Err(BadInput::Infinite { feature: feature.to_string(), row }) } else { Ok(value) }
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= 40 {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(40).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(format: InputFormat, features_field: Option<&str>) -> Decoder {
        let config = StreamConfig {
            input_format: format,
            features_field: features_field.map(str::to_string),
            ..Default::default()
        };
        Decoder::new(&config, &["a".into(), "b".into()], &[]).unwrap()
    }

    #[test]
    fn json_by_field_names_with_nulls_absent_fields_and_passthrough() {
        let d = decoder(InputFormat::Json, None);
        let out = d.decode(br#"{"id": 7, "a": 1.5, "b": -2, "tag": "x"}"#, 2).unwrap();
        assert_eq!(out.values, vec![1.5, -2.0]);
        assert!(matches!(out.record, InputRecord::Json { splice: true }));
        let out = d.decode(br#"{"a": null}"#, 2).unwrap();
        assert!(out.values[0].is_nan() && out.values[1].is_nan(), "null and absent are missing values");
        let out = d.decode(br#"{"a": 1, "b": 2, "score": 9}"#, 2).unwrap();
        assert!(matches!(out.record, InputRecord::Json { splice: false }), "an output field already present");
    }

    #[test]
    fn json_array_field() {
        let d = decoder(InputFormat::Json, Some("f"));
        assert_eq!(d.decode(br#"{"f": [1, 2.5], "k": {"x": 1}}"#, 2).unwrap().values, vec![1.0, 2.5]);
        assert_eq!(d.decode(br#"{"f": [1, 2, 3]}"#, 2).unwrap_err(), BadInput::WrongDimension { expected: 2, got: 3 });
        assert_eq!(d.decode(br#"{"g": [1, 2]}"#, 2).unwrap_err().code(), "no_features");
        assert_eq!(d.decode(br#"{"f": "1,2"}"#, 2).unwrap_err().code(), "non_numeric");
    }

    /// The one-pass reader takes healthy messages and gives exactly the full reader's values.
    #[test]
    fn one_pass_and_full_reader_agree() {
        let payloads: Vec<String> = (0..200)
            .map(|i| {
                let a = ((i * 7919) % 1000) as f64 / 7.0 - 70.0;
                let b = (i as f64 + 0.5).powi(7) * if i % 2 == 0 { 1.0 } else { -1e-30 };
                match i % 4 {
                    0 => format!(r#"{{"id": {i}, "f": [{a}, {b:e}], "note": "row {i}"}}"#),
                    1 => format!(r#"{{"f": [{a:.3}, null], "score": {b}}}"#),
                    2 => format!(r#"{{"a": {a}, "b": {b:e}, "nested": {{"f": [1]}}}}"#),
                    _ => format!(r#"{{"b": {i}, "extra": [true, null], "s": "tab\t\u00e9 \"quoted\""}}"#),
                }
            })
            .collect();
        // Messages only the full reader takes or refuses: it must be the one to judge them.
        let unusual: [&[u8]; 5] = [
            b"{\"f\": [1, 2], \"note\": \"\xff\"}",
            br#"{"f": [1, 2], "f": [3, 4], "a": 1, "a": 5, "b": 2}"#,
            br#"{"\u0066": [1, 2], "\u0061": 1, "b": 2}"#,
            br#"{"f": [1, 2], "score": 1, "score": 2, "a": 1}"#,
            br#"{"f": [1, 1e39], "a": 1e39}"#,
        ];
        for (layout_field, decoder) in
            [(true, decoder(InputFormat::Json, Some("f"))), (false, decoder(InputFormat::Json, None))]
        {
            let mut taken = 0;
            let candidates = payloads.iter().map(|p| (p.as_bytes(), true)).chain(unusual.map(|p| (p, false)));
            for (payload, healthy) in candidates {
                let full = decoder.decode_json_fully(payload, 2);
                let read = read_features(payload, decoder.json_layout.as_ref().unwrap(), 2);
                let through_decode = decoder.decode(payload, 2);
                let text = String::from_utf8_lossy(payload);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                match (&read, &full) {
                    (Some(read), Ok(full)) => {
                        taken += 1;
                        assert_eq!(bits(&read.values), bits(&full.values), "{text}");
                        let splice = matches!(full.record, InputRecord::Json { splice: true });
                        assert_eq!(read.splice, splice, "{text}");
                    }
                    (Some(read), Err(full)) => {
                        panic!("{text}: the one-pass reader took {read:?}; the full reader: {full}")
                    }
                    (None, Ok(_)) => assert!(!healthy, "a healthy message the one-pass reader gave up on: {text}"),
                    (None, Err(_)) => {}
                }
                // Whichever reader answered, `decode` gives the full reader's verdict.
                match (through_decode, full) {
                    (Ok(a), Ok(b)) => assert_eq!(bits(&a.values), bits(&b.values), "{text}"),
                    (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
                    (a, b) => panic!("{text}: decode {a:?}, full reader {b:?} (array layout: {layout_field})"),
                }
            }
            assert!(taken >= 100, "the one-pass reader took only {taken} messages (array layout: {layout_field})");
        }
    }

    /// The one-pass reader parses numbers with its own parser (fast-float2), the full reader with
    /// serde_json: the two must give the same bits for every number, the hard ones first — 17-digit
    /// shortest representations, halfway cases, subnormals, f32's overflow edge, integers beyond u64,
    /// -0 — then tokens too long for the one-pass reader (it must leave them to the full reader), then
    /// random doubles and singles of either sign around f32's range and random decimals of 1 to 25 digits.
    #[test]
    fn one_pass_and_full_reader_parse_numbers_alike() {
        use crate::stream::json_features::MAX_NUMBER_LEN;
        use rand::{Rng, SeedableRng};
        let mut numbers: Vec<String> = [
            "0",
            "-0",
            "-0.0",
            "0e5",
            "1E+2",
            "1e-2",
            "12345678901234567890123",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "9007199254740993",
            "2.2250738585072011e-308",
            "4.9e-324",
            "1e-400",
            "1.401298464324817e-45",
            "7.006492321624085e-46",
            "3.4028235e38",
            "3.4028235677973366e38",
            "-0.12345678901234567",
            "0.30000000000000004",
            "1.00000005960464477539062",
            "1.000000059604644775390625",
            "1.00000005960464477539063",
            "1.0000000596046448",
            "0.1e1",
            "123456789e-20",
        ]
        .map(String::from)
        .to_vec();
        // Tokens past the one-pass reader's length limit, where fast-float2 caps the exponent: it must
        // give up on them and leave them to the full reader (1.5, and "out of range").
        let zeros = |n: usize| "0".repeat(n);
        numbers.push(format!("0.{}15e655360", zeros(655_359)));
        numbers.push(format!("0.{}1e700000", zeros(599_999)));
        numbers.push(format!("1.{}", "1234567890".repeat(12)));
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        for _ in 0..3000 {
            // Doubles and singles of either sign whose magnitude lies within f32's range and a little
            // beyond: the numbers a feature holds, and the edges where narrowing overflows or underflows.
            let sign = u64::from(rng.random::<bool>()) << 63;
            let exponent = (rng.random_range(-155i64..130) + 1023) as u64;
            let double = f64::from_bits(sign | exponent << 52 | rng.random::<u64>() >> 12);
            numbers.push(format!("{double:?}"));
            numbers.push(format!("{double:.17e}"));
            let single = f32::from_bits(rng.random::<u32>());
            if single.is_finite() {
                numbers.push(format!("{single:e}"));
            }
            let digits: String =
                (0..rng.random_range(1..26)).map(|_| char::from(b'0' + rng.random_range(0..10))).collect();
            let sign = if rng.random::<bool>() { "-" } else { "" };
            numbers.push(format!("{sign}0.{digits}e{}", rng.random_range(-60..60)));
        }
        let (array, fields) = (decoder(InputFormat::Json, Some("f")), decoder(InputFormat::Json, None));
        let mut compared = 0;
        for x in &numbers {
            for (d, payload) in
                [(&array, format!("{{\"f\": [ {x} ,\n{x}]}}")), (&fields, format!("{{\"a\":{x} , \"b\": {x}}}"))]
            {
                let full = d.decode_json_fully(payload.as_bytes(), 2);
                let read = read_features(payload.as_bytes(), d.json_layout.as_ref().unwrap(), 2);
                match (read, full) {
                    (Some(read), Ok(full)) => {
                        compared += 1;
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&read.values), bits(&full.values), "{payload}");
                    }
                    (None, Err(_)) => {}
                    (None, Ok(_)) if x.len() > MAX_NUMBER_LEN => {}
                    (read, full) => {
                        let shown: String = payload.chars().take(200).collect();
                        panic!("{shown}: one-pass {read:?}, full reader {full:?}")
                    }
                }
            }
        }
        assert!(compared > 20_000, "only {compared} numbers were read by both");
    }

    #[test]
    fn json_bad_messages_have_reasons() {
        let d = decoder(InputFormat::Json, None);
        assert_eq!(d.decode(b"{\"a\": 1,", 2).unwrap_err().code(), "unparseable");
        assert_eq!(d.decode(b"[1, 2]", 2).unwrap_err().code(), "unparseable");
        let err = d.decode(br#"{"a": "high", "b": 1}"#, 2).unwrap_err();
        assert_eq!(err, BadInput::NonNumeric { feature: "a".into(), detail: "\"high\" is not a number".into() });
        let err = d.decode(br#"{"a": 1e39, "b": 1}"#, 2).unwrap_err();
        assert_eq!(err, BadInput::Infinite { feature: "a".into(), row: 0 });
        assert_eq!(d.decode(br#"{"x": 1}"#, 2).unwrap_err().code(), "no_features");
    }

    #[test]
    fn csv_lines() {
        let config = StreamConfig {
            input_format: InputFormat::Csv,
            csv_columns: vec!["id".into(), "b".into(), "a".into()],
            ..Default::default()
        };
        let d = Decoder::new(&config, &["a".into(), "b".into()], &[]).unwrap();
        let out = d.decode(b"x7,2,1\n", 2).unwrap();
        assert_eq!(out.values, vec![1.0, 2.0], "features are taken by name, in the model's order");
        assert!(d.decode(b"x7,,1", 2).unwrap().values[1].is_nan());
        assert_eq!(d.decode(b"x7,2", 2).unwrap_err(), BadInput::WrongDimension { expected: 3, got: 2 });
        assert_eq!(d.decode(b"x7,two,1", 2).unwrap_err().code(), "non_numeric");
        assert_eq!(d.decode(b"x7,inf,1", 2).unwrap_err().code(), "infinite");
        assert_eq!(d.decode(b"a,1,2\nb,3,4", 2).unwrap_err().code(), "unparseable");
        let missing =
            StreamConfig { input_format: InputFormat::Csv, csv_columns: vec!["a".into()], ..Default::default() };
        assert!(Decoder::new(&missing, &["a".into(), "b".into()], &[]).unwrap_err().contains("'b'"));
    }

    /// A decoder for features `proto` (categorical: tcp, udp), `flag` (categorical: true, false) and
    /// `v` (numeric).
    fn mixed_decoder(format: InputFormat, features_field: Option<&str>) -> Decoder {
        let config = StreamConfig {
            input_format: format,
            features_field: features_field.map(str::to_string),
            ..Default::default()
        };
        let kinds = vec![
            FeatureKind::Categorical { vocabulary: Vocabulary::new(vec!["tcp".into(), "udp".into()]).unwrap() },
            FeatureKind::Categorical { vocabulary: Vocabulary::new(vec!["true".into(), "false".into()]).unwrap() },
            FeatureKind::Numeric,
        ];
        Decoder::new(&config, &["proto".into(), "flag".into(), "v".into()], &kinds).unwrap()
    }

    /// The core's codes for the same values, from an Arrow batch (what the CLI and SQL code).
    fn core_codes(protos: Vec<Option<&str>>, flags: Vec<Option<bool>>, values: Vec<Option<f64>>) -> Vec<f32> {
        use arrow::array::{BooleanArray, Float64Array, StringArray};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            ("proto", Arc::new(StringArray::from(protos)) as _),
            ("flag", Arc::new(BooleanArray::from(flags)) as _),
            ("v", Arc::new(Float64Array::from(values)) as _),
        ])
        .unwrap();
        let d = mixed_decoder(InputFormat::Json, None);
        let names = ["proto".to_string(), "flag".into(), "v".into()];
        model_features(&batch, &names, &d.kinds).unwrap().0.into_raw_vec_and_offset().0
    }

    #[test]
    fn categorical_features_code_from_json_csv_and_arrow_as_the_core_does() {
        let d = mixed_decoder(InputFormat::Json, None);
        let out = d.decode(br#"{"proto": "udp", "flag": true, "v": 2.5}"#, 3).unwrap();
        assert_eq!(out.values, core_codes(vec![Some("udp")], vec![Some(true)], vec![Some(2.5)]));
        assert_eq!(out.unknown, vec![0, 0, 0]);
        // A value never seen is other (and counted), null and an absent field are the NULL category.
        // An empty string is a value like any other (here one never seen), not NULL and not an error.
        let out = d.decode(br#"{"proto": "", "flag": false, "v": 1}"#, 3).unwrap();
        assert_eq!(out.unknown, vec![1, 0, 0]);
        let out = d.decode(br#"{"proto": "icmp", "flag": null}"#, 3).unwrap();
        let want = core_codes(vec![Some("icmp")], vec![None], vec![None]);
        assert_eq!(&out.values[..2], &want[..2]);
        assert!(out.values[2].is_nan());
        assert_eq!(out.unknown, vec![1, 0, 0]);
        // The array form takes the same values by position.
        let a = mixed_decoder(InputFormat::Json, Some("x"));
        let out = a.decode(br#"{"x": ["udp", false, 1]}"#, 3).unwrap();
        assert_eq!(out.values, core_codes(vec![Some("udp")], vec![Some(false)], vec![Some(1.0)]));
        // CSV fields; an empty one is the NULL category.
        let c = mixed_decoder(InputFormat::Csv, None);
        let out = c.decode(b"tcp,,3", 3).unwrap();
        assert_eq!(out.values, core_codes(vec![Some("tcp")], vec![None], vec![Some(3.0)]));
        let out = c.decode(b"gre,true,3", 3).unwrap();
        assert_eq!(out.unknown, vec![1, 0, 0]);
        // Arrow string and boolean columns, two rows.
        use arrow::array::{BooleanArray, Float64Array, StringArray};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            ("v", Arc::new(Float64Array::from(vec![1.0, 2.0])) as _),
            ("proto", Arc::new(StringArray::from(vec![Some("udp"), Some("sctp")])) as _),
            ("flag", Arc::new(BooleanArray::from(vec![Some(true), None])) as _),
        ])
        .unwrap();
        let r = mixed_decoder(InputFormat::Arrow, None);
        let out = r.decode(&crate::stream::encode::ipc_bytes(&batch).unwrap(), 3).unwrap();
        let want = core_codes(vec![Some("udp"), Some("sctp")], vec![Some(true), None], vec![Some(1.0), Some(2.0)]);
        assert_eq!(out.values, want);
        assert_eq!(out.unknown, vec![1, 0, 0]);
    }

    #[test]
    fn bad_categorical_values_are_dead_letters_with_reasons() {
        let d = mixed_decoder(InputFormat::Json, None);
        let bad = d.decode(br#"{"proto": 6, "flag": true, "v": 1}"#, 3).unwrap_err();
        assert_eq!(bad.code(), "wrong_kind");
        assert!(bad.to_string().contains("feature 'proto' is categorical: expected text or true/false, got 6"));
        assert_eq!(d.decode(br#"{"proto": ["tcp"], "v": 1}"#, 3).unwrap_err().code(), "wrong_kind");
        // Text that is not UTF-8, in JSON and in CSV.
        assert_eq!(d.decode(b"{\"proto\": \"\xff\xfe\", \"v\": 1}", 3).unwrap_err().code(), "unparseable");
        let c = mixed_decoder(InputFormat::Csv, None);
        assert_eq!(c.decode(b"\xff\xfe,true,1", 3).unwrap_err().code(), "unparseable");
        // An Arrow number column where a category belongs.
        use arrow::array::Float64Array;
        use std::sync::Arc;
        let numbers = RecordBatch::try_from_iter([
            ("proto", Arc::new(Float64Array::from(vec![1.0])) as _),
            ("flag", Arc::new(Float64Array::from(vec![1.0])) as _),
            ("v", Arc::new(Float64Array::from(vec![1.0])) as _),
        ])
        .unwrap();
        let r = mixed_decoder(InputFormat::Arrow, None);
        let bad = r.decode(&crate::stream::encode::ipc_bytes(&numbers).unwrap(), 3).unwrap_err();
        assert_eq!(bad.code(), "wrong_kind", "{bad}");
    }

    #[test]
    fn arrow_ipc_messages() {
        use arrow::array::{Float64Array, Int32Array, StringArray};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            ("b", Arc::new(Int32Array::from(vec![Some(2), None])) as _),
            ("a", Arc::new(Float64Array::from(vec![1.0, 3.0])) as _),
            ("id", Arc::new(StringArray::from(vec!["p", "q"])) as _),
        ])
        .unwrap();
        let d = decoder(InputFormat::Arrow, None);
        let out = d.decode(&crate::stream::encode::ipc_bytes(&batch).unwrap(), 2).unwrap();
        assert_eq!(out.rows, 2);
        assert_eq!(&out.values[..3], &[1.0, 2.0, 3.0]);
        assert!(out.values[3].is_nan());
        assert_eq!(d.decode(b"not arrow", 2).unwrap_err().code(), "unparseable");
        let text = RecordBatch::try_from_iter([
            ("a", Arc::new(StringArray::from(vec!["1"])) as _),
            ("b", Arc::new(StringArray::from(vec!["1"])) as _),
        ])
        .unwrap();
        assert_eq!(d.decode(&crate::stream::encode::ipc_bytes(&text).unwrap(), 2).unwrap_err().code(), "non_numeric");
        let infinite = RecordBatch::try_from_iter([
            ("a", Arc::new(Float64Array::from(vec![1.0, f64::INFINITY])) as _),
            ("b", Arc::new(Float64Array::from(vec![1.0, 1.0])) as _),
        ])
        .unwrap();
        assert_eq!(
            d.decode(&crate::stream::encode::ipc_bytes(&infinite).unwrap(), 2).unwrap_err(),
            BadInput::Infinite { feature: "a".into(), row: 1 }
        );
    }

    /// Fuzzing that searches: JSON messages built from a grammar of the fields, numbers, nesting,
    /// escapes and damage that streams carry, then randomly mutated bytes. For every message, in both
    /// layouts: decoding never panics, and whenever the one-pass reader takes a message, the full reader
    /// takes it too with the same bits and the same splice decision. The default budget runs in CI;
    /// `PROPTEST_CASES=200000 cargo test --release -p autoenc --lib stream::decode::tests::fuzz` searches
    /// longer.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn number() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<f64>().prop_map(|v| format!("{v:?}")),
                any::<f32>().prop_map(|v| format!("{v:e}")),
                any::<i64>().prop_map(|v| v.to_string()),
                "-?[0-9]{1,30}(\\.[0-9]{0,30})?([eE][+-]?[0-9]{1,4})?",
                Just("null".to_string()),
                Just("1e39".to_string()),
                Just("-0".to_string()),
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                number(),
                "\"([a-z ]|\\\\n|\\\\\"|\\\\u00e9|é)*\"",
                Just("true".to_string()),
                Just("[]".to_string()),
                Just("{}".to_string()),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                    proptest::collection::vec(("[a-z]{1,2}", inner), 0..3).prop_map(|v| {
                        let fields: Vec<String> = v.into_iter().map(|(k, x)| format!("\"{k}\":{x}")).collect();
                        format!("{{{}}}", fields.join(","))
                    }),
                ]
            })
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("f".to_string()),
                Just("a".to_string()),
                Just("b".to_string()),
                Just("score".to_string()),
                Just("\\u0061".to_string()),
                "[a-z]{1,3}",
            ]
        }

        fn feature_value() -> impl Strategy<Value = String> {
            prop_oneof![
                number(),
                proptest::collection::vec(number(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
                value(),
            ]
        }

        fn message() -> impl Strategy<Value = Vec<u8>> {
            let random = proptest::collection::vec((key(), feature_value(), " ?"), 0..6);
            // Mostly healthy: the features present (as numbers, an array, or both), other fields around.
            let others = proptest::collection::vec(("[c-z]{1,3}", value()), 0..3);
            let healthy =
                (number(), number(), proptest::collection::vec(number(), 2), others).prop_map(|(a, b, f, others)| {
                    let mut fields = vec![
                        ("a".to_string(), a),
                        ("b".to_string(), b),
                        ("f".to_string(), format!("[{}]", f.join(","))),
                    ];
                    fields.extend(others);
                    fields.into_iter().map(|(k, v)| (k, v, String::new())).collect::<Vec<_>>()
                });
            let object = prop_oneof![1 => random, 2 => healthy].prop_map(|fields| {
                let body: Vec<String> = fields.into_iter().map(|(k, v, space)| format!("\"{k}\":{space}{v}")).collect();
                format!("{{{}}}", body.join(", ")).into_bytes()
            });
            let damage = prop_oneof![
                2 => Just(Vec::new()),
                1 => proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..3),
            ];
            (object, damage).prop_map(|(mut bytes, damage)| {
                for (at, byte, kind) in damage {
                    if bytes.is_empty() {
                        break;
                    }
                    let i = at.index(bytes.len());
                    match kind {
                        0 => bytes[i] = byte,
                        1 => bytes.truncate(i),
                        _ => bytes.insert(i, byte),
                    }
                }
                bytes
            })
        }

        /// The grammar reaches both sides: messages the one-pass reader takes, and messages only the
        /// full reader judges (otherwise the property below would hold vacuously).
        #[test]
        fn the_message_grammar_reaches_both_readers() {
            use proptest::strategy::ValueTree;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let decoder = decoder(InputFormat::Json, None);
            let (mut taken, mut refused) = (0, 0);
            for _ in 0..2000 {
                let payload = message().new_tree(&mut runner).unwrap().current();
                taken += usize::from(read_features(&payload, decoder.json_layout.as_ref().unwrap(), 2).is_some());
                refused += usize::from(decoder.decode_json_fully(&payload, 2).is_err());
            }
            assert!(taken > 100 && refused > 100, "taken {taken}, refused {refused} of 2000");
        }

        proptest! {
            #[test]
            fn one_pass_reader_never_disagrees_with_the_full_reader(payload in message()) {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                for decoder in [decoder(InputFormat::Json, Some("f")), decoder(InputFormat::Json, None)] {
                    let full = decoder.decode_json_fully(&payload, 2);
                    let read = read_features(&payload, decoder.json_layout.as_ref().unwrap(), 2);
                    let through_decode = decoder.decode(&payload, 2);
                    if let Some(read) = &read {
                        let full = full.as_ref().map_err(|e| e.to_string());
                        prop_assert!(full.is_ok(), "one-pass took {:?}, full refused: {:?}", read, full);
                        let full = full.unwrap();
                        prop_assert_eq!(bits(&read.values), bits(&full.values));
                        prop_assert_eq!(read.splice, matches!(full.record, InputRecord::Json { splice: true }));
                    }
                    match (&through_decode, &full) {
                        (Ok(a), Ok(b)) => prop_assert_eq!(bits(&a.values), bits(&b.values)),
                        (Err(a), Err(b)) => prop_assert_eq!(a, b),
                        (a, b) => prop_assert!(false, "decode {:?} but the full reader {:?}", a, b),
                    }
                }
            }

            #[test]
            fn csv_and_arrow_decoding_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
                for format in [InputFormat::Csv, InputFormat::Arrow] {
                    let _verdict = decoder(format, None).decode(&payload, 2);
                }
            }

            /// A real Arrow message with damaged bytes: a verdict, never a panic that escapes (the
            /// Arrow reader itself panics on some, which `decode` contains).
            #[test]
            fn damaged_arrow_messages_get_a_verdict(
                edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            ) {
                use arrow::array::{Float64Array, Int32Array};
                use std::sync::Arc;
                let batch = RecordBatch::try_from_iter([
                    ("a", Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)])) as _),
                    ("b", Arc::new(Int32Array::from(vec![Some(2), None, Some(4)])) as _),
                ])
                .unwrap();
                let mut payload = crate::stream::encode::ipc_bytes(&batch).unwrap();
                for (at, byte) in edits {
                    let i = at.index(payload.len());
                    payload[i] = byte;
                }
                let verdict = std::panic::catch_unwind(|| decoder(InputFormat::Arrow, None).decode(&payload, 2));
                prop_assert!(verdict.is_ok(), "decode panicked");
            }
        }
    }
}
