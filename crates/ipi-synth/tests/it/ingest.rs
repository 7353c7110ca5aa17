//! The logs are what ingest reads: every line parses, and the login filter
//! drops exactly the lines the summary calls other.

use std::collections::BTreeSet;

use ipi_ingest::{Filter, FormatName, IngestConfig, ingest};

use crate::util::{is_login, log_lines, parse, root, run, small};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_parses_and_the_filter_drops_exactly_the_other_lines() {
    // 1,234 users: not a multiple of 1,000 (SageMaker's generator hangs).
    let mut config = small("ingest-parse", 1234, 1);
    config.users_per_file = None;
    let summary = run(&config).await;
    let lines = log_lines(&config.output).await;
    assert_eq!(lines.len() as u64, summary.lines);
    let (mut logins, mut methods, mut statuses, mut paths) =
        (0u64, BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut users = BTreeSet::new();
    for line in &lines {
        let record = parse(line);
        if is_login(&record) {
            logins += 1;
            users.insert(record.user.clone().unwrap().into_owned());
        } else {
            methods.insert(record.method.clone().unwrap().into_owned());
            statuses.insert(record.status.unwrap());
            paths.insert(record.path.clone().unwrap().into_owned());
        }
    }
    assert_eq!(logins, summary.login_lines);
    assert_eq!(lines.len() as u64 - logins, summary.other_lines);
    assert!(summary.other_lines > 0);
    // Every part of the filter has work to do.
    assert!(methods.contains("POST") && methods.contains("HEAD"), "{methods:?}");
    assert!(statuses.contains(&200) && statuses.len() > 5, "{statuses:?}");
    assert!(paths.contains("/login_success") && paths.len() > 5, "{paths:?}");
    let expected: BTreeSet<String> = (0..1234).map(|u| format!("user_{u}")).collect();
    assert_eq!(users, expected, "every user logs in at least once");
    // About 30 % of the lines are other traffic, the default.
    let share = summary.other_lines as f64 / summary.lines as f64;
    assert!((0.25..0.35).contains(&share), "{share}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reads_the_logs_with_zero_rejects() {
    for gzip in [false, true] {
        let mut config = small(&format!("ingest-run-{gzip}"), 40, 2);
        config.gzip = gzip;
        let summary = run(&config).await;
        let mut ingest_config = IngestConfig::default_for(
            &[summary.logs.clone().unwrap()],
            &root(&format!("ingest-run-{gzip}-events")),
        );
        ingest_config.format = FormatName::Combined;
        ingest_config.max_reject_ratio = 0.0;
        ingest_config.filter = Filter {
            method: vec!["GET".to_owned()],
            path_prefix: Some("/login_success".to_owned()),
            status: vec![200],
        };
        let done = ingest(&ingest_config, None).await.unwrap();
        assert_eq!(done.totals.rejected, 0, "{:?}", done.totals.reasons);
        assert_eq!(done.totals.lines, summary.lines);
        assert_eq!(done.totals.rows, summary.login_lines);
        assert_eq!(done.totals.filtered, summary.other_lines);
        assert_eq!(done.inputs.len() as u64, summary.files);
        assert_eq!(done.partitions.len(), 2);
    }
}
