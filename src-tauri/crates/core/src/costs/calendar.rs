//! The user's local days, weeks and months as epoch-millisecond ranges: pure functions of `(now_ms,
//! utc_offset_secs)`, so caps reset at local midnight and on the 1st, whatever the machine's clock zone.
//!
//! A fixed offset is applied to the whole range: across a daylight-saving change inside a month, the month's
//! boundaries are off by that hour (the offset is taken at `now`). Days are always right for "today".

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
use serde::Serialize;

/// A half-open range of time `[from_ms, to_ms)`, in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Span {
    pub fn contains(&self, ms: i64) -> bool {
        self.from_ms <= ms && ms < self.to_ms
    }
}

/// The local calendar date at `ms`.
pub fn local_date(ms: i64, utc_offset_secs: i32) -> NaiveDate {
    let local = ms.saturating_add(utc_offset_secs as i64 * 1000);
    DateTime::<Utc>::from_timestamp_millis(local)
        .unwrap_or_default()
        .date_naive()
}

/// Local midnight starting `date`, in epoch ms.
fn start_of(date: NaiveDate, utc_offset_secs: i32) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp_millis()
        - utc_offset_secs as i64 * 1000
}

/// The local `(year, month)` at `ms`.
pub fn year_month(ms: i64, utc_offset_secs: i32) -> (i32, u32) {
    let d = local_date(ms, utc_offset_secs);
    (d.year(), d.month())
}

/// The local day holding `now_ms`.
pub fn day_span(now_ms: i64, utc_offset_secs: i32) -> Span {
    let d = local_date(now_ms, utc_offset_secs);
    Span {
        from_ms: start_of(d, utc_offset_secs),
        to_ms: start_of(d + Duration::days(1), utc_offset_secs),
    }
}

/// The local week (Monday to Sunday) holding `now_ms`.
pub fn week_span(now_ms: i64, utc_offset_secs: i32) -> Span {
    let d = local_date(now_ms, utc_offset_secs);
    let monday = d - Duration::days(d.weekday().num_days_from_monday() as i64);
    Span {
        from_ms: start_of(monday, utc_offset_secs),
        to_ms: start_of(monday + Duration::days(7), utc_offset_secs),
    }
}

/// The local calendar month holding `now_ms`.
pub fn month_span(now_ms: i64, utc_offset_secs: i32) -> Span {
    let d = local_date(now_ms, utc_offset_secs);
    month_span_of(d.year(), d.month(), utc_offset_secs).unwrap_or(Span {
        from_ms: now_ms,
        to_ms: now_ms,
    })
}

/// The local month `year`-`month` (1..=12); `None` for a month that does not exist.
pub fn month_span_of(year: i32, month: u32, utc_offset_secs: i32) -> Option<Span> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some(Span {
        from_ms: start_of(first, utc_offset_secs),
        to_ms: start_of(next, utc_offset_secs),
    })
}

/// "2026-12" as `(2026, 12)`; `None` for anything else.
pub fn parse_month(text: &str) -> Option<(i32, u32)> {
    let (y, m) = text.trim().split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    NaiveDate::from_ymd_opt(y, m, 1).map(|_| (y, m))
}

/// The local day of `ms` as "2026-12-05".
pub fn day_key(ms: i64, utc_offset_secs: i32) -> String {
    local_date(ms, utc_offset_secs)
        .format("%Y-%m-%d")
        .to_string()
}

