//! `ipi-pipeline validate`: every problem at once, with positions, exit 78.

use crate::util::{ipi, run, text};

#[test]
fn reports_unknown_key_cycle_dangling_reference_and_bad_param_type_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = "\
version = 1
name = \"broken\"
[params]
store = { type = \"url\", default = \"var/ipi\" }
days  = { type = \"int\", default = \"three\" }
[steps.ingest]
uses = \"ingest\"
inputs = [\"logs/*.log\"]
output = \"${params.store}/events\"
fromat = \"combined\"
[steps.a]
uses = \"ingest\"
inputs = [\"${steps.b.output}\"]
output = \"${steps.nope.output}\"
[steps.b]
uses = \"ingest\"
inputs = [\"${steps.a.output}\"]
output = \"x\"
";
    std::fs::write(dir.path().join("broken.toml"), file).unwrap();
    let out = run(ipi(dir.path()).args(["validate", "broken.toml"]));
    assert_eq!(out.status.code(), Some(78));
    let report = text(&out);
    // Each problem, with the line and column it sits at.
    for expected in [
        "broken.toml:5:35: param `days`",
        "broken.toml:10:1: step `ingest`: unknown key `fromat`",
        "broken.toml:13:12: step `a`: dependency cycle: a -> b -> a",
        "broken.toml:14:11: step `a`: unknown step `nope`",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in:\n{report}");
    }
}

#[test]
fn the_shipped_pipelines_are_valid() {
    let root = crate::util::repo_root();
    for entry in std::fs::read_dir(root.join("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = run(ipi(&root).arg("validate").arg(&path));
            assert_eq!(out.status.code(), Some(0), "{}", path.display());
        }
    }
}
