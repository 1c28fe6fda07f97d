//! Where ComfyFleet keeps its data: the platform data dir, or `COMFYFLEET_HOME` when set.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the app home (tests, portable installs).
pub const HOME_ENV: &str = "COMFYFLEET_HOME";

/// The resolved app home and the well-known paths inside it.
#[derive(Debug, Clone)]
pub struct AppHome {
    root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("Could not find a data folder for ComfyFleet on this system. Set COMFYFLEET_HOME to a writable folder.")]
    NoPlatformDir,
    #[error("Could not create the data folder {path}: {source}. Check its permissions or set COMFYFLEET_HOME to a writable folder.")]
    Create {
        path: String,
        source: std::io::Error,
    },
}

impl crate::HasErrorInfo for HomeError {
    fn code(&self) -> &'static str {
        match self {
            HomeError::NoPlatformDir => "home.no_platform_dir",
            HomeError::Create { .. } => "home.create_failed",
        }
    }
}

impl AppHome {
    /// Resolve from `COMFYFLEET_HOME`, else the platform data dir, and create it.
    pub fn resolve() -> Result<Self, HomeError> {
        let root = match std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            Some(v) => PathBuf::from(v),
            None => directories::ProjectDirs::from("app", "ComfyFleet", "ComfyFleet")
                .ok_or(HomeError::NoPlatformDir)?
                .data_dir()
                .to_path_buf(),
        };
        Self::at(root)
    }

    /// Use an explicit folder (created if missing).
    pub fn at(root: impl Into<PathBuf>) -> Result<Self, HomeError> {
        let root = root.into();
        for dir in [root.clone(), root.join("logs")] {
            std::fs::create_dir_all(&dir).map_err(|source| HomeError::Create {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("comfyfleet.db")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// Job outputs, one folder per job.
    pub fn gallery_dir(&self) -> PathBuf {
        self.root.join("gallery")
    }
    /// Images ComfyUI clients uploaded to the gateway, until a prompt carries them to a server.
    pub fn gateway_uploads_dir(&self) -> PathBuf {
        self.root.join("gateway").join("uploads")
    }
    /// Where downloads go when no folder is given.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }
}
