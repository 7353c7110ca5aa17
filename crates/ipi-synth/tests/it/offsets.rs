//! Timestamps in each user's own offset (daylight saving included) or in
//! one server offset: the same instants either way.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::{log_lines, login_keys, parse, run, small};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_offsets_and_a_server_offset_give_the_same_instants() {
    // 2018-11-03 to 2018-11-06: the US leave daylight saving on the 4th.
    let mut own = small("offsets-own", 200, 3);
    own.end_date = chrono::NaiveDate::from_ymd_opt(2018, 11, 6).unwrap();
    let mut server = own.clone();
    server.output = crate::util::root("offsets-server");
    server.server_offset = Some("-0500".to_owned());
    run(&own).await;
    run(&server).await;
    let (own_lines, server_lines) = (log_lines(&own.output).await, log_lines(&server.output).await);
    assert!(server_lines.iter().all(|l| l.contains(" -0500] ")));
    let mut offsets = BTreeSet::new();
    let mut per_user: BTreeMap<String, BTreeSet<i16>> = BTreeMap::new();
    for line in &own_lines {
        let r = parse(line);
        offsets.insert(r.tz_offset_minutes);
        if let Some(user) = r.user {
            per_user.entry(user.into_owned()).or_default().insert(r.tz_offset_minutes);
        }
    }
    assert!(offsets.len() >= 8, "{offsets:?}");
    // Some users are seen at two offsets.
    assert!(per_user.values().any(|o| o.len() == 2), "no user crossed a daylight-saving change");
    let (mut a, mut b) = (login_keys(&own_lines), login_keys(&server_lines));
    a.sort();
    b.sort();
    assert_eq!(a, b);
}
