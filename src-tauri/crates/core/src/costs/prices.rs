//! Prices and billing arithmetic, pure: RunPod serverless per-second rates by GPU class, pod and LAN hourly rates,
//! local electricity, and what a local job would have cost in the cloud. Integer micro-dollars throughout; every
//! product is taken in `u128` and saturates, so no input can overflow or wrap.

use serde::{Deserialize, Serialize};

/// Milliseconds in an hour.
const MS_PER_HOUR: u128 = 3_600_000;
/// A RunPod serverless worker stays up (and billed) this long after its last job unless another one arrives.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 5_000;

/// A RunPod serverless GPU class with its flex (scale-to-zero) price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ServerlessClass {
    /// RunPod's GPU pool id, as an endpoint's `gpu_class` names it (`AMPERE_24`).
    pub id: &'static str,
    /// The GPUs RunPod puts in that price tier, as the price list names them.
    pub gpus: &'static str,
    /// Micro-dollars per billed second ($0.00019/s = 190).
    pub per_sec_micros: u64,
}

/// RunPod's serverless flex prices per second (shared/reference/external-apis.md, section A), keyed by the pool ids
/// endpoints are configured with:
///
/// | id | GPUs | $/s |
/// |---|---|---|
/// | `AMPERE_16` | A4000, A4500, RTX 4000 (16 GB) | 0.00016 |
/// | `AMPERE_24` | L4, A5000, 3090 (24 GB) | 0.00019 |
/// | `ADA_24` (also `ADA_24_PRO`) | 4090 (24 GB PRO) | 0.00031 |
/// | `AMPERE_48` | A6000, A40 (48 GB) | 0.00034 |
/// | `ADA_48_PRO` | L40, L40S, 6000 Ada (48 GB PRO) | 0.00053 |
/// | `AMPERE_80` | A100 (80 GB) | 0.00076 |
/// | `ADA_80_PRO` (also `HOPPER_80`) | H100 (80 GB PRO) | 0.00116 |
/// | `HOPPER_141` | H200 (141 GB PRO) | 0.00155 |
/// | `BLACKWELL_180` | B200 (180 GB) | 0.00240 |
///
/// `ADA_24` is priced as its 4090 tier (the dearer of the GPUs RunPod may pick for it), so an estimate never falls
/// short. `ADA_32_PRO` (RTX 5090) is not in the shipped list: [`serverless_class`] answers `None` for it and
/// [`serverless_rate_or_highest`] prices it at the highest rate until RunPod's catalogue gives its price.
pub const SERVERLESS_CLASSES: [ServerlessClass; 9] = [
    class("AMPERE_16", "A4000, A4500, RTX 4000 (16 GB)", 160),
    class("AMPERE_24", "L4, A5000, 3090 (24 GB)", 190),
    class("ADA_24", "4090 (24 GB PRO)", 310),
    class("AMPERE_48", "A6000, A40 (48 GB)", 340),
    class("ADA_48_PRO", "L40, L40S, 6000 Ada (48 GB PRO)", 530),
    class("AMPERE_80", "A100 (80 GB)", 760),
    class("ADA_80_PRO", "H100 (80 GB PRO)", 1_160),
    class("HOPPER_141", "H200 (141 GB PRO)", 1_550),
    class("BLACKWELL_180", "B200 (180 GB)", 2_400),
];

const fn class(id: &'static str, gpus: &'static str, per_sec_micros: u64) -> ServerlessClass {
    ServerlessClass {
        id,
        gpus,
        per_sec_micros,
    }
}

