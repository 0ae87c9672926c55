//! `autoenc report MODEL [DATA] --out report.html`: the HTML model report (see `autoenc::report`).

use std::path::PathBuf;

use anyhow::Context;
use autoenc::io::table::read_table;
use autoenc::report::{ReportOptions, render};

use super::infer::model_features;
use super::{FeatureArgs, load_model};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The model file.
    pub model: PathBuf,
    /// Rows to look at with the model (.parquet, .csv or .arrow): adds their score distribution, the
    /// flagged rows, the error per feature and the latent space.
    pub data: Option<PathBuf>,
    /// Where to write the HTML page.
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Most flagged rows listed (highest scores first).
    #[arg(long, default_value_t = 50)]
    pub max_flagged: usize,
    /// Contributing features shown per flagged row (at least 1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub top_features: u16,
    /// Page title [default: the model file's name].
    #[arg(long)]
    pub title: Option<String>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let model = load_model(&args.model)?;
    let name =
        |p: &PathBuf| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
    let options = ReportOptions {
        title: args.title.clone().unwrap_or_else(|| format!("autoenc model {}", name(&args.model))),
        data_source: args.data.as_ref().map(name),
        max_flagged_rows: args.max_flagged,
        top_features: usize::from(args.top_features),
        ..ReportOptions::default()
    };
    let rows = match &args.data {
        None => None,
        Some(path) => {
            let batch = read_table(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(model_features(&model, &batch, &args.features)?)
        }
    };
    let html = render(&model, rows.as_ref().map(|r| r.view()), &options)?;
    autoenc::io::atomic::write_atomically(&args.out, html.as_bytes())?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
