//! Safe unpacking of the archives an install fetches (`.tar.gz` for ComfyUI and uv, `.zip` for uv on Windows).
//! Every entry is checked before anything is written: absolute paths, `..`, links that point outside the folder
//! or through another link of the archive are refused, so a hostile archive writes nothing at all.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("The archive {archive} is unsafe: entry '{entry}' {why}. Nothing was unpacked; the download may have been tampered with.")]
    Unsafe {
        archive: String,
        entry: String,
        why: &'static str,
    },
    #[error("The archive {archive} is damaged or not a {kind} file: {message}. Delete it and run the install again.")]
    Corrupt {
        archive: String,
        kind: &'static str,
        message: String,
    },
    #[error("Could not write {path}: {message}")]
    Write { path: String, message: String },
}

impl crate::HasErrorInfo for ExtractError {
    fn code(&self) -> &'static str {
        match self {
            ExtractError::Unsafe { .. } => "install.unsafe_archive",
            ExtractError::Corrupt { .. } => "install.corrupt_archive",
            ExtractError::Write { .. } => "install.write",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File {
        mode: u32,
    },
    Symlink {
        target: PathBuf,
    },
    /// A hard link to another entry of the archive (already relative to the destination).
    Hardlink {
        to: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    /// Inside the destination, prefix stripped.
    rel: PathBuf,
    kind: Kind,
}

/// What was unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unpacked {
    pub files: u64,
    pub bytes: u64,
}

/// Unpacks `archive` (`.tar.gz`/`.tgz` or `.zip`, by name) into `dest`, dropping `strip_prefix` (e.g.
/// "ComfyUI-0.3.64/") from every path. Checks every entry first; writes nothing when one is unsafe.
pub fn extract(archive: &Path, dest: &Path, strip_prefix: &str) -> Result<Unpacked, ExtractError> {
    let name = archive.to_string_lossy().to_ascii_lowercase();
    let zip = name.ends_with(".zip");
    let items = if zip {
        zip_items(archive, strip_prefix)?
    } else {
        tar_items(archive, strip_prefix)?
    };
    check(&items).map_err(|(entry, why)| ExtractError::Unsafe {
        archive: archive.display().to_string(),
        entry,
        why,
    })?;
    std::fs::create_dir_all(dest).map_err(|e| write_err(dest, e))?;
    if zip {
        write_zip(archive, dest, strip_prefix)
    } else {
        write_tar(archive, dest, strip_prefix)
    }
}

fn write_err(path: &Path, e: std::io::Error) -> ExtractError {
    ExtractError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The path inside the destination: prefix removed, `.` dropped; `None` for the prefix folder itself.
/// `Err` keeps the raw name for the message.
fn relative(raw: &Path, strip_prefix: &str) -> Result<Option<PathBuf>, (String, &'static str)> {
    let text = raw.to_string_lossy().replace('\\', "/");
    let shown = text.clone();
    let prefix = strip_prefix.trim_end_matches('/');
    let rest = if prefix.is_empty() {
        text.as_str()
    } else if text.trim_end_matches('/') == prefix {
        return Ok(None);
    } else if let Some(r) = text.strip_prefix(&format!("{prefix}/")) {
        r
    } else if text.starts_with('/') || text.split('/').any(|c| c == "..") {
        text.as_str() // checked below, so the message names the real problem
    } else {
        return Err((shown, "is outside the folder the archive should hold"));
    };
    if rest.starts_with('/') || Path::new(rest).has_root() || rest.chars().nth(1) == Some(':') {
        return Err((shown, "has an absolute path"));
    }
    let mut out = PathBuf::new();
    for c in Path::new(rest).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err((shown, "climbs out of the folder with '..'")),
            Component::RootDir | Component::Prefix(_) => {
                return Err((shown, "has an absolute path"))
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Every entry stays inside: no path goes through a link of the archive, and every link resolves inside
/// without passing through another link. Pure.
fn check(items: &[Item]) -> Result<(), (String, &'static str)> {
    let links: HashSet<&Path> = items
        .iter()
        .filter(|i| matches!(i.kind, Kind::Symlink { .. }))
        .map(|i| i.rel.as_path())
        .collect();
    let through_link = |p: &Path| p.ancestors().skip(1).any(|a| links.contains(a));
    for item in items {
        let shown = || item.rel.display().to_string();
        if through_link(&item.rel) {
            return Err((shown(), "is written through a link"));
        }
        match &item.kind {
            Kind::Symlink { target } => {
                if target.has_root() || target.to_string_lossy().starts_with('/') {
                    return Err((shown(), "is a link to an absolute path"));
                }
                let mut at: Vec<&std::ffi::OsStr> = item
                    .rel
                    .parent()
                    .map(|p| p.iter().collect())
                    .unwrap_or_default();
                for c in target.components() {
                    match c {
                        Component::Normal(n) => {
                            let here: PathBuf = at.iter().collect();
                            if links.contains(here.as_path()) && !at.is_empty() {
                                return Err((shown(), "is a link that goes through another link"));
                            }
                            at.push(n);
                        }
                        Component::CurDir => {}
                        Component::ParentDir => {
                            let here: PathBuf = at.iter().collect();
                            if links.contains(here.as_path()) && !at.is_empty() {
                                return Err((shown(), "is a link that goes through another link"));
                            }
                            if at.pop().is_none() {
                                return Err((shown(), "is a link that points outside the folder"));
                            }
                        }
                        _ => return Err((shown(), "is a link to an absolute path")),
                    }
                }
            }
            Kind::Hardlink { to } if through_link(to) || links.contains(to.as_path()) => {
                return Err((shown(), "is a hard link through a link"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn corrupt(archive: &Path, kind: &'static str, e: impl std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt {
        archive: archive.display().to_string(),
        kind,
        message: e.to_string(),
    }
}

fn unsafe_entry(archive: &Path, (entry, why): (String, &'static str)) -> ExtractError {
    ExtractError::Unsafe {
        archive: archive.display().to_string(),
        entry,
        why,
    }
}

fn open_tar(
    archive: &Path,
) -> Result<tar::Archive<flate2::read::GzDecoder<std::fs::File>>, ExtractError> {
    let f = std::fs::File::open(archive).map_err(|e| corrupt(archive, "tar.gz", e))?;
    Ok(tar::Archive::new(flate2::read::GzDecoder::new(f)))
}

/// The entries of a tar.gz as items (`None` for entries skipped: the prefix folder, pax headers, devices).
fn tar_item<R: Read>(
    archive: &Path,
    entry: &tar::Entry<'_, R>,
    strip_prefix: &str,
) -> Result<Option<Item>, ExtractError> {
    use tar::EntryType as T;
    let ty = entry.header().entry_type();
    if !matches!(
        ty,
        T::Regular | T::Continuous | T::Directory | T::Symlink | T::Link
    ) {
        return Ok(None); // pax/GNU headers, devices, fifos: nothing to write
    }
    let raw = entry.path().map_err(|e| corrupt(archive, "tar.gz", e))?;
    let Some(rel) = relative(&raw, strip_prefix).map_err(|e| unsafe_entry(archive, e))? else {
        return Ok(None);
    };
    let link = || {
        entry
            .link_name()
            .map_err(|e| corrupt(archive, "tar.gz", e))?
            .map(|l| l.into_owned())
            .ok_or_else(|| corrupt(archive, "tar.gz", "a link without a target"))
    };
    let kind = match ty {
        T::Directory => Kind::Dir,
        T::Symlink => Kind::Symlink { target: link()? },
        T::Link => {
            let to = relative(&link()?, strip_prefix)
                .map_err(|e| unsafe_entry(archive, e))?
                .ok_or_else(|| {
                    unsafe_entry(
                        archive,
                        (rel.display().to_string(), "is a hard link to a folder"),
                    )
                })?;
            Kind::Hardlink { to }
        }
        _ => Kind::File {
            mode: entry.header().mode().unwrap_or(0o644),
        },
    };
    Ok(Some(Item { rel, kind }))
}

fn tar_items(archive: &Path, strip_prefix: &str) -> Result<Vec<Item>, ExtractError> {
    let mut tar = open_tar(archive)?;
    let mut items = Vec::new();
    for entry in tar.entries().map_err(|e| corrupt(archive, "tar.gz", e))? {
        let entry = entry.map_err(|e| corrupt(archive, "tar.gz", e))?;
        if let Some(item) = tar_item(archive, &entry, strip_prefix)? {
            items.push(item);
        }
    }
    Ok(items)
}

fn write_tar(archive: &Path, dest: &Path, strip_prefix: &str) -> Result<Unpacked, ExtractError> {
    let mut tar = open_tar(archive)?;
    let mut done = Unpacked::default();
    for entry in tar.entries().map_err(|e| corrupt(archive, "tar.gz", e))? {
        let mut entry = entry.map_err(|e| corrupt(archive, "tar.gz", e))?;
        let Some(item) = tar_item(archive, &entry, strip_prefix)? else {
            continue;
        };
        write_item(dest, &item, &mut entry, &mut done)?;
    }
    Ok(done)
}

fn open_zip(archive: &Path) -> Result<zip::ZipArchive<std::fs::File>, ExtractError> {
    let f = std::fs::File::open(archive).map_err(|e| corrupt(archive, "zip", e))?;
    zip::ZipArchive::new(f).map_err(|e| corrupt(archive, "zip", e))
}

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

fn zip_item(
    archive: &Path,
    file: &mut zip::read::ZipFile<'_, std::fs::File>,
    strip_prefix: &str,
) -> Result<Option<Item>, ExtractError> {
    let raw = PathBuf::from(
        file.name()
            .map_err(|e| corrupt(archive, "zip", e))?
            .into_owned(),
    );
    let Some(rel) = relative(&raw, strip_prefix).map_err(|e| unsafe_entry(archive, e))? else {
        return Ok(None);
    };
    let mode = file.unix_mode();
    let kind = if file.is_dir() {
        Kind::Dir
    } else if mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
        let mut target = String::new();
        file.read_to_string(&mut target)
            .map_err(|e| corrupt(archive, "zip", e))?;
        Kind::Symlink {
            target: PathBuf::from(target),
        }
    } else {
        Kind::File {
            mode: mode.map(|m| m & 0o777).unwrap_or(0o644),
        }
    };
    Ok(Some(Item { rel, kind }))
}

fn zip_items(archive: &Path, strip_prefix: &str) -> Result<Vec<Item>, ExtractError> {
    let mut zip = open_zip(archive)?;
    let mut items = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).map_err(|e| corrupt(archive, "zip", e))?;
        if let Some(item) = zip_item(archive, &mut file, strip_prefix)? {
            items.push(item);
        }
    }
    Ok(items)
}

fn write_zip(archive: &Path, dest: &Path, strip_prefix: &str) -> Result<Unpacked, ExtractError> {
    let mut zip = open_zip(archive)?;
    let mut done = Unpacked::default();
    for i in 0..zip.len() {
        let item = {
            let mut file = zip.by_index(i).map_err(|e| corrupt(archive, "zip", e))?;
            zip_item(archive, &mut file, strip_prefix)?
        };
        let Some(item) = item else { continue };
        let mut file = zip.by_index(i).map_err(|e| corrupt(archive, "zip", e))?;
        write_item(dest, &item, &mut file, &mut done)?;
    }
    Ok(done)
}

/// Writes one checked item. An existing link at the path is replaced, never written through.
fn write_item(
    dest: &Path,
    item: &Item,
    content: &mut dyn Read,
    done: &mut Unpacked,
) -> Result<(), ExtractError> {
    let path = dest.join(&item.rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| write_err(parent, e))?;
    }
    let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link || (item.kind != Kind::Dir && path.is_file()) {
        std::fs::remove_file(&path).map_err(|e| write_err(&path, e))?;
    }
    match &item.kind {
        Kind::Dir => std::fs::create_dir_all(&path).map_err(|e| write_err(&path, e))?,
        Kind::File { mode } => {
            let mut f = std::fs::File::create(&path).map_err(|e| write_err(&path, e))?;
            done.bytes += std::io::copy(content, &mut f).map_err(|e| write_err(&path, e))?;
            done.files += 1;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = (mode & 0o777) | 0o600;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
            }
            #[cfg(not(unix))]
            let _ = mode;
        }
        Kind::Symlink { target } => {
            #[cfg(unix)]
            std::os::unix::fs::symlink(target, &path).map_err(|e| write_err(&path, e))?;
            #[cfg(not(unix))]
            {
                // Windows needs privileges for links: copy the target's content when it is a file.
                let from = path.parent().unwrap_or(dest).join(target);
                std::fs::copy(&from, &path).map_err(|e| write_err(&path, e))?;
            }
        }
        Kind::Hardlink { to } => {
            std::fs::hard_link(dest.join(to), &path).map_err(|e| write_err(&path, e))?;
            done.files += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(rel: &str, kind: Kind) -> Item {
        Item {
            rel: rel.into(),
            kind,
        }
    }
    fn link(rel: &str, target: &str) -> Item {
        item(
            rel,
            Kind::Symlink {
                target: target.into(),
            },
        )
    }

    #[test]
    fn extract_paths_lose_the_prefix_and_refuse_absolute_and_parent_paths() {
        let r = |p: &str| relative(Path::new(p), "ComfyUI-0.3.64/");
        assert_eq!(r("ComfyUI-0.3.64/main.py"), Ok(Some("main.py".into())));
        assert_eq!(r("ComfyUI-0.3.64/"), Ok(None));
        assert_eq!(r("ComfyUI-0.3.64/./a/b"), Ok(Some("a/b".into())));
        assert!(r("ComfyUI-0.3.64/../evil").unwrap_err().1.contains(".."));
        assert!(r("/etc/passwd").unwrap_err().1.contains("absolute"));
        assert!(r("../evil").unwrap_err().1.contains(".."));
        assert!(r("Other/main.py").unwrap_err().1.contains("outside"));
        assert!(relative(Path::new("C:\\x"), "")
            .unwrap_err()
            .1
            .contains("absolute"));
    }

    #[test]
    fn extract_allows_links_inside_and_refuses_links_out_or_through_links() {
        let file = Kind::File { mode: 0o644 };
        assert!(check(&[
            item("a/b.txt", file.clone()),
            link("a/l", "b.txt"),
            link("top", "a/../a/b.txt")
        ])
        .is_ok());
        assert!(check(&[link("a/l", "../../x")]).is_err());
        assert!(check(&[link("l", "/etc")]).is_err());
        // `s -> .` is harmless alone, but `s/..` would climb out through it.
        assert!(check(&[link("s", "."), link("u", "s/..")]).is_err());
        assert!(check(&[link("d", "sub"), item("d/x", file.clone())]).is_err());
        assert!(check(&[
            link("d", "sub"),
            item("h", Kind::Hardlink { to: "d/x".into() })
        ])
        .is_err());
    }
}
