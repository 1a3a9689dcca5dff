//! The file-system calls the store makes, behind a trait so tests can
//! record them, fail them and "crash" between any two.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A file being written.
pub trait FsFile: Write + Send {
    /// Flushes the file's data and metadata to stable storage (fsync).
    fn sync_all(&mut self) -> io::Result<()>;
}

/// The file-system operations of the store.
pub trait Fs: Send + Sync + fmt::Debug + 'static {
    /// `mkdir -p`.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a file that must not exist yet (`O_EXCL`).
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Atomic rename.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// fsync of a directory, making renames and creations in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory tree.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Opens a file for reading, streamed.
    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;
    /// File names in a directory (empty if it does not exist).
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Called before a step that is not a file-system call (the index
    /// commit), so a test can crash there too.
    fn barrier(&self, _what: &str) -> io::Result<()> {
        Ok(())
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

struct RealFile(File);

impl Write for RealFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FsFile for RealFile {
    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

impl Fs for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let f = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Box::new(RealFile(f)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        match fs::remove_dir_all(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(io::BufReader::new(File::open(path)?)))
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        match fs::read_dir(path) {
            Ok(rd) => rd
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// An in-memory file system, for the memory backend and tests.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    files: Arc<Mutex<BTreeMap<PathBuf, Arc<Vec<u8>>>>>,
}

struct MemFile {
    path: PathBuf,
    buf: Vec<u8>,
    files: Arc<Mutex<BTreeMap<PathBuf, Arc<Vec<u8>>>>>,
}

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FsFile for MemFile {
    fn sync_all(&mut self) -> io::Result<()> {
        lock(&self.files).insert(self.path.clone(), Arc::new(self.buf.clone()));
        Ok(())
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        lock(&self.files).insert(self.path.clone(), Arc::new(std::mem::take(&mut self.buf)));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fs for MemFs {
    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut files = lock(&self.files);
        if files.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        files.insert(path.to_owned(), Arc::new(Vec::new()));
        Ok(Box::new(MemFile {
            path: path.to_owned(),
            buf: Vec::new(),
            files: self.files.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = lock(&self.files);
        if let Some(data) = files.remove(from) {
            files.insert(to.to_owned(), data);
            return Ok(());
        }
        // A directory: move everything below it.
        let below: Vec<PathBuf> = files
            .keys()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for p in below {
            if let (Some(data), Ok(rest)) = (files.remove(&p), p.strip_prefix(from)) {
                files.insert(to.join(rest), data);
            }
        }
        Ok(())
    }
    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        lock(&self.files)
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        lock(&self.files).retain(|p, _| !p.starts_with(path));
        Ok(())
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        let data = lock(&self.files)
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Box::new(Cursor::new(ArcBytes(data))))
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        Ok(lock(&self.files)
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }
}

struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
