//! The fake's disk: ComfyUI's `input`, `output` and `temp` folders, kept in memory, and the rules of everything that
//! touches them (`GET /view`, `POST /upload/image`, `LoadImage`, the `SaveImage` file counter). Paths are checked
//! lexically, the way ComfyUI's `os.path` checks come out for paths without symlinks.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::multipart::Field;
use crate::pyjson::{self, OrderedJson};

/// Where ComfyUI keeps its folders on the recording machine (error messages name it).
pub(crate) const COMFY_ROOT: &str = "/opt/ComfyUI";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Folder {
    Input,
    Output,
    Temp,
}

impl Folder {
    /// `folder_paths.get_directory_by_type`: `None` for any other name.
    pub fn from_type(name: &str) -> Option<Folder> {
        match name {
            "input" => Some(Folder::Input),
            "output" => Some(Folder::Output),
            "temp" => Some(Folder::Temp),
            _ => None,
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            Folder::Input => "input",
            Folder::Output => "output",
            Folder::Temp => "temp",
        }
    }
}

/// `os.path.normpath` of a path inside a folder: `None` when it is absolute or climbs out of the folder with `..`.
/// The folder itself is `""`.
pub(crate) fn normalize(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// `os.path.join(folder, name)` for two normalized relative paths.
pub(crate) fn join(folder: &str, name: &str) -> String {
    match (folder.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => folder.to_string(),
        _ => format!("{folder}/{name}"),
    }
}

/// `folder_paths.annotated_filepath`: `name [output]`, `name [input]` and `name [temp]` name their folder.
pub(crate) fn annotated(name: &str) -> (&str, Option<Folder>) {
    for (suffix, folder) in [
        ("[output]", Folder::Output),
        ("[input]", Folder::Input),
        ("[temp]", Folder::Temp),
    ] {
        if name.ends_with(suffix) {
            // ComfyUI cuts the suffix and the space before it.
            let cut = name.len().saturating_sub(suffix.len() + 1);
            return (name.get(..cut).unwrap_or(""), Some(folder));
        }
    }
    (name, None)
}

/// A stable hash of file contents (what `LoadImage.IS_CHANGED` compares).
pub(crate) fn content_hash(bytes: &[u8]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// The answer of `GET /view`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ViewAnswer {
    File {
        /// The name for `Content-Disposition`.
        name: String,
        content_type: &'static str,
        bytes: Vec<u8>,
    },
    /// This status with an empty body.
    Status(u16),
}

/// The answer of `POST /upload/image`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UploadAnswer {
    /// 200 with this JSON body.
    Stored(String),
    /// 400, empty body.
    BadRequest,
    /// Python raised: 500.
    ServerError,
}

/// Where `SaveImage` and `PreviewImage` write: `folder_paths.get_save_image_path`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SavePath {
    pub subfolder: String,
    pub filename: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Files {
    files: BTreeMap<(Folder, String), Vec<u8>>,
}

impl Files {
    pub fn get(&self, folder: Folder, path: &str) -> Option<&[u8]> {
        self.files
            .get(&(folder, path.to_string()))
            .map(Vec::as_slice)
    }

    pub fn put(&mut self, folder: Folder, path: String, bytes: Vec<u8>) {
        self.files.insert((folder, path), bytes);
    }

    /// The image files of a folder, sorted (`LoadImage`'s choices are the top-level ones).
    pub fn list(&self, folder: Folder) -> Vec<String> {
        self.files
            .keys()
            .filter(|(f, path)| *f == folder && content_type(path).starts_with("image/"))
            .map(|(_, path)| path.clone())
            .collect()
    }

    /// Empties a folder (ComfyUI wipes `temp` when it starts).
    pub fn clear(&mut self, folder: Folder) {
        self.files.retain(|(f, _), _| *f != folder);
    }

    /// The file a node input such as `LoadImage.image` names (`sub/x.png`, `x.png [output]`; default `input`).
    pub fn annotated_file(&self, name: &str) -> Option<&[u8]> {
        let (name, folder) = annotated(name);
        self.get(folder.unwrap_or(Folder::Input), &normalize(name)?)
    }

