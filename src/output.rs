//! Output files that appear whole, all together, or not at all (spec §11, paths and partial
//! output): every file of one decode (the model and its external data files) is written under
//! an unguessable temporary name, created exclusively in its destination's directory (the
//! `tempfile` crate: `O_EXCL`, so an existing file or symbolic link is never opened), and all
//! are renamed into place only when every one of them has been written and synced. On any
//! error, on drop, and on SIGINT or SIGTERM (with [`remove_outputs_on_signal`]), the temporary
//! files and the directories created for them are removed.
//!
//! Refused up front: an output path that is a directory (or a link to one); two outputs with
//! one name; a destination whose directory inside the output directory is a symbolic link
//! (it could lead outside it) or not a directory.
use std::collections::HashMap;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Temporary files and created directories of every live [`OutputSet`] of the process, so
/// that the signal thread can remove them.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HOOKED: AtomicBool = AtomicBool::new(false);
/// Set once an output set has been renamed into place.
static COMMITTED: AtomicBool = AtomicBool::new(false);

fn live() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn forget(paths: &[PathBuf]) {
    live().retain(|p| !paths.contains(p));
}

/// Installs a SIGINT/SIGTERM handler that removes the temporary files and directories of
/// every output being written, then exits with status 130 (SIGINT) or 143 (SIGTERM); a
/// signal that arrives once the outputs are in place (nothing left to remove) lets the
/// program finish. For programs that write one set of outputs (the `nnc` command); a library
/// leaves signal handling to its caller.
///
/// The handler is a thread fed by `signal-hook` (not code in signal context): it can remove
/// files and take the lock that [`OutputSet::commit`] holds while it renames, so an
/// interruption leaves either every output in place or none of them, and it acts at once,
/// even while a large tensor is being decoded.
pub fn remove_outputs_on_signal() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    if HOOKED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Error::io("installing the signal handler", e))?;
    std::thread::Builder::new()
        .name("nnc-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let mut l = live();
                if l.is_empty() && COMMITTED.load(Ordering::SeqCst) {
                    // Every output is in place and the program is about to end: let it
                    // finish (status 0) rather than report an interruption.
                    continue;
                }
                // Files first, then the directories created for them, innermost last
                // created first.
                for p in l.iter().rev() {
                    let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
                }
                l.clear();
                eprintln!("nnc: interrupted; partial outputs removed");
                std::process::exit(128 + sig);
            }
        })
        .map_err(|e| Error::io("starting the signal thread", e))?;
    Ok(())
}

/// One file being written.
struct Pending {
    dest: PathBuf,
    tmp: Option<BufWriter<NamedTempFile>>,
    tmp_path: PathBuf,
}

/// A set of output files committed together.
pub struct OutputSet {
    /// Sync every output to its device before the renames (durable across a power loss).
    pub sync: bool,
    /// The directory of the main output (the model), where relative outputs go.
    dir: PathBuf,
    files: Vec<Pending>,
    /// Directories this set created, in creation order (removed on failure).
    created: Vec<PathBuf>,
}

