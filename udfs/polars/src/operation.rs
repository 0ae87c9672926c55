//! The seven operations a model offers a frame, each with its output dtype (decided at planning from
//! the model and the input schema) and its evaluation on a batch of columns. The Rust `Expr` builders
//! and the Python plugin functions both end here, so the two cannot drift apart.
//!
//! | operation | input width | output |
//! |---|---|---|
//! | `encode` | features | `Array(Float32, latent)` |
//! | `decode` | latent (codes) | `Array(Float32, features)` |
//! | `reconstruct` | features | `Array(Float32, features)`, missing values filled in |
//! | `score` | features | `Float64`, mean squared error over observed features, scaled units |
//! | `percentile` | features | `Float64`, the fraction of training rows that scored lower |
//! | `is_anomaly` | features | `Boolean`, score above the model's (or the given) threshold |
//! | `explain` | features | `List(Struct{feature: String, error: Float64})`, the k largest errors |

use autoenc::Autoencoder;
use ndarray::{Array2, ArrayView2};
use polars::prelude::*;

use crate::features::{check_fields, prepare};

/// One model operation with its options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operation {
    Encode,
    Decode,
    Reconstruct,
    Score,
    Percentile,
    /// `threshold`: compare with this score instead of the model's threshold.
    IsAnomaly {
        threshold: Option<f64>,
    },
    /// `k`: how many features to list (at least 1).
    Explain {
        k: usize,
    },
}

impl Operation {
    /// The name used in error messages (the Python function's name).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Encode => "encode",
            Operation::Decode => "decode",
            Operation::Reconstruct => "reconstruct",
            Operation::Score => "score",
            Operation::Percentile => "percentile",
            Operation::IsAnomaly { .. } => "is_anomaly",
            Operation::Explain { .. } => "explain",
        }
    }

    /// How many values a row holds: codes for `decode`, features for the rest.
    pub fn input_width(&self, model: &Autoencoder) -> usize {
        match self {
            Operation::Decode => model.latent_size(),
            _ => model.n_features(),
        }
    }

    fn check_options(&self) -> PolarsResult<()> {
        match self {
            Operation::IsAnomaly { threshold: Some(t) } if !t.is_finite() => {
                polars_bail!(ComputeError: "is_anomaly: the threshold must be a finite number, got {t}")
            }
            Operation::Explain { k: 0 } => polars_bail!(ComputeError: "explain: k must be at least 1"),
            _ => Ok(()),
        }
    }

    /// The output dtype.
    pub fn output_dtype(&self, model: &Autoencoder) -> DataType {
        let vector = |width| DataType::Array(Box::new(DataType::Float32), width);
        match self {
            Operation::Encode => vector(model.latent_size()),
            Operation::Decode | Operation::Reconstruct => vector(model.n_features()),
            Operation::Score | Operation::Percentile => DataType::Float64,
            Operation::IsAnomaly { .. } => DataType::Boolean,
            Operation::Explain { .. } => DataType::List(Box::new(explain_entry())),
        }
    }

    /// Planning: checks options and input dtypes, and names the output after the first input.
    pub fn output_field(&self, model: &Autoencoder, fields: &[Field]) -> PolarsResult<Field> {
        self.check_options()?;
        check_fields(self.name(), fields, self.input_width(model))?;
        let name = fields.first().map(|f| f.name().clone()).unwrap_or_else(|| PlSmallStr::from_static(self.name()));
        Ok(Field::new(name, self.output_dtype(model)))
    }

    /// Execution: one output value per input row, null for null rows.
    pub fn evaluate(&self, model: &Autoencoder, inputs: &[Series]) -> PolarsResult<Series> {
        self.check_options()?;
        let function = self.name();
        let width = self.input_width(model);
        let name = inputs.first().map(|s| s.name().clone()).unwrap_or_else(|| PlSmallStr::from_static(function));
        let prepared = prepare(function, inputs, Some(width))?;
        let features = prepared.matrix(function, Some(width))?;
        let (rows, filtered) = features.valid_rows();
        let out = self.compute(model, rows.view(), name)?;
        match (&features.null_rows, filtered) {
            // Null rows come back by taking with null indices, which yields null values.
            (Some(mask), true) => {
                let mut taken: IdxSize = 0;
                let idx: IdxCa = mask
                    .iter()
                    .map(|&null| {
                        (!null).then(|| {
                            taken += 1;
                            taken - 1
                        })
                    })
                    .collect();
                out.take(&idx)
            }
            _ => Ok(out),
        }
    }

    fn compute(&self, model: &Autoencoder, rows: ArrayView2<f32>, name: PlSmallStr) -> PolarsResult<Series> {
        let function = self.name();
        let err = |e: autoenc::AutoencError| polars_err!(ComputeError: "{function}: {e}");
        let threads = threads_for(rows.nrows());
        Ok(match *self {
            Operation::Encode => vectors(name, model.encode_parallel(rows, threads).map_err(err)?),
            Operation::Decode => vectors(name, model.decode(rows).map_err(err)?),
            Operation::Reconstruct => {
                let details = model.score_details_parallel(rows, threads).map_err(err)?;
                vectors(name, model.scaler().inverse(details.reconstruction_scaled.view()))
            }
            Operation::Score => {
                let scores = model.score_parallel(rows, threads).map_err(err)?;
                Float64Chunked::from_vec(name, scores.into_raw_vec_and_offset().0).into_series()
            }
            Operation::Percentile => {
                let scores = model.score_parallel(rows, threads).map_err(err)?;
                Float64Chunked::from_iter_values(name, scores.iter().map(|&s| model.percentile(s))).into_series()
            }
            Operation::IsAnomaly { threshold } => {
                let scores = model.score_parallel(rows, threads).map_err(err)?;
                let limit = threshold.unwrap_or(model.threshold().value);
                BooleanChunked::from_iter_values(name, scores.iter().map(|&s| s > limit)).into_series()
            }
            Operation::Explain { k } => {
                let details = model.score_details_parallel(rows, threads).map_err(err)?;
                let lists: Vec<Vec<autoenc::Contribution>> =
                    details.feature_errors.outer_iter().map(|errors| model.top_contributions(errors, k)).collect();
                explanations(name, &lists)?
            }
        })
    }
}

