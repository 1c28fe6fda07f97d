//! Daily and monthly cloud spending caps: the settings, the pure verdict on one more job, and atomic reservations —
//! a job's estimated cost is reserved before it goes to a paid backend, in one write transaction that sums what was
//! spent and reserved today and this month, so concurrent jobs (in this process or another) can never together pass
//! a cap. The reservation becomes a ledger row when the job ends (`settle`), or is dropped (`release`).

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::calendar::{day_span, month_span};
use super::ledger::{cloud_spent_in, db_int, reserved_in, LedgerEntry};
use super::{Costs, CostsError};
use crate::store::StoreError;

/// The settings key of the caps ([`Caps`], JSON).
pub const CAPS_KEY: &str = "cost_caps";
/// At this share of a cap, the user is warned.
pub const WARN_PERCENT: u32 = 80;
pub const DAILY_MESSAGE: &str =
    "Daily cloud spending limit reached — using your local GPU, or try again tomorrow";
pub const MONTHLY_MESSAGE: &str =
    "Monthly cloud spending limit reached — using your local GPU, or try again next month";

/// Cloud spending caps in micro-dollars (0 = no cloud spending at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct Caps {
    /// Default $5 a day.
    pub daily_micros: u64,
    /// Default $50 a month.
    pub monthly_micros: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            daily_micros: 5_000_000,
            monthly_micros: 50_000_000,
        }
    }
}

/// Which cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum CapWhich {
    Daily,
    Monthly,
}

impl CapWhich {
    /// What the user is told when this cap stops a cloud job.
    pub fn message(self) -> &'static str {
        match self {
            CapWhich::Daily => DAILY_MESSAGE,
            CapWhich::Monthly => MONTHLY_MESSAGE,
        }
    }
}

/// The verdict on one more cloud job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum CapVerdict {
    Allow,
    /// Allowed, and the cap it brings closest is now at `percent` (≥ 80) of its limit.
    AllowWithWarning {
        which: CapWhich,
        percent: u32,
    },
    Refuse {
        which: CapWhich,
        message: String,
    },
}

/// `used` as a percent of `cap`, floored (100 when the cap is 0 and something is used).
fn percent(used: u64, cap: u64) -> u32 {
    if cap == 0 {
        return if used == 0 { 0 } else { 100 };
    }
    u32::try_from(used as u128 * 100 / cap as u128).unwrap_or(u32::MAX)
}

/// Whether a cloud job of `estimate` micro-dollars may go, given what was spent and is reserved today and this month
/// (the local day and month). A cap may be reached exactly, never passed. When both caps would be passed, the
/// monthly one is named (waiting for tomorrow would not help). Pure.
pub fn cap_check(
    spent_today: u64,
    reserved_today: u64,
    spent_month: u64,
    reserved_month: u64,
    estimate: u64,
    caps: &Caps,
) -> CapVerdict {
    let day = spent_today
        .saturating_add(reserved_today)
        .saturating_add(estimate);
    let month = spent_month
        .saturating_add(reserved_month)
        .saturating_add(estimate);
    for (which, used, cap) in [
        (CapWhich::Monthly, month, caps.monthly_micros),
        (CapWhich::Daily, day, caps.daily_micros),
    ] {
        if used > cap {
            return CapVerdict::Refuse {
                which,
                message: which.message().to_string(),
            };
        }
    }
    let (dp, mp) = (
        percent(day, caps.daily_micros),
        percent(month, caps.monthly_micros),
    );
    let (which, pct) = if mp >= dp {
        (CapWhich::Monthly, mp)
    } else {
        (CapWhich::Daily, dp)
    };
    if pct >= WARN_PERCENT {
        CapVerdict::AllowWithWarning {
            which,
            percent: pct,
        }
    } else {
        CapVerdict::Allow
    }
}

/// A warning that came with a reservation: the cap `which` is at `percent` of its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CapWarning {
    pub which: CapWhich,
    pub percent: u32,
}

