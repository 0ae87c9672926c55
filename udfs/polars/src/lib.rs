//! # autoenc-polars
//!
//! The DataFrame door: autoenc models as Polars expressions. The same model file gives the same
//! numbers here as through the CLI and the SQL functions, because every operation is a thin call into
//! the core ([`autoenc::Autoencoder`]); this crate only moves columns in and out.
//!
//! From Rust, build expressions with the functions in [`expressions`] and use them in any eager or
//! lazy frame:
//!
//! ```no_run
//! use std::sync::Arc;
//! use polars::prelude::*;
//! # fn main() -> PolarsResult<()> {
//! let model = Arc::new(autoenc::Autoencoder::load("model.ae").map_err(autoenc_polars::to_polars)?);
//! let df = df!("a" => [1.0, 2.0], "b" => [0.5, 0.1], "c" => [3.0, 2.5])?;
//! let scored = df
//!     .lazy()
//!     .with_columns([
//!         autoenc_polars::score(&model, [col("a"), col("b"), col("c")]).alias("score"),
//!         autoenc_polars::is_anomaly(&model, [col("a"), col("b"), col("c")], None).alias("flag"),
//!     ])
//!     .collect()?;
//! # Ok(()) }
//! ```
//!
//! From Python, the `autoenc` package (`udfs/python`) registers these operations as an expression
//! plugin, `autoenc.polars`. Read [`features`] first for how columns become rows (the same
//! rules as the SQL door: a null row gives a null result, NaN or null inside a row is a missing value,
//! a wrong dimension is an error naming expected and got), then [`operation`] for what each function
//! returns. A model with categorical features takes `String` and `Boolean` columns for them
//! ([`categories`]).

#![forbid(unsafe_code)]

mod blocks;
pub mod categories;
pub mod expressions;
pub mod features;
pub mod operation;
pub mod train;

pub use expressions::{decode, encode, explain, is_anomaly, percentile, reconstruct, score};
pub use operation::Operation;
pub use train::fit_frame;

use polars::prelude::{PolarsError, polars_err};

/// A core error as a Polars `ComputeError`, so Python sees `polars.exceptions.ComputeError`.
pub fn to_polars(error: autoenc::AutoencError) -> PolarsError {
    polars_err!(ComputeError: "{error}")
}
