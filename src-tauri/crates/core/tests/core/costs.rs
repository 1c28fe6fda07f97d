//! Costs against a real SQLite file: reservations are atomic under concurrency (tasks, and two handles on one file
//! as two processes would be), survive reopening the database, are settled once, and warn at 80% of a cap.

use comfyfleet_core::costs::caps::{DAILY_MESSAGE, MONTHLY_MESSAGE};
use comfyfleet_core::costs::prices::serverless_charge;
use comfyfleet_core::costs::{Backend, CapWhich, Caps, Costs, CostsError, LedgerEntry};
use comfyfleet_core::store::Store;
use comfyfleet_core::HasErrorInfo;

const USD: u64 = 1_000_000;
/// 2026-12-05 12:00 UTC.
const NOW: i64 = 1_796_472_000_000;

fn costs(store: &Store) -> Costs {
    Costs::new(store.clone()).with_utc_offset(0)
}

/// A settled serverless job of `cost` micro-dollars.
fn spent(job: &str, at_ms: i64, cost: u64) -> LedgerEntry {
    let mut e = LedgerEntry::from_charge(
        job,
        "endpoint",
        Backend::Serverless,
        at_ms,
        serverless_charge(190, 10_000, 0, 0),
    );
    e.cost_micros = cost;
    e
}

async fn reserve_many(costs: Costs, prefix: &str, n: usize, each: u64) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let costs = costs.clone();
            let job = format!("{prefix}-{i}");
            tokio::spawn(async move { costs.reserve(&job, "endpoint", each, NOW).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CostsError::CapReached { which, message }) => {
                assert_eq!(which, CapWhich::Daily);
                assert_eq!(message, DAILY_MESSAGE);
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn costs_concurrent_reservations_never_pass_the_daily_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("fleet.db")).unwrap();
    let c = costs(&store);
    // $7 a day, $2 already spent today: $5 left for 100 jobs of $0.50.
    c.set_caps(Caps {
        daily_micros: 7 * USD,
        monthly_micros: 50 * USD,
    })
    .await
    .unwrap();
    assert!(c
        .settle(spent("earlier", NOW - 3_600_000, 2 * USD))
        .await
        .unwrap());

    let ok = reserve_many(c.clone(), "job", 100, USD / 2).await;
    assert_eq!(ok, 10);
    let status = c.cap_status(NOW).await.unwrap();
    assert_eq!(status.spent_today_micros, 2 * USD);
    assert_eq!(status.reserved_today_micros, 5 * USD);
    assert_eq!(status.daily_percent, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn costs_two_database_handles_reserving_at_once_never_pass_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    // Two connections to one file, as the desktop app and a CLI would have.
    let (a, b) = (Store::open(&path).unwrap(), Store::open(&path).unwrap());
    let (ca, cb) = (costs(&a), costs(&b));
    let (na, nb) = tokio::join!(
        reserve_many(ca.clone(), "app", 50, USD / 2),
        reserve_many(cb.clone(), "cli", 50, USD / 2)
    );
    assert_eq!(na + nb, 10, "app {na} + cli {nb}");
    assert_eq!(
        cb.cap_status(NOW).await.unwrap().reserved_today_micros,
        5 * USD
    );
}

#[tokio::test]
async fn costs_reservations_and_spend_survive_reopening_and_settle_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    {
        let c = costs(&Store::open(&path).unwrap());
        c.reserve("a", "endpoint", USD, NOW).await.unwrap();
        c.reserve("b", "endpoint", USD, NOW).await.unwrap();
        c.reserve("c", "endpoint", USD, NOW).await.unwrap();
        assert!(c.settle(spent("a", NOW + 1, 800_000)).await.unwrap());
        // Everything is dropped here, as a killed app would leave it.
    }
    let c = costs(&Store::open(&path).unwrap());
    let s = c.cap_status(NOW + 2).await.unwrap();
    assert_eq!(s.spent_today_micros, 800_000);
    assert_eq!(s.reserved_today_micros, 2 * USD);
    // Reserving a job again after the restart finds its reservation instead of counting it twice.
    let again = c.reserve("b", "endpoint", USD, NOW + 3).await.unwrap();
    assert_eq!(again.created_ms, NOW);
    assert_eq!(
        c.cap_status(NOW + 3).await.unwrap().reserved_today_micros,
        2 * USD
    );
    // Settling the same job twice (before and after the restart) counts once.
    assert!(!c.settle(spent("a", NOW + 4, 800_000)).await.unwrap());
    assert!(c.settle(spent("b", NOW + 4, 900_000)).await.unwrap());
    assert!(!c.settle(spent("b", NOW + 5, 900_000)).await.unwrap());
    assert!(c.reservation("b").await.unwrap().is_none());
    // A settled job cannot be reserved again under the same key.
    assert!(matches!(
        c.reserve("a", "endpoint", USD, NOW + 6).await,
        Err(CostsError::AlreadySettled { .. })
    ));
    // After the restart the outstanding ones can be listed (to reconcile with jobs that ended meanwhile).
    let held: Vec<String> = c
        .reservations()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.job_id)
        .collect();
    assert_eq!(held, ["c"]);
    // Releasing gives the money back, once.
    assert!(c.release("c").await.unwrap());
    assert!(!c.release("c").await.unwrap());
    let s = c.cap_status(NOW + 7).await.unwrap();
    assert_eq!(
        (s.spent_today_micros, s.reserved_today_micros),
        (1_700_000, 0)
    );
    assert_eq!(
        c.ledger().spent_between(0, i64::MAX).await.unwrap(),
        1_700_000
    );
}

