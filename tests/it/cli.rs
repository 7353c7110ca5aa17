//! The binary's own contract: help that teaches, and exit codes.

use crate::util::{ipi, repo_root, run, text};

#[test]
fn help_teaches_by_example() {
    let out = run(ipi(&repo_root()).arg("--help"));
    assert!(out.status.success());
    let help = text(&out);
    assert!(help.contains("ipi-pipeline run pipelines/daily.toml"), "{help}");
    assert!(help.contains("Exit codes"), "{help}");
    for sub in ["run", "validate", "graph"] {
        assert!(help.contains(sub), "`{sub}` missing from --help");
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = run(ipi(&repo_root()).arg("no-such-command"));
    assert_eq!(out.status.code(), Some(2));
    let out = run(ipi(&repo_root()).args(["run", "pipelines/daily.toml", "--param", "novalue"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("KEY=VALUE"));
}

#[test]
fn a_missing_pipeline_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(ipi(dir.path()).args(["validate", "nope.toml"]));
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out).contains("nope.toml"));
}

#[test]
fn synth_is_deterministic_across_thread_counts_and_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut contents = Vec::new();
    for threads in ["1", "2"] {
        let output = dir.path().join(format!("t{threads}"));
        let out = run(ipi(dir.path())
            .args(["synth", "--users", "300", "--days", "2", "--seed", "9", "--threads", threads])
            .arg("--output")
            .arg(&output));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let mut files: Vec<_> =
            std::fs::read_dir(output.join("logs")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        contents.push(files.iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>());
    }
    assert!(!contents[0].is_empty());
    assert!(contents[0] == contents[1], "threads 1 and 2 wrote different logs");

    let out = run(ipi(dir.path()).args(["synth", "--users", "0", "--output", "x"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--users"), "{}", text(&out));
}

#[test]
fn graph_prints_the_daily_steps_and_their_edges_in_dot() {
    let out = run(ipi(&repo_root()).args(["graph", "pipelines/daily.toml"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph \"daily\" {"), "{dot}");
    for edge in ["\"logs\" -> \"ingest\";", "\"ingest\" -> \"split\";"] {
        assert!(dot.contains(edge), "missing {edge} in {dot}");
    }
    assert!(dot.trim_end().ends_with('}'));
}
