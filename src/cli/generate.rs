//! `autoenc generate`: rows sampled from a variational model's prior, in the original units.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use arrow::array::{ArrayRef, Float32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use autoenc::AutoencError;
use autoenc::io::table::TableWriter;
use autoenc::limits::{GENERATE_BLOCK_ROWS, MAX_GENERATED_ROWS};

use super::load_model;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// A model trained with `--variant variational`.
    pub model: PathBuf,
    /// How many rows (written in blocks, so memory does not grow with it).
    #[arg(short = 'n', long, default_value_t = 100)]
    pub rows: u64,
    /// Seed for the prior samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (.parquet, .csv, .arrow); CSV on standard output when absent.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if args.rows > MAX_GENERATED_ROWS {
        bail!("{}", AutoencError::SizeTooLarge { what: "rows to generate", value: args.rows, max: MAX_GENERATED_ROWS });
    }
    let model = load_model(&args.model)?;
    let mut generator = model.generator(args.seed)?;
    let fields: Vec<Field> = model.feature_names().iter().map(|n| Field::new(n, DataType::Float32, false)).collect();
    let schema = Arc::new(Schema::new(fields));
    let mut sink = match &args.out {
        Some(path) => Sink::File(TableWriter::create(path, schema.clone())?),
        None => Sink::Stdout(arrow::csv::WriterBuilder::new().with_header(true).build(std::io::stdout().lock())),
    };
    let mut left = args.rows;
    while left > 0 {
        let block = left.min(GENERATE_BLOCK_ROWS as u64) as usize;
        let rows = generator.next_block(block)?;
        let columns: Vec<ArrayRef> = rows
            .columns()
            .into_iter()
            .map(|c| Arc::new(c.iter().copied().collect::<Float32Array>()) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        match &mut sink {
            Sink::File(writer) => writer.write(&batch)?,
            Sink::Stdout(writer) => writer.write(&batch)?,
        }
        left -= block as u64;
    }
    match sink {
        Sink::File(writer) => {
            writer.finish()?;
            if let Some(path) = &args.out {
                eprintln!("wrote {} generated rows to {}", args.rows, path.display());
            }
        }
        Sink::Stdout(writer) => {
            // Nothing was written for zero rows; a header still tells the reader the columns.
            if args.rows == 0 {
                let mut writer = writer;
                writer.write(&RecordBatch::new_empty(schema))?;
            }
        }
    }
    Ok(())
}

enum Sink<'a> {
    File(TableWriter),
    Stdout(arrow::csv::Writer<std::io::StdoutLock<'a>>),
}
