//! Fuzzing that searches rather than samples, over the two readers of untrusted files: the model
//! loader (bytes in, a model or a clean error out) and the table reader (CSV and Arrow bytes in, a
//! feature matrix or a clean error out). proptest shrinks what it finds to a smallest failing input.
//!
//! The default budget (256 cases a property, or `PROPTEST_CASES`) runs with the test suite. A longer
//! search, for maintainers:
//! `PROPTEST_CASES=100000 cargo test --release -p autoenc --test fuzz_inputs`.

use autoenc::io::model_file::{ModelMetadata, metadata_checksum};
use autoenc::io::table::{FeatureSelection, feature_matrix, read_table};
use autoenc::{Autoencoder, LatentSize, Variant};
use ndarray::Array2;
use proptest::prelude::*;
use safetensors::tensor::{SafeTensors, TensorView};
use std::collections::HashMap;
use std::sync::OnceLock;

/// One small model of each kind the mutations start from.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let x = Array2::from_shape_fn((120, 5), |(i, j)| ((i * 13 + j * 7) % 17) as f32 - j as f32);
        [Variant::Plain, Variant::Variational { beta: 1.0 }]
            .into_iter()
            .map(|variant| {
                Autoencoder::params()
                    .variant(variant)
                    .latent(LatentSize::Fixed(2))
                    .epochs(1)
                    .record_timings(false)
                    .fit(x.view())
                    .and_then(|m| m.to_bytes())
                    .expect("seed model")
            })
            .collect()
    })
}

/// Byte edits: overwrite, truncate, insert, or copy a span elsewhere.
#[derive(Debug, Clone)]
enum Edit {
    Set(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
    Splice(prop::sample::Index, prop::sample::Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
        (any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(a, b, n)| Edit::Splice(a, b, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        if bytes.is_empty() {
            break;
        }
        match edit {
            Edit::Set(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            Edit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Edit::Insert(i, extra) => {
                let i = i.index(bytes.len());
                bytes.splice(i..i, extra.iter().copied());
            }
            Edit::Splice(from, to, n) => {
                let (from, to) = (from.index(bytes.len()), to.index(bytes.len()));
                let span: Vec<u8> = bytes[from..(from + *n as usize).min(bytes.len())].to_vec();
                bytes.splice(to..to, span);
            }
        }
    }
    bytes
}

/// Re-signs a model file after its metadata was changed by `change`, as a forger would.
fn forge(bytes: &[u8], change: impl FnOnce(&mut ModelMetadata)) -> Vec<u8> {
    let container = SafeTensors::deserialize(bytes).expect("seed parses");
    let (_, header) = SafeTensors::read_metadata(bytes).expect("seed parses");
    let mut meta: ModelMetadata = serde_json::from_str(&header.metadata().as_ref().unwrap()["autoenc"]).unwrap();
    change(&mut meta);
    let mut text = serde_json::to_string(&meta).unwrap();
    if let Some(crc) = metadata_checksum(&text) {
        let at = text.len() - 10;
        text.replace_range(at..at + 8, &format!("{crc:08x}"));
    }
    let views: Vec<(String, TensorView)> = container.tensors();
    safetensors::tensor::serialize(views, Some(HashMap::from([("autoenc".to_string(), text)]))).unwrap()
}

proptest! {
    /// Damaged bytes give a clean error, or — when the damage changed nothing that matters (e.g. the
    /// header's padding) — exactly the original model: never a panic, never a different model.
    #[test]
    fn damaged_model_files_are_refused_or_unchanged(
        seed in 0usize..2,
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let original = &seeds()[seed];
        let damaged = apply(original.clone(), &edits);
        if let Ok(model) = Autoencoder::from_bytes(&damaged) {
            prop_assert_eq!(&model.to_bytes().unwrap(), original, "a damaged file loaded as another model");
        }
    }

    /// Forged metadata (checksum recomputed) with arbitrary sizes, thresholds and names is refused
    /// cleanly or loads as a model whose every check holds; nothing panics or aborts on allocation.
    #[test]
    fn forged_metadata_never_panics(
        seed in 0usize..2,
        inputs in prop_oneof![Just(5usize), any::<usize>(), 0usize..10],
        latent in prop_oneof![Just(2usize), any::<usize>(), 0usize..10],
        hidden in proptest::collection::vec(prop_oneof![any::<usize>(), 0usize..40], 0..3),
        threshold in prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY)],
        sketch_count in prop_oneof![any::<usize>(), 0usize..2000],
        names in proptest::collection::vec("[a-c]{0,2}", 0..7),
    ) {
        let forged = forge(&seeds()[seed], |m| {
            m.architecture.inputs = inputs;
            m.architecture.latent = latent;
            m.architecture.encoder_hidden = hidden.clone();
            m.threshold.value = threshold;
            m.sketch_count = sketch_count;
            if !names.is_empty() {
                m.feature_names = names.clone();
            }
        });
        if let Ok(model) = Autoencoder::from_bytes(&forged) {
            prop_assert!(model.threshold().value.is_finite() && model.threshold().value >= 0.0);
            prop_assert_eq!(model.feature_names().len(), model.n_features());
            let x = Array2::from_elem((2, model.n_features()), 0.5f32);
            prop_assert!(model.score(x.view()).is_ok());
        }
    }

    /// Arbitrary CSV text: a matrix of finite-or-missing numbers with one column per numeric field, or a
    /// clean error — never a panic, and never an infinity from a number that is finite (`1e308` is
    /// beyond f32 and must be refused as such, not turned into an infinity).
    #[test]
    fn csv_tables_read_cleanly(
        header in proptest::collection::vec(prop_oneof!["[a-c]{0,2}", Just("\"x,y\"".to_string())], 1..5),
        rows in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    any::<f64>().prop_map(|v| v.to_string()),
                    any::<i64>().prop_map(|v| v.to_string()),
                    // Exponents of at most two digits: a literal beyond f64 (`1e999`) is read as an
                    // infinity by Arrow's CSV parser, and then reported as one.
                    "-?[0-9]{1,3}(\\.[0-9]{1,3})?(e[+-]?[0-9]{1,2})?",
                    Just(String::new()),
                    "[a-z\"]{0,3}",
                    Just("1e308".to_string()),
                    Just("-3.5e300".to_string()),
                ],
                0..6,
            ),
            0..8,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut text = header.join(",");
        text.push('\n');
        for row in &rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        std::fs::write(&path, &text).unwrap();
        if let Ok(batch) = read_table(&path)
            && let Ok((matrix, names)) = feature_matrix(&batch, &FeatureSelection::AllNumericExcept(vec![]))
        {
            prop_assert_eq!(matrix.ncols(), names.len());
            prop_assert!(matrix.iter().all(|v| !v.is_infinite()), "an infinity appeared: {}", text);
        }
    }

