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

use crate::blocks::blocked;
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

    /// Whether the inputs are the features of a model with categorical features (column per feature,
    /// text or booleans for categories: `crate::categories`); `decode` takes codes, which are numbers.
    fn takes_categories(&self, model: &Autoencoder) -> bool {
        model.has_categories() && *self != Operation::Decode
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
            Operation::Explain { .. } => DataType::List(Box::new(explain_entry(model.has_categories()))),
        }
    }

    /// Planning: checks options and input dtypes, and names the output after the first input.
    pub fn output_field(&self, model: &Autoencoder, fields: &[Field]) -> PolarsResult<Field> {
        self.check_options()?;
        if self.takes_categories(model) {
            crate::categories::check_fields(self.name(), fields, model)?;
        } else {
            check_fields(self.name(), fields, self.input_width(model))?;
        }
        let name = fields.first().map(|f| f.name().clone()).unwrap_or_else(|| PlSmallStr::from_static(self.name()));
        Ok(Field::new(name, self.output_dtype(model)))
    }

    /// Execution: one output value per input row, null for null rows.
    pub fn evaluate(&self, model: &Autoencoder, inputs: &[Series]) -> PolarsResult<Series> {
        self.check_options()?;
        let function = self.name();
        let width = self.input_width(model);
        let name = inputs.first().map(|s| s.name().clone()).unwrap_or_else(|| PlSmallStr::from_static(function));
        if self.takes_categories(model) {
            // A row with categories always has something observed (null is a category): no null rows.
            let rows = crate::categories::matrix(function, inputs, model)?;
            return self.assemble(model, name, vec![self.run(model, rows.view(), threads_for(rows.nrows()))?]);
        }
        let prepared = prepare(function, inputs, Some(width))?;
        let threads = threads_for(prepared.rows());
        // Several numeric columns without nulls: transposed and scored block by block (crate::blocks).
        // On an error (say an infinite value), go on to the whole-matrix path below: it fails the same
        // way, with the row numbered from the start of the input rather than of the block.
        if let Some(columns) = prepared.dense_columns()?
            && let Ok(blocks) = blocked(&columns, threads, |rows| self.run(model, rows, 1))
        {
            return self.assemble(model, name, blocks);
        }
        let features = prepared.matrix(function, Some(width))?;
        let (rows, filtered) = features.valid_rows();
        let out = self.assemble(model, name, vec![self.run(model, rows.view(), threads)?])?;
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

    /// The operation on a block of rows (`threads` > 1 splits it further inside the core).
    fn run(&self, model: &Autoencoder, rows: ArrayView2<f32>, threads: usize) -> PolarsResult<Output> {
        let function = self.name();
        let err = |e: autoenc::AutoencError| polars_err!(ComputeError: "{function}: {e}");
        Ok(match *self {
            Operation::Encode => Output::Vectors(model.encode_parallel(rows, threads).map_err(err)?),
            Operation::Decode => Output::Vectors(model.decode(rows).map_err(err)?),
            // A categorical feature's reconstruction is its most likely code, which the scaler does not
            // map: the core's own `reconstruct` knows both kinds.
            Operation::Reconstruct if model.has_categories() => Output::Vectors(model.reconstruct(rows).map_err(err)?),
            Operation::Reconstruct => {
                let details = model.score_details_parallel(rows, threads).map_err(err)?;
                Output::Vectors(model.scaler().inverse(details.reconstruction_scaled.view()))
            }
            Operation::Score | Operation::Percentile | Operation::IsAnomaly { .. } => {
                Output::Scores(model.score_parallel(rows, threads).map_err(err)?.into_raw_vec_and_offset().0)
            }
            // With categories, the core's `explain` also names the value seen and the one expected.
            Operation::Explain { k } if model.has_categories() => {
                Output::Explanations(model.explain(rows, k).map_err(err)?)
            }
            Operation::Explain { k } => {
                let details = model.score_details_parallel(rows, threads).map_err(err)?;
                Output::Explanations(
                    details.feature_errors.outer_iter().map(|errors| model.top_contributions(errors, k)).collect(),
                )
            }
        })
    }

    /// The blocks' outputs, in row order, as one column of the operation's dtype.
    fn assemble(&self, model: &Autoencoder, name: PlSmallStr, blocks: Vec<Output>) -> PolarsResult<Series> {
        let scores = || -> Vec<f64> {
            blocks.iter().flat_map(|b| if let Output::Scores(s) = b { s.as_slice() } else { &[] }).copied().collect()
        };
        Ok(match *self {
            Operation::Score => Float64Chunked::from_vec(name, scores()).into_series(),
            Operation::Percentile => {
                Float64Chunked::from_iter_values(name, scores().into_iter().map(|s| model.percentile(s))).into_series()
            }
            Operation::IsAnomaly { threshold } => {
                let limit = threshold.unwrap_or(model.threshold().value);
                BooleanChunked::from_iter_values(name, scores().into_iter().map(|s| s > limit)).into_series()
            }
            Operation::Encode | Operation::Decode | Operation::Reconstruct => {
                let width = match self {
                    Operation::Encode => model.latent_size(),
                    _ => model.n_features(),
                };
                let mut values = Vec::new();
                for block in blocks {
                    if let Output::Vectors(matrix) = block {
                        if matrix.is_standard_layout() && values.is_empty() {
                            values = matrix.into_raw_vec_and_offset().0;
                        } else {
                            values.extend(matrix.iter().copied());
                        }
                    }
                }
                vectors(name, values, width)
            }
            Operation::Explain { .. } => {
                let lists: Vec<Vec<autoenc::Contribution>> = blocks
                    .into_iter()
                    .flat_map(|b| if let Output::Explanations(l) = b { l } else { Vec::new() })
                    .collect();
                explanations(name, &lists, model.has_categories())?
            }
        })
    }
}

