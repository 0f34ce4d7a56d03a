//! Building JSONL in memory and writing it to disk without ever leaving a half-written file.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Lines of a batch file, held as the bytes that will be written (compact: no per-line
/// objects), one `\n` after each line. The bytes are shared copy-on-write, so a snapshot
/// (for validating or iterating on another thread) costs nothing until the next append.
#[derive(Debug, Default, Clone)]
pub struct JsonlBuffer {
    data: Arc<Vec<u8>>,
    lines: usize,
}

impl JsonlBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one line produced by `write` (which must not emit a newline). If `write`
    /// fails, the buffer is left as it was.
    pub fn push_with<E>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        let data = Arc::make_mut(&mut self.data);
        let (mark, capacity) = (data.len(), data.capacity());
        let result = write(data);
        if data.capacity() != capacity {
            advise_huge_pages(data); // grown into a new allocation: its fresh room
        }
        match result {
            Ok(()) => {
                debug_assert!(!data[mark..].contains(&b'\n'));
                data.push(b'\n');
                self.lines += 1;
                Ok(())
            }
            Err(e) => {
                data.truncate(mark);
                Err(e)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lines
    }

    /// Room for `bytes` more bytes: a builder that knows how much is coming grows the
    /// buffer once instead of doubling it (each doubling copies everything and touches
    /// fresh memory, which page faults cost more than the copy).
    /// An estimate too large for memory is not an error: the buffer then grows as it goes.
    pub fn reserve(&mut self, bytes: usize) {
        let data = Arc::make_mut(&mut self.data);
        let capacity = data.capacity();
        if data.try_reserve(bytes).is_ok() && data.capacity() != capacity {
            advise_huge_pages(data);
        }
    }

    /// Bytes in the buffer.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The bytes as they are now, shared.
    pub fn snapshot(&self) -> Arc<Vec<u8>> {
        self.data.clone()
    }

    /// The lines, without their newlines.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.data.split(|&b| b == b'\n').take(self.lines)
    }
}

/// Asks for transparent huge pages on a large buffer's untouched room, 32 MiB or more (where
/// the system gives them on request: its `madvise` mode, the common default): filling it then faults
/// once per 2 MiB instead of once per 4 KiB, and on a virtual machine those faults are most
/// of what filling fresh memory costs. numpy does the same for its arrays from 4 MiB.
/// Advice only: nothing changes where the system says no.
pub fn advise_huge_pages(buf: &mut Vec<u8>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let spare = buf.spare_capacity_mut();
        // Only large buffers: they have pages of their own (memory the allocator hands out
        // again for small objects is left as it is).
        if spare.len() < 16 * HUGE {
            return;
        }
        let start = spare.as_mut_ptr() as usize;
        let (first, last) = ((start + HUGE - 1) & !(HUGE - 1), (start + spare.len()) & !(HUGE - 1));
        // SAFETY: the range is inside the vector's own allocation (its unused capacity);
        // MADV_HUGEPAGE changes no contents, only how the pages are backed.
        unsafe {
            libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// Writes a file through a temporary sibling and renames it into place, so a crash or an
/// error never leaves a truncated file where the old one was.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn failed_push_leaves_buffer_unchanged() {
        let mut b = JsonlBuffer::new();
        b.push_with(|w| {
            w.extend_from_slice(b"{}");
            Ok::<_, ()>(())
        })
        .unwrap();
        assert!(b
            .push_with(|w| {
                w.extend_from_slice(b"{\"half");
                Err(())
            })
            .is_err());
        assert_eq!(b.as_bytes(), b"{}\n");
        assert_eq!(b.lines().collect::<Vec<_>>(), [b"{}"]);
    }

    #[test]
    fn atomic_write_keeps_old_file_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        fs::write(&p, "old\n").unwrap();
        let err = write_atomic(&p, |w| {
            w.write_all(b"new")?;
            Err(io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(&p).unwrap(), "old\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temp file removed");
    }
}
