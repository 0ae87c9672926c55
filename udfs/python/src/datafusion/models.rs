//! `_SqlModels`: the model registry one `register(ctx, ...)` call binds its functions to. Models come
//! from a directory (`<dir>/<name>.ae`, loaded on first use) or are added from Python, as an
//! `autoenc.Model` (shared, not copied) or as model-file bytes (what `ae_train` returns).

use std::path::PathBuf;
use std::sync::Arc;

use autoenc::Autoencoder;
use autoenc_datafusion::ModelRegistry;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::exports::{AggregateFunctionExport, ScalarFunctionExport, TableFunctionExport};
use crate::errors::from_core;
use crate::model::PyModel;

#[pyclass(name = "_SqlModels", module = "autoenc._internal", frozen)]
pub(crate) struct PyModelRegistry {
    registry: Arc<ModelRegistry>,
}

#[pymethods]
impl PyModelRegistry {
    #[new]
    #[pyo3(signature = (directory=None, default=None))]
    fn new(directory: Option<PathBuf>, default: Option<String>) -> Self {
        let registry = match directory {
            Some(directory) => ModelRegistry::with_directory(directory),
            None => ModelRegistry::new(),
        };
        if let Some(name) = default {
            registry.set_default(&name);
        }
        PyModelRegistry { registry: Arc::new(registry) }
    }

    /// Adds (or replaces) `model` under `name`: an `autoenc.Model`'s inner object or model-file bytes.
    fn add(&self, py: Python<'_>, name: &str, model: &Bound<'_, PyAny>) -> PyResult<()> {
        let shared = if let Ok(model) = model.cast::<PyModel>() {
            Arc::clone(&model.get().inner)
        } else if let Ok(bytes) = model.cast::<PyBytes>() {
            let bytes = bytes.as_bytes();
            Arc::new(py.detach(|| Autoencoder::from_bytes(bytes)).map_err(from_core)?)
        } else {
            return Err(PyTypeError::new_err(format!(
                "model must be an autoenc.Model or the bytes of a model file, got {}",
                model.get_type().name()?
            )));
        };
        self.registry.register_shared(name, shared);
        Ok(())
    }

    /// Makes `name` the model calls without a model argument use.
    fn set_default(&self, name: &str) {
        self.registry.set_default(name);
    }

    fn scalar_functions(&self) -> Vec<ScalarFunctionExport> {
        autoenc_datafusion::scalar_functions(Arc::clone(&self.registry))
            .into_iter()
            .map(|udf| ScalarFunctionExport::new(Arc::new(udf)))
            .collect()
    }

    fn aggregate_functions(&self) -> Vec<AggregateFunctionExport> {
        autoenc_datafusion::aggregate_functions()
            .into_iter()
            .map(|udaf| AggregateFunctionExport::new(Arc::new(udaf)))
            .collect()
    }

    fn table_functions(&self) -> Vec<TableFunctionExport> {
        autoenc_datafusion::table_functions(Arc::clone(&self.registry))
            .into_iter()
            .map(|(name, function)| TableFunctionExport::new(name, function))
            .collect()
    }
}
