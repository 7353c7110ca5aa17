//! `ipi-pipeline run`, `retry`, `plan`, `test` and `schema` end to end:
//! a run killed during train and resumed, every step reused on a second
//! run, the daily job against the S3 test server, two runs racing for the
//! lock, and broken files refused with exit 78.
//!
//! The cache keys on the code version, which is a hash of the binary unless
//! `IPI_CODE_VERSION` is set: these tests pin it, so that a rebuild of the
//! binary between two runs of one test does not make them miss.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::s3::s3_prefix;
use crate::util::{ipi, repo_root, run, text};

const DATE: &str = "2018-11-13";

fn ipi_pinned(dir: &Path) -> Command {
    let mut cmd = ipi(dir);
    cmd.env("IPI_CODE_VERSION", "tests-it-run");
    cmd
}

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The run folders under `<store>/runs`, oldest first.
fn run_ids(store: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(store.join("runs"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| !n.starts_with('_'))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn manifest(store: &Path, run_id: &str) -> serde_json::Value {
    read_json(&store.join("runs").join(run_id).join("manifest.json"))
}

/// The manifest of the newest run of `pipeline` (run ids sort by their
/// start second only).
fn newest(store: &Path, pipeline: &str) -> serde_json::Value {
    run_ids(store)
        .iter()
        .map(|id| manifest(store, id))
        .filter(|m| m["pipeline"] == pipeline)
        .max_by_key(|m| m["started_at"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("no run of {pipeline}"))
}

fn status<'a>(m: &'a serde_json::Value, step: &str) -> &'a str {
    m["steps"][step]["status"].as_str().unwrap_or_default()
}

/// Every file below `dir`, relative, `/`-separated.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

/// No half-written objects, and every dataset holds exactly the Parquet
/// files its manifest lists: nothing duplicated, nothing orphaned.
fn assert_no_partial_or_duplicate_outputs(store: &Path) {
    let all = files_below(store);
    let staging: Vec<&String> = all.iter().filter(|f| f.contains('#')).collect();
    assert!(staging.is_empty(), "half-written objects left behind: {staging:?}");
    let roots: Vec<PathBuf> = all
        .iter()
        .filter(|f| f.ends_with("_ipi_dataset.json"))
        .map(|f| store.join(f).parent().unwrap().to_path_buf())
        .collect();
    assert!(roots.len() >= 5, "expected the demo's datasets, found {roots:?}");
    for root in &roots {
        let listed: BTreeSet<String> = read_json(&root.join("_ipi_dataset.json"))["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect();
        // Parquet files of this dataset: not those of a dataset nested in it.
        let on_disk: BTreeSet<String> = files_below(root)
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .filter(|f| {
                !roots.iter().any(|other| {
                    other != root && other.starts_with(root) && root.join(f).starts_with(other)
                })
            })
            .collect();
        assert_eq!(on_disk, listed, "dataset {}", root.display());
    }
}

/// The daily job killed (SIGKILL) while it trains: its manifest says so,
/// `retry` finishes it without running ingest or split again, and the
/// store is left without partial or duplicate outputs. Then a second run
/// reuses every step, and the backfill scores two days and reuses them.
#[test]
fn killed_during_train_retry_finishes_and_a_second_run_reuses_everything() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let store = dir.path().join("store");
    let store_param = format!("store={}", store.display());
    let log = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let mut child = ipi_pinned(&root)
        .args(["run", "pipelines/daily.toml", "--param", &format!("date={DATE}"), "--param"])
        .arg(&store_param)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let run_id = loop {
        if let Some(id) = run_ids(&store).first()
            && let Ok(bytes) = std::fs::read(store.join("runs").join(id).join("manifest.json"))
            && let Ok(m) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && status(&m, "train") == "running"
        {
            break id.clone();
        }
        if let Some(code) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default();
            panic!("the run ended ({code}) before train started:\n{log}");
        }
        assert!(Instant::now() < deadline, "train never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_secs(3));
    child.kill().unwrap();
    child.wait().unwrap();

    let before = manifest(&store, &run_id);
    assert_eq!(before["status"], "running", "a killed run cannot say more");
    assert_eq!(status(&before, "train"), "running");
    for step in ["logs", "ingest", "split"] {
        assert_eq!(status(&before, step), "succeeded", "{step}");
    }
    let commit = |p: &str| read_json(&store.join(p).join("_ipi_dataset.json"))["commit"].clone();
    let datasets = ["events", "splits/2018-11-13/train", "splits/2018-11-13/test"];
    let commits: Vec<_> = datasets.iter().map(|d| commit(d)).collect();

    let out = run(ipi_pinned(&root).args(["retry", &run_id, "--store"]).arg(&store));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = manifest(&store, &run_id);
    assert_eq!(after["status"], "succeeded");
    let sessions = after["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        (&sessions[0]["command"], &sessions[1]["command"]),
        (&"run".into(), &"retry".into())
    );
    // Ingest and split were not run again: same records, same commits.
    for step in ["logs", "ingest", "split"] {
        assert_eq!(after["steps"][step], before["steps"][step], "{step} ran again");
    }
    let again: Vec<_> = datasets.iter().map(|d| commit(d)).collect();
    assert_eq!(again, commits);
    // Train ran again, once, and the rest after it.
    assert_ne!(after["steps"]["train"]["started_at"], before["steps"]["train"]["started_at"]);
    for step in ["train", "evaluate", "promote", "score", "reports"] {
        assert_eq!(status(&after, step), "succeeded", "{step}");
        assert_eq!(after["steps"][step]["attempts"], 1, "{step}");
    }
    assert_no_partial_or_duplicate_outputs(&store);
    let model = files_below(&store.join("models").join(DATE));
    assert_eq!(model, ["model.json", "model.safetensors"]);

    // A second run reuses every step, and says from which run.
    let out = run(ipi_pinned(&root)
        .args(["run", "pipelines/daily.toml", "--param", &format!("date={DATE}"), "--param"])
        .arg(&store_param));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(run_ids(&store).len(), 2);
    let second = newest(&store, "daily");
    assert_ne!(second["run_id"].as_str(), Some(run_id.as_str()));
    for (step, record) in second["steps"].as_object().unwrap() {
        assert_eq!(record["status"], "cached", "{step}: {record}");
        assert_eq!(record["cache"]["run_id"].as_str(), Some(run_id.as_str()), "{step}");
    }
    assert_no_partial_or_duplicate_outputs(&store);

    // The backfill scores each day of its range once, then reuses them.
    let backfill = |expect: &str| {
        let out = run(ipi_pinned(&root)
            .args(["run", "pipelines/backfill.toml", "--param", "from=2018-11-12"])
            .args(["--param", "to=2018-11-13", "--param"])
            .arg(&store_param));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let m = newest(&store, "backfill");
        let items: Vec<&str> = m["steps"]["score"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["status"].as_str().unwrap())
            .collect();
        // 2018-11-13 was scored by the daily job into the same partition,
        // with the same model, but by another step: it is scored again.
        assert_eq!(items, [expect, expect], "{m}");
    };
    backfill("succeeded");
    backfill("cached");
    let scores = read_json(&store.join("scores/_ipi_dataset.json"));
    let days: BTreeSet<&str> = scores["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["partition"].as_str())
        .collect();
    assert!(days.contains("date=2018-11-12") && days.contains("date=2018-11-13"), "{days:?}");
}

/// `pipelines/daily.toml` against the real S3-compatible test server, then
/// again: the second run reuses every step, from stamps kept in S3.
#[test]
fn daily_runs_on_s3_and_a_second_run_reuses_every_step() {
    let Some(prefix) = s3_prefix() else { return };
    let root = repo_root();
    let store_param = format!("store={prefix}/store");
    let daily = || {
        run(ipi_pinned(&root)
            .args(["run", "pipelines/daily.toml", "--param", &format!("date={DATE}"), "--param"])
            .arg(&store_param))
    };
    let out = daily();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = text(&out);
    let manifest_url = log
        .lines()
        .find_map(|l| l.strip_prefix("manifest: "))
        .unwrap_or_else(|| panic!("no manifest line in:\n{log}"));
    assert!(manifest_url.starts_with(&format!("{prefix}/store/runs/")), "{manifest_url}");
    let run_id = manifest_url.split('/').rev().nth(1).unwrap().to_owned();
    for step in ["logs", "ingest", "split", "train", "evaluate", "promote", "score", "reports"] {
        assert!(
            log.lines().any(|l| l.trim_start().starts_with(step) && l.contains(" ok ")),
            "{step} did not run:\n{log}"
        );
    }

    // The plan (which writes nothing) and the second run agree: all reused.
    let plan = run(ipi_pinned(&root)
        .args(["plan", "pipelines/daily.toml", "--json", "--param", &format!("date={DATE}")])
        .args(["--param", &store_param]));
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    for step in plan["steps"].as_array().unwrap() {
        assert_eq!(step["action"], "cached", "{step}");
    }
    let out = daily();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = text(&out);
    let rows: Vec<&str> = log.lines().filter(|l| l.contains("reused run")).collect();
    assert_eq!(rows.len(), 8, "every step reused:\n{log}");
    assert!(rows.iter().all(|l| l.contains(&run_id) && l.contains(" cached ")), "{log}");

    // The run manifest is in S3: `retry` reads it back.
    let out =
        run(ipi_pinned(&root).args(["retry", &run_id, "--store", &format!("{prefix}/store")]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("already succeeded"), "{}", text(&out));
}

/// Two runs of the same pipeline and date started together: one runs, the
/// other exits 75 at once, naming the run that holds the lock, and writes
/// nothing (no manifest of its own). Locally and on S3.
#[test]
fn two_runs_started_together_never_both_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("race.toml");
    std::fs::write(
        &file,
        r#"version = 1
name = "race"
[params]
date  = { type = "date", default = "2018-11-13" }
store = { type = "url" }
[steps.logs]
uses   = "synth"
users  = 2000
days   = 10
seed   = 1
output = "${params.store}/demo"
"#,
    )
    .unwrap();
    let mut stores = vec![dir.path().join("store").display().to_string()];
    stores.extend(s3_prefix().map(|p| format!("{p}/race")));
    for store in stores {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (barrier, dir, store) =
                    (barrier.clone(), dir.path().to_path_buf(), store.clone());
                std::thread::spawn(move || {
                    let mut cmd = ipi_pinned(&dir);
                    cmd.args(["run", "race.toml", "--param", &format!("store={store}")]);
                    barrier.wait();
                    run(&mut cmd)
                })
            })
            .collect();
        let mut outs: Vec<_> = runs.into_iter().map(|t| t.join().unwrap()).collect();
        outs.sort_by_key(|o| o.status.code());
        let codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
        assert_eq!(codes, [Some(0), Some(75)], "{store}");
        let winner = text(&outs[0]);
        let loser = text(&outs[1]);
        let winner_id = winner
            .lines()
            .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
            .unwrap_or_else(|| panic!("no run id in:\n{winner}"));
        assert!(
            loser.contains(&format!(
                "another run of `race` for 2018-11-13 is in progress: run {winner_id}"
            )),
            "{loser}"
        );
        assert!(!loser.contains("manifest:"), "{loser}");
        if !store.starts_with("s3://") {
            assert_eq!(run_ids(Path::new(&store)), [winner_id]);
        }
    }
}

/// A file with an unknown key, a cycle, a dangling reference and a wrongly
/// typed param: `run` reports all four with positions, exits 78 and writes
/// nothing; `plan` does the same.
#[test]
fn run_refuses_an_invalid_file_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "\
version = 1
name = \"broken\"
[params]
store = { type = \"url\", default = \"store\" }
days  = { type = \"int\", default = 3 }
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
",
    )
    .unwrap();
    for command in ["run", "plan"] {
        let out = run(ipi(dir.path()).args([command, "broken.toml", "--param", "days=three"]));
        assert_eq!(out.status.code(), Some(78), "{command}");
        let report = text(&out);
        for expected in [
            "broken.toml:5:1: --param days=three: param `days` has type int",
            "broken.toml:10:1: step `ingest`: unknown key `fromat`",
            "broken.toml:13:12: step `a`: dependency cycle: a -> b -> a",
            "broken.toml:14:11: step `a`: unknown step `nope`",
            "4 problems found",
        ] {
            assert!(report.contains(expected), "{command}: missing {expected:?} in:\n{report}");
        }
        assert!(!dir.path().join("store").exists(), "{command} wrote to the store");
    }
}

/// `plan` on a fresh store: every step runs, in order, with what it would
/// write; and it writes nothing.
#[test]
fn plan_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = run(ipi_pinned(&repo_root())
        .args(["plan", "pipelines/daily.toml", "--param", &format!("date={DATE}"), "--param"])
        .arg(format!("store={}", store.display())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    let order: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.trim_start().split_once(". ")?.1.split_whitespace().next())
        .collect();
    assert_eq!(
        order,
        ["logs", "ingest", "split", "train", "evaluate", "promote", "score", "reports"],
        "{plan}"
    );
    assert!(plan.contains("1. logs (synth): runs: no earlier run of this step here"), "{plan}");
    assert!(plan.contains(&format!("write   {}/events", store.display())), "{plan}");
    assert!(plan.contains("8 steps: 0 cached, 8 to run"), "{plan}");
    assert!(!store.exists(), "plan wrote to the store");
}

/// The `[[tests]]` of the shipped files pass; a test whose expectation is
/// wrong fails, saying what differed.
#[test]
fn pipeline_file_tests_pass_and_can_fail() {
    let root = repo_root();
    let out = run(ipi(&root).args(["test", "pipelines/daily.toml"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 tests passed"));

    let dir = tempfile::tempdir().unwrap();
    let daily = std::fs::read_to_string(root.join("pipelines/daily.toml")).unwrap();
    let wrong = daily.replace("rows = 1, filtered = 1", "rows = 2, filtered = 1");
    assert_ne!(wrong, daily);
    std::fs::write(dir.path().join("wrong.toml"), wrong).unwrap();
    let out = run(ipi(dir.path()).args(["test", "wrong.toml"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("... FAILED (wrong.toml:"), "{report}");
    assert!(report.contains("metrics.rows: expected 2, got 1"), "{report}");
    assert!(text(&out).contains("1 of 2 tests failed"));
}

/// `schema` prints a JSON Schema with every step kind's keys.
#[test]
fn schema_lists_every_step_kind() {
    let out = run(ipi(&repo_root()).arg("schema"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let kinds = schema["$defs"]["step"]["properties"]["uses"]["enum"].as_array().unwrap();
    for kind in ["synth", "ingest", "split", "train", "promote", "score"] {
        assert!(kinds.contains(&kind.into()), "{kind} in {kinds:?}");
        assert!(schema["$defs"][format!("step_{kind}")]["properties"].is_object(), "{kind}");
    }
    assert!(schema["$defs"]["step_train"]["properties"]["hyperparameters"].is_object());
}

/// `runs` lists a store's runs newest first, with the step that failed;
/// `--failed` and `--pipeline` filter them; `runs RUN_ID` shows one run's
/// steps and its error.
#[test]
fn runs_lists_the_runs_of_a_store_and_shows_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_param = format!("store={}", store.display());
    let write = |name: &str, input: &str| {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            format!(
                r#"version = 1
name = "{name}"
[params]
store = {{ type = "url" }}
[steps.events]
uses   = "ingest"
inputs = ["{input}"]
output = "${{params.store}}/events-{name}"
"#
            ),
        )
        .unwrap();
    };
    let log = dir.path().join("access.log");
    std::fs::write(
        &log,
        "1.2.3.4 - bob [10/Oct/2018:13:55:36 -0700] \"GET /login_success HTTP/1.1\" 200 7\n",
    )
    .unwrap();
    write("good", &log.display().to_string());
    write("bad", &dir.path().join("missing.log").display().to_string());
    let out = run(ipi_pinned(dir.path()).args(["run", "good.toml", "--param", &store_param]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(ipi_pinned(dir.path()).args(["run", "bad.toml", "--param", &store_param]));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));

    let list = |extra: &[&str]| -> Vec<serde_json::Value> {
        let out =
            run(ipi_pinned(dir.path()).args(["runs", "--json", "--store"]).arg(&store).args(extra));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = list(&[]);
    let names: Vec<_> = all.iter().map(|r| r["pipeline"].as_str().unwrap()).collect();
    assert_eq!(names, ["bad", "good"], "newest first");
    assert_eq!((&all[0]["status"], &all[0]["failed_step"]), (&"failed".into(), &"events".into()));
    assert!(all[0]["error"].as_str().unwrap().contains("missing.log"), "{}", all[0]);
    assert_eq!(
        (&all[1]["status"], &all[1]["failed_step"]),
        (&"succeeded".into(), &serde_json::Value::Null)
    );
    let failed = list(&["--failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["run_id"], all[0]["run_id"]);
    assert_eq!(list(&["--pipeline", "good"])[0]["run_id"], all[1]["run_id"]);
    let newest = list(&["--limit", "1"]);
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0]["run_id"], all[0]["run_id"]);
    assert_eq!(list(&["--limit", "1", "--pipeline", "good"])[0]["run_id"], all[1]["run_id"]);

    // One run's steps, as `run` printed them, and its error.
    let bad = all[0]["run_id"].as_str().unwrap();
    let out = run(ipi_pinned(dir.path()).args(["runs", bad, "--store"]).arg(&store));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(&format!("run {bad} of `bad` FAILED at step `events`")), "{shown}");
    assert!(shown.contains("error:") && shown.contains("missing.log"), "{shown}");
    // The human list names the failed step too.
    let out = run(ipi_pinned(dir.path()).args(["runs", "--store"]).arg(&store));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("FAILED (events)") && table.contains(bad), "{table}");
    // An unknown run is a usage error that names the store.
    let out = run(ipi_pinned(dir.path()).args(["runs", "nope", "--store"]).arg(&store));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
