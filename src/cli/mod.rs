//! Command-line definitions (clap) and dispatch. Each subcommand lives in its own file.

#[cfg(feature = "stream")]
mod demo;
mod eval;
#[cfg(feature = "onnx")]
mod export;
mod generate;
mod infer;
mod inspect;
#[cfg(feature = "report")]
mod report;
#[cfg(feature = "stream")]
mod stream;
mod train;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "autoenc", version, about = "Autoencoders for tabular data: train, encode, score and flag anomalies")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars and only warnings in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model on a Parquet, CSV or Arrow IPC file and save it.
    Train(Box<train::TrainArgs>),
    /// Write the input rows plus their `embedding` (the code).
    Encode(infer::InferArgs),
    /// Write the input rows plus their `reconstruction` (original units, missing values filled in).
    Reconstruct(infer::InferArgs),
    /// Write the input rows plus `embedding`, `score`, `percentile` and `is_anomaly`.
    Score(infer::ScoreArgs),
    /// Sample new rows from a variational model's prior.
    Generate(generate::GenerateArgs),
    /// Print a model's metadata and training report.
    Inspect(inspect::InspectArgs),
    /// Score a labelled file and print ROC-AUC, average precision and the flags' precision/recall.
    Eval(eval::EvalArgs),
    /// Export the model as an ONNX graph (encoder, decoder and scorer, standardisation included).
    #[cfg(feature = "onnx")]
    Export(export::ExportArgs),
    /// Write a self-contained HTML report: training curves, score distributions, flagged rows, latent space.
    #[cfg(feature = "report")]
    Report(report::ReportArgs),
    /// Score a Kafka topic continuously: micro-batches in, records with embedding, score and flags out.
    #[cfg(feature = "stream")]
    Stream(Box<stream::StreamArgs>),
    /// A demonstration with nothing to set up: train on synthetic sensor data, stream it through an
    /// in-process Kafka, and print throughput, latency and detection quality.
    #[cfg(feature = "stream")]
    Demo(demo::DemoArgs),
}

pub fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = !cli.quiet;
    match cli.command {
        Command::Train(args) => train::run(*args, progress),
        Command::Encode(args) => infer::run(args, infer::Output::Embedding),
        Command::Reconstruct(args) => infer::run(args, infer::Output::Reconstruction),
        Command::Score(args) => infer::run_score(args),
        Command::Generate(args) => generate::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Eval(args) => eval::run(args),
        #[cfg(feature = "onnx")]
        Command::Export(args) => export::run(args),
        #[cfg(feature = "report")]
        Command::Report(args) => report::run(args),
        #[cfg(feature = "stream")]
        Command::Stream(args) => stream::run(*args),
        #[cfg(feature = "stream")]
        Command::Demo(args) => demo::run(args, progress),
    }
}

/// Feature selection flags shared by the commands that read a table.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FeatureArgs {
    /// Feature columns, comma-separated (default for training: every numeric column not excluded;
    /// default for the other commands: the model's own feature columns).
    #[arg(long, value_delimiter = ',', conflicts_with = "features_column")]
    pub features: Option<Vec<String>>,
    /// One list column holding each row's features.
    #[arg(long)]
    pub features_column: Option<String>,
    /// Columns never used as features when they are picked automatically (e.g. a label).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
}

/// The model-file key under which the CLI remembers a list feature column.
pub const FEATURES_COLUMN_KEY: &str = "features_column";

/// Reads a model file (the library's errors already name the path).
pub fn load_model(path: &PathBuf) -> anyhow::Result<autoenc::Autoencoder> {
    autoenc::Autoencoder::load(path).map_err(|e| anyhow::anyhow!("cannot read model: {e}"))
}