/// Inference runs in fixed blocks of rows whose results do not depend on the thread count (the core
/// uses no more threads than blocks), so large inputs can use every core without changing a bit.
fn threads_for(_rows: usize) -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The dtype of one `explain` entry.
pub fn explain_entry() -> DataType {
    DataType::Struct(vec![
        Field::new("feature".into(), DataType::String),
        Field::new("error".into(), DataType::Float64),
    ])
}

/// `(rows, width)` as an `Array(Float32, width)` column, moving the buffer.
fn vectors(name: PlSmallStr, matrix: Array2<f32>) -> Series {
    let (rows, width) = matrix.dim();
    let values =
        if matrix.is_standard_layout() { matrix.into_raw_vec_and_offset().0 } else { matrix.iter().copied().collect() };
    let flat = Float32Chunked::from_vec(name.clone(), values);
    let chunks = flat.chunks().clone();
    ArrayChunked::from_aligned_values(name, &DataType::Float32, width, chunks, rows).into_series()
}

/// Per-row contributions as `List(Struct{feature, error})`: one flat struct column sliced per row.
fn explanations(name: PlSmallStr, lists: &[Vec<autoenc::Contribution>]) -> PolarsResult<Series> {
    let entries = lists.iter().flatten();
    let features = Series::new("feature".into(), entries.clone().map(|c| c.feature.as_str()).collect::<Vec<_>>());
    let errors = Series::new("error".into(), entries.map(|c| c.error).collect::<Vec<f64>>());
    let total = features.len();
    let flat = StructChunked::from_series(name.clone(), total, [features, errors].iter())?.into_series();
    let mut start = 0;
    let rows: Vec<Series> = lists
        .iter()
        .map(|list| {
            let row = flat.slice(start as i64, list.len());
            start += list.len();
            row
        })
        .collect();
    let mut out: ListChunked = if rows.is_empty() {
        ListChunked::full_null_with_dtype(name.clone(), 0, &explain_entry())
    } else {
        rows.iter().collect()
    };
    out.rename(name);
    Ok(out.into_series())
}
