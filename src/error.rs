//! The crate's one error type. Every variant says what was expected and what was found, so a message
//! reaching a user (through the CLI, SQL or a stream's dead-letter header) is enough to fix the input.

/// Errors from building, training, running and storing autoencoders.
#[derive(Debug, thiserror::Error)]
pub enum AutoencError {
    // ---- parameter validation: one variant per rule ----
    #[error("latent size must be at least 1")]
    ZeroLatent,
    #[error(
        "latent size {latent} is not smaller than the {input} input features: a plain autoencoder would learn \
         the identity (choose a smaller latent size, or a sparse variant for an overcomplete code)"
    )]
    LatentNotSmaller { latent: usize, input: usize },
    #[error("hidden layer sizes must be at least 1, got {0:?}")]
    ZeroHiddenSize(Vec<usize>),
    #[error("{what} {value} is too large: at most {max}")]
    SizeTooLarge { what: &'static str, value: u64, max: u64 },
    #[error("model too large: {0}")]
    ModelTooLarge(String),
    #[error("explained-variance target for an automatic latent size must be in (0, 1], got {0}")]
    InvalidVarianceTarget(f64),
    #[error("learning rate must be positive and finite, got {0}")]
    InvalidLearningRate(f64),
    #[error("momentum must be in [0, 1), got {0}")]
    InvalidMomentum(f64),
    #[error("epochs must be at least 1")]
    ZeroEpochs,
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    #[error("validation fraction must be in [0, 1), got {0}")]
    InvalidValidationFraction(f64),
    #[error("early stopping needs a validation split (validation fraction > 0)")]
    EarlyStoppingWithoutValidation,
    #[error("early-stopping patience must be at least 1")]
    ZeroPatience,
    #[error("early-stopping minimum relative improvement must be in [0, 1), got {0}")]
    InvalidMinImprovement(f64),
    #[error("contamination must be in (0, 0.5], got {0}")]
    InvalidContamination(f64),
    #[error("explicit threshold must be finite and non-negative, got {0}")]
    InvalidThreshold(f64),
    #[error("{name} must be {rule}, got {value}")]
    InvalidHyperparameter { name: &'static str, rule: &'static str, value: f64 },
    #[error("top-k sparsity keeps k = {k} code units, which must be in 1..={latent} (the code size)")]
    InvalidTopK { k: usize, latent: usize },
    #[error("KL sparsity needs a sigmoid code activation so activations lie in (0, 1), got {0}")]
    KlNeedsSigmoidCode(crate::Activation),
    #[error(
        "the contractive penalty is computed exactly only for a one-layer encoder (input -> code); \
         got hidden layers {0:?} (use --hidden none)"
    )]
    ContractiveNeedsOneLayerEncoder(Vec<usize>),
    #[error("binary cross-entropy needs a sigmoid output activation, got {0}")]
    BceNeedsSigmoidOutput(crate::Activation),
    #[error(
        "binary cross-entropy needs scaled data in [0, 1]; feature '{feature}' has {value} at row {row} (use scaling minmax)"
    )]
    BceOutOfRange { feature: String, row: usize, value: f32 },
    #[error(
        "binary cross-entropy is for numeric features in [0, 1]; feature '{feature}' is categorical (its \
         values are reconstructed with a softmax and cross-entropy of their own): use the mse loss"
    )]
    CategoricalWithBce { feature: String },

    // ---- data ----
    #[error("empty input: there are no rows")]
    EmptyInput,
    #[error("no features: the input has no columns to learn from")]
    NoFeatures,
    #[error("wrong dimension: expected {expected} features, got {got}")]
    DimensionMismatch { expected: usize, got: usize },
    #[error("infinite value at row {row}, feature '{feature}': only finite numbers or NaN (missing) are accepted")]
    InfiniteValue { row: usize, feature: String },
    #[error(
        "value {value:e} at row {row}, feature '{feature}' is beyond the range of 32-bit floats (about ±3.4e38), \
         which the model computes in"
    )]
    OutOfF32Range { row: usize, feature: String, value: f64 },
    #[error("feature names must be unique and not empty: {0}")]
    InvalidFeatureNames(String),
    #[error("row {row} has no observed feature (all values missing), so it cannot be scored")]
    AllMissing { row: usize },
    #[error("need at least {needed} rows with observed values to {purpose}, got {got}")]
    TooFewRows { needed: usize, got: usize, purpose: &'static str },
    #[error("column '{name}' not found; available columns: {available}")]
    UnknownColumn { name: String, available: String },
    #[error("column '{name}' is not numeric (type {dtype})")]
    NonNumericColumn { name: String, dtype: String },
    #[error(
        "column '{feature}' has more than {max} distinct values: that is an identifier or free text, not a \
         category; leave it out of the features (--exclude)"
    )]
    TooManyCategories { feature: String, max: usize },
    #[error(
        "row {row}, feature '{feature}': {value} is not a category code (a whole number from 0 to {}); \
         pass the column's text and let the model's vocabulary code it",
        codes - 1
    )]
    InvalidCategoryCode { row: usize, feature: String, value: f64, codes: usize },
    #[error(
        "column '{name}' is a date or time column ({dtype}); autoenc does not take time columns as features: \
         leave it out (--exclude {name}), or turn it into numbers first (hour of day, day of week, seconds \
         since an event)"
    )]
    TimeColumn { name: String, dtype: String },
    #[error(
        "column '{name}' is {dtype}, but its feature is categorical: it takes text, boolean or dictionary-of-text \
         values"
    )]
    NotCategorical { name: String, dtype: String },
    #[error("{0}")]
    InvalidInput(String),
    #[error("this is not a variational model, it cannot generate rows (variant: {0})")]
    NotVariational(String),
    #[error("explain: k must be at least 1")]
    ZeroExplainK,

    // ---- model file ----
    #[error("invalid model file: {0}")]
    ModelFile(String),
    #[error("model file format version {found} is newer than this library reads ({supported}); upgrade autoenc")]
    UnsupportedFormatVersion { found: u32, supported: u32 },

    // ---- wrapped ----
    #[error("unsupported file type '{0}': use .parquet, .csv or .arrow/.ipc/.feather")]
    UnsupportedFileType(String),
    #[error("linear algebra failed: {0}")]
    Linalg(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[cfg(feature = "arrow")]
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[cfg(feature = "arrow")]
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// `Result` with [`AutoencError`].
pub type Result<T> = std::result::Result<T, AutoencError>;
