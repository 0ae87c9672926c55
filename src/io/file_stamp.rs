//! A file's stamp: its length and modification time. Reading and checking a model file costs far more
//! than a `stat`, so the doors that keep models loaded (the stream's hot reload, the Polars plugin's
//! cache) look at the stamp first and read the file again only when it changed. A rewrite that keeps
//! both the length and the modification time is missed by the stamp; the stream compares the bytes'
//! checksum after a stamp change, and writes through `atomic` always produce a new file.

use std::path::Path;
use std::time::SystemTime;

/// Length and modification time of a file, compared as a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    len: u64,
    /// `None` on platforms or filesystems without modification times: the length alone decides then.
    modified: Option<SystemTime>,
}

impl FileStamp {
    /// The stamp of the file at `path` now.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(FileStamp { len: meta.len(), modified: meta.modified().ok() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_with_another_length_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ae");
        std::fs::write(&path, b"one").unwrap();
        let first = FileStamp::of(&path).unwrap();
        assert_eq!(FileStamp::of(&path).unwrap(), first, "an unchanged file keeps its stamp");
        std::fs::write(&path, b"longer").unwrap();
        assert_ne!(FileStamp::of(&path).unwrap(), first);
        assert!(FileStamp::of(&dir.path().join("missing.ae")).is_err());
    }
}
