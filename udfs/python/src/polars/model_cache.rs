//! Models for plugin calls. Polars calls a plugin function once per batch (and once per group inside
//! `group_by().agg`), passing the options again each time; parsing and checking the model file every
//! time would dominate small batches. Models are kept by path and the file's stamp (length and
//! modification time, so a rewritten file is reloaded) or by the bytes of an in-memory `Model`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use autoenc::Autoencoder;
use autoenc::io::file_stamp::FileStamp;
use polars::prelude::*;

#[derive(Hash, PartialEq, Eq)]
enum Key {
    Path(PathBuf, FileStamp),
    Bytes(Vec<u8>),
}

/// Enough for every model a session uses at once; past it the cache starts over.
const CAPACITY: usize = 64;

static CACHE: LazyLock<Mutex<HashMap<Key, Arc<Autoencoder>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn cached(key: Key, load: impl FnOnce() -> autoenc::Result<Autoencoder>) -> autoenc::Result<Arc<Autoencoder>> {
    // A poisoned lock only means another thread panicked while inserting; the map is still valid.
    if let Some(model) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(Arc::clone(model));
    }
    let model = Arc::new(load()?);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CAPACITY {
        cache.clear();
    }
    cache.insert(key, Arc::clone(&model));
    Ok(model)
}

/// The model at `path`.
pub(crate) fn by_path(function: &str, path: &str) -> PolarsResult<Arc<Autoencoder>> {
    let stamp = FileStamp::of(Path::new(path))
        .map_err(|e| polars_err!(ComputeError: "{function}: cannot open model file '{path}': {e}"))?;
    let key = Key::Path(PathBuf::from(path), stamp);
    cached(key, || Autoencoder::load(path))
        .map_err(|e| polars_err!(ComputeError: "{function}: cannot load model file '{path}': {e}"))
}

/// The model in `bytes` (a model file's content).
pub(crate) fn by_bytes(function: &str, bytes: &[u8]) -> PolarsResult<Arc<Autoencoder>> {
    cached(Key::Bytes(bytes.to_vec()), || Autoencoder::from_bytes(bytes))
        .map_err(|e| polars_err!(ComputeError: "{function}: cannot read the model: {e}"))
}
