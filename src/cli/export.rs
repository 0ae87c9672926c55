//! `autoenc export MODEL --onnx model.onnx`: the model as an ONNX graph (see `autoenc::onnx` for what
//! the graph computes and what it leaves out).

use std::path::PathBuf;

use anyhow::Context;

use super::load_model;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The model file.
    pub model: PathBuf,
    /// Write the encoder, decoder and scorer (standardisation included) as an ONNX graph here.
    #[arg(long, value_name = "FILE")]
    pub onnx: PathBuf,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let model = load_model(&args.model)?;
    let bytes = autoenc::onnx::export(&model).context("cannot export the model to ONNX")?;
    // Atomic: a failed export never leaves half a file.
    autoenc::io::model_file::write_atomically(&args.onnx, &bytes)
        .with_context(|| format!("cannot write {}", args.onnx.display()))?;
    eprintln!(
        "wrote {} ({} bytes): input '{}' [rows, {}], outputs {}",
        args.onnx.display(),
        bytes.len(),
        autoenc::onnx::INPUT,
        model.n_features(),
        autoenc::onnx::OUTPUTS.join(", ")
    );
    Ok(())
}
