//! Costs: prices, the cost ledger, spending caps with atomic reservations, savings of the local GPU, and reports.
//!
//! The dispatcher's part: before sending a job to a paid backend, [`Costs::reserve`] its estimated cost (refused at
//! a cap, with the message to show); when the job ends, [`Costs::settle`] it with what it actually cost (a
//! [`LedgerEntry`], built from a [`prices::Charge`]); if it never ran there, [`Costs::release`] it.

pub mod calendar;
pub mod caps;
pub mod ledger;
pub mod prices;
pub mod report;

use serde::{Deserialize, Serialize};

pub use caps::{cap_check, CapStatus, CapVerdict, CapWarning, CapWhich, Caps, Reservation};
pub use ledger::{Backend, Ledger, LedgerEntry, PodUsage};
pub use prices::{Charge, RatePer};

use crate::settings::SettingsStore;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CostsError {
    /// A spending cap stops this cloud job; `message` is what the user is told.
    #[error("{message}")]
    CapReached { which: CapWhich, message: String },
    #[error("The cost of job {job_id} is already recorded; a retry billed again needs its own key (e.g. '{job_id}#2').")]
    AlreadySettled { job_id: String },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl crate::HasErrorInfo for CostsError {
    fn code(&self) -> &'static str {
        match self {
            CostsError::CapReached {
                which: CapWhich::Daily,
                ..
            } => "costs.daily_cap_reached",
            CostsError::CapReached {
                which: CapWhich::Monthly,
                ..
            } => "costs.monthly_cap_reached",
            CostsError::AlreadySettled { .. } => "costs.already_settled",
            CostsError::Store(e) => e.code(),
        }
    }
}

/// The settings key of [`PriceSettings`] (JSON).
pub const PRICES_KEY: &str = "cost_prices";

/// What the user tells the app about prices it cannot know: electricity, LAN servers' internal rates, and the cloud
/// GPU local jobs are compared with for savings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct PriceSettings {
    /// Electricity in micro-dollars per kWh (default 0: local is free unless the user says otherwise).
    pub electricity_micros_per_kwh: u64,
    /// The serverless GPU class local jobs are compared with (default `ADA_24`, an RTX 4090).
    pub reference_class: String,
    /// The reference GPU's time as a percent of the local GPU's (100 = as fast, 50 = twice as fast).
    pub reference_speed_percent: u32,
    /// Internal hourly rates of LAN servers, by server id, in micro-dollars per hour.
    pub lan_per_hr_micros: std::collections::BTreeMap<String, u64>,
}

impl Default for PriceSettings {
    fn default() -> Self {
        PriceSettings {
            electricity_micros_per_kwh: 0,
            reference_class: "ADA_24".into(),
            reference_speed_percent: 100,
            lan_per_hr_micros: Default::default(),
        }
    }
}

/// The cost monitor over the shared database. Cheap to clone.
#[derive(Clone)]
pub struct Costs {
    store: Store,
    settings: SettingsStore,
    ledger: Ledger,
    /// Fixed UTC offset for days and months (tests, a studio's chosen zone); the machine's zone when `None`.
    utc_offset_secs: Option<i32>,
}

impl Costs {
    pub fn new(store: Store) -> Costs {
        Costs {
            settings: SettingsStore::new(store.clone()),
            ledger: Ledger::new(store.clone()),
            store,
            utc_offset_secs: None,
        }
    }

    /// Count days and months at this UTC offset instead of the machine's time zone.
    pub fn with_utc_offset(mut self, secs: i32) -> Costs {
        self.utc_offset_secs = Some(secs);
        self
    }

    /// The UTC offset days and months are counted in at `now_ms`.
    pub fn utc_offset_secs(&self, now_ms: i64) -> i32 {
        self.utc_offset_secs
            .unwrap_or_else(|| calendar::local_utc_offset_secs(now_ms))
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub async fn prices(&self) -> Result<PriceSettings, CostsError> {
        Ok(self
            .settings
            .raw(PRICES_KEY)
            .await?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    pub async fn set_prices(&self, prices: PriceSettings) -> Result<PriceSettings, CostsError> {
        self.settings
            .put(
                PRICES_KEY,
                serde_json::to_string(&prices).unwrap_or_default(),
            )
            .await?;
        Ok(prices)
    }

    /// The month report of the local month `year`-`month` as of `now_ms` (`None` for a month that does not
    /// exist).
    pub async fn month_report(
        &self,
        year: i32,
        month: u32,
        now_ms: i64,
    ) -> Result<Option<report::Report>, CostsError> {
        let offset = self.utc_offset_secs(now_ms);
        let Some(span) = calendar::month_span_of(year, month, offset) else {
            return Ok(None);
        };
        let entries = self
            .ledger
            .entries_between(span.from_ms, span.to_ms)
            .await?;
        let pods = self
            .ledger
            .pod_usage_between(span.from_ms, span.to_ms)
            .await?;
        Ok(Some(report::report(&entries, &pods, span, now_ms, offset)))
    }
}
