//! Files that appear whole or not at all. Every file autoenc writes (model files, scored tables,
//! generated rows, ONNX exports) is written to a temporary file beside its destination and renamed over
//! it only once it is complete and flushed to disk: a full disk, a crash or a killed process leaves the
//! old file (or none), never half of a new one, and a reader never sees a partial file. Errors name the
//! destination path.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{AutoencError, Result};

/// A file being written to a temporary path; [`AtomicFile::commit`] moves it into place, dropping it
/// uncommitted removes it.
#[derive(Debug)]
pub struct AtomicFile {
    destination: PathBuf,
    temporary: PathBuf,
    file: Option<File>,
}

/// Distinguishes temporary files of one process (several threads may write beside one destination).
static NEXT_TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// An I/O error that names the path it happened on.
pub fn io_error_at(path: &Path, error: std::io::Error) -> AutoencError {
    AutoencError::Io(std::io::Error::new(error.kind(), format!("{}: {error}", path.display())))
}

impl AtomicFile {
    /// Creates the temporary file beside `destination` (same directory, so the rename stays on one
    /// file system).
    pub fn create(destination: &Path) -> Result<Self> {
        let file_name = destination.file_name().and_then(|n| n.to_str()).unwrap_or("output");
        let unique = NEXT_TEMPORARY.fetch_add(1, Ordering::Relaxed);
        let temporary = destination.with_file_name(format!(".{file_name}.{}.{unique}.tmp", std::process::id()));
        let file = File::create(&temporary).map_err(|e| io_error_at(destination, e))?;
        Ok(AtomicFile { destination: destination.to_path_buf(), temporary, file: Some(file) })
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is present until commit consumes self")
    }

    /// Flushes the file to disk and renames it over the destination.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("the file is present until commit consumes self");
        let destination = self.destination.clone();
        file.sync_all()
            .and_then(|()| std::fs::rename(&self.temporary, &destination))
            .map_err(|e| io_error_at(&destination, e))?;
        // The rename is durable once the directory is synced (best effort: not every platform allows it).
        if let Some(directory) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = File::open(directory).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.file().write_all(bytes).map_err(|e| io_error_at(path, e))?;
    file.commit()
}

/// Whether two paths name the same file (the destination need not exist yet): writing a command's
/// output over its own input would destroy the input if the write failed half-way, and read it while
/// it is being replaced otherwise.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| -> Option<PathBuf> {
        if let Ok(full) = p.canonicalize() {
            return Some(full);
        }
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(parent.canonicalize().ok()?.join(p.file_name()?))
    };
    matches!((resolve(a), resolve(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_file_leaves_the_old_one_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, b"old").unwrap();
        {
            let mut file = AtomicFile::create(&path).unwrap();
            file.file().write_all(b"half of a new").unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the temporary file is removed");
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn errors_name_the_destination() {
        let error = write_atomically(Path::new("/nonexistent-directory/out.csv"), b"x").unwrap_err().to_string();
        assert!(error.contains("/nonexistent-directory/out.csv"), "{error}");
    }

    #[test]
    fn same_file_sees_through_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, b"a").unwrap();
        assert!(same_file(&path, &dir.path().join(".").join("in.csv")));
        assert!(!same_file(&path, &dir.path().join("out.csv")));
        assert!(same_file(&dir.path().join("new.csv"), &dir.path().join("./new.csv")));
    }
}