    /// A damaged Parquet file (a real one with byte edits): a table or a clean error.
    #[test]
    fn damaged_parquet_files_read_cleanly(edits in proptest::collection::vec(edit(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        std::fs::write(&path, apply(parquet_file().clone(), &edits)).unwrap();
        if let Ok(batch) = read_table(&path) {
            let _verdict = feature_matrix(&batch, &FeatureSelection::AllNumericExcept(vec![]));
        }
    }

    /// A damaged Arrow IPC file (a real one with byte edits): a table or a clean error.
    #[test]
    fn damaged_arrow_files_read_cleanly(edits in proptest::collection::vec(edit(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.arrow");
        std::fs::write(&path, apply(arrow_file().clone(), &edits)).unwrap();
        if let Ok(batch) = read_table(&path) {
            let _verdict = feature_matrix(&batch, &FeatureSelection::AllNumericExcept(vec![]));
        }
    }
}

/// A small Parquet file of the same table.
fn parquet_file() -> &'static Vec<u8> {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let arrow = dir.path().join("t.arrow");
        std::fs::write(&arrow, arrow_file()).unwrap();
        let batch = read_table(&arrow).unwrap();
        let path = dir.path().join("t.parquet");
        autoenc::io::table::write_table(&path, &batch).unwrap();
        std::fs::read(&path).unwrap()
    })
}

/// A small Arrow IPC file: a float, an integer and a text column with nulls.
fn arrow_file() -> &'static Vec<u8> {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        use arrow::array::{Float64Array, Int32Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Float64Array::from(vec![Some(1.5), None, Some(-2.0)])) as _),
            ("b", Arc::new(Int32Array::from(vec![1, 2, 3])) as _),
            ("c", Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])) as _),
        ])
        .unwrap();
        let mut bytes = Vec::new();
        let mut writer = arrow::ipc::writer::FileWriter::try_new(&mut bytes, &batch.schema()).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        drop(writer);
        bytes
    })
}

/// Found by the stream's Arrow fuzzing: a damaged message declared a huge row count over a column of
/// type Null (which has no buffers to contradict it), and the feature matrix was allocated for it
/// before the column's type was checked — an abort, not an error.
#[test]
fn a_null_column_with_a_huge_declared_length_is_refused_without_allocating() {
    use arrow::array::{ArrayRef, NullArray, RecordBatch};
    use std::sync::Arc;
    let batch = RecordBatch::try_from_iter([("a", Arc::new(NullArray::new(1 << 60)) as ArrayRef)]).unwrap();
    let error = feature_matrix(&batch, &FeatureSelection::Columns(vec!["a".into()])).unwrap_err();
    assert!(error.to_string().contains("not numeric"), "{error}");
}
