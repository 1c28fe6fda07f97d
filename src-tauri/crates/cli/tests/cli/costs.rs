//! `comfyfleet costs`: caps shown and set in exact dollars (and kept), bad amounts refused with the fix; the month's
//! totals from a seeded ledger as text, JSON and CSV.

use comfyfleet_core::costs::calendar::{local_utc_offset_secs, year_month};
use comfyfleet_core::costs::prices::{serverless_charge, RatePer};
use comfyfleet_core::costs::{Backend, Costs, LedgerEntry};
use comfyfleet_core::home::AppHome;
use comfyfleet_core::store::Store;

use crate::{stderr, Cli};

#[test]
fn cli_costs_caps_show_and_set_exact_dollars() {
    let cli = Cli::new();
    let v = cli.json(&["costs", "caps", "--json"]);
    assert_eq!(v["caps"]["daily_micros"], 5_000_000);
    assert_eq!(v["caps"]["monthly_micros"], 50_000_000);

    let v = cli.json(&["costs", "caps", "--daily", "7.25", "--json"]);
    assert_eq!(v["caps"]["daily_micros"], 7_250_000);
    assert_eq!(v["caps"]["monthly_micros"], 50_000_000, "unchanged");
    cli.ok(&["costs", "caps", "--monthly", "$100.000001"], None);
    let v = cli.json(&["costs", "caps", "--json"]);
    assert_eq!(v["caps"]["daily_micros"], 7_250_000);
    assert_eq!(v["caps"]["monthly_micros"], 100_000_001);

    let text = cli.ok(&["costs", "caps"], None);
    assert!(
        text.contains("Daily cap") && text.contains("$7.25"),
        "{text}"
    );

    let out = cli.run(&["costs", "caps", "--daily", "lots"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--daily 'lots'"), "{}", stderr(&out));
    assert_eq!(
        cli.json(&["costs", "caps", "--json"])["caps"]["daily_micros"],
        7_250_000,
        "a refused amount changes nothing"
    );
}

#[tokio::test]
async fn cli_costs_month_totals_as_text_json_and_csv() {
    let cli = Cli::new();
    let now = comfyfleet_core::now_ms();
    {
        let home = AppHome::at(cli.home.path()).unwrap();
        let costs = Costs::new(Store::open(&home.database()).unwrap());
        let cloud = LedgerEntry::from_charge(
            "job-a",
            "endpoint-1",
            Backend::Serverless,
            now,
            serverless_charge(190, 9_500, 0, 0),
        );
        assert!(costs.settle(cloud).await.unwrap());
        let mut local = LedgerEntry::from_charge(
            "job-b",
            "local-gpu",
            Backend::Local,
            now,
            serverless_charge(0, 20_000, 0, 0),
        );
        local.rate_per = RatePer::KilowattHour;
        local.saved_micros = 6_200;
        assert!(costs.settle(local).await.unwrap());
    }

    let v = cli.json(&["costs", "--json"]);
    let (y, m) = year_month(now, local_utc_offset_secs(now));
    assert_eq!(v["month"], format!("{y:04}-{m:02}"));
    assert_eq!(v["totals"]["jobs"], 2);
    assert_eq!(v["totals"]["spent_micros"], 1_900);
    assert_eq!(v["totals"]["cloud_spent_micros"], 1_900);
    assert_eq!(v["totals"]["saved_micros"], 6_200);
    assert_eq!(v["by_server"].as_array().unwrap().len(), 2);
    assert!(v["projection_micros"].as_u64().unwrap() >= 1_900);

    let text = cli.ok(&["costs"], None);
    assert!(text.contains("Jobs        2"), "{text}");
    assert!(
        text.contains("$0.0019") && text.contains("$0.0062"),
        "{text}"
    );
    assert!(text.contains("endpoint-1"), "{text}");

    let csv_path = cli.home.path().join("month.csv");
    cli.ok(&["costs", "--csv", csv_path.to_str().unwrap()], None);
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("job-a,endpoint-1,serverless"), "{csv}");
    assert!(csv.contains(",0.001900,"), "{csv}");

    let old = cli.json(&["costs", "--month", "2020-01", "--json"]);
    assert_eq!(old["totals"]["jobs"], 0);
    let out = cli.run(&["costs", "--month", "2020-13"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("YYYY-MM"), "{}", stderr(&out));
}