/// Money set aside for a job on its way to a paid backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Reservation {
    pub id: String,
    pub job_id: String,
    pub server_id: String,
    pub amount_micros: u64,
    pub created_ms: i64,
    /// Set when this reservation took a cap to 80% or more (notify the user).
    pub warning: Option<CapWarning>,
}

/// Spend and reservations against each cap now, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CapStatus {
    pub caps: Caps,
    pub spent_today_micros: u64,
    pub reserved_today_micros: u64,
    pub spent_month_micros: u64,
    pub reserved_month_micros: u64,
    /// (spent + reserved) as a percent of each cap.
    pub daily_percent: u32,
    pub monthly_percent: u32,
}

fn read_caps(c: &rusqlite::Connection) -> rusqlite::Result<Caps> {
    let raw: Option<String> = c
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [CAPS_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(raw
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

fn reservation_of(c: &rusqlite::Connection, job_id: &str) -> rusqlite::Result<Option<Reservation>> {
    c.query_row(
        "SELECT id, job_id, server_id, amount_micros, created_ms FROM reservations WHERE job_id = ?1",
        [job_id],
        |r| {
            Ok(Reservation {
                id: r.get(0)?,
                job_id: r.get(1)?,
                server_id: r.get(2)?,
                amount_micros: r.get::<_, i64>(3)?.max(0) as u64,
                created_ms: r.get(4)?,
                warning: None,
            })
        },
    )
    .optional()
}

impl Costs {
    /// The caps (defaults until the user sets them).
    pub async fn caps(&self) -> Result<Caps, CostsError> {
        self.store
            .call(|c| Ok::<_, CostsError>(read_caps(c).map_err(StoreError::from)?))
            .await
    }

    pub async fn set_caps(&self, caps: Caps) -> Result<Caps, CostsError> {
        self.settings.put_json(CAPS_KEY, &caps).await?;
        Ok(caps)
    }

    /// Spend and reservations against the caps today and this month (the local day and month of `now_ms`).
    pub async fn cap_status(&self, now_ms: i64) -> Result<CapStatus, CostsError> {
        let offset = self.utc_offset_secs(now_ms);
        let (day, month) = (day_span(now_ms, offset), month_span(now_ms, offset));
        self.store
            .call(move |c| {
                let q = || -> rusqlite::Result<CapStatus> {
                    let caps = read_caps(c)?;
                    let st = cloud_spent_in(c, day.from_ms, day.to_ms)?;
                    let rt = reserved_in(c, day.from_ms, day.to_ms)?;
                    let sm = cloud_spent_in(c, month.from_ms, month.to_ms)?;
                    let rm = reserved_in(c, month.from_ms, month.to_ms)?;
                    Ok(CapStatus {
                        caps,
                        spent_today_micros: st,
                        reserved_today_micros: rt,
                        spent_month_micros: sm,
                        reserved_month_micros: rm,
                        daily_percent: percent(st.saturating_add(rt), caps.daily_micros),
                        monthly_percent: percent(sm.saturating_add(rm), caps.monthly_micros),
                    })
                };
                Ok::<_, CostsError>(q().map_err(StoreError::from)?)
            })
            .await
    }

    /// Reserve `estimate_micros` for `job_id` before sending it to the paid backend `server_id`, if the caps allow.
    ///
    /// One write transaction reads the caps, sums spend and outstanding reservations for the local day and month of
    /// `now_ms`, decides with [`cap_check`] and inserts the reservation: SQLite's write lock makes concurrent calls
    /// (tasks, or other processes on the same database) run one after another, so they never pass a cap together.
    /// Reserving a job that already holds a reservation returns that one (nothing is counted twice). Errors:
    /// [`CostsError::CapReached`] with the message to show, [`CostsError::AlreadySettled`] when the job is already
    /// in the ledger (a retry that is billed again reserves under its own key, e.g. `"{job_id}#2"`).
    pub async fn reserve(
        &self,
        job_id: &str,
        server_id: &str,
        estimate_micros: u64,
        now_ms: i64,
    ) -> Result<Reservation, CostsError> {
        let offset = self.utc_offset_secs(now_ms);
        let (day, month) = (day_span(now_ms, offset), month_span(now_ms, offset));
        let (job_id, server_id) = (job_id.to_string(), server_id.to_string());
        self.store
            .write(move |tx| {
                if let Some(r) = reservation_of(tx, &job_id).map_err(StoreError::from)? {
                    return Ok(r);
                }
                let settled: bool = tx
                    .query_row("SELECT 1 FROM ledger WHERE job_id = ?1", [&job_id], |_| {
                        Ok(true)
                    })
                    .optional()
                    .map_err(StoreError::from)?
                    .unwrap_or(false);
                if settled {
                    return Err(CostsError::AlreadySettled { job_id });
                }
                let sums = || -> rusqlite::Result<(Caps, u64, u64, u64, u64)> {
                    Ok((
                        read_caps(tx)?,
                        cloud_spent_in(tx, day.from_ms, day.to_ms)?,
                        reserved_in(tx, day.from_ms, day.to_ms)?,
                        cloud_spent_in(tx, month.from_ms, month.to_ms)?,
                        reserved_in(tx, month.from_ms, month.to_ms)?,
                    ))
                };
                let (caps, st, rt, sm, rm) = sums().map_err(StoreError::from)?;
                let warning = match cap_check(st, rt, sm, rm, estimate_micros, &caps) {
                    CapVerdict::Refuse { which, message } => {
                        return Err(CostsError::CapReached { which, message })
                    }
                    CapVerdict::AllowWithWarning { which, percent } => {
                        Some(CapWarning { which, percent })
                    }
                    CapVerdict::Allow => None,
                };
                let id = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "INSERT INTO reservations (id, job_id, server_id, amount_micros, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, job_id, server_id, db_int(estimate_micros), now_ms],
                )
                .map_err(StoreError::from)?;
                Ok(Reservation {
                    id,
                    job_id,
                    server_id,
                    amount_micros: estimate_micros,
                    created_ms: now_ms,
                    warning,
                })
            })
            .await
    }

    /// The job's outstanding reservation, if any.
    pub async fn reservation(&self, job_id: &str) -> Result<Option<Reservation>, CostsError> {
        let job_id = job_id.to_string();
        self.store
            .call(move |c| {
                Ok::<_, CostsError>(reservation_of(c, &job_id).map_err(StoreError::from)?)
            })
            .await
    }

    /// Every outstanding reservation, oldest first (after a restart: jobs that ended while the app was down still
    /// hold theirs until settled or released).
    pub async fn reservations(&self) -> Result<Vec<Reservation>, CostsError> {
        self.store
            .call(|c| {
                let q = || -> rusqlite::Result<Vec<Reservation>> {
                    let ids = crate::store::rows(
                        c,
                        "SELECT job_id FROM reservations ORDER BY created_ms, job_id",
                        [],
                        |r| r.get::<_, String>(0),
                    )?;
                    let mut out = Vec::with_capacity(ids.len());
                    for id in ids {
                        out.extend(reservation_of(c, &id)?);
                    }
                    Ok(out)
                };
                Ok::<_, CostsError>(q().map_err(StoreError::from)?)
            })
            .await
    }

    /// Drop reservations made before `cutoff_ms` (jobs that can no longer be running: e.g. older than the longest
    /// job timeout). Returns how many were dropped.
    pub async fn release_older_than(&self, cutoff_ms: i64) -> Result<u32, CostsError> {
        self.store
            .write(move |tx| {
                let n = tx
                    .execute(
                        "DELETE FROM reservations WHERE created_ms < ?1",
                        [cutoff_ms],
                    )
                    .map_err(StoreError::from)?;
                Ok::<_, CostsError>(n as u32)
            })
            .await
    }

    /// The job ended on its paid backend: record what it actually cost and drop its reservation, atomically and
    /// once. True when this call recorded it; settling the same job again changes nothing.
    pub async fn settle(&self, entry: LedgerEntry) -> Result<bool, CostsError> {
        self.ledger.record_job(entry).await
    }

    /// The job will not run on the paid backend after all (failed before it ran, cancelled, sent elsewhere): drop
    /// its reservation. True when there was one.
    pub async fn release(&self, job_id: &str) -> Result<bool, CostsError> {
        let job_id = job_id.to_string();
        self.store
            .write(move |tx| {
                let n = tx
                    .execute("DELETE FROM reservations WHERE job_id = ?1", [job_id])
                    .map_err(StoreError::from)?;
                Ok::<_, CostsError>(n > 0)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: u64 = 1_000_000;

    fn check(spent_today: u64, reserved_today: u64, month: u64, estimate: u64) -> CapVerdict {
        cap_check(
            spent_today,
            reserved_today,
            month,
            0,
            estimate,
            &Caps::default(),
        )
    }

    #[test]
    fn caps_default_to_five_a_day_and_fifty_a_month() {
        assert_eq!(
            Caps::default(),
            Caps {
                daily_micros: 5 * USD,
                monthly_micros: 50 * USD
            }
        );
    }

    #[test]
    fn caps_allow_below_the_warning_line() {
        assert_eq!(check(0, 0, 0, USD), CapVerdict::Allow);
        assert_eq!(check(3 * USD, 0, 3 * USD, USD - 1), CapVerdict::Allow);
    }

    #[test]
    fn caps_warn_at_eighty_percent() {
        assert_eq!(
            check(3 * USD, 0, 3 * USD, USD),
            CapVerdict::AllowWithWarning {
                which: CapWhich::Daily,
                percent: 80
            }
        );
        // Reservations count like spend.
        assert_eq!(
            check(2 * USD, 2 * USD, 4 * USD, USD / 2),
            CapVerdict::AllowWithWarning {
                which: CapWhich::Daily,
                percent: 90
            }
        );
        // The monthly cap warns by itself.
        assert_eq!(
            check(0, 0, 40 * USD, USD),
            CapVerdict::AllowWithWarning {
                which: CapWhich::Monthly,
                percent: 82
            }
        );
    }

    #[test]
    fn caps_may_be_reached_exactly_but_not_passed() {
        assert_eq!(
            check(4 * USD, 0, 4 * USD, USD),
            CapVerdict::AllowWithWarning {
                which: CapWhich::Daily,
                percent: 100
            }
        );
        assert_eq!(
            check(4 * USD, 0, 4 * USD, USD + 1),
            CapVerdict::Refuse {
                which: CapWhich::Daily,
                message: DAILY_MESSAGE.into()
            }
        );
        assert_eq!(
            check(4 * USD, USD, 5 * USD, 1),
            CapVerdict::Refuse {
                which: CapWhich::Daily,
                message: DAILY_MESSAGE.into()
            }
        );
    }

    #[test]
    fn caps_monthly_refusal_wins_over_daily() {
        assert_eq!(
            check(5 * USD, 0, 50 * USD, 1),
            CapVerdict::Refuse {
                which: CapWhich::Monthly,
                message: MONTHLY_MESSAGE.into()
            }
        );
        assert_eq!(
            MONTHLY_MESSAGE,
            "Monthly cloud spending limit reached — using your local GPU, or try again next month"
        );
        assert_eq!(
            DAILY_MESSAGE,
            "Daily cloud spending limit reached — using your local GPU, or try again tomorrow"
        );
    }

    #[test]
    fn caps_of_zero_refuse_any_paid_job_and_huge_values_do_not_overflow() {
        let zero = Caps {
            daily_micros: 0,
            monthly_micros: 0,
        };
        assert!(matches!(
            cap_check(0, 0, 0, 0, 1, &zero),
            CapVerdict::Refuse { .. }
        ));
        assert_eq!(cap_check(0, 0, 0, 0, 0, &zero), CapVerdict::Allow);
        let max = Caps {
            daily_micros: u64::MAX,
            monthly_micros: u64::MAX,
        };
        assert!(matches!(
            cap_check(u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX, &max),
            CapVerdict::AllowWithWarning { percent: 100, .. }
        ));
    }
}