    /// `GET /view?filename=F&type=T&subfolder=S`, as server.py answers it.
    pub fn view(
        &self,
        filename: Option<&str>,
        kind: Option<&str>,
        subfolder: Option<&str>,
    ) -> ViewAnswer {
        let Some(filename) = filename else {
            return ViewAnswer::Status(404);
        };
        let (filename, annotated_folder) = annotated(filename);
        if filename.is_empty() || filename.starts_with('/') || filename.contains("..") {
            return ViewAnswer::Status(400);
        }
        let folder = match annotated_folder {
            Some(folder) => folder,
            None => match Folder::from_type(kind.unwrap_or("output")) {
                Some(folder) => folder,
                None => return ViewAnswer::Status(400),
            },
        };
        let subfolder = match subfolder.map(normalize) {
            None => String::new(),
            Some(Some(sub)) => sub,
            // server.py: the joined folder must stay inside the type's folder, else 403.
            Some(None) => return ViewAnswer::Status(403),
        };
        let name = filename.rsplit('/').next().unwrap_or(filename);
        match self.get(folder, &join(&subfolder, name)) {
            Some(bytes) => ViewAnswer::File {
                name: name.to_string(),
                content_type: content_type(name),
                bytes: bytes.to_vec(),
            },
            None => ViewAnswer::Status(404),
        }
    }

    /// `POST /upload/image` with these form fields, as server.py's `image_upload` stores them.
    pub fn upload(&mut self, fields: &[Field]) -> UploadAnswer {
        let field = |name: &str| fields.iter().find(|f| f.name == name);
        let Some(image) = field("image") else {
            return UploadAnswer::BadRequest;
        };
        // A text field has no `.file`: AttributeError.
        let Some(filename) = image.filename.clone() else {
            return UploadAnswer::ServerError;
        };
        let kind = field("type").map(Field::text);
        let folder = match kind.as_deref() {
            None => Folder::Input,
            Some(name) => match Folder::from_type(name) {
                Some(folder) => folder,
                // `get_dir_by_type` leaves its result unbound: UnboundLocalError.
                None => return UploadAnswer::ServerError,
            },
        };
        if filename.is_empty() {
            return UploadAnswer::BadRequest;
        }
        let subfolder = field("subfolder").map(Field::text).unwrap_or_default();
        let Some(folder_path) = normalize(&subfolder) else {
            return UploadAnswer::BadRequest;
        };
        let Some(mut path) = normalize(&join(&folder_path, &filename)) else {
            return UploadAnswer::BadRequest;
        };
        let overwrite = field("overwrite")
            .map(Field::text)
            .is_some_and(|o| o == "true" || o == "1");
        let mut name = filename.clone();
        let mut duplicate = false;
        if !overwrite {
            let (stem, extension) = split_extension(&filename);
            let mut i = 1;
            while let Some(existing) = self.get(folder, &path) {
                if existing == image.data.as_slice() {
                    duplicate = true;
                    break;
                }
                name = format!("{stem} ({i}){extension}");
                path = match normalize(&join(&folder_path, &name)) {
                    Some(path) => path,
                    None => return UploadAnswer::BadRequest,
                };
                i += 1;
            }
        }
        if !duplicate {
            self.put(folder, path, image.data.clone());
        }
        UploadAnswer::Stored(pyjson::to_string(&OrderedJson::Object(vec![
            ("name".to_string(), OrderedJson::from(name.as_str())),
            (
                "subfolder".to_string(),
                OrderedJson::from(subfolder.as_str()),
            ),
            ("type".to_string(), OrderedJson::from(folder.type_name())),
        ])))
    }

