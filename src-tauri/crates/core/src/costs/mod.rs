//! Costs: prices, the cost ledger, spending caps with atomic reservations, savings of the local GPU, and reports.
//!
//! The dispatcher's part: before sending a job to a paid backend, [`Costs::reserve`] its estimated cost (refused at
//! a cap, with the message to show); when the job ends, [`Costs::settle`] it with what it actually cost (a
//! [`LedgerEntry`], built from a [`prices::Charge`]); if it never ran there, [`Costs::release`] it.

pub mod calendar;
pub mod caps;
pub mod ledger;
pub mod power;
pub mod prices;
pub mod report;

use serde::{Deserialize, Serialize};

pub use caps::{cap_check, CapStatus, CapVerdict, CapWarning, CapWhich, Caps, Reservation};
pub use ledger::{Backend, JobCost, Ledger, LedgerEntry, PodUsage};
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
    #[error("'{text}' is not a month: give it as YYYY-MM, e.g. 2026-12.")]
    BadMonth { text: String },
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
            CostsError::BadMonth { .. } => "costs.bad_month",
            CostsError::Store(e) => e.code(),
        }
    }
}

/// The settings key of the serverless prices refreshed from RunPod's catalogue ([`prices::PriceTable`], JSON).
pub const PRICE_TABLE_KEY: &str = "cost_price_table";
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

impl PriceSettings {
    /// A local job of `ms` at a mean GPU draw of `mean_milliwatts`: its electricity charge, and what it saved
    /// against the reference cloud class (nothing is claimed for a reference class without a known price). Pure.
    pub fn local_job(&self, ms: u64, mean_milliwatts: u64) -> (Charge, u64) {
        let charge =
            prices::electricity_charge(mean_milliwatts, ms, self.electricity_micros_per_kwh);
        let rate = prices::serverless_rate(&self.reference_class).unwrap_or(0);
        let cloud = prices::cloud_equivalent_micros(ms, self.reference_speed_percent, rate);
        let saved = prices::saved_micros(cloud, charge.cost_micros);
        (charge, saved)
    }

    /// A job of `ms` on the LAN server `server_id`, at its hourly rate (free when none is set). Pure.
    pub fn lan_job(&self, server_id: &str, ms: u64) -> Charge {
        let rate = self.lan_per_hr_micros.get(server_id).copied().unwrap_or(0);
        prices::hourly_charge(ms, rate, "the LAN server")
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
        Ok(self.settings.json(PRICES_KEY).await?)
    }

    pub async fn set_prices(&self, prices: PriceSettings) -> Result<PriceSettings, CostsError> {
        self.settings.put_json(PRICES_KEY, &prices).await?;
        Ok(prices)
    }

    /// Serverless prices refreshed from RunPod's catalogue (empty until refreshed: the shipped table applies).
    pub async fn price_table(&self) -> Result<prices::PriceTable, CostsError> {
        Ok(self.settings.json(PRICE_TABLE_KEY).await?)
    }

    /// The serverless GPU classes at today's prices (refreshed or shipped), for choosing the reference GPU.
    pub async fn gpu_classes(&self) -> Result<Vec<prices::ServerlessClass>, CostsError> {
        Ok(self.price_table().await?.classes())
    }

    /// Keep prices refreshed from RunPod's catalogue (e.g. `PriceTable::from_catalog(&pods.gpu_types().await?)`).
    pub async fn set_price_table(
        &self,
        table: prices::PriceTable,
    ) -> Result<prices::PriceTable, CostsError> {
        self.settings.put_json(PRICE_TABLE_KEY, &table).await?;
        Ok(table)
    }

    /// The report of a month given as `YYYY-MM` (the current local month when `None`), with its `YYYY-MM` key.
    pub async fn report_of(
        &self,
        month: Option<&str>,
        now_ms: i64,
    ) -> Result<(String, report::Report), CostsError> {
        let bad = |t: &str| CostsError::BadMonth {
            text: t.to_string(),
        };
        let (year, mon) = match month {
            Some(text) => calendar::parse_month(text).ok_or_else(|| bad(text))?,
            None => calendar::year_month(now_ms, self.utc_offset_secs(now_ms)),
        };
        let key = format!("{year:04}-{mon:02}");
        let report = self
            .month_report(year, mon, now_ms)
            .await?
            .ok_or_else(|| bad(&key))?;
        Ok((key, report))
    }

    /// Every ledger row of a report's span, as CSV (dollars, local days).
    pub async fn csv_of(&self, report: &report::Report, now_ms: i64) -> Result<String, CostsError> {
        let entries = self
            .ledger
            .entries_between(report.span.from_ms, report.span.to_ms)
            .await?;
        Ok(report::csv(&entries, self.utc_offset_secs(now_ms)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_local_job_costs_electricity_and_saves_the_reference_cloud_price() {
        let p = PriceSettings {
            electricity_micros_per_kwh: 250_000,
            ..PriceSettings::default()
        };
        // 10 s at 350 W: 244 micro-dollars of power; 10 s on a 4090 endpoint would be 3 100.
        let (charge, saved) = p.local_job(10_000, 350_000);
        assert_eq!(charge.cost_micros, 244);
        assert_eq!(saved, 3_100 - 244);
        // Defaults: local is free, and the whole cloud price is saved.
        assert_eq!(
            PriceSettings::default().local_job(10_000, 350_000),
            (prices::electricity_charge(350_000, 10_000, 0), 3_100)
        );
        // An unknown reference class claims no saving.
        let unknown = PriceSettings {
            reference_class: "TPU".into(),
            ..PriceSettings::default()
        };
        assert_eq!(unknown.local_job(10_000, 350_000).1, 0);
    }

    #[test]
    fn costs_lan_job_uses_the_servers_hourly_rate() {
        let mut p = PriceSettings::default();
        p.lan_per_hr_micros.insert("box".into(), 1_200_000);
        assert_eq!(p.lan_job("box", 60_000).cost_micros, 20_000);
        assert_eq!(p.lan_job("other", 60_000).cost_micros, 0);
    }
}