#[tokio::test]
async fn costs_reserve_warns_at_eighty_percent_then_refuses_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let c = costs(&Store::open(&dir.path().join("fleet.db")).unwrap());
    let r = c.reserve("a", "endpoint", 3_500_000, NOW).await.unwrap();
    assert_eq!(r.warning, None, "70% of $5");
    let r = c.reserve("b", "endpoint", 600_000, NOW).await.unwrap();
    let w = r.warning.expect("82% of $5 warns");
    assert_eq!((w.which, w.percent), (CapWhich::Daily, 82));
    let err = c.reserve("c", "endpoint", USD, NOW).await.unwrap_err();
    assert_eq!(err.code(), "costs.daily_cap_reached");
    assert_eq!(err.to_string(), DAILY_MESSAGE);
    // Tomorrow the daily cap starts over; the month goes on.
    let tomorrow = NOW + 86_400_000;
    assert!(c.reserve("c", "endpoint", USD, tomorrow).await.is_ok());
}

#[tokio::test]
async fn costs_monthly_cap_counts_every_day_of_the_local_month() {
    let dir = tempfile::tempdir().unwrap();
    let c = costs(&Store::open(&dir.path().join("fleet.db")).unwrap());
    c.set_caps(Caps {
        daily_micros: 5 * USD,
        monthly_micros: 6 * USD,
    })
    .await
    .unwrap();
    // $4 spent on Dec 1, $1.50 today (Dec 5).
    let dec1 = NOW - 4 * 86_400_000;
    c.settle(spent("old", dec1, 4 * USD)).await.unwrap();
    c.settle(spent("today", NOW, 1_500_000)).await.unwrap();
    let err = c.reserve("x", "endpoint", USD, NOW).await.unwrap_err();
    assert_eq!(err.to_string(), MONTHLY_MESSAGE);
    assert_eq!(err.code(), "costs.monthly_cap_reached");
    assert!(c.reserve("y", "endpoint", USD / 2, NOW).await.is_ok());
}

#[tokio::test]
async fn costs_price_settings_and_refreshed_prices_are_kept() {
    use comfyfleet_core::costs::prices::PriceTable;
    use comfyfleet_core::costs::PriceSettings;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    {
        let c = costs(&Store::open(&path).unwrap());
        assert_eq!(c.prices().await.unwrap(), PriceSettings::default());
        assert_eq!(c.price_table().await.unwrap().rate("ADA_24"), Some(310));
        let mut p = PriceSettings {
            electricity_micros_per_kwh: 300_000,
            reference_speed_percent: 60,
            ..PriceSettings::default()
        };
        p.lan_per_hr_micros.insert("studio-box".into(), 900_000);
        c.set_prices(p).await.unwrap();
        let mut t = PriceTable::default();
        t.by_class.insert("ADA_24".into(), 330);
        c.set_price_table(t).await.unwrap();
    }
    let c = costs(&Store::open(&path).unwrap());
    let p = c.prices().await.unwrap();
    assert_eq!(p.electricity_micros_per_kwh, 300_000);
    assert_eq!(p.lan_per_hr_micros["studio-box"], 900_000);
    assert_eq!(c.price_table().await.unwrap().rate("ADA_24"), Some(330));
    // The reference GPUs offered for savings carry the refreshed price.
    let classes = c.gpu_classes().await.unwrap();
    let ada = classes.iter().find(|k| k.id == "ADA_24").unwrap();
    assert_eq!(ada.per_sec_micros, 330);
}

/// Set in the child process of [`costs_reservations_and_spend_survive_a_sigkill`]: the database to use.
const CHILD_DB: &str = "COMFYFLEET_COSTS_CHILD_DB";

/// Not a test by itself: the child that [`costs_reservations_and_spend_survive_a_sigkill`] starts and kills. Without
/// its variable set it returns at once.
#[tokio::test]
async fn costs_sigkill_child() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let c = costs(&Store::open(std::path::Path::new(&path)).unwrap());
    c.reserve("a", "endpoint", USD, NOW).await.unwrap();
    c.reserve("b", "endpoint", USD, NOW).await.unwrap();
    c.settle(spent("a", NOW + 1, 700_000)).await.unwrap();
    println!("costs-child-ready");
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
}