    /// `folder_paths.get_save_image_path(prefix, output_dir)` without the date variables: the subfolder and file
    /// name the prefix gives, or the exception message when it points outside the folder.
    pub fn save_path(
        folder: Folder,
        prefix: &str,
        width: u32,
        height: u32,
    ) -> Result<SavePath, String> {
        let prefix = prefix
            .replace("%width%", &width.to_string())
            .replace("%height%", &height.to_string());
        let (dir, filename) = match prefix.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", prefix.as_str()),
        };
        let base = format!("{COMFY_ROOT}/{}", folder.type_name());
        match normalize(dir) {
            Some(subfolder) => Ok(SavePath {
                subfolder,
                filename: filename.to_string(),
            }),
            None => {
                let full = absolute(&base, dir);
                let common = common_path(&base, &full);
                Err(format!(
                    "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: {full}\n         output_dir: {base}\n         commonpath: {common}"
                ))
            }
        }
    }

    /// The first free counter for `{filename}_{counter:05}_…` in `subfolder`: one more than the largest found.
    pub fn next_counter(&self, folder: Folder, subfolder: &str, filename: &str) -> u64 {
        let prefix = format!("{filename}_");
        self.files
            .keys()
            .filter(|(f, _)| *f == folder)
            .filter_map(|(_, path)| {
                let name = match path.rsplit_once('/') {
                    Some((dir, name)) if dir == subfolder => name,
                    None if subfolder.is_empty() => path.as_str(),
                    _ => return None,
                };
                let rest = name.strip_prefix(&prefix)?;
                Some(
                    rest.split('_')
                        .next()
                        .unwrap_or("")
                        .parse::<u64>()
                        .unwrap_or(0),
                )
            })
            .max()
            .map_or(1, |max| max + 1)
    }
}

/// `os.path.splitext`.
fn split_extension(name: &str) -> (&str, &str) {
    let base_start = name.rfind('/').map_or(0, |i| i + 1);
    let base = &name[base_start..];
    match base.rfind('.') {
        Some(dot) if base[..dot].chars().any(|c| c != '.') => name.split_at(base_start + dot),
        _ => (name, ""),
    }
}

