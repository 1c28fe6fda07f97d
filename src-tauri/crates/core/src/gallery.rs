//! The local gallery: where job outputs are saved, with file names checked so nothing a server
//! reports can write outside the gallery folder.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GalleryError {
    #[error("The server reported an output named '{name}', which is not a plain file name (it contains a path, '..', or forbidden characters). It was not saved: a server should never do this — check that it is a genuine ComfyUI.")]
    UnsafeName { name: String },
}

impl crate::HasErrorInfo for GalleryError {
    fn code(&self) -> &'static str {
        "gallery.unsafe_name"
    }
}

/// The media type of a file ComfyUI saves, by its extension (any case); `None` for others. Pure.
pub fn media_type(file_name: &str) -> Option<&'static str> {
    let ext = file_name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "json" => "application/json",
        _ => return None,
    })
}

/// A plain file name: no separators, no `..`, not absolute, no control or reserved characters.
pub fn check_file_name(name: &str) -> Result<&str, GalleryError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', ':', '*', '?', '"', '<', '>', '|'])
        || name.chars().any(char::is_control)
        || name.starts_with('.') && name.trim_start_matches('.').is_empty()
        || Path::new(name).is_absolute();
    if bad {
        Err(GalleryError::UnsafeName {
            name: name.to_string(),
        })
    } else {
        Ok(name)
    }
}

/// Where an output of `job_id` goes: `<gallery>/<job_id>/<file name>`. The server's subfolder is
/// not used for the local path; the name must be a plain file name.
pub fn output_path(gallery: &Path, job_id: &str, file_name: &str) -> Result<PathBuf, GalleryError> {
    check_file_name(job_id)?;
    let name = check_file_name(file_name)?;
    Ok(gallery.join(job_id).join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallery_names_the_media_type_of_what_comfyui_saves_by_extension() {
        assert_eq!(media_type("a.PNG"), Some("image/png"));
        assert_eq!(media_type("x.jpeg"), Some("image/jpeg"));
        assert_eq!(media_type("clip.webm"), Some("video/webm"));
        assert_eq!(media_type("noext"), None);
        assert_eq!(media_type("model.safetensors"), None);
    }

    #[test]
    fn gallery_refuses_names_that_escape_the_folder() {
        for bad in [
            "../../x.png",
            "/etc/x.png",
            "a/b.png",
            "a\\b.png",
            "..",
            ".",
            "",
            "C:x.png",
            "x\n.png",
        ] {
            assert!(output_path(Path::new("/g"), "job", bad).is_err(), "{bad:?}");
        }
        assert!(output_path(Path::new("/g"), "../job", "a.png").is_err());
    }

    #[test]
    fn gallery_keeps_plain_names_inside_the_job_folder() {
        let p = output_path(Path::new("/g"), "job-1", "ComfyUI_00001_.png").unwrap();
        assert_eq!(p, Path::new("/g/job-1/ComfyUI_00001_.png"));
        assert!(output_path(Path::new("/g"), "j", "my cat (1).png").is_ok());
        assert!(output_path(Path::new("/g"), "j", "..hidden.png").is_ok());
    }
}
