//! `autoenc eval`: detection quality of a model on labelled rows.

use std::path::PathBuf;

use anyhow::{Context, bail};
use autoenc::io::table::{FeatureSelection, feature_matrix, read_table};
use autoenc::metrics::{FlagCounts, average_precision, roc_auc};

use super::{FeatureArgs, load_model};

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The model file.
    pub model: PathBuf,
    /// Labelled rows: .parquet, .csv or .arrow/.ipc/.feather.
    pub input: PathBuf,
    /// Column with the ground truth: non-zero / true = anomaly.
    #[arg(long)]
    pub label_column: String,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Leave out rows whose label is empty (and say how many) instead of refusing the input.
    #[arg(long)]
    pub skip_unlabelled: bool,
    /// Threads to use (results do not depend on it) [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let model = load_model(&args.model)?;
    let batch = read_table(&args.input)?;
    let x = super::infer::model_features(&model, &batch, &args.features)?;
    let (labels, _) = feature_matrix(&batch, &FeatureSelection::Columns(vec![args.label_column.clone()]))
        .with_context(|| format!("label column '{}'", args.label_column))?;
    // An empty label is unknown, not "normal": counting it as normal would silently lower recall and
    // precision, so it is refused unless the user asks for those rows to be left out.
    let labelled: Vec<usize> = (0..labels.nrows()).filter(|&i| !labels[(i, 0)].is_nan()).collect();
    let unlabelled = labels.nrows() - labelled.len();
    if unlabelled > 0 && !args.skip_unlabelled {
        let first = (0..labels.nrows()).find(|&i| labels[(i, 0)].is_nan()).unwrap_or(0);
        bail!(
            "label column '{}' is empty in {unlabelled} of {} rows (first at row {first}); fill them, or pass \
             --skip-unlabelled to leave those rows out",
            args.label_column,
            labels.nrows()
        );
    }
    if labelled.is_empty() {
        bail!("label column '{}' has no labelled rows", args.label_column);
    }
    let labels: Vec<bool> = labelled.iter().map(|&i| labels[(i, 0)] != 0.0).collect();
    let x = x.select(ndarray::Axis(0), &labelled);
    let scores = model.score_parallel(x.view(), super::infer::threads(args.threads))?.to_vec();
    let auc = roc_auc(&scores, &labels)?;
    let ap = average_precision(&scores, &labels)?;
    let flagged: Vec<bool> = scores.iter().map(|&s| model.is_anomaly(s)).collect();
    let counts = FlagCounts::of(&flagged, &labels);
    println!("rows              {}", scores.len());
    if unlabelled > 0 {
        println!("left out          {unlabelled} rows with an empty label");
    }
    println!("anomalies         {} labelled, {} flagged", counts.labelled, counts.flagged);
    println!("ROC-AUC           {auc:.4}");
    println!("average precision {ap:.4}");
    println!("flag precision    {:.4}", counts.precision());
    println!("flag recall       {:.4}", counts.recall());
    Ok(())
}