/// What an operation gives for a block of rows, before it becomes a column.
enum Output {
    Scores(Vec<f64>),
    Vectors(Array2<f32>),
    Explanations(Vec<Vec<autoenc::Contribution>>),
}

fn threads_for(_rows: usize) -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The dtype of one `explain` entry.
/// `{feature, error}`, and for a model with categorical features also `{got, expected, probability}`:
/// for a categorical feature the value seen, the most likely value and its probability (null for a
/// numeric feature).
pub fn explain_entry(categories: bool) -> DataType {
    let mut fields =
        vec![Field::new("feature".into(), DataType::String), Field::new("error".into(), DataType::Float64)];
    if categories {
        fields.push(Field::new("got".into(), DataType::String));
        fields.push(Field::new("expected".into(), DataType::String));
        fields.push(Field::new("probability".into(), DataType::Float64));
    }
    DataType::Struct(fields)
}

/// Row-major `values` as an `Array(Float32, width)` column.
fn vectors(name: PlSmallStr, values: Vec<f32>, width: usize) -> Series {
    let rows = values.len().checked_div(width).unwrap_or(0);
    let flat = Float32Chunked::from_vec(name.clone(), values);
    let chunks = flat.chunks().clone();
    ArrayChunked::from_aligned_values(name, &DataType::Float32, width, chunks, rows).into_series()
}

/// Per-row contributions as `List(Struct{feature, error})`: one flat struct column sliced per row.
fn explanations(name: PlSmallStr, lists: &[Vec<autoenc::Contribution>], categories: bool) -> PolarsResult<Series> {
    let entries = lists.iter().flatten();
    let features = Series::new("feature".into(), entries.clone().map(|c| c.feature.as_str()).collect::<Vec<_>>());
    let errors = Series::new("error".into(), entries.clone().map(|c| c.error).collect::<Vec<f64>>());
    let total = features.len();
    let mut fields = vec![features, errors];
    if categories {
        let mismatch = || entries.clone().map(|c| c.category.as_ref());
        fields.push(Series::new("got".into(), mismatch().map(|m| m.map(|m| m.got.as_str())).collect::<Vec<_>>()));
        let expected: Vec<Option<&str>> = mismatch().map(|m| m.map(|m| m.expected.as_str())).collect();
        fields.push(Series::new("expected".into(), expected));
        let probability: Vec<Option<f64>> = mismatch().map(|m| m.map(|m| m.probability)).collect();
        fields.push(Series::new("probability".into(), probability));
    }
    let flat = StructChunked::from_series(name.clone(), total, fields.iter())?.into_series();
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
        ListChunked::full_null_with_dtype(name.clone(), 0, &explain_entry(categories))
    } else {
        rows.iter().collect()
    };
    out.rename(name);
    Ok(out.into_series())
}
