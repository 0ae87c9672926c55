//! Where SQL functions find their models: loaded by name from a directory (`<dir>/<name>.ae`, on first
//! use, then cached) or registered in code, plus an optional default model for calls without a model
//! argument (`SELECT ae_score(features) FROM t`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use autoenc::Autoencoder;

/// Why a model could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown model '{name}'; registered: {known}")]
    UnknownModel { name: String, known: String },
    #[error("no default model: name one (ae_score('model', ...)) or set a default")]
    NoDefault,
    #[error("model '{name}': {source}")]
    Load { name: String, source: autoenc::AutoencError },
    #[error("invalid model name '{0}': use letters, digits, '_', '-' and '.'")]
    InvalidName(String),
}

/// Models by name, shared by every function registered with it.
#[derive(Debug, Default)]
pub struct ModelRegistry {
    directory: Option<PathBuf>,
    models: RwLock<HashMap<String, Arc<Autoencoder>>>,
    default: RwLock<Option<String>>,
}

impl ModelRegistry {
    /// An empty registry: models come only from [`ModelRegistry::register`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry that also loads `<directory>/<name>.ae` on first use.
    pub fn with_directory(directory: impl Into<PathBuf>) -> Self {
        ModelRegistry { directory: Some(directory.into()), ..Self::default() }
    }

    /// Adds (or replaces) a model under `name`.
    pub fn register(&self, name: &str, model: Autoencoder) {
        self.register_shared(name, Arc::new(model));
    }

    /// Adds (or replaces) a model under `name` that the caller keeps using too (a model object a Python
    /// program holds), without a copy.
    pub fn register_shared(&self, name: &str, model: Arc<Autoencoder>) {
        let mut models = self.models.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        models.insert(name.to_string(), model);
    }

    /// Makes `name` the model used when a call names none.
    pub fn set_default(&self, name: &str) {
        *self.default.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(name.to_string());
    }

    /// The default model, if one is set.
    pub fn default_model(&self) -> Result<Arc<Autoencoder>, RegistryError> {
        let name = self.default.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        match name {
            Some(name) => self.get(&name),
            None => Err(RegistryError::NoDefault),
        }
    }

    /// The model called `name`, loading it from the directory if needed.
    pub fn get(&self, name: &str) -> Result<Arc<Autoencoder>, RegistryError> {
        if let Some(model) = self.models.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(name) {
            return Ok(model.clone());
        }
        let Some(directory) = &self.directory else {
            return Err(self.unknown(name));
        };
        // A name is a file stem, never a path: no separators, no parent directories.
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            || name.starts_with('.')
        {
            return Err(RegistryError::InvalidName(name.to_string()));
        }
        let path = directory.join(format!("{name}.ae"));
        if !path.exists() {
            return Err(self.unknown(name));
        }
        let model = Arc::new(
            Autoencoder::load(&path).map_err(|source| RegistryError::Load { name: name.to_string(), source })?,
        );
        let mut models = self.models.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(models.entry(name.to_string()).or_insert(model).clone())
    }

    fn unknown(&self, name: &str) -> RegistryError {
        let mut known: Vec<String> =
            self.models.read().unwrap_or_else(|poisoned| poisoned.into_inner()).keys().cloned().collect();
        if let Some(directory) = &self.directory
            && let Ok(entries) = std::fs::read_dir(directory)
        {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "ae")
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                    && !known.iter().any(|k| k == stem)
                {
                    known.push(stem.to_string());
                }
            }
        }
        known.sort();
        RegistryError::UnknownModel {
            name: name.to_string(),
            known: if known.is_empty() { "none".into() } else { known.join(", ") },
        }
    }
}
