//! Runs an install: each step idempotent and recorded with a hash of its inputs, so a rerun skips what is done and
//! a killed or failed install continues where it stopped. Progress goes to watchers as whole `InstallStatus`es.

use std::sync::Arc;

use tokio::sync::watch;

use super::status::{InstallCheck, InstallRequest, InstallStatus};

#[derive(Clone)]
pub struct Installer {
    tx: Arc<watch::Sender<InstallStatus>>,
}

impl Installer {
    pub fn new() -> Installer {
        Installer { tx: Arc::new(watch::channel(InstallStatus::idle()).0) }
    }
    pub fn status(&self) -> InstallStatus {
        self.tx.borrow().clone()
    }
    pub fn subscribe(&self) -> watch::Receiver<InstallStatus> {
        self.tx.subscribe()
    }
    pub async fn check(&self, _req: &InstallRequest) -> InstallCheck {
        unimplemented!()
    }
    pub fn start(&self, _req: InstallRequest) -> Result<InstallStatus, InstallError> {
        unimplemented!()
    }
    pub fn pause(&self) -> InstallStatus {
        unimplemented!()
    }
    pub fn resume(&self) -> Result<InstallStatus, InstallError> {
        unimplemented!()
    }
    pub fn cancel(&self) -> InstallStatus {
        unimplemented!()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("An install is already running in {0}. Wait for it, or cancel it first.")]
    Busy(String),
}

impl crate::HasErrorInfo for InstallError {
    fn code(&self) -> &'static str {
        match self {
            InstallError::Busy(_) => "install.busy",
        }
    }
}
