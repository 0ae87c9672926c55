//! `autoenc encode | reconstruct | score`: read rows, run the model, write the rows back with new columns.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use autoenc::Autoencoder;
use autoenc::io::arrow_matrix::{self, list_matrix};
use autoenc::io::atomic::same_file;
use autoenc::io::table::{FeatureSelection, feature_matrix, read_table, write_table};
use ndarray::{Array2, ArrayView2};

use super::{FEATURES_COLUMN_KEY, FeatureArgs, load_model};

#[derive(clap::Args, Debug)]
pub struct InferArgs {
    /// The model file.
    pub model: PathBuf,
    /// Rows to process: .parquet, .csv or .arrow/.ipc/.feather.
    pub input: PathBuf,
    /// Output file (.parquet, .csv or .arrow); CSV spreads list columns over `name_0, name_1, ...`.
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Threads to use (results do not depend on it) [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

impl InferArgs {
    /// Refuses an output path that is the input or the model: the output replaces its path only once
    /// complete, but reading and replacing one file in one command is never what the user meant.
    pub fn check_paths(&self) -> anyhow::Result<()> {
        for (what, path) in [("input", &self.input), ("model", &self.model)] {
            if same_file(&self.out, path) {
                bail!("--out {} is the {what} file; write the output to another path", self.out.display());
            }
        }
        Ok(())
    }
}

/// The thread count to use: the flag, or every core.
pub fn threads(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub common: InferArgs,
    /// Override the model's threshold for `is_anomaly`.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Add an `explanation` column with the K features of largest error (`name:error;...`).
    #[arg(long, value_name = "K")]
    pub explain: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
pub enum Output {
    Embedding,
    Reconstruction,
}

/// The model's features out of `batch`: the flags if given, else the model's own columns.
pub fn model_features(model: &Autoencoder, batch: &RecordBatch, args: &FeatureArgs) -> anyhow::Result<Array2<f32>> {
    Ok(counted_model_features(model, batch, args)?.0)
}

/// Each categorical feature's count of values outside its vocabulary (scored as "other"), by name.
pub type UnknownCounts = Vec<(String, u64)>;

/// [`model_features`], with the counts of values outside the vocabularies; empty for a numeric model.
pub fn counted_model_features(
    model: &Autoencoder,
    batch: &RecordBatch,
    args: &FeatureArgs,
) -> anyhow::Result<(Array2<f32>, UnknownCounts)> {
    if batch.num_rows() == 0 {
        bail!("empty input: there are no rows");
    }
    if model.has_categories() {
        if args.features_column.is_some() {
            bail!("this model has categorical features, which a list column of numbers cannot hold; name the columns");
        }
        let columns = args.features.clone().unwrap_or_else(|| model.feature_names().to_vec());
        if columns.len() != model.n_features() {
            bail!(
                "wrong dimension: the model expects {} features, --features names {}",
                model.n_features(),
                columns.len()
            );
        }
        let (matrix, unknown) = autoenc::io::table::model_features(batch, &columns, model.feature_kinds())?;
        let counted = model.feature_kinds().iter().zip(model.feature_names()).zip(unknown);
        let counts = counted.filter(|((kind, _), _)| kind.vocabulary().is_some()).map(|((_, n), c)| (n.clone(), c));
        return Ok((matrix, counts.collect()));
    }
    let list_column = args
        .features_column
        .clone()
        .or_else(|| model.extra().get(FEATURES_COLUMN_KEY).and_then(|v| v.as_str()).map(str::to_string));
    let matrix = match (&args.features, list_column) {
        (Some(cols), _) => feature_matrix(batch, &FeatureSelection::Columns(cols.clone()))?.0,
        (None, Some(col)) => {
            let column =
                batch.column_by_name(&col).with_context(|| format!("column '{col}' not found in the input"))?;
            list_matrix(column, &col, Some(model.n_features()))?
        }
        (None, None) => feature_matrix(batch, &FeatureSelection::Columns(model.feature_names().to_vec()))?.0,
    };
    if matrix.ncols() != model.n_features() {
        bail!("wrong dimension: the model expects {} features, the input gives {}", model.n_features(), matrix.ncols());
    }
    Ok((matrix, Vec::new()))
}

/// The schema metadata key under which scoring outputs record values outside the vocabularies.
pub const UNKNOWN_CATEGORIES_KEY: &str = "autoenc.unknown_categories";

/// `batch` with the counts of values outside the vocabularies in its schema metadata (a JSON object
/// of feature name to count; Parquet and Arrow files keep it), and a line saying so when any was seen.
pub fn record_unknown(batch: RecordBatch, unknown: &[(String, u64)]) -> anyhow::Result<RecordBatch> {
    if unknown.is_empty() {
        return Ok(batch);
    }
    let seen: Vec<String> = unknown.iter().filter(|(_, c)| *c > 0).map(|(n, c)| format!("{n} {c}")).collect();
    if !seen.is_empty() {
        println!("values outside the model's vocabulary, scored as other: {}", seen.join(", "));
    }
    let counts: serde_json::Map<String, serde_json::Value> =
        unknown.iter().map(|(name, count)| (name.clone(), (*count).into())).collect();
    let mut metadata = batch.schema().metadata().clone();
    metadata.insert(UNKNOWN_CATEGORIES_KEY.into(), serde_json::Value::Object(counts).to_string());
    let schema = Arc::new(batch.schema().as_ref().clone().with_metadata(metadata));
    Ok(batch.with_schema(schema)?)
}

/// One text column per categorical feature, `reconstruction_<feature>`: the most likely value, NULL
/// where that is other or NULL.
fn category_columns(model: &Autoencoder, reconstruction: ArrayView2<f32>) -> Vec<(String, ArrayRef)> {
    let kinds = model.feature_kinds().iter().enumerate();
    let categorical = kinds.filter_map(|(j, kind)| kind.vocabulary().map(|v| (j, v)));
    categorical
        .map(|(j, vocabulary)| {
            let values: StringArray =
                reconstruction.column(j).iter().map(|&code| vocabulary.value_of(code as u32)).collect();
            (format!("reconstruction_{}", model.feature_names()[j]), Arc::new(values) as ArrayRef)
        })
        .collect()
}

/// A matrix as the `FixedSizeList<Float32>` column every door writes (see `autoenc::io::arrow_matrix`).
pub fn fixed_size_list(values: ArrayView2<f32>) -> anyhow::Result<ArrayRef> {
    Ok(Arc::new(arrow_matrix::fixed_size_list(values, None)?))
}

/// `batch` plus the named columns (replacing input columns of the same name).
pub fn append_columns(batch: &RecordBatch, extra: Vec<(&str, ArrayRef)>) -> anyhow::Result<RecordBatch> {
    let names: Vec<&str> = extra.iter().map(|(n, _)| *n).collect();
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    // An input that was itself scored (e.g. a CSV with `embedding_0, embedding_1, ...`) gets its old
    // output columns replaced, not duplicated.
    let replaced = |column: &str| {
        names.iter().any(|name| {
            column == *name
                || column
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !replaced(field.name()) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    for (name, column) in extra {
        fields.push(Field::new(name, column.data_type().clone(), column.null_count() > 0));
        columns.push(column);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

pub fn run(args: InferArgs, output: Output) -> anyhow::Result<()> {
    args.check_paths()?;
    let model = load_model(&args.model)?;
    let batch = read_table(&args.input)?;
    let (x, unknown) = counted_model_features(&model, &batch, &args.features)?;
    let mut named: Vec<(String, ArrayRef)> = Vec::new();
    match output {
        Output::Embedding => {
            let embedding = model.encode_parallel(x.view(), threads(args.threads))?;
            named.push(("embedding".into(), fixed_size_list(embedding.view())?));
        }
        Output::Reconstruction => {
            let details = model.score_details_parallel(x.view(), threads(args.threads))?;
            let original = model.scaler().inverse(details.reconstruction_scaled.view());
            named.push(("reconstruction".into(), fixed_size_list(original.view())?));
            named.extend(category_columns(&model, original.view()));
        }
    }
    let columns = named.iter().map(|(name, column)| (name.as_str(), column.clone())).collect();
    let out = record_unknown(append_columns(&batch, columns)?, &unknown)?;
    write_table(&args.out, &out)?;
    println!("wrote {} rows to {}", out.num_rows(), args.out.display());
    Ok(())
}

/// A row's explanation as text: `feature:error` pairs joined by `;`, a categorical feature's followed
/// by what was seen and expected: `protocol:1.8301 (got "icmp", expected "tcp", p=0.93)`.
fn explanation_text(contributions: &[autoenc::Contribution]) -> String {
    let parts = contributions.iter().map(|c| match &c.category {
        Some(m) => {
            format!("{}:{:.4} (got {}, expected {}, p={:.2})", c.feature, c.error, m.got, m.expected, m.probability)
        }
        None => format!("{}:{:.4}", c.feature, c.error),
    });
    parts.collect::<Vec<_>>().join(";")
}

pub fn run_score(args: ScoreArgs) -> anyhow::Result<()> {
    args.common.check_paths()?;
    let mut model = load_model(&args.common.model)?;
    if let Some(t) = args.threshold {
        model.set_threshold(t)?;
    }
    if args.explain == Some(0) {
        bail!("--explain needs K of at least 1");
    }
    let batch = read_table(&args.common.input)?;
    let (x, unknown) = counted_model_features(&model, &batch, &args.common.features)?;
    let details = model.score_details_parallel(x.view(), threads(args.common.threads))?;
    let scores: Float64Array = details.scores.iter().copied().collect();
    let percentiles: Float64Array = details.scores.iter().map(|&s| model.percentile(s)).collect();
    let flags: BooleanArray = details.scores.iter().map(|&s| Some(model.is_anomaly(s))).collect();
    let anomalies = flags.true_count();
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("embedding", fixed_size_list(details.embedding.view())?),
        ("score", Arc::new(scores)),
        ("percentile", Arc::new(percentiles)),
        ("is_anomaly", Arc::new(flags)),
    ];
    if let Some(k) = args.explain {
        let explained = model.explain_details(x.view(), &details, k);
        let text: StringArray = explained.iter().map(|row| Some(explanation_text(row))).collect();
        columns.push(("explanation", Arc::new(text)));
    }
    let out = record_unknown(append_columns(&batch, columns)?, &unknown)?;
    write_table(&args.common.out, &out)?;
    println!(
        "scored {} rows: {} anomalies above threshold {:.6}; wrote {}",
        out.num_rows(),
        anomalies,
        model.threshold().value,
        args.common.out.display()
    );
    Ok(())
}
