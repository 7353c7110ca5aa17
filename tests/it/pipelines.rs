//! The shipped pipeline files, run end to end.

use crate::util::{ipi, repo_root, run, text};

#[test]
fn daily_runs_end_to_end_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let store = dir.path().join("store");
    let out = run(ipi(&root)
        .args(["run", "pipelines/daily.toml", "--param"])
        .arg(format!("store={}", store.display())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The ingest step committed an events dataset.
    let manifest = std::fs::read_to_string(store.join("events/_ipi_dataset.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert!(!manifest["files"].as_array().unwrap().is_empty());
}
