//! `autoenc inspect`: what a model file holds, without loading the weights.

use std::path::PathBuf;

use anyhow::Context;
use autoenc::io::model_file::read_metadata;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The model file.
    pub model: PathBuf,
    /// Print the whole metadata as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.model).with_context(|| format!("cannot read {}", args.model.display()))?;
    // Load fully first: that validates the checksum and shapes, so inspect never vouches for a bad file.
    autoenc::Autoencoder::from_bytes(&bytes).with_context(|| format!("cannot read model {}", args.model.display()))?;
    let meta = read_metadata(&bytes)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&meta)?);
        return Ok(());
    }
    let arch = &meta.architecture;
    println!("model file      {}", args.model.display());
    println!("format          autoenc v{} (written by autoenc {})", meta.format_version, meta.library_version);
    println!("variant         {}", serde_json::to_string(&meta.params.variant())?);
    println!(
        "network         {} ({} / code {} / output {})",
        arch.describe(),
        arch.activation,
        arch.code_activation,
        arch.output_activation
    );
    println!("features        {}", meta.feature_names.join(", "));
    // A categorical feature's vocabulary, code order (the codes after it: other, then NULL).
    let kinds = meta.feature_kinds.iter().flatten();
    for (name, vocabulary) in meta.feature_names.iter().zip(kinds).filter_map(|(n, k)| k.vocabulary().map(|v| (n, v))) {
        println!("categorical     {name}: {} (then other, NULL)", vocabulary.values().join(", "));
    }
    println!("scaling         {:?}", meta.scaling);
    println!("threshold       {:.6} ({})", meta.threshold.value, serde_json::to_string(&meta.threshold.rule)?);
    println!(
        "score sketch    {} training rows ({})",
        meta.sketch_count,
        if meta.sketch_exact { "exact" } else { "1001 quantiles" }
    );
    if let Some(ev) = &meta.explained_variance {
        let cumulative: Vec<String> = ev
            .iter()
            .scan(0.0, |acc, r| {
                *acc += r;
                Some(format!("{:.3}", *acc))
            })
            .take(arch.latent.max(1))
            .collect();
        println!("latent (auto)   {} (cumulative explained variance {})", arch.latent, cumulative.join(" "));
    }
    println!("params          {}", serde_json::to_string(&meta.params)?);
    if !meta.extra.is_empty() {
        println!("extra           {}", serde_json::Value::Object(meta.extra.clone()));
    }
    println!("training rows   {} (+{} validation)", meta.report.training_rows, meta.report.validation_rows);
    println!("\n{}", meta.report.to_table());
    Ok(())
}
