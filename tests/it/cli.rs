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
