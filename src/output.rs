//! Output files that appear whole or not at all: written under a temporary name in the same
//! directory, then renamed; dropped (on error) they are removed.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dest.file_name().ok_or_else(|| {
            Error::input(
                None,
                format!("output path {} has no file name", dest.display()),
            )
        })?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let f =
            File::create(&tmp).map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(BufWriter::with_capacity(1 << 20, f)),
        })
    }

    /// The writer; hand it back to `commit` when done.
    pub fn writer(self) -> AtomicWriter {
        AtomicWriter(self)
    }

    /// Flushes, syncs and renames into place.
    pub fn commit(w: AtomicWriter) -> Result<()> {
        let mut a = w.0;
        let Some(f) = a.file.take() else {
            return Ok(());
        };
        let f = f
            .into_inner()
            .map_err(|e| Error::io(format!("writing {}", a.tmp.display()), e.into_error()))?;
        f.sync_all()
            .map_err(|e| Error::io(format!("syncing {}", a.tmp.display()), e))?;
        drop(f);
        std::fs::rename(&a.tmp, &a.dest)
            .map_err(|e| Error::io(format!("renaming to {}", a.dest.display()), e))?;
        a.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file.take();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A `Write` into an `AtomicFile`.
pub struct AtomicWriter(AtomicFile);

impl AtomicWriter {
    /// Writes `data` at byte `offset` (the file grows, sparse where the OS allows).
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let f = self
            .0
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("file already committed"))?;
        f.flush()?;
        f.get_mut().seek(SeekFrom::Start(offset))?;
        f.write_all(data)
    }
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("file already committed")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}
