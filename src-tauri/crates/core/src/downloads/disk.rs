//! The disk side of a download: free space, telling a full disk from other write errors, and the lock that keeps
//! two processes from writing the same part.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Bytes available to this user on the file system holding `dir`.
#[cfg(unix)]
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a properly sized, writable statvfs.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(available(&stat))
}

/// Bytes available to this user, from a file system's statistics.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // u64 on Linux, narrower on macOS
fn available(stat: &libc::statvfs) -> u64 {
    (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64)
}

#[cfg(not(unix))]
pub fn free_space(_dir: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

/// Reserves room for a file of `len` bytes being written (Linux `fallocate`, keeping its size), so a long download
/// is not cut short by other programs filling the disk, and its blocks are allocated once, in few extents. Only
/// when the disk has that room and 64 MiB to spare: a reservation that cannot be whole would just take the last
/// free space from everything else. Best effort: without it, the writes find out about a full disk themselves.
#[cfg(target_os = "linux")]
pub fn reserve(file: &File, len: u64) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let have = file
        .metadata()
        .map_or(0, |m| m.blocks().saturating_mul(512));
    let needed = len.saturating_sub(have);
    // SAFETY: fstatvfs only writes the struct it is given, for an open descriptor.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if needed == 0 || unsafe { libc::fstatvfs(file.as_raw_fd(), &mut stat) } != 0 {
        return;
    }
    let free = available(&stat);
    let Ok(len) = libc::off64_t::try_from(len) else {
        return;
    };
    if free > needed.saturating_add(64 << 20) {
        // SAFETY: a plain syscall on an open descriptor; it reads no memory of ours.
        unsafe {
            libc::fallocate64(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn reserve(_file: &File, _len: u64) {}

/// Starts the kernel writing `len` bytes of `file` from `offset` to disk, in the background (Linux
/// `sync_file_range`), so dirty pages do not pile up for a later fsync to wait on. Elsewhere a no-op.
#[cfg(target_os = "linux")]
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: a plain syscall on an open descriptor; it only starts writeback of the range and reads no memory.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Whether a write failed because the disk (or the quota, or the file-size limit) is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
        ) || e.kind() == std::io::ErrorKind::StorageFull
    }
    #[cfg(not(unix))]
    {
        e.kind() == std::io::ErrorKind::StorageFull
    }
}

/// An exclusive lock on `<dest>.part.lock`, released (and the file removed) on drop.
#[derive(Debug)]
pub struct PartLock {
    path: PathBuf,
    _file: File,
}

impl Drop for PartLock {
    fn drop(&mut self) {
        // Unlink first: a process waiting on this inode sees it is no longer the file at `path` and retries.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the lock if no other process holds it (`None` when one does).
#[cfg(unix)]
pub fn try_lock(path: &Path) -> std::io::Result<Option<PartLock>> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    loop {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        // The holder before us may have removed the file after we opened it: then lock the new one.
        let same = match std::fs::metadata(path) {
            Ok(m) => m.ino() == file.metadata()?.ino(),
            Err(_) => false,
        };
        if same {
            return Ok(Some(PartLock {
                path: path.to_path_buf(),
                _file: file,
            }));
        }
    }
}

#[cfg(not(unix))]
pub fn try_lock(path: &Path) -> std::io::Result<Option<PartLock>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    Ok(Some(PartLock {
        path: path.to_path_buf(),
        _file: file,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_reports_free_space_and_full_disk_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_space(dir.path()).unwrap() > 0);
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(
            libc::ENOSPC
        )));
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(
            libc::EFBIG
        )));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(
            libc::EACCES
        )));
    }

    #[test]
    fn disk_lock_has_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.part.lock");
        let held = try_lock(&p).unwrap().expect("free");
        assert!(try_lock(&p).unwrap().is_none(), "held");
        drop(held);
        assert!(!p.exists());
        assert!(try_lock(&p).unwrap().is_some());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn disk_reserve_allocates_the_space_without_growing_the_file_only_when_there_is_room() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        let file = File::create(&path).unwrap();
        reserve(&file, 8 << 20);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 0, "the size still says what is written");
        assert!(meta.blocks() * 512 >= 8 << 20, "{} blocks", meta.blocks());
        // More than the disk has: nothing is reserved (the last free space stays for everything else).
        let huge = File::create(dir.path().join("huge.part")).unwrap();
        reserve(&huge, free_space(dir.path()).unwrap() + (1 << 30));
        assert_eq!(huge.metadata().unwrap().blocks(), 0);
        // Writing it out in the background changes nothing visible.
        std::os::unix::fs::FileExt::write_all_at(&file, b"abc", 0).unwrap();
        start_writeback(&file, 0, 3);
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }
}