/// `os.path.abspath(os.path.join(base, path))`, lexically.
fn absolute(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `os.path.commonpath` of two absolute normalized paths.
fn common_path(a: &str, b: &str) -> String {
    let common: Vec<&str> = a
        .split('/')
        .zip(b.split('/'))
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .filter(|x| !x.is_empty())
        .collect();
    format!("/{}", common.join("/"))
}

/// `mimetypes.guess_type`, for the names the fake stores.
fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("wav") => "audio/x-wav",
        Some("flac") => "audio/flac",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, data: &[u8]) -> Field {
        Field {
            name: "image".into(),
            filename: Some(name.into()),
            data: data.to_vec(),
        }
    }

    fn text(name: &str, value: &str) -> Field {
        Field {
            name: name.into(),
            filename: None,
            data: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn files_normalize_keeps_paths_inside_the_folder() {
        assert_eq!(normalize("").as_deref(), Some(""));
        assert_eq!(normalize("a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("a/../../x"), None);
        assert_eq!(normalize("/etc"), None);
        assert_eq!(annotated("x.png [output]"), ("x.png", Some(Folder::Output)));
        assert_eq!(annotated("x.png"), ("x.png", None));
    }

    #[test]
    fn files_upload_answers_as_recorded() {
        let mut files = Files::default();
        let stored = |name: &str, subfolder: &str, kind: &str| {
            UploadAnswer::Stored(format!(
                r#"{{"name": "{name}", "subfolder": "{subfolder}", "type": "{kind}"}}"#
            ))
        };
        let first = [file("peer_upload.png", b"one")];
        assert_eq!(files.upload(&first), stored("peer_upload.png", "", "input"));
        assert_eq!(files.upload(&first), stored("peer_upload.png", "", "input"));
        let other = [file("peer_upload.png", b"two")];
        assert_eq!(
            files.upload(&other),
            stored("peer_upload (1).png", "", "input")
        );
        let overwrite = [file("peer_upload.png", b"three"), text("overwrite", "true")];
        assert_eq!(
            files.upload(&overwrite),
            stored("peer_upload.png", "", "input")
        );
        assert_eq!(
            files.get(Folder::Input, "peer_upload.png"),
            Some(&b"three"[..])
        );
        let temp = [
            file("peer_upload.png", b"x"),
            text("subfolder", "peer"),
            text("type", "temp"),
        ];
        assert_eq!(
            files.upload(&temp),
            stored("peer_upload.png", "peer", "temp")
        );
        assert_eq!(
            files.upload(&[text("type", "input")]),
            UploadAnswer::BadRequest
        );
        let escape = [file("x.png", b"x"), text("subfolder", "../..")];
        assert_eq!(files.upload(&escape), UploadAnswer::BadRequest);
        assert_eq!(
            files.upload(&[text("image", "x")]),
            UploadAnswer::ServerError
        );
        let bad_type = [file("x.png", b"x"), text("type", "models")];
        assert_eq!(files.upload(&bad_type), UploadAnswer::ServerError);
    }

    #[test]
    fn files_view_answers_as_recorded() {
        let mut files = Files::default();
        files.put(Folder::Output, "probe_00001_.png".into(), b"png".to_vec());
        files.put(Folder::Output, "sub/x.png".into(), b"sub".to_vec());
        let found = |name: &str, bytes: &[u8]| ViewAnswer::File {
            name: name.into(),
            content_type: "image/png",
            bytes: bytes.to_vec(),
        };
        assert_eq!(
            files.view(Some("probe_00001_.png"), None, None),
            found("probe_00001_.png", b"png")
        );
        assert_eq!(
            files.view(Some("probe_00001_.png"), Some("output"), Some("")),
            found("probe_00001_.png", b"png")
        );
        assert_eq!(
            files.view(Some("x.png"), None, Some("sub")),
            found("x.png", b"sub")
        );
        assert_eq!(
            files.view(Some("x.png [output]"), Some("input"), Some("sub")),
            found("x.png", b"sub")
        );
        assert_eq!(
            files.view(Some("nosuch.png"), Some("output"), None),
            ViewAnswer::Status(404)
        );
        assert_eq!(
            files.view(None, Some("output"), None),
            ViewAnswer::Status(404)
        );
        assert_eq!(
            files.view(Some("../comfyui.log"), Some("output"), None),
            ViewAnswer::Status(400)
        );
        assert_eq!(
            files.view(Some("/etc/passwd"), None, None),
            ViewAnswer::Status(400)
        );
        assert_eq!(
            files.view(Some("probe_00001_.png"), Some("bogus"), None),
            ViewAnswer::Status(400)
        );
        assert_eq!(
            files.view(Some("x.png"), None, Some("../..")),
            ViewAnswer::Status(403)
        );
    }

    #[test]
    fn files_save_counter_follows_existing_files_per_prefix() {
        let mut files = Files::default();
        assert_eq!(files.next_counter(Folder::Output, "", "probe"), 1);
        files.put(Folder::Output, "probe_00001_.png".into(), Vec::new());
        files.put(Folder::Output, "probe_00007_.png".into(), Vec::new());
        files.put(Folder::Output, "probe2_00009_.png".into(), Vec::new());
        files.put(Folder::Output, "a/probe_00020_.png".into(), Vec::new());
        assert_eq!(files.next_counter(Folder::Output, "", "probe"), 8);
        assert_eq!(files.next_counter(Folder::Output, "a", "probe"), 21);
        assert_eq!(files.next_counter(Folder::Temp, "", "probe"), 1);
        assert_eq!(
            Files::save_path(Folder::Output, "runs/%width%x%height%", 64, 32),
            Ok(SavePath {
                subfolder: "runs".into(),
                filename: "64x32".into()
            })
        );
        let escape = Files::save_path(Folder::Output, "../../x", 1, 1).expect_err("outside");
        assert!(escape.contains("full_output_folder: /opt\n"), "{escape}");
        assert!(escape.ends_with("commonpath: /opt"), "{escape}");
        assert_eq!(split_extension("a.b.png"), ("a.b", ".png"));
        assert_eq!(split_extension(".png"), (".png", ""));
        assert_eq!(split_extension("dir.x/name"), ("dir.x/name", ""));
    }
}