impl OutputSet {
    /// A set whose main output is `dest` (not yet created): refuses a `dest` that is a
    /// directory or a link to one, or that has no file name.
    pub fn new(dest: &Path) -> Result<OutputSet> {
        if dest.file_name().is_none() {
            return Err(Error::input(
                None,
                format!("output path {} has no file name", dest.display()),
            ));
        }
        if std::fs::metadata(dest).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Unsupported {
                detail: format!("output path {} is a directory", dest.display()),
            });
        }
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Ok(OutputSet {
            sync: true,
            dir,
            files: Vec::new(),
            created: Vec::new(),
        })
    }

    /// Adds the output `dest` (a path as the caller gave it); returns its handle.
    pub fn add(&mut self, dest: &Path) -> Result<usize> {
        if self.files.iter().any(|f| f.dest == dest) {
            return Err(Error::Unsupported {
                detail: format!("two outputs are named {}", dest.display()),
            });
        }
        if std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Unsupported {
                detail: format!("output path {} is a directory", dest.display()),
            });
        }
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        self.start(dest.to_path_buf(), parent)
    }

    /// Adds an output at `rel`, a path relative to the main output's directory made only of
    /// normal components (spec §6.3); creates the directories it needs, refusing any that
    /// exists as a symbolic link or as something else than a directory.
    pub fn add_relative(&mut self, rel: &Path) -> Result<usize> {
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(Error::Unsupported {
                detail: format!("output {} is not a plain relative path", rel.display()),
            });
        }
        let mut at = self.dir.clone();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::Unsupported {
                        detail: format!(
                            "{} is a symbolic link: external data is not written through links",
                            at.display()
                        ),
                    })
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Unsupported {
                        detail: format!("{} exists and is not a directory", at.display()),
                    })
                }
                Err(_) => {
                    // Created and recorded under the signal thread's lock: a signal never
                    // finds a directory it does not know of.
                    let mut l = live();
                    std::fs::create_dir(&at)
                        .map_err(|e| Error::io(format!("creating {}", at.display()), e))?;
                    l.push(at.clone());
                    drop(l);
                    self.created.push(at.clone());
                }
            }
        }
        let dest = self.dir.join(rel);
        self.add(&dest)
    }

    fn start(&mut self, dest: PathBuf, parent: &Path) -> Result<usize> {
        // As for directories: the file is created and recorded under the lock.
        let mut l = live();
        let mut builder = tempfile::Builder::new();
        builder.prefix(".nnc-").suffix(".tmp");
        // An output gets the permissions of any new file (0666 less the umask), not the
        // owner-only ones of a temporary file: it is renamed into place as it is.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = builder
            .tempfile_in(parent)
            .map_err(|e| {
                Error::io(
                    format!("creating a temporary file in {}", parent.display()),
                    e,
                )
            })?;
        let tmp_path = tmp.path().to_path_buf();
        l.push(tmp_path.clone());
        drop(l);
        self.files.push(Pending {
            dest,
            tmp: Some(BufWriter::with_capacity(1 << 20, tmp)),
            tmp_path,
        });
        Ok(self.files.len() - 1)
    }

    fn writer(&mut self, h: usize) -> std::io::Result<&mut BufWriter<NamedTempFile>> {
        self.files
            .get_mut(h)
            .and_then(|f| f.tmp.as_mut())
            .ok_or_else(|| std::io::Error::other("output already committed"))
    }

    /// Appends `data` to output `h`.
    pub fn write(&mut self, h: usize, data: &[u8]) -> Result<()> {
        let dest = self.files.get(h).map(|f| f.dest.display().to_string());
        let ctx = || format!("writing {}", dest.clone().unwrap_or_default());
        let w = self.writer(h).map_err(|e| Error::io(ctx(), e))?;
        w.write_all(data).map_err(|e| Error::io(ctx(), e))
    }

    /// Serializes `message` to the end of output `h` a buffer at a time: the serialized bytes
    /// are never whole in memory.
    pub fn serialize(&mut self, h: usize, message: &impl prost::Message) -> Result<()> {
        self.serialize_around(h, message, &HashMap::new()).map(|_| ())
    }

    /// As `serialize`, except that the bytes fields whose data starts at an address in
    /// `holes` (address → key) are not written: the file skips over them (a hole that reads
    /// as zeros) and their offsets come back with their keys, for `write_at` to fill.
    pub fn serialize_around(
        &mut self,
        h: usize,
        message: &impl prost::Message,
        holes: &HashMap<usize, usize>,
    ) -> Result<Vec<(usize, u64)>> {
        let dest = self.files.get(h).map(|f| f.dest.display().to_string());
        let ctx = || format!("writing {}", dest.clone().unwrap_or_default());
        let w = self.writer(h).map_err(|e| Error::io(ctx(), e))?;
        // WriteBuf is the only buffer: the file's own is emptied first and bypassed (a copy
        // through it would touch its pages too).
        w.flush().map_err(|e| Error::io(ctx(), e))?;
        let mut buf = WriteBuf {
            w: w.get_mut(),
            buf: Vec::with_capacity(WRITE_BUF),
            err: None,
            holes,
            found: Vec::new(),
        };
        message.encode_raw(&mut buf);
        buf.flush();
        if let Some(e) = buf.err {
            return Err(Error::io(ctx(), e));
        }
        Ok(buf.found)
    }

    /// Output `h`'s file, flushed, as a second handle (for positioned writes from another
    /// thread while this set stays as it is), and its destination for messages.
    pub fn file(&mut self, h: usize) -> Result<(std::fs::File, String)> {
        let dest = self.files.get(h).map(|f| f.dest.display().to_string()).unwrap_or_default();
        let ctx = |e| Error::io(format!("writing {dest}"), e);
        let w = self.writer(h).map_err(ctx)?;
        w.flush().map_err(ctx)?;
        let f = w.get_ref().as_file().try_clone().map_err(ctx)?;
        Ok((f, dest))
    }

    /// Writes `data` at byte `offset` of output `h` (the file grows; gaps read as zeros).
    pub fn write_at(&mut self, h: usize, offset: u64, data: &[u8]) -> Result<()> {
        let dest = self.files.get(h).map(|f| f.dest.display().to_string());
        let ctx = || format!("writing {}", dest.clone().unwrap_or_default());
        let w = self.writer(h).map_err(|e| Error::io(ctx(), e))?;
        w.flush().map_err(|e| Error::io(ctx(), e))?;
        w.get_mut()
            .as_file_mut()
            .seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(ctx(), e))?;
        w.write_all(data).map_err(|e| Error::io(ctx(), e))
    }

    /// Flushes (and with `sync`, syncs) every output, then renames them all into place, the first added
    /// (the main output, by convention the model) last. Holding the lock of the signal thread
    /// while renaming: an interruption leaves all outputs or none.
    pub fn commit(mut self) -> Result<()> {
        let mut done = Vec::new();
        for f in &mut self.files {
            let Some(w) = f.tmp.take() else { continue };
            let tmp = w
                .into_inner()
                .map_err(|e| Error::io(format!("writing {}", f.dest.display()), e.into_error()))?;
            if self.sync {
                tmp.as_file()
                    .sync_all()
                    .map_err(|e| Error::io(format!("syncing {}", f.dest.display()), e))?;
            }
            done.push((tmp, f.dest.clone()));
        }
        let mut l = live();
        let mut renamed: Vec<PathBuf> = Vec::new();
        let mut order: Vec<_> = done.into_iter().collect();
        if !order.is_empty() {
            let first = order.remove(0);
            order.push(first);
        }
        for (tmp, dest) in order {
            let tmp_path = tmp.path().to_path_buf();
            if let Err(e) = tmp.persist(&dest) {
                // Undo: nothing new stays (the renamed outputs replaced files that are gone,
                // but no partial set remains).
                for r in &renamed {
                    let _ = std::fs::remove_file(r);
                }
                drop(e.file);
                l.retain(|p| *p != tmp_path);
                return Err(Error::io(
                    format!("renaming to {}", dest.display()),
                    e.error,
                ));
            }
            l.retain(|p| *p != tmp_path);
            renamed.push(dest);
        }
        l.retain(|p| !self.created.contains(p));
        self.created.clear();
        COMMITTED.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        // NamedTempFile removes its file when dropped.
        let tmps: Vec<PathBuf> = self.files.iter().map(|f| f.tmp_path.clone()).collect();
        self.files.clear();
        forget(&tmps);
        for d in self.created.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        forget(&self.created);
    }
}

