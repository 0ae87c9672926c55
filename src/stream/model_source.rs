//! The model the pipeline scores with, where it came from, and hot reload: between batches the model
//! file is looked at (size and modification time, then the bytes' checksum), and a changed, valid file
//! is swapped in without a rebalance. A file that fails to load is logged and the old model kept.
//!
//! `model_version` is the CRC-32 of the model file's bytes in hex: the same file always has the same
//! version, on every instance. With continual learning the rows scored after `n` learning batches since
//! the last checkpoint carry `<version>+<n>`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Autoencoder;
use crate::io::file_stamp::FileStamp;

pub struct ModelSource {
    path: PathBuf,
    pub model: Arc<Autoencoder>,
    file_version: String,
    /// Learning batches applied since the file was written or read.
    pub learned_since_file: usize,
    stamp: Option<FileStamp>,
    last_check: Instant,
}

/// The version string of a model file's bytes.
pub fn version_of(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

/// The file's stamp, `None` while it cannot be read (mid-rename, removed): no reload then.
fn stamp_of(path: &Path) -> Option<FileStamp> {
    FileStamp::of(path).ok()
}

impl ModelSource {
    pub fn open(path: &Path) -> crate::Result<Self> {
        let stamp = stamp_of(path);
        let bytes = std::fs::read(path)
            .map_err(|e| crate::AutoencError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
        let model = Autoencoder::from_bytes(&bytes)
            .map_err(|e| crate::AutoencError::ModelFile(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_path_buf(),
            model: Arc::new(model),
            file_version: version_of(&bytes),
            learned_since_file: 0,
            stamp,
            last_check: Instant::now(),
        })
    }

    /// The version to stamp on rows scored now.
    pub fn version(&self) -> String {
        if self.learned_since_file == 0 {
            self.file_version.clone()
        } else {
            format!("{}+{}", self.file_version, self.learned_since_file)
        }
    }

    /// Swaps in the file's model if it changed (at most once per `interval`) and `accept` takes it;
    /// returns what `accept` built. `Err` when the file changed but cannot be used (the current model
    /// stays).
    pub fn reload_if_changed<T>(
        &mut self,
        interval: Duration,
        accept: impl FnOnce(&Autoencoder) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        if self.last_check.elapsed() < interval {
            return Ok(None);
        }
        self.last_check = Instant::now();
        let stamp = stamp_of(&self.path);
        if stamp.is_none() || stamp == self.stamp {
            return Ok(None);
        }
        self.stamp = stamp;
        let bytes = std::fs::read(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let version = version_of(&bytes);
        if version == self.file_version {
            return Ok(None); // touched, same bytes
        }
        let model = Autoencoder::from_bytes(&bytes).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let accepted = accept(&model)?;
        tracing::info!("model reloaded: {} -> {version}", self.file_version);
        self.model = Arc::new(model);
        self.file_version = version;
        self.learned_since_file = 0;
        Ok(Some(accepted))
    }

    /// Writes the (learned) model to its file atomically and makes that file the current version, so
    /// the reload check does not mistake our own checkpoint for a new model.
    pub fn checkpoint(&mut self) -> crate::Result<()> {
        let bytes = self.model.to_bytes()?;
        crate::io::model_file::write_atomically(&self.path, &bytes)?;
        self.file_version = version_of(&bytes);
        self.learned_since_file = 0;
        self.stamp = stamp_of(&self.path);
        Ok(())
    }

    /// Applies `partial_fit` on rows scored as normal.
    pub fn learn(&mut self, rows: ndarray::ArrayView2<f32>) -> crate::Result<()> {
        if rows.nrows() == 0 {
            return Ok(());
        }
        Arc::make_mut(&mut self.model).partial_fit(rows)?;
        self.learned_since_file += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FeatureKind, LatentSize, Vocabulary};

    /// A model with categorical features opens, and one replacing a numeric model reloads: the
    /// pipeline's `accept` (which builds the decoder from the model's kinds) sees it.
    #[test]
    fn a_model_with_categorical_features_opens_and_reloads() {
        let x = ndarray::Array2::from_shape_fn((100, 2), |(i, j)| if j == 0 { (i % 2) as f32 } else { (i % 7) as f32 });
        let vocabulary = Vocabulary::new(vec!["a".into(), "b".into()]).unwrap();
        let kinds = vec![FeatureKind::Categorical { vocabulary }, FeatureKind::Numeric];
        let params = Autoencoder::params().latent(LatentSize::Fixed(1)).epochs(2).check().unwrap();
        let mixed = params.fit_with_kinds(x.view(), vec!["kind".into(), "v".into()], kinds, &mut |_| {}).unwrap();
        let numeric = params.fit(x.view()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ae");
        mixed.save(&path).unwrap();
        assert!(ModelSource::open(&path).unwrap().model.has_categories());

        numeric.save(&path).unwrap();
        let mut source = ModelSource::open(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        mixed.save(&path).unwrap();
        let mut seen_kinds = Vec::new();
        let reloaded = source.reload_if_changed(Duration::ZERO, |model| {
            seen_kinds = model.feature_kinds().to_vec();
            Ok(())
        });
        assert!(reloaded.unwrap().is_some());
        assert!(source.model.has_categories() && seen_kinds[0].vocabulary().is_some());
    }
}
