//! The bounds on everything a user can size: layer widths, parameter counts, model files, generated
//! rows. Each is far above what a tabular autoencoder needs and far below what would exhaust a machine,
//! so a typo or a hostile value gets a clear error naming the bound instead of an allocation that
//! aborts the process. They live in one place so that every door (CLI, SQL, Polars, stream) refuses the
//! same things with the same words.

/// The widest layer (hidden, code or input) a model may have.
pub const MAX_LAYER_WIDTH: usize = 1 << 16;

/// The most weights and biases a model may hold (256 MiB of `f32`; training keeps about four copies).
pub const MAX_PARAMETERS: usize = 1 << 26;

/// The most hidden layers on either side of the code.
pub const MAX_HIDDEN_LAYERS: usize = 64;

/// The largest model file read: the tensors of [`MAX_PARAMETERS`] plus room for the scaler, the sketch
/// and the metadata. Larger files are refused before they are read.
pub const MAX_MODEL_FILE_BYTES: u64 = (MAX_PARAMETERS as u64) * 4 + (64 << 20);

/// The largest JSON header of a model file (safetensors itself allows 100 MB).
pub const MAX_MODEL_HEADER_BYTES: u64 = 16 << 20;

/// The most rows one `generate` call (CLI or SQL) produces; they are produced in blocks, so this
/// bounds the time of a call, not its memory.
pub const MAX_GENERATED_ROWS: u64 = 1 << 32;

/// The largest table file (Parquet, CSV, Arrow) read whole into memory for training or scoring, and the
/// most memory its decoded rows may take. The environment variable `AUTOENC_MAX_INPUT_BYTES` overrides
/// it (see [`crate::io::table::max_table_bytes`]).
pub const MAX_TABLE_BYTES: u64 = 8 << 30;

/// The most values (rows x features) one in-memory `generate` call makes (1 GiB of `f32`); the CLI and
/// SQL produce larger requests in blocks.
pub const MAX_GENERATED_CELLS: u64 = 1 << 28;

/// Rows generated per block by the CLI and SQL.
pub const GENERATE_BLOCK_ROWS: usize = 8192;

/// The most values a categorical feature's vocabulary may keep (`max_categories`); the rest of its
/// values share the "other" code.
pub const MAX_CATEGORIES: usize = 4096;

/// The most distinct values counted in one categorical column while its vocabulary is learned. A
/// column with more is an identifier or free text, not a category, and is refused with a message
/// naming it rather than counted in memory without bound.
pub const MAX_DISTINCT_VALUES: usize = 100_000;