/// The local ISO week of `ms` as "2026-W49".
pub fn week_key(ms: i64, utc_offset_secs: i32) -> String {
    let w = local_date(ms, utc_offset_secs).iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// The local month of `ms` as "2026-12".
pub fn month_key(ms: i64, utc_offset_secs: i32) -> String {
    local_date(ms, utc_offset_secs).format("%Y-%m").to_string()
}

/// The machine's UTC offset at `now_ms`, in seconds (east positive). The one effect here: it reads the OS zone.
pub fn local_utc_offset_secs(now_ms: i64) -> i32 {
    let utc = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    chrono::Local
        .offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epoch ms of a UTC date and time.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp_millis()
    }

    const NEW_YORK: i32 = -5 * 3600;
    const TOKYO: i32 = 9 * 3600;

    #[test]
    fn calendar_day_in_utc_is_midnight_to_midnight() {
        let s = day_span(utc(2026, 12, 5, 15, 0), 0);
        assert_eq!(
            s,
            Span {
                from_ms: utc(2026, 12, 5, 0, 0),
                to_ms: utc(2026, 12, 6, 0, 0)
            }
        );
        assert!(s.contains(s.from_ms) && !s.contains(s.to_ms));
    }

    #[test]
    fn calendar_negative_offset_keeps_yesterday_after_midnight_utc() {
        // 02:00 UTC on Dec 6 is 21:00 on Dec 5 in New York: still Dec 5 there.
        let now = utc(2026, 12, 6, 2, 0);
        let s = day_span(now, NEW_YORK);
        assert_eq!(s.from_ms, utc(2026, 12, 5, 5, 0));
        assert_eq!(s.to_ms, utc(2026, 12, 6, 5, 0));
        assert_eq!(day_key(now, NEW_YORK), "2026-12-05");
        assert_eq!(day_key(now, 0), "2026-12-06");
        // One minute before New York's midnight and one minute after fall on different days.
        assert_ne!(
            day_span(utc(2026, 12, 6, 4, 59), NEW_YORK),
            day_span(utc(2026, 12, 6, 5, 1), NEW_YORK)
        );
    }

    #[test]
    fn calendar_positive_offset_starts_the_day_before_midnight_utc() {
        // 20:00 UTC on Dec 5 is 05:00 on Dec 6 in Tokyo.
        let s = day_span(utc(2026, 12, 5, 20, 0), TOKYO);
        assert_eq!(s.from_ms, utc(2026, 12, 5, 15, 0));
        assert_eq!(s.to_ms, utc(2026, 12, 6, 15, 0));
    }

    #[test]
    fn calendar_month_end_in_a_negative_offset_is_still_the_old_month() {
        // 03:00 UTC on Jan 1 2027 is 22:00 on Dec 31 in New York: December there, January in UTC.
        let now = utc(2027, 1, 1, 3, 0);
        let dec = month_span(now, NEW_YORK);
        assert_eq!(dec.from_ms, utc(2026, 12, 1, 5, 0));
        assert_eq!(dec.to_ms, utc(2027, 1, 1, 5, 0));
        assert_eq!(month_key(now, NEW_YORK), "2026-12");
        assert_eq!(month_span(now, 0).from_ms, utc(2027, 1, 1, 0, 0));
        // And the next month begins exactly where this one ends.
        assert_eq!(month_span(dec.to_ms, NEW_YORK).from_ms, dec.to_ms);
    }

    #[test]
    fn calendar_month_lengths_include_february_and_leap_years() {
        let days = |y, m| {
            let s = month_span_of(y, m, 0).unwrap();
            (s.to_ms - s.from_ms) / 86_400_000
        };
        assert_eq!(days(2026, 2), 28);
        assert_eq!(days(2028, 2), 29);
        assert_eq!(days(2026, 12), 31);
        assert_eq!(days(2026, 4), 30);
        assert_eq!(month_span_of(2026, 13, 0), None);
    }

    #[test]
    fn calendar_week_starts_on_monday() {
        // Sat Dec 5 2026 -> week of Mon Nov 30.
        let s = week_span(utc(2026, 12, 5, 12, 0), 0);
        assert_eq!(s.from_ms, utc(2026, 11, 30, 0, 0));
        assert_eq!(s.to_ms, utc(2026, 12, 7, 0, 0));
        assert_eq!(week_key(utc(2026, 12, 5, 12, 0), 0), "2026-W49");
    }

    #[test]
    fn calendar_parses_months_exactly() {
        assert_eq!(parse_month("2026-12"), Some((2026, 12)));
        assert_eq!(parse_month(" 2027-01 "), Some((2027, 1)));
        for bad in ["2026-13", "2026-1", "26-12", "2026/12", "", "2026-00"] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
    }
}
