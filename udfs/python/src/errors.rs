//! Errors raised from `Model` and `train` as the exceptions Python Polars users already catch:
//! `polars.exceptions.ComputeError` for bad data or options, `FileNotFoundError` for a missing file.

use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;

/// A `polars.exceptions.ComputeError` with `message` (a `ValueError` if Polars cannot be imported).
pub(crate) fn compute_error(message: impl std::fmt::Display) -> PyErr {
    let message = message.to_string();
    Python::attach(|py| {
        let class = py.import("polars.exceptions").and_then(|m| m.getattr("ComputeError"));
        match class.and_then(|c| c.call1((message.clone(),))) {
            Ok(instance) => PyErr::from_value(instance),
            Err(_) => PyValueError::new_err(message),
        }
    })
}

/// A core error: a missing file is `FileNotFoundError`, anything else a `ComputeError`.
pub(crate) fn from_core(error: autoenc::AutoencError) -> PyErr {
    match &error {
        autoenc::AutoencError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(error.to_string())
        }
        _ => compute_error(error),
    }
}