/// The price class of an endpoint's `gpu_class`: a pool id (`AMPERE_24`, `ada-24`), or a GPU name as RunPod's
/// catalogue writes it (`NVIDIA GeForce RTX 4090`, `NVIDIA L40S`, `RTX4000`, `A100 80GB`). `None` when unknown. Pure.
pub fn serverless_class(gpu_class: &str) -> Option<&'static ServerlessClass> {
    let id = gpu_class
        .trim()
        .to_ascii_uppercase()
        .replace(['-', ' '], "_");
    let id = match id.as_str() {
        "ADA_24_PRO" => "ADA_24",
        "HOPPER_80" => "ADA_80_PRO",
        other => other,
    };
    if let Some(c) = SERVERLESS_CLASSES.iter().find(|c| c.id == id) {
        return Some(c);
    }
    let by_id = |id: &str| SERVERLESS_CLASSES.iter().find(|c| c.id == id);
    let name = gpu_class.to_ascii_lowercase();
    let tokens: Vec<&str> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    let has = |t: &str| tokens.contains(&t);
    let followed = |a: &str, b: &str| tokens.windows(2).any(|w| w[0] == a && w[1] == b);
    // Most specific first: "6000 Ada" before A6000, "RTX 4000" as two tokens or one.
    let id = if has("b200") {
        "BLACKWELL_180"
    } else if has("h200") {
        "HOPPER_141"
    } else if has("h100") {
        "ADA_80_PRO"
    } else if has("a100") {
        "AMPERE_80"
    } else if has("l40") || has("l40s") || followed("6000", "ada") {
        "ADA_48_PRO"
    } else if has("a6000") || has("a40") {
        "AMPERE_48"
    } else if has("4090") {
        "ADA_24"
    } else if has("l4") || has("a5000") || has("3090") {
        "AMPERE_24"
    } else if has("a4000") || has("a4500") || has("rtx4000") || followed("rtx", "4000") {
        "AMPERE_16"
    } else {
        return None;
    };
    by_id(id)
}

/// Micro-dollars per second for `gpu_class`, if it is a known class. Pure.
pub fn serverless_rate(gpu_class: &str) -> Option<u64> {
    serverless_class(gpu_class).map(|c| c.per_sec_micros)
}

/// Micro-dollars per second for `gpu_class`, or the highest shipped rate when the class is unknown (so a spending cap
/// is never passed by a guess that is too low), and whether it was known. Pure.
pub fn serverless_rate_or_highest(gpu_class: &str) -> (u64, bool) {
    match serverless_rate(gpu_class) {
        Some(r) => (r, true),
        None => (
            SERVERLESS_CLASSES
                .iter()
                .map(|c| c.per_sec_micros)
                .max()
                .unwrap_or(0),
            false,
        ),
    }
}

/// Serverless prices refreshed from RunPod's GPU catalogue (`/v2/catalog/gpus`, when a key is set), over the
/// shipped table: per GPU id as the catalogue names it, and per class (the dearest GPU of the class, so estimates
/// never fall short). Empty = the shipped table alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct PriceTable {
    /// Micro-dollars per second by class id (`ADA_24`).
    pub by_class: std::collections::BTreeMap<String, u64>,
    /// Micro-dollars per second by GPU id, lower-cased (`nvidia geforce rtx 5090`).
    pub by_gpu: std::collections::BTreeMap<String, u64>,
}

impl PriceTable {
    /// The table from RunPod's catalogue: GPUs with a serverless price. Pure.
    pub fn from_catalog(gpus: &[crate::runpod::pods::GpuType]) -> PriceTable {
        let mut t = PriceTable::default();
        for g in gpus {
            let Some(rate) = g.serverless_per_sec_micros.filter(|r| *r > 0) else {
                continue;
            };
            t.by_gpu.insert(g.id.trim().to_ascii_lowercase(), rate);
            if let Some(c) = serverless_class(&g.id).or_else(|| serverless_class(&g.name)) {
                let e = t.by_class.entry(c.id.to_string()).or_insert(rate);
                *e = (*e).max(rate);
            }
        }
        t
    }

    /// Micro-dollars per second for `gpu_class` (a class id or a GPU name): the catalogue's GPU price, else its
    /// class price, else the shipped one. Pure.
    pub fn rate(&self, gpu_class: &str) -> Option<u64> {
        if let Some(r) = self.by_gpu.get(&gpu_class.trim().to_ascii_lowercase()) {
            return Some(*r);
        }
        let class = serverless_class(gpu_class)?;
        Some(
            self.by_class
                .get(class.id)
                .copied()
                .unwrap_or(class.per_sec_micros),
        )
    }

    /// The serverless classes at today's prices: the catalogue's where it had them, else the shipped ones, in the
    /// shipped (tier) order. What the Cost Monitor offers as the reference GPU for savings. Pure.
    pub fn classes(&self) -> Vec<ServerlessClass> {
        SERVERLESS_CLASSES
            .iter()
            .map(|c| ServerlessClass {
                per_sec_micros: self.by_class.get(c.id).copied().unwrap_or(c.per_sec_micros),
                ..*c
            })
            .collect()
    }

