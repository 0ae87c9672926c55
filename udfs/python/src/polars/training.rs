//! `train(df, features, params_json, progress)`: the frame's columns arrive as Polars Series (shared
//! buffers, no Python object per value) and the fit runs without the GIL.

use autoenc::Autoencoder;
use pyo3::prelude::*;
use pyo3_polars::PyDataFrame;

use crate::errors::{compute_error, from_core};
use crate::model::PyModel;

#[pyfunction]
#[pyo3(signature = (df, features, params_json, progress=false))]
pub(crate) fn train(
    py: Python<'_>,
    df: PyDataFrame,
    features: Vec<String>,
    params_json: &str,
    progress: bool,
) -> PyResult<PyModel> {
    let overrides: serde_json::Value =
        serde_json::from_str(params_json).map_err(|e| compute_error(format!("train: options: {e}")))?;
    let params = Autoencoder::params().merge_json(&overrides).and_then(|p| p.check()).map_err(from_core)?;
    let names: Vec<&str> = features.iter().map(String::as_str).collect();
    let epochs = params.epochs();
    let model = py
        .detach(|| {
            let mut on_epoch = |record: &autoenc::EpochRecord| {
                if progress {
                    eprintln!("train: epoch {}/{epochs} loss {:.6}", record.epoch, record.loss);
                }
            };
            autoenc_polars::fit_frame(&df.0, &names, &params, &mut on_epoch)
        })
        .map_err(|e| match e {
            polars::prelude::PolarsError::ComputeError(message) => compute_error(message),
            other => compute_error(other),
        })?;
    PyModel::new(model)
}
