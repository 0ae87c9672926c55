//! The Rust side of Python's `autoenc.Model`: a loaded model shared with the Polars plugin calls by
//! its bytes (see [`crate::polars::model_cache`]). The Python class adds `info()`, `report` and docs.

use std::sync::Arc;

use autoenc::Autoencoder;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::from_core;

#[pyclass(name = "_Model", module = "autoenc._internal", frozen)]
pub(crate) struct PyModel {
    pub(crate) inner: Arc<Autoencoder>,
    /// The model file's bytes, computed once: every expression built from this model carries them.
    bytes: Vec<u8>,
}

impl PyModel {
    pub(crate) fn new(model: Autoencoder) -> PyResult<Self> {
        let bytes = model.to_bytes().map_err(from_core)?;
        Ok(PyModel { inner: Arc::new(model), bytes })
    }
}

#[pymethods]
impl PyModel {
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let model = py.detach(|| Autoencoder::load(&path)).map_err(from_core)?;
        PyModel::new(model)
    }

    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        PyModel::new(Autoencoder::from_bytes(bytes).map_err(from_core)?)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }

    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).map_err(from_core)
    }

    /// The metadata stored in the file (params, architecture, features, threshold, report) as JSON.
    fn metadata_json(&self) -> PyResult<String> {
        let metadata = autoenc::io::model_file::read_metadata(&self.bytes).map_err(from_core)?;
        serde_json::to_string(&metadata).map_err(|e| from_core(e.into()))
    }

    #[getter]
    fn n_features(&self) -> usize {
        self.inner.n_features()
    }

    #[getter]
    fn latent_size(&self) -> usize {
        self.inner.latent_size()
    }

    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.inner.feature_names().to_vec()
    }

    #[getter]
    fn threshold(&self) -> f64 {
        self.inner.threshold().value
    }
}