    /// Like [`PriceTable::rate`], or the highest known rate when unknown, and whether it was known. Pure.
    pub fn rate_or_highest(&self, gpu_class: &str) -> (u64, bool) {
        match self.rate(gpu_class) {
            Some(r) => (r, true),
            None => {
                let shipped = serverless_rate_or_highest("").0;
                let refreshed = self.by_class.values().chain(self.by_gpu.values()).copied();
                (refreshed.fold(shipped, u64::max), false)
            }
        }
    }
}

/// What a rate is per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum RatePer {
    Second,
    Hour,
    /// Electricity: micro-dollars per kilowatt-hour.
    KilowattHour,
}

impl RatePer {
    pub fn as_str(self) -> &'static str {
        match self {
            RatePer::Second => "second",
            RatePer::Hour => "hour",
            RatePer::KilowattHour => "kilowatt_hour",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [RatePer::Second, RatePer::Hour, RatePer::KilowattHour]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// What one job cost: the time billed, the rate, the amount, and whether the figure is exact or an estimate (and how
/// it was made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Charge {
    /// The time billed, in ms (whole seconds for serverless).
    pub billed_ms: u64,
    pub rate_micros: u64,
    pub rate_per: RatePer,
    pub cost_micros: u64,
    pub exact: bool,
    /// How the figure was made, for the user ("11 s billed: 3 s cold start + 8 s run, rounded up ...").
    pub how: String,
}

/// `a × b / d`, rounded up, in `u128`, saturating at `u64::MAX`. `d` must be > 0.
fn mul_div_ceil(a: u64, b: u64, d: u128) -> u64 {
    let p = a as u128 * b as u128;
    u64::try_from(p.div_ceil(d)).unwrap_or(u64::MAX)
}

/// Seconds RunPod bills for a serverless job, rounded up to the whole second as RunPod does. Pure.
///
/// RunPod bills a worker from its start to its stop, rounded up to the second. Per job, that is:
/// - `execution_ms`: RunPod's `executionTime` — **exact** (what the handler ran);
/// - `cold_start_ms`: the worker's boot when the job woke one (RunPod's `delayTime` on a cold job). `delayTime` also
///   holds queue wait that is not billed, so counting all of it is an **estimate** that errs high;
/// - `idle_ms`: the idle timeout the worker stays up for after the job (default [`DEFAULT_IDLE_TIMEOUT_MS`]) — an
///   **estimate**: it is shared with the next job when one arrives in time, and is then billed once, not twice.
pub fn serverless_billed_secs(execution_ms: u64, cold_start_ms: u64, idle_ms: u64) -> u64 {
    execution_ms
        .saturating_add(cold_start_ms)
        .saturating_add(idle_ms)
        .div_ceil(1000)
}

/// The charge of a serverless job at `per_sec_micros` (see [`serverless_billed_secs`] for what is exact). Exact only
/// when it counts just the execution time. Pure.
pub fn serverless_charge(
    per_sec_micros: u64,
    execution_ms: u64,
    cold_start_ms: u64,
    idle_ms: u64,
) -> Charge {
    let secs = serverless_billed_secs(execution_ms, cold_start_ms, idle_ms);
    let exact = cold_start_ms == 0 && idle_ms == 0;
    let mut parts = vec![format!("{} ms run", execution_ms)];
    if cold_start_ms > 0 {
        parts.push(format!(
            "{cold_start_ms} ms cold start (RunPod's delay time, estimated as all boot)"
        ));
    }
    if idle_ms > 0 {
        parts.push(format!("{idle_ms} ms idle timeout (estimated)"));
    }
    Charge {
        billed_ms: secs.saturating_mul(1000),
        rate_micros: per_sec_micros,
        rate_per: RatePer::Second,
        cost_micros: secs.saturating_mul(per_sec_micros),
        exact,
        how: format!(
            "{secs} s billed ({}), rounded up to the second as RunPod does",
            parts.join(" + ")
        ),
    }
}

/// Cost of `ms` at an hourly rate (a pod's `costPerHr`, a LAN server's internal rate), rounded up to the
/// micro-dollar. Pure.
pub fn hourly_cost_micros(ms: u64, per_hr_micros: u64) -> u64 {
    mul_div_ceil(ms, per_hr_micros, MS_PER_HOUR)
}

/// The charge of `ms` on a pod or LAN server at `per_hr_micros`. Exact for pods (RunPod bills pods by the second
/// of uptime; a job's share is its own time). Pure.
pub fn hourly_charge(ms: u64, per_hr_micros: u64, what: &str) -> Charge {
    Charge {
        billed_ms: ms,
        rate_micros: per_hr_micros,
        rate_per: RatePer::Hour,
        cost_micros: hourly_cost_micros(ms, per_hr_micros),
        exact: true,
        how: format!("{ms} ms at {what}'s hourly rate"),
    }
}

/// Electricity for `ms` at a mean draw of `mean_milliwatts` (NVML reports mW) and `micros_per_kwh`, rounded up to
/// the micro-dollar: mW × ms × price / (1000 mW/W × 1000 W/kW × 3 600 000 ms/h). Pure.
pub fn electricity_cost_micros(mean_milliwatts: u64, ms: u64, micros_per_kwh: u64) -> u64 {
    // Three u64 factors can pass u128: saturate there too.
    let p = (mean_milliwatts as u128 * ms as u128).saturating_mul(micros_per_kwh as u128);
    u64::try_from(p.div_ceil(1_000_000 * MS_PER_HOUR)).unwrap_or(u64::MAX)
}

/// What a local job of `local_ms` would have cost on the reference cloud class: its time scaled by `speed_percent`
/// (the cloud GPU's time as a percent of the local one's: 50 = twice as fast), billed per started second. Pure.
pub fn cloud_equivalent_micros(local_ms: u64, speed_percent: u32, per_sec_micros: u64) -> u64 {
    let cloud_ms = mul_div_ceil(local_ms, speed_percent as u64, 100);
    cloud_ms.div_ceil(1000).saturating_mul(per_sec_micros)
}

/// What a local job saved: its cloud equivalent minus what it cost locally (never below zero). Pure.
pub fn saved_micros(cloud_equivalent_micros: u64, local_cost_micros: u64) -> u64 {
    cloud_equivalent_micros.saturating_sub(local_cost_micros)
}

/// The estimated cost of a serverless job before it runs, for a cap reservation: `expected_ms` of execution, plus
/// `cold_start_ms` when no worker is warm, plus the default idle timeout, at the class's rate (the highest shipped
/// rate for an unknown class). Errs high on purpose: the reservation is replaced by the actual cost when the job
/// ends. Pure.
pub fn estimate_serverless_micros(gpu_class: &str, expected_ms: u64, cold_start_ms: u64) -> u64 {
    let (rate, _) = serverless_rate_or_highest(gpu_class);
    serverless_charge(rate, expected_ms, cold_start_ms, DEFAULT_IDLE_TIMEOUT_MS).cost_micros
}

/// The charge of a local job: electricity at a mean draw of `mean_milliwatts` sampled during it. An estimate (a
/// mean of samples, the GPU alone, not the whole computer). Pure.
pub fn electricity_charge(mean_milliwatts: u64, ms: u64, micros_per_kwh: u64) -> Charge {
    Charge {
        billed_ms: ms,
        rate_micros: micros_per_kwh,
        rate_per: RatePer::KilowattHour,
        cost_micros: electricity_cost_micros(mean_milliwatts, ms, micros_per_kwh),
        exact: false,
        how: format!(
            "{ms} ms at a mean GPU draw of {} W (sampled), at your electricity price",
            mean_milliwatts / 1000
        ),
    }
}

/// Micro-dollars as "$1.234567" trimmed to at least cents ("$0.50", "$0.00019"): exact, for tables. Pure.
pub fn usd_exact(micros: u64) -> String {
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    let mut f = format!("{frac:06}");
    while f.len() > 2 && f.ends_with('0') {
        f.pop();
    }
    format!("${whole}.{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_match_the_reference_table_per_class_id() {
        let want = [
            ("AMPERE_16", 160),
            ("AMPERE_24", 190),
            ("ADA_24", 310),
            ("ADA_24_PRO", 310),
            ("AMPERE_48", 340),
            ("ADA_48_PRO", 530),
            ("AMPERE_80", 760),
            ("ADA_80_PRO", 1_160),
            ("HOPPER_141", 1_550),
            ("BLACKWELL_180", 2_400),
            ("ampere-24", 190),
            (" hopper_80 ", 1_160),
        ];
        for (id, rate) in want {
            assert_eq!(serverless_rate(id), Some(rate), "{id}");
        }
    }

    #[test]
    fn prices_accept_gpu_names_without_confusing_lookalikes() {
        let want = [
            ("NVIDIA RTX A4000", 160),
            ("NVIDIA RTX A4500", 160),
            ("RTX4000", 160),
            ("NVIDIA RTX 4000 Ada Generation", 160),
            ("NVIDIA L4", 190),
            ("NVIDIA RTX A5000", 190),
            ("NVIDIA GeForce RTX 3090", 190),
            ("NVIDIA GeForce RTX 4090", 310),
            ("NVIDIA RTX A6000", 340),
            ("NVIDIA A40", 340),
            ("NVIDIA L40", 530),
            ("NVIDIA L40S", 530),
            ("NVIDIA RTX 6000 Ada Generation", 530),
            ("NVIDIA A100 80GB PCIe", 760),
            ("NVIDIA A100-SXM4-80GB", 760),
            ("NVIDIA H100 80GB HBM3", 1_160),
            ("NVIDIA H200", 1_550),
            ("NVIDIA B200", 2_400),
        ];
        for (name, rate) in want {
            assert_eq!(serverless_rate(name), Some(rate), "{name}");
        }
        for unknown in ["ADA_32_PRO", "NVIDIA GeForce RTX 5090", "", "TPU"] {
            assert_eq!(serverless_rate(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn prices_unknown_class_is_priced_at_the_highest_rate() {
        assert_eq!(serverless_rate_or_highest("ADA_32_PRO"), (2_400, false));
        assert_eq!(serverless_rate_or_highest("AMPERE_24"), (190, true));
    }

    #[test]
    fn prices_serverless_rounds_up_to_the_started_second() {
        assert_eq!(serverless_billed_secs(0, 0, 0), 0);
        assert_eq!(serverless_billed_secs(1, 0, 0), 1);
        assert_eq!(serverless_billed_secs(1000, 0, 0), 1);
        assert_eq!(serverless_billed_secs(1001, 0, 0), 2);
        // RunPod's example: 824 ms delay (cold), 3391 ms run -> 4215 ms -> 5 s.
        assert_eq!(serverless_billed_secs(3391, 824, 0), 5);
        // Rounded once over the sum, not per part: 500 + 500 ms is one second.
        assert_eq!(serverless_billed_secs(500, 500, 0), 1);
        assert_eq!(serverless_billed_secs(3391, 824, 5_000), 10);
    }

    #[test]
    fn prices_serverless_charge_says_whether_it_is_exact() {
        let warm = serverless_charge(190, 3_391, 0, 0);
        assert_eq!(
            (warm.billed_ms, warm.cost_micros, warm.exact),
            (4_000, 760, true)
        );
        let cold = serverless_charge(190, 3_391, 824, DEFAULT_IDLE_TIMEOUT_MS);
        assert_eq!((cold.cost_micros, cold.exact), (1_900, false));
        assert!(cold.how.contains("cold start") && cold.how.contains("idle timeout"));
    }

    #[test]
    fn prices_hourly_cost_rounds_up_to_the_micro_dollar() {
        // $0.69/h for one hour, one second, one ms.
        assert_eq!(hourly_cost_micros(3_600_000, 690_000), 690_000);
        assert_eq!(hourly_cost_micros(1_000, 690_000), 192); // 191.67 -> 192
        assert_eq!(hourly_cost_micros(1, 690_000), 1); // 0.19 -> 1
        assert_eq!(hourly_cost_micros(0, 690_000), 0);
        assert_eq!(hourly_cost_micros(3_600_000, 0), 0);
        // Exact multiples are not rounded up.
        assert_eq!(hourly_cost_micros(1_800_000, 1_000_000), 500_000);
    }

    #[test]
    fn prices_electricity_is_watts_times_time_times_price() {
        // 300 W for one hour at $0.30/kWh = 0.3 kWh -> $0.09.
        assert_eq!(electricity_cost_micros(300_000, 3_600_000, 300_000), 90_000);
        // 350 W for 10 s at $0.25/kWh = 0.000972.. kWh -> 243.05 -> 244 micro-dollars.
        assert_eq!(electricity_cost_micros(350_000, 10_000, 250_000), 244);
        // The default price is 0: local is free.
        assert_eq!(electricity_cost_micros(350_000, 10_000, 0), 0);
    }

    #[test]
    fn prices_savings_scale_local_time_by_the_cloud_speed() {
        // 20 s locally, the cloud GPU takes 50% of that: 10 s at $0.00031/s.
        assert_eq!(cloud_equivalent_micros(20_000, 50, 310), 3_100);
        // 10.001 s at 100% -> 11 s billed.
        assert_eq!(cloud_equivalent_micros(10_001, 100, 190), 2_090);
        assert_eq!(saved_micros(3_100, 244), 2_856);
        assert_eq!(saved_micros(100, 244), 0);
    }

    #[test]
    fn prices_arithmetic_saturates_instead_of_overflowing() {
        assert_eq!(hourly_cost_micros(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(
            electricity_cost_micros(u64::MAX, u64::MAX, u64::MAX),
            u64::MAX
        );
        assert_eq!(
            serverless_billed_secs(u64::MAX, u64::MAX, u64::MAX),
            u64::MAX / 1000 + 1
        );
        let c = serverless_charge(u64::MAX, u64::MAX, 0, 0);
        assert_eq!(c.cost_micros, u64::MAX);
        assert_eq!(
            cloud_equivalent_micros(u64::MAX, u32::MAX, u64::MAX),
            u64::MAX
        );
        // Large but realistic: a month of an H200 pod at $3.99/h.
        assert_eq!(
            hourly_cost_micros(31 * 24 * 3_600_000, 3_990_000),
            2_968_560_000
        );
    }

    #[test]
    fn prices_estimate_counts_cold_start_and_idle_timeout_and_unknown_classes_high() {
        // 8 s run + 20 s cold start + 5 s idle = 33 s at $0.00019.
        assert_eq!(
            estimate_serverless_micros("AMPERE_24", 8_000, 20_000),
            33 * 190
        );
        // Warm: 8 s + 5 s idle.
        assert_eq!(estimate_serverless_micros("AMPERE_24", 8_000, 0), 13 * 190);
        assert_eq!(
            estimate_serverless_micros("ADA_32_PRO", 8_000, 0),
            13 * 2_400
        );
    }

    #[test]
    fn prices_electricity_charge_is_an_estimate() {
        let c = electricity_charge(350_000, 10_000, 250_000);
        assert_eq!(
            (c.cost_micros, c.exact, c.rate_per),
            (244, false, RatePer::KilowattHour)
        );
        assert!(c.how.contains("350 W"));
    }

    #[test]
    fn prices_catalogue_refresh_overrides_the_shipped_table() {
        use crate::runpod::pods::GpuType;
        let gpu = |id: &str, rate: Option<u64>| GpuType {
            id: id.into(),
            name: id.into(),
            memory_gb: 24,
            secure_per_hr_micros: None,
            community_per_hr_micros: None,
            serverless_per_sec_micros: rate,
        };
        let t = PriceTable::from_catalog(&[
            gpu("NVIDIA GeForce RTX 4090", Some(330)),
            gpu("NVIDIA L4", Some(180)),
            gpu("NVIDIA RTX A5000", Some(200)),
            gpu("NVIDIA GeForce RTX 5090", Some(440)),
            gpu("NVIDIA A40", None),
        ]);
        assert_eq!(t.rate("ADA_24"), Some(330));
        // A class takes its dearest GPU.
        assert_eq!(t.rate("AMPERE_24"), Some(200));
        assert_eq!(t.rate("NVIDIA L4"), Some(180));
        // A GPU the shipped table lacks is priced once the catalogue has it.
        assert_eq!(t.rate("NVIDIA GeForce RTX 5090"), Some(440));
        // Not in the catalogue: the shipped price.
        assert_eq!(t.rate("AMPERE_48"), Some(340));
        assert_eq!(t.rate("ADA_32_PRO"), None);
        assert_eq!(t.rate_or_highest("ADA_32_PRO"), (2_400, false));
        assert_eq!(PriceTable::default().rate("AMPERE_16"), Some(160));
        // The class list the Cost Monitor offers carries the refreshed prices, the shipped ones elsewhere.
        let classes = t.classes();
        let price = |id: &str| classes.iter().find(|c| c.id == id).unwrap().per_sec_micros;
        assert_eq!(
            (price("ADA_24"), price("AMPERE_24"), price("AMPERE_48")),
            (330, 200, 340)
        );
        assert_eq!(PriceTable::default().classes(), SERVERLESS_CLASSES.to_vec());
    }

    #[test]
    fn prices_usd_exact_keeps_every_micro_dollar() {
        assert_eq!(usd_exact(0), "$0.00");
        assert_eq!(usd_exact(500_000), "$0.50");
        assert_eq!(usd_exact(190), "$0.00019");
        assert_eq!(usd_exact(5_000_000), "$5.00");
        assert_eq!(usd_exact(1_234_567), "$1.234567");
    }
}