#[tokio::test]
async fn costs_reservations_and_spend_survive_a_sigkill() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["costs::costs_sigkill_child", "--exact", "--nocapture"])
        .env(CHILD_DB, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("costs-child-ready"));
    assert!(ready, "the child never got ready");
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no clean close.
    child.wait().unwrap();

    let c = costs(&Store::open(&path).unwrap());
    let s = c.cap_status(NOW + 2).await.unwrap();
    assert_eq!(s.spent_today_micros, 700_000);
    assert_eq!(s.reserved_today_micros, USD);
    // Settling what the killed process settled counts nothing more; its open reservation settles once.
    assert!(!c.settle(spent("a", NOW + 3, 700_000)).await.unwrap());
    assert!(c.settle(spent("b", NOW + 3, 600_000)).await.unwrap());
    let s = c.cap_status(NOW + 4).await.unwrap();
    assert_eq!(
        (s.spent_today_micros, s.reserved_today_micros),
        (1_300_000, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_local_and_lan_jobs_are_in_the_ledger_with_what_local_saved() {
    use comfyfleet_core::costs::PriceSettings;
    use comfyfleet_core::dispatcher::Dispatcher;
    use comfyfleet_core::jobs::{JobState, NewJob};
    use comfyfleet_core::router::{Policy, RouterConfig};
    use comfyfleet_testkit::{FakeComfy, FakeComfyConfig};
    use std::time::Duration;

    let t = crate::support::fleet();
    let slow = FakeComfyConfig {
        exec_time: Duration::from_millis(1200),
        ..Default::default()
    };
    let local = FakeComfy::start(slow.clone()).await;
    let lan = FakeComfy::start(slow).await;
    let mut li = crate::support::input("Local", &local.url());
    li.tags = vec!["local".into()];
    let local_id = t.fleet.servers.add(li).await.unwrap().id;
    // A studio machine (tagged lan: the fake listens on loopback, which would otherwise count as this computer).
    let mut si = crate::support::input("Studio box", &lan.url());
    si.tags = vec!["lan".into()];
    let lan_id = t.fleet.servers.add(si).await.unwrap().id;
    let costs = t.fleet.costs();
    // The studio's internal rate: $3.60 an hour = $0.001 a second.
    let mut prices = PriceSettings::default();
    prices.lan_per_hr_micros.insert(lan_id.clone(), 3_600_000);
    costs.set_prices(prices).await.unwrap();
    let d = Dispatcher::start(
        t.fleet.store.clone(),
        t.fleet.servers.clone(),
        t.fleet.health.clone(),
        t.fleet.home.gallery_dir(),
        RouterConfig {
            policy: Policy::Manual,
            ..Default::default()
        },
    );
    let mut entries = Vec::new();
    for (server, color) in [(&local_id, 1), (&lan_id, 2)] {
        let wf = crate::jobs::empty_image(color);
        let job = d
            .submit(NewJob {
                target: Some(server.clone()),
                ..NewJob::new("costed", wf)
            })
            .await
            .unwrap();
        let done = tokio::time::timeout(Duration::from_secs(30), d.wait(&job.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
        let e = costs
            .ledger()
            .entries_between(0, i64::MAX)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.job_id.starts_with(&job.id))
            .expect("the job is in the ledger");
        entries.push(e);
    }
    d.shutdown().await;
    let (local_e, lan_e) = (&entries[0], &entries[1]);
    assert_eq!(local_e.backend, Backend::Local);
    // No electricity price set (and no NVIDIA GPU here): free, and it says why.
    assert_eq!(local_e.cost_micros, 0);
    assert!(local_e.how.contains("no power reading"), "{}", local_e.how);
    // What the reference cloud GPU (ADA_24) would have billed for the same seconds.
    assert!(local_e.saved_micros > 0, "{local_e:?}");
    assert_eq!(lan_e.backend, Backend::Lan);
    assert!(
        lan_e.cost_micros >= 1_000 && lan_e.cost_micros < 10_000,
        "about 1.2 s at $0.001/s: {lan_e:?}"
    );
    assert_eq!(lan_e.saved_micros, 0);
    // Per job, as the job lists show it.
    let ids: Vec<String> = entries
        .iter()
        .map(|e| e.job_id.split('#').next().unwrap().to_string())
        .collect();
    let per_job = costs.ledger().job_costs(ids.clone()).await.unwrap();
    assert_eq!(per_job.len(), 2);
    assert_eq!(
        (per_job[0].job_id.as_str(), per_job[0].saved_micros),
        (ids[0].as_str(), local_e.saved_micros)
    );
    assert_eq!(per_job[1].cost_micros, lan_e.cost_micros);
    assert!(costs
        .ledger()
        .job_costs(vec!["no-such-job".into()])
        .await
        .unwrap()
        .is_empty());
    // Neither counts toward the cloud caps.
    let status = costs.cap_status(comfyfleet_core::now_ms()).await.unwrap();
    assert_eq!(status.spent_today_micros, 0, "{status:?}");
}
