//! `autoenc generate`: rows sampled from a variational model's prior, in the original units.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use autoenc::io::table::write_table;

use super::load_model;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// A model trained with `--variant variational`.
    pub model: PathBuf,
    /// How many rows.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub rows: usize,
    /// Seed for the prior samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (.parquet, .csv, .arrow); CSV on standard output when absent.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let model = load_model(&args.model)?;
    let rows = model.generate(args.rows, args.seed)?;
    let fields: Vec<Field> = model.feature_names().iter().map(|n| Field::new(n, DataType::Float32, false)).collect();
    let columns: Vec<ArrayRef> =
        rows.columns().into_iter().map(|c| Arc::new(c.iter().copied().collect::<Float32Array>()) as ArrayRef).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    match &args.out {
        Some(path) => {
            write_table(path, &batch)?;
            eprintln!("wrote {} generated rows to {}", batch.num_rows(), path.display());
        }
        None => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(std::io::stdout());
            writer.write(&batch)?;
        }
    }
    Ok(())
}
