//! `ipi-pipeline evaluate` and `tune` on a small synth run with an
//! out-of-time split: the report's figures per attack kind, the HTML report
//! in headless Chromium, the gate, and the search.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::{ipi, run, text};

/// Attack kinds synth labels; each must get its own case.
const KINDS: [&str; 5] =
    ["random_ip", "credential_stuffing", "impossible_travel", "same_country_isp", "cgnat"];

/// A synth run (300 users, 6 days, attack rates raised so that every kind
/// has tens of attacks on the test day), split out of time (the last day
/// is test), and a model trained on it: shared by the tests of this module.
fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ipi-eval-fixture-{}", std::process::id()));
        remove_stale_fixtures(dir.parent().unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ok =
            |out: std::process::Output| assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        ok(run(ipi(&dir).args([
            "synth",
            "--users",
            "300",
            "--days",
            "6",
            "--seed",
            "3",
            "--output",
            "synth",
            "--parquet",
            "--random-ip",
            "20",
            "--credential-stuffing",
            "10",
            "--impossible-travel",
            "10",
            "--same-country-isp",
            "10",
            "--cgnat",
            "10",
        ])));
        ok(run(ipi(&dir).args([
            "split",
            "--input",
            "synth/events",
            "--output",
            "splits",
            "--validation",
            "1d",
            "--test",
            "1d",
        ])));
        ok(run(ipi(&dir).args(["train", "--model", "model"]).args(train_args("0.01", "2"))));
        dir
    })
}

/// Training flags; `learning_rate` and `epochs` vary.
fn train_args<'a>(learning_rate: &'a str, epochs: &'a str) -> [&'a str; 20] {
    [
        "--train",
        "splits/train",
        "--validation",
        "splits/validation",
        "--num-entity-vectors",
        "600",
        "--vector-dim",
        "32",
        "--epochs",
        epochs,
        "--mini-batch-size",
        "500",
        "--learning-rate",
        learning_rate,
        "--random-negative-sampling-rate",
        "5",
        "--shuffled-negative-sampling-rate",
        "1",
        // Small prefix tables: a model of 10 MB, not 75.
        "--ip-hash-buckets",
        "4096",
    ]
}

/// Fixtures of earlier runs (not of runs still going: those are recent).
fn remove_stale_fixtures(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if old && entry.file_name().to_string_lossy().starts_with("ipi-eval-fixture-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn evaluate(dir: &Path, model: &str, output: &str, extra: &[&str]) -> std::process::Output {
    run(ipi(dir)
        .args(["evaluate", "--model", model, "--train", "splits/train", "--test", "splits/test"])
        .args(["--labels", "synth/labels", "--output", output])
        .args(extra))
}

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The (width, height, RGB bytes) of a PNG file.
fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| match p.len() {
            1 | 2 => [p[0], p[0], p[0]],
            _ => [p[0], p[1], p[2]],
        })
        .collect();
    (info.width, info.height, rgb)
}

