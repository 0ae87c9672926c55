//! The Polars door: the `#[polars_expr]` functions Python Polars finds in this library by name
//! ([`plugin`], with loaded models kept in [`model_cache`]), `train` on a frame ([`training`]) and the
//! benchmark hook ([`bench`]). The expressions themselves are `autoenc-polars`'s.

pub(crate) mod bench;
pub(crate) mod model_cache;
mod plugin;
pub(crate) mod training;