/// A single output file (the encoder's `.nnc`): an [`OutputSet`] of one, as a `Write`.
pub struct AtomicFile {
    set: OutputSet,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let mut set = OutputSet::new(dest)?;
        set.add(dest)?;
        Ok(AtomicFile { set })
    }

    /// The writer; hand it back to `commit` when done.
    pub fn writer(self) -> AtomicWriter {
        AtomicWriter(self)
    }

    /// Flushes, syncs and renames into place.
    pub fn commit(w: AtomicWriter) -> Result<()> {
        w.0.set.commit()
    }
}

/// A `Write` into an `AtomicFile`.
pub struct AtomicWriter(AtomicFile);

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.set.writer(0)?.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.set.writer(0)?.flush()
    }
}

/// Bytes `WriteBuf` gathers before writing them.
const WRITE_BUF: usize = 256 << 10;

/// A `BufMut` that passes what prost serializes on to a writer a buffer at a time. The first
/// write error is kept (`BufMut` cannot fail) and ends the writing.
struct WriteBuf<'a, W: Write + Seek> {
    w: &'a mut W,
    buf: Vec<u8>,
    err: Option<std::io::Error>,
    holes: &'a HashMap<usize, usize>,
    found: Vec<(usize, u64)>,
}

impl<W: Write + Seek> WriteBuf<'_, W> {
    fn flush(&mut self) {
        if self.err.is_none() {
            if let Err(e) = self.w.write_all(&self.buf) {
                self.err = Some(e);
            }
        }
        self.buf.clear();
    }

    /// Writes a large slice straight through, or skips it when it is a hole.
    fn put_large(&mut self, s: &[u8]) {
        self.flush();
        if self.err.is_some() {
            return;
        }
        let r = match self.holes.get(&(s.as_ptr() as usize)) {
            Some(&key) => i64::try_from(s.len())
                .map_err(std::io::Error::other)
                .and_then(|n| self.w.seek(SeekFrom::Current(n)))
                .map(|end| self.found.push((key, end - s.len() as u64))),
            None => self.w.write_all(s),
        };
        if let Err(e) = r {
            self.err = Some(e);
        }
    }
}

