//! The shipped pipeline files, run end to end.

use std::path::Path;

use crate::util::{ipi, repo_root, run, text};

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn daily_runs_end_to_end_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let store = dir.path().join("store");
    let out = run(ipi(&root)
        .args(["run", "pipelines/daily.toml", "--param"])
        .arg(format!("store={}", store.display())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // With no logs given, the demo was synthesised, with its labels...
    let synth = &read_json(&store.join("demo/_manifest.json"))["summary"];
    assert!(store.join("demo/labels/_ipi_dataset.json").exists());
    assert!(synth["attack_lines"].as_u64().unwrap() > 0, "{synth}");
    // ...and ingest read every line of it, and its login filter dropped
    // exactly the traffic the generator says is not a successful login.
    let ingest = &read_json(&store.join("events/_manifest.json"))["summary"]["totals"];
    assert_eq!(ingest["rejected"], 0, "{ingest}");
    assert_eq!(ingest["lines"], synth["lines"]);
    assert_eq!(ingest["filtered"], synth["other_lines"]);
    assert_eq!(ingest["rows"], synth["login_lines"]);
    let events = read_json(&store.join("events/_ipi_dataset.json"));
    assert!(!events["files"].as_array().unwrap().is_empty());

    // The split put every event in one window or counted it as dropped.
    // Its folder is named by the `date` param (yesterday by default).
    let splits: Vec<_> = std::fs::read_dir(store.join("splits")).unwrap().flatten().collect();
    assert_eq!(splits.len(), 1);
    let split = splits[0].path();
    let report = read_json(&split.join("_manifest.json"));
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let dropped = &report["dropped"];
    let total = n(&report["train"]["rows"])
        + n(&report["validation"]["rows"])
        + n(&report["test"]["rows"])
        + n(&dropped["null_entity"])
        + n(&dropped["non_ipv4"])
        + n(&dropped["bad_timestamp"])
        + n(&dropped["gap"])
        + n(&dropped["unseen_entity"]);
    assert_eq!(total, n(&ingest["rows"]), "{report}");
    assert_eq!(report["leakage_check_passed"], true, "{report}");
    assert!(n(&report["test"]["rows"]) > 0 && n(&report["validation"]["rows"]) > 0);

    // The model trained on the train window, and on the synthetic data it
    // tells the test window's logins from random-address ones (the
    // notebook's test): AUC at least 0.99, as the train issue asks.
    let date = split.file_name().unwrap();
    let card = read_json(&store.join("models").join(date).join("model.json"));
    assert_eq!(card["training_data"]["rows"], report["train"]["rows"], "{card}");
    let epochs = card["training"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    let auc = card["training"]["test:random_ip_auc"].as_f64().unwrap();
    assert!(auc >= 0.99, "test:random_ip_auc {auc}");
    let validation = epochs[2]["validation:discriminator_auc"].as_f64().unwrap();
    assert!(validation >= 0.95, "validation:discriminator_auc {validation}");

    // The model was promoted: the models folder's pointer names it.
    let latest = read_json(&store.join("models/latest.json"));
    assert_eq!(latest["model"], date.to_str().unwrap(), "{latest}");
    assert_eq!(latest["model_id"], card["model_id"], "{latest}");
    // With the threshold the evaluate step chose, which nightly scoring
    // flags at.
    let evaluation = read_json(&store.join("evaluations").join(date).join("report.json"));
    let threshold = evaluation["threshold"]["value"].as_f64().unwrap();
    assert_eq!(latest["threshold"].as_f64(), Some(threshold), "{latest}");

    // The morning reports ran after scoring: one CSV each under
    // reports/<date>/ (the demo's labels exist, so none was skipped).
    let reports = read_json(&store.join("reports").join(date).join("_manifest.json"));
    let reports = reports["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 8, "{reports:?}");
    for report in reports {
        assert!(report.get("skipped").is_none(), "{report}");
        let name =
            report["query"].as_str().unwrap().trim_start_matches("sql/").replace(".sql", ".csv");
        assert!(store.join("reports").join(date).join(name).exists(), "{report}");
    }

    // The nightly job scores a day of events with the promoted model, and
    // scoring the night again replaces the day instead of adding to it.
    let last_day = events["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["partition"].as_str()?.strip_prefix("date=").map(str::to_owned))
        .max()
        .unwrap();
    let day_rows: u64 = events["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["partition"].as_str() == Some(&format!("date={last_day}")))
        .map(|f| n(&f["rows"]))
        .sum();
    for _ in 0..2 {
        let out = run(ipi(&root)
            .args(["run", "pipelines/nightly-score.toml", "--param"])
            .arg(format!("date={last_day}"))
            .arg("--param")
            .arg(format!("store={}", store.display())));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let scores = read_json(&store.join("scores/_ipi_dataset.json"));
        let scored: u64 = scores["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["partition"].as_str() == Some(&format!("date={last_day}")))
            .map(|f| n(&f["rows"]))
            .sum();
        assert_eq!(scored, day_rows, "{scores}");
    }

    // The next morning the week's model is reused: the split is new (its
    // folder is named by the date), but train ignores its paths; evaluate
    // and promote run again, on that model.
    let out = run(ipi(&root)
        .args(["run", "pipelines/daily.toml", "--param", "date=2099-01-02", "--param"])
        .arg(format!("store={}", store.display())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let next_day = std::fs::read_dir(store.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("manifest.json"))
        .filter(|m| m.exists())
        .map(|m| read_json(&m))
        .filter(|m| m["pipeline"] == "daily")
        .max_by_key(|m| m["run_id"].as_str().unwrap().to_owned())
        .unwrap();
    let status = |step: &str| next_day["steps"][step]["status"].as_str().unwrap().to_owned();
    assert_eq!(next_day["params"]["date"], "2099-01-02", "{next_day}");
    assert_eq!(status("split"), "succeeded");
    assert_eq!(status("train"), "cached", "{}", next_day["steps"]["train"]);
    assert_eq!(status("evaluate"), "succeeded");
    assert_eq!(status("promote"), "succeeded");
    let latest = read_json(&store.join("models/latest.json"));
    assert_eq!(latest["model"], date.to_str().unwrap(), "{latest}");
    assert!(store.join("evaluations/2099-01-02/report.json").exists());
}

#[test]
fn daily_passes_given_logs_through_instead_of_synthesising() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let store = dir.path().join("store");
    let out = run(ipi(&root)
        .args(["run", "pipelines/daily.toml", "--param", "logs=data/sample/access.log.gz"])
        // The sample's 60 users are too few for the evaluate step's AUC floor.
        .args(["--param", "min_auc=0"])
        .arg("--param")
        .arg(format!("store={}", store.display())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!store.join("demo").exists(), "nothing is synthesised when logs are given");
    let ingest = &read_json(&store.join("events/_manifest.json"))["summary"]["totals"];
    // The sample's three broken lines, and its logins (see data/README.md).
    assert_eq!(ingest["lines"], 3003, "{ingest}");
    assert_eq!(ingest["rejected"], 3, "{ingest}");
    assert!(ingest["rows"].as_u64().unwrap() > 1000, "{ingest}");
    // Real logs come without labels: the attacks report is skipped, the
    // other reports run.
    let reports: Vec<_> = std::fs::read_dir(store.join("reports")).unwrap().flatten().collect();
    let reports = read_json(&reports[0].path().join("_manifest.json"));
    let skipped: Vec<&str> = reports["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("skipped").is_some())
        .map(|r| r["query"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["sql/attacks_by_kind.sql"], "{reports}");
}
