//! Labels and attack lines match one for one, and nothing else changes
//! when attacks are added.

use std::collections::{BTreeMap, BTreeSet};

use chrono::DateTime;
use ipi_synth::{AttackKind, AttackRates};

use crate::util::{is_login, labels, log_lines, login_keys, minus, parse, run, small};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_match_the_attack_lines_one_for_one() {
    let mut attacked = small("labels-on", 200, 3);
    attacked.attacks = AttackRates {
        random_ip: 20.0,
        credential_stuffing: 20.0,
        impossible_travel: 20.0,
        same_country_isp: 20.0,
        cgnat: 20.0,
    };
    let mut clean = small("labels-off", 200, 3);
    clean.attacks = AttackRates::none();
    let (with, without) = (run(&attacked).await, run(&clean).await);
    assert_eq!(without.attack_lines, 0);
    let labels = labels(&attacked.output).await;
    assert_eq!(labels.len() as u64, with.attack_lines);
    assert!(labels.len() > 100, "{}", labels.len());
    assert!(crate::util::read_dataset(&format!("{}/labels", clean.output)).await.is_empty());

    // Adding attacks adds lines and changes none: the clean log is a
    // sub-multiset of the attacked one.
    let (lines_with, lines_without) =
        (log_lines(&attacked.output).await, log_lines(&clean.output).await);
    let added = minus(&lines_with, &lines_without);
    assert_eq!(added.len() as u64, with.attack_lines);
    // ... and what was added is exactly the labels, as (timestamp, entity, ip).
    let mut added_keys = login_keys(&added);
    assert_eq!(added_keys.len(), added.len(), "every added line is a successful login");
    let mut label_keys: Vec<(i64, String, String)> =
        labels.iter().map(|l| (l.1, l.2.clone(), l.3.clone())).collect();
    added_keys.sort();
    label_keys.sort();
    assert_eq!(added_keys, label_keys);
    // The other way round: every label is a login line of the log.
    let all_keys = login_keys(&lines_with);
    minus(&all_keys, &label_keys);

    // Every kind is there, counted as the summary says, and partitioned by
    // its UTC date.
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for (partition, ts, ..) in &labels {
        let date =
            DateTime::from_timestamp_micros(*ts).unwrap().format("date=%Y-%m-%d").to_string();
        assert_eq!(partition, &date);
    }
    for l in &labels {
        *by_kind.entry(l.4.as_str()).or_default() += 1;
    }
    for kind in AttackKind::ALL {
        assert_eq!(
            by_kind.get(kind.name()).copied().unwrap_or(0),
            with.attacks.get(kind),
            "{kind:?}"
        );
        assert!(with.attacks.get(kind) > 0, "{kind:?}");
    }

    // cgnat: an address the user never used in normal traffic.
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in &lines_without {
        let r = parse(line);
        if is_login(&r) {
            used.entry(r.user.unwrap().into_owned()).or_default().insert(r.client.into_owned());
        }
    }
    for l in labels.iter().filter(|l| l.4 == "cgnat" || l.4 == "same_country_isp") {
        assert!(!used[&l.2].contains(&l.3), "{l:?} reuses an address of the user");
    }
    // impossible_travel: minutes after one of the user's own logins.
    let mut times: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let clean_keys = login_keys(&lines_without);
    for (ts, user, _) in &clean_keys {
        times.entry(user.as_str()).or_default().push(*ts);
    }
    for l in labels.iter().filter(|l| l.4 == "impossible_travel") {
        let near = times[l.2.as_str()]
            .iter()
            .any(|t| (l.1 - t).abs() <= 1800 * 1_000_000 && (l.1 - t).abs() >= 60 * 1_000_000);
        assert!(near, "{l:?} is not 1 to 30 minutes from a login of the user");
    }
}