/// `BufMut`'s fixed-size puts (prost's fixed32, fixed64, float and double values), each as
/// one `put_array` of its little-endian bytes instead of the default `put_slice`.
macro_rules! fixed_puts {
    () => {
        fn put_u32_le(&mut self, n: u32) {
            self.put_array(n.to_le_bytes());
        }

        fn put_u64_le(&mut self, n: u64) {
            self.put_array(n.to_le_bytes());
        }

        fn put_i32_le(&mut self, n: i32) {
            self.put_array(n.to_le_bytes());
        }

        fn put_i64_le(&mut self, n: i64) {
            self.put_array(n.to_le_bytes());
        }

        fn put_f32_le(&mut self, n: f32) {
            self.put_array(n.to_le_bytes());
        }

        fn put_f64_le(&mut self, n: f64) {
            self.put_array(n.to_le_bytes());
        }
    };
}

/// Slices at least this long bypass the buffer.
pub(crate) const DIRECT: usize = 64 << 10;

// SAFETY: the buffer is a `Vec<u8>` and every method defers to `Vec<u8>`'s own `BufMut`
// implementation (`chunk_mut` is its spare capacity, `advance_mut` its length); `flush` only
// empties the vector between calls, and `put` either copies through `put_slice` or writes
// the source to the file itself (the buffer flushed first, so the order of bytes is kept).
#[allow(unsafe_code)]
unsafe impl<W: Write + Seek> prost::bytes::BufMut for WriteBuf<'_, W> {
    fn remaining_mut(&self) -> usize {
        isize::MAX as usize - self.buf.len()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialized `cnt` bytes of the chunk `chunk_mut` returned, which
        // is `self.buf`'s spare capacity.
        unsafe { self.buf.advance_mut(cnt) }
    }

    fn put<T: prost::bytes::Buf>(&mut self, mut src: T)
    where
        Self: Sized,
    {
        while src.has_remaining() {
            let c = src.chunk();
            let n = c.len();
            self.put_slice(c);
            src.advance(n);
        }
    }

    fn chunk_mut(&mut self) -> &mut prost::bytes::buf::UninitSlice {
        if self.buf.len() >= WRITE_BUF {
            self.flush();
        }
        self.buf.chunk_mut()
    }

    // prost writes a packed repeated field (`float_data`, `int64_data`, …) one value at a
    // time: these go straight into the vector rather than through `chunk_mut`, a copy call
    // each (measured: a third of the serialization of a model whose weights are float_data).
    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= DIRECT {
            return self.put_large(src);
        }
        if self.buf.len() >= WRITE_BUF {
            self.flush();
        }
        self.buf.extend_from_slice(src);
    }

    fn put_u8(&mut self, n: u8) {
        if self.buf.len() >= WRITE_BUF {
            self.flush();
        }
        self.buf.push(n);
    }

    fixed_puts!();
}

/// A vector that takes prost's packed repeated values without a copy call each (see
/// `WriteBuf`'s `put_slice`).
pub(crate) struct VecBuf<'a>(pub(crate) &'a mut Vec<u8>);

// SAFETY: every method defers to `Vec<u8>`'s own `BufMut` implementation or to its safe
// `extend_from_slice` / `push`.
#[allow(unsafe_code)]
unsafe impl prost::bytes::BufMut for VecBuf<'_> {
    fn remaining_mut(&self) -> usize {
        self.0.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: as the caller's contract for `Vec<u8>`'s own `advance_mut`.
        unsafe { self.0.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut prost::bytes::buf::UninitSlice {
        self.0.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.0.extend_from_slice(src);
    }

    fn put_u8(&mut self, n: u8) {
        self.0.push(n);
    }

    fixed_puts!();
}

impl VecBuf<'_> {
    #[inline]
    fn put_array<const N: usize>(&mut self, a: [u8; N]) {
        self.0.extend_from_slice(&a);
    }
}

impl<W: Write + Seek> WriteBuf<'_, W> {
    /// A fixed-size value: a bounds check and a store, no copy call.
    #[inline]
    fn put_array<const N: usize>(&mut self, a: [u8; N]) {
        if self.buf.len() >= WRITE_BUF {
            self.flush();
        }
        self.buf.extend_from_slice(&a);
    }
}