#[test]
fn evaluate_reports_each_attack_kind_with_the_threshold_and_its_precision_and_recall() {
    let dir = fixture();
    let out = evaluate(dir, "model", "eval", &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read_json(&dir.join("eval/report.json")), report);

    // The notebook case, each labelled kind, and all of them together.
    let names: Vec<&str> =
        report["cases"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let mut expected = vec!["notebook"];
    expected.extend(KINDS);
    expected.push("all_labelled");
    assert_eq!(names, expected);

    let counts = &report["counts"];
    let by_kind: u64 = counts["labelled_by_kind"].as_object().unwrap().values().map(n).sum();
    assert_eq!(by_kind + n(&counts["labelled_unseen_entity"]), n(&counts["labelled_events"]));
    // Every labelled attack of the test day was found among its events.
    assert!(n(&counts["labelled_events"]) > 0);

    let threshold = f(&report["threshold"]["value"]);
    assert!(threshold.is_finite());
    assert_eq!(report["threshold"]["rule"], "fpr");
    let target = f(&report["threshold_for_fpr"]["target"]);
    for case in report["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let auc = f(&case["auc"]);
        assert!((0.0..=1.0).contains(&auc), "{name}: AUC {auc}");
        let at = &case["at_threshold"];
        assert_eq!(f(&at["threshold"]), threshold);
        // The chosen threshold flags at most the target share of normal events.
        assert!(f(&at["fpr"]) <= target, "{name}: {at}");
        let (tp, fp, fn_) =
            (n(&at["true_positives"]), n(&at["false_positives"]), n(&at["false_negatives"]));
        assert_eq!(tp + fn_, n(&case["attacks"]), "{name}");
        assert!((f(&at["recall"]) - tp as f64 / (tp + fn_) as f64).abs() < 1e-12);
        if tp + fp > 0 {
            assert!((f(&at["precision"]) - tp as f64 / (tp + fp) as f64).abs() < 1e-12);
        }
        let roc = case["roc"].as_array().unwrap();
        assert_eq!(roc.first().unwrap(), &serde_json::json!([0.0, 0.0]));
        assert_eq!(roc.last().unwrap(), &serde_json::json!([1.0, 1.0]));
    }
    // Random addresses are what the model is for: a trained model tells
    // them apart from the test day's logins (the notebook's test).
    let notebook = &report["cases"][0];
    assert_eq!(notebook["attacks"], notebook["normal"]);
    assert!(f(&notebook["auc"]) > 0.9, "{}", notebook["auc"]);

    // Every entity with normal events has a row of percentiles.
    let csv = std::fs::read_to_string(dir.join("eval/entities.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("entity,events,flagged,p1,p5,p10,p50,p90"));
    assert_eq!(lines.count() as u64, n(&report["entities"]["entities"]));
    let events: u64 =
        csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(events, n(&counts["normal_events"]));

    for plot in ["scores", "roc", "recall", "precision"] {
        let svg = std::fs::read_to_string(dir.join(format!("eval/plots/{plot}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("notebook"), "{plot}.svg");
        let (w, h, _) = decode_png(&dir.join(format!("eval/plots/{plot}.png")));
        assert_eq!((w, h), (860, 480));
    }

    // The human summary names every case, the threshold, precision and recall.
    let out = evaluate(dir, "model", "eval-table", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(&format!("threshold {threshold:.4}")), "{table}");
    assert!(table.contains("precision") && table.contains("recall"), "{table}");
    for kind in KINDS {
        assert!(table.contains(kind), "{table}");
    }
}

/// Headless Chromium, when present. Panics when it must be (tests/run.sh
/// installs it and sets IPI_TEST_CHROMIUM_REQUIRED=1).
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    if std::env::var("IPI_TEST_CHROMIUM_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("IPI_TEST_CHROMIUM_REQUIRED=1 but /usr/bin/chromium is missing");
    }
    eprintln!("skipped: /usr/bin/chromium is missing (tests/run.sh installs it)");
    None
}

/// Loads `page` in headless Chromium, screenshots it to `png`, and returns
/// the page's console messages (Chromium logs them to stderr).
fn screenshot(chromium: &Path, page: &Path, png: &Path, height: u32) -> Vec<String> {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size=1200,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed: {stderr}");
    assert!(png.is_file(), "no screenshot: {stderr}");
    stderr.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_owned).collect()
}

#[test]
fn the_html_report_renders_in_headless_chromium_with_its_plots_and_no_console_errors() {
    let Some(chromium) = chromium() else { return };
    let dir = fixture();
    let out = evaluate(dir, "model", "eval-html", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = dir.join("eval-html/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch, no script.
    assert!(
        !html.contains("src=") && !html.contains("<script") && !html.contains("<link"),
        "external resources"
    );
    assert_eq!(html.matches("<svg").count(), 4);

    // The console check can fail: a page with an error is caught.
    let control = dir.join("console-control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><script>console.error('ipi-control');</script></body></html>",
    )
    .unwrap();
    let messages = screenshot(&chromium, &control, &dir.join("control.png"), 300);
    assert!(
        messages.iter().any(|m| m.contains("ipi-control")),
        "console not captured: {messages:?}"
    );

    let shot = dir.join("eval-html/report.png");
    let messages = screenshot(&chromium, &page, &shot, 3600);
    assert!(messages.is_empty(), "console messages: {messages:?}");

    // The plots rendered: each case's colour is drawn, in several figures
    // down the page, and so is normal traffic's.
    let (w, h, rgb) = decode_png(&shot);
    let report = read_json(&dir.join("eval-html/report.json"));
    let cases = report["cases"].as_array().unwrap().len();
    let palette: [(u8, u8, u8); 8] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (23, 190, 207),
    ];
    let near = |p: &[u8], c: (u8, u8, u8)| {
        p[0].abs_diff(c.0) <= 24 && p[1].abs_diff(c.1) <= 24 && p[2].abs_diff(c.2) <= 24
    };
    for (i, &colour) in palette.iter().enumerate().take(cases) {
        let rows: Vec<u32> = rgb
            .chunks(3)
            .enumerate()
            .filter(|(_, p)| near(p, colour))
            .map(|(k, _)| k as u32 / w)
            .collect();
        assert!(
            rows.len() > 300,
            "case {i}: {} pixels of {colour:?} in a {w}x{h} screenshot",
            rows.len()
        );
        // Spread over more than one figure (each is 480 pixels high).
        let (top, bottom) = (rows.iter().min().unwrap(), rows.iter().max().unwrap());
        assert!(bottom - top > 960, "case {i}: drawn only between rows {top} and {bottom}");
    }
    let normal = rgb.chunks(3).filter(|p| near(p, (68, 68, 68))).count();
    assert!(normal > 1000, "{normal} pixels of normal traffic's colour");
}

#[test]
fn a_gate_stops_on_a_bad_model_with_its_figures_and_passes_a_good_one() {
    let dir = fixture();
    // A model that barely moved from its random start.
    let out = run(ipi(dir)
        .args(["train", "--model", "model-untrained"])
        .args(train_args("0.000001", "1")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = evaluate(dir, "model-untrained", "eval-gate", &["--min-auc", "0.9"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("evaluation gate failed: notebook AUC 0."), "{all}");
    // The report is written all the same, with the verdict.
    let report = read_json(&dir.join("eval-gate/report.json"));
    assert_eq!(report["gate"]["passed"], false);
    assert!(f(&report["cases"][0]["auc"]) < 0.9);

    let out = evaluate(
        dir,
        "model",
        "eval-gate-ok",
        &["--min-auc", "0.9", "--min-auc-case", "random_ip=0.5"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(read_json(&dir.join("eval-gate-ok/report.json"))["gate"]["passed"], true);
}

#[test]
fn the_pipeline_gates_before_scoring_and_scores_at_the_chosen_threshold() {
    let dir = fixture();
    let pipeline = |lr: f64, name: &str| {
        format!(
            r#"version = 1
name = "{name}"
[steps.train]
uses = "train"
train = "splits/train"
validation = "splits/validation"
model = "{name}/model"
ip_hash_buckets = 4096
hyperparameters = {{ num_entity_vectors = 600, vector_dim = 32, epochs = 2, mini_batch_size = 500, learning_rate = {lr}, random_negative_sampling_rate = 5 }}
[steps.evaluate]
uses = "evaluate"
model = "${{steps.train.output}}"
train = "splits/train"
test = "splits/test"
labels = "synth/labels"
output = "{name}/eval"
gate = {{ min_auc = 0.9 }}
[steps.score]
uses = "score"
model = "${{steps.train.output}}"
input = "splits/test"
output = "{name}/scores"
threshold = "${{steps.evaluate.threshold}}"
"#
        )
    };
    std::fs::write(dir.join("good.toml"), pipeline(0.01, "good")).unwrap();
    std::fs::write(dir.join("bad.toml"), pipeline(0.000001, "bad")).unwrap();
    let out = run(ipi(dir).args(["validate", "good.toml"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = run(ipi(dir).args(["run", "good.toml"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = read_json(&dir.join("good/eval/report.json"));
    let threshold = f(&report["threshold"]["value"]);
    // Score flagged exactly the test events above the evaluate step's
    // threshold: its step metrics say how many.
    let logged = text(&out);
    let flagged_line =
        logged.lines().find(|l| l.contains("Scored.")).unwrap_or_else(|| panic!("{logged}"));
    let flagged: u64 = flagged_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("flagged=")?.parse().ok())
        .unwrap_or_else(|| panic!("{flagged_line}"));
    let at = &report["cases"][0]["at_threshold"];
    // Normal flagged + labelled attacks flagged ≤ all flagged (unseen
    // entities are scored by `score` too, and flagged when above).
    let labelled_flagged =
        n(&report["cases"].as_array().unwrap().last().unwrap()["at_threshold"]["true_positives"]);
    assert!(
        flagged >= n(&at["false_positives"]) + labelled_flagged,
        "{flagged} flagged at {threshold}"
    );
    assert!(flagged > 0);

    let out = run(ipi(dir).args(["run", "bad.toml"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("evaluation gate failed: notebook AUC"), "{all}");
    assert!(all.contains("score") && all.contains("skipped"), "{all}");
    assert!(!dir.join("bad/scores").exists());
}

#[test]
fn tune_includes_the_base_trial_never_does_worse_and_measures_the_winner_on_test() {
    let dir = fixture();
    let out = run(ipi(dir).args([
        "tune",
        "--train",
        "splits/train",
        "--validation",
        "splits/validation",
        "--test",
        "splits/test",
        "--output",
        "tune",
        "--trials",
        "3",
        "--num-entity-vectors",
        "600",
        "--vector-dim",
        "16",
        "--epochs",
        "1",
        "--mini-batch-size",
        "500",
        "--learning-rate",
        "0.01",
        "--space",
        "vector_dim=8..32",
        "--ip-hash-buckets",
        "4096",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read_json(&dir.join("tune/tune.json")), report);
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 3);
    assert_eq!(trials[0]["hyperparameters"]["vector_dim"], 16);
    assert_eq!(trials[0]["hyperparameters"]["learning_rate"], 0.01);
    let base = f(&trials[0]["validation_auc"]);
    let best = f(&report["best_validation_auc"]);
    assert!(best >= base);
    let max = trials.iter().filter_map(|t| t["validation_auc"].as_f64()).fold(0.0, f64::max);
    assert_eq!(best, max);
    assert!(trials[1..].iter().all(|t| (8..=32).contains(&n(&t["hyperparameters"]["vector_dim"]))));
    let test_auc = f(&report["test_random_ip_auc"]);
    assert!((0.0..=1.0).contains(&test_auc));
    let csv = std::fs::read_to_string(dir.join("tune/trials.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    // The winner is a model like any other: it evaluates.
    let card = read_json(&dir.join("tune/model/model.json"));
    assert_eq!(card["model_id"], report["model_id"]);
    let out = evaluate(dir, "tune/model", "tune-eval", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn evaluate_writes_its_report_to_s3() {
    let Some(prefix) = crate::s3::s3_prefix() else { return };
    let dir = fixture();
    let output = format!("{prefix}/eval");
    let out = evaluate(dir, "model", &output, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let get = |name: &str| {
        let location = ipi_storage::Location::parse(&format!("{output}/{name}")).unwrap();
        runtime.block_on(ipi_storage::get_bytes(&location)).unwrap()
    };
    let written: serde_json::Value = serde_json::from_slice(&get("report.json")).unwrap();
    assert_eq!(written, report);
    assert!(String::from_utf8_lossy(&get("report.html")).contains("<svg"));
    assert!(get("plots/roc.png").starts_with(b"\x89PNG"));
    assert!(get("entities.csv").starts_with(b"entity,"));
}
