//! The core's front door: opens the app home, database and keychain, and hands out each capability.

use crate::dispatcher::Dispatcher;
use crate::health::Health;
use crate::home::{AppHome, HomeError};
use crate::jobs::Jobs;
use crate::secrets::Secrets;
use crate::servers::ServerList;
use crate::settings::SettingsStore;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{0}")]
    Home(#[from] HomeError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl crate::HasErrorInfo for FleetError {
    fn code(&self) -> &'static str {
        match self {
            FleetError::Home(e) => e.code(),
            FleetError::Store(e) => e.code(),
        }
    }
}

/// Everything the desktop shell and the CLI call. Each field is a cheap, cloneable handle.
#[derive(Clone)]
pub struct Fleet {
    pub home: AppHome,
    pub store: Store,
    pub servers: ServerList,
    pub health: Health,
    pub settings: SettingsStore,
    pub jobs: Jobs,
}

impl Fleet {
    /// Open the fleet at `home` with the OS keychain.
    pub fn open(home: AppHome) -> Result<Self, FleetError> {
        Self::open_with(home, Secrets::default())
    }

    /// Start the dispatcher with the stored routing settings (call inside a tokio runtime).
    pub async fn start_dispatcher(&self) -> Dispatcher {
        let cfg = self.settings.router().await.unwrap_or_default();
        Dispatcher::start(
            self.store.clone(),
            self.servers.clone(),
            self.health.clone(),
            self.home.gallery_dir(),
            cfg,
        )
    }

    /// The RunPod account (its API key), in the same keychain and with the same addresses as the server list.
    pub fn runpod_account(&self) -> crate::runpod::account::RunpodAccount {
        crate::runpod::account::RunpodAccount::new(
            self.servers.secrets().clone(),
            self.servers.runpod_urls(),
        )
    }

    /// The cost monitor (ledger, caps and reservations) over the same database.
    pub fn costs(&self) -> crate::costs::Costs {
        crate::costs::Costs::new(self.store.clone())
    }

    pub fn open_with(home: AppHome, secrets: Secrets) -> Result<Self, FleetError> {
        let store = Store::open(&home.database())?;
        let servers = ServerList::new(store.clone(), secrets);
        let health = Health::new(servers.clone());
        let settings = SettingsStore::new(store.clone());
        let jobs = Jobs::new(store.clone());
        Ok(Self {
            home,
            store,
            servers,
            health,
            settings,
            jobs,
        })
    }
}
