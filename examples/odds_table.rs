//! Detection quality on the ODDS benchmark sets: fit on all rows without labels, score all rows, and
//! print ROC-AUC and average precision per set, averaged over seeds.
//!
//! ```text
//! cargo run --release --example odds_table -- [DATA_DIR] [--seeds 0,1,2]
//! ```
//! DATA_DIR defaults to the two sets the repository ships (`tests/data/odds`: cardio and thyroid); give
//! the directory of the full fifteen-set collection for the table in docs/quality.md. Every set is a CSV
//! with feature columns and a `label` column (1 = anomaly). The same default parameters are used for
//! every set: this is the number docs/quality.md reports.

use std::path::PathBuf;
use std::time::Instant;

use autoenc::Autoencoder;
use autoenc::io::table::{FeatureSelection, feature_matrix, read_table};
use autoenc::metrics::{average_precision, roc_auc};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/odds");
    let dir = match args.next_if(|a| !a.starts_with("--")) {
        Some(dir) => PathBuf::from(dir),
        None => shipped,
    };
    let mut seeds = vec![0u64, 1, 2];
    let mut overrides = serde_json::json!({});
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--seeds" => {
                let list = args.next().ok_or_else(|| anyhow::anyhow!("--seeds needs a list"))?;
                seeds = list.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;
            }
            // Non-default settings as JSON, for experiments: --params '{"epochs": 20}'.
            "--params" => overrides = serde_json::from_str(&args.next().unwrap_or_default())?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    println!("| dataset | rows | features | ROC-AUC | AP | fit s |");
    println!("|---|---|---|---|---|---|");
    let (mut auc_sum, mut ap_sum) = (0.0, 0.0);
    for path in &files {
        let batch = read_table(path)?;
        let (x, _) = feature_matrix(&batch, &FeatureSelection::AllNumericExcept(vec!["label".into()]))?;
        let (labels, _) = feature_matrix(&batch, &FeatureSelection::Columns(vec!["label".into()]))?;
        let labels: Vec<bool> = labels.column(0).iter().map(|&v| v > 0.5).collect();
        let (mut aucs, mut aps, mut secs) = (Vec::new(), Vec::new(), 0.0);
        for &seed in &seeds {
            let started = Instant::now();
            let model = Autoencoder::params().merge_json(&overrides)?.seed(seed).fit(x.view())?;
            secs += started.elapsed().as_secs_f64();
            let scores = model.score(x.view())?.to_vec();
            aucs.push(roc_auc(&scores, &labels)?);
            aps.push(average_precision(&scores, &labels)?);
        }
        let n = seeds.len() as f64;
        let (auc, ap) = (aucs.iter().sum::<f64>() / n, aps.iter().sum::<f64>() / n);
        let spread = aucs.iter().map(|a| (a - auc).abs()).fold(0.0, f64::max);
        auc_sum += auc;
        ap_sum += ap;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        println!("| {name} | {} | {} | {auc:.3}±{spread:.3} | {ap:.3} | {:.2} |", x.nrows(), x.ncols(), secs / n);
    }
    let count = files.len().max(1) as f64;
    println!(
        "\nmean ROC-AUC {:.3}, mean AP {:.3} over {} sets, seeds {:?}",
        auc_sum / count,
        ap_sum / count,
        files.len(),
        seeds
    );
    Ok(())
}
