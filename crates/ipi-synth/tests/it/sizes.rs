//! Odd sizes work: user counts that are not multiples of 1,000 (SageMaker's
//! generator hangs on them), one user, one day; re-runs replace.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;

use crate::util::{is_login, log_lines, objects, parse, run, small};

async fn users_in(root: &str) -> (BTreeSet<String>, i64, i64) {
    let (mut users, mut first, mut last) = (BTreeSet::new(), i64::MAX, i64::MIN);
    for line in log_lines(root).await {
        let r = parse(&line);
        if is_login(&r) {
            users.insert(r.user.unwrap().into_owned());
        }
        first = first.min(r.timestamp_us);
        last = last.max(r.timestamp_us);
    }
    (users, first, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_users_one_user_one_day() {
    for users in [1u64, 7, 17] {
        let config = small(&format!("sizes-{users}"), users, 1);
        let done = Arc::new(AtomicU64::new(0));
        let progress: ipi_synth::ProgressFn = {
            let done = Arc::clone(&done);
            Arc::new(move |n| {
                done.fetch_add(n, Ordering::Relaxed);
            })
        };
        let summary = ipi_synth::synth(&config, Some(progress)).await.unwrap();
        assert_eq!(done.load(Ordering::Relaxed), users, "progress counts every user once");
        assert_eq!(summary.users, users);
        assert_eq!(summary.files, users.div_ceil(16));
        let (seen, first, last) = users_in(&config.output).await;
        let expected: BTreeSet<String> = (0..users).map(|u| format!("user_{u}")).collect();
        assert_eq!(seen, expected);
        // One day: 2018-11-13, UTC, whatever offset the lines carry.
        let start = NaiveDate::from_ymd_opt(2018, 11, 13).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let start = start.and_utc().timestamp_micros();
        assert!(first >= start && last < start + 86_400_000_000, "{first}..{last}");
        let manifest = &objects(&config.output).await["_manifest.json"];
        let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
        assert_eq!(manifest["step"], "synth");
        assert_eq!(manifest["summary"]["lines"], summary.lines);
        assert_eq!(manifest["config"]["users"], users);
        let table = summary.to_table();
        assert!(table.contains(&format!("{users} users × 1 day (")), "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_rerun_removes_the_files_it_no_longer_writes() {
    let mut config = small("sizes-rerun", 40, 1);
    run(&config).await;
    let before: Vec<String> =
        objects(&config.output).await.into_keys().filter(|k| k.starts_with("logs/")).collect();
    assert_eq!(before, ["logs/access-00000.log", "logs/access-00001.log", "logs/access-00002.log"]);
    config.users = 10;
    let summary = run(&config).await;
    let after: Vec<String> =
        objects(&config.output).await.into_keys().filter(|k| k.starts_with("logs/")).collect();
    assert_eq!(after, ["logs/access-00000.log"]);
    let (seen, ..) = users_in(&config.output).await;
    assert_eq!(seen.len() as u64, summary.users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_with_every_problem() {
    let mut config = small("sizes-bad", 0, 0);
    config.other_traffic = 2.0;
    let error = ipi_synth::synth(&config, None).await.unwrap_err().to_string();
    assert!(
        error.contains("users") && error.contains("days") && error.contains("other_traffic"),
        "{error}"
    );
}
