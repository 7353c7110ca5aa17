//! `ipi-pipeline test FILE...`: the `[[tests]]` a pipeline file carries,
//! in the manner of Vector's unit tests.
//!
//! Each test runs one step of the file on its own: its input (lines or
//! rows) is written to a file in a fresh temporary folder, whose path takes
//! the place of the step's input key; its outputs go to that folder too;
//! `with` replaces any other key (a test knows no other step's outputs).
//! Then the step's metrics and output rows are compared with `expect`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::TryStreamExt as _;
use ipi_config::{Pipeline, TestCase, TestData};
use ipi_storage::{Dataset, Location, ReadOptions};

use crate::cli::TestArgs;
use crate::commands::load;
use crate::exit::{self, Exit};
use crate::state;
use crate::steps::{Registry, StepContext, StepIo};

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("ipi-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ipi-pipeline test FILE...`.
pub async fn test(registry: &Registry, args: &TestArgs) -> anyhow::Result<Exit> {
    let now = chrono::Utc::now();
    let (mut total, mut failed, mut problems) = (0usize, 0usize, 0usize);
    for file in &args.files {
        let pipeline = match load(registry, file, &args.params, now) {
            Ok(p) => p,
            Err(diagnostics) => {
                for d in &diagnostics {
                    println!("{d}");
                }
                problems += diagnostics.len();
                continue;
            }
        };
        println!("Running tests of {}", file.display());
        if pipeline.tests.is_empty() {
            println!("  no tests");
        }
        for case in &pipeline.tests {
            total += 1;
            match run_case(&pipeline, registry, case).await {
                Ok(()) => println!("test {} ... passed", case.name),
                Err(why) => {
                    failed += 1;
                    println!("test {} ... FAILED ({}:{})", case.name, file.display(), case.line);
                    for line in why.lines() {
                        println!("  {line}");
                    }
                }
            }
        }
    }
    if problems > 0 {
        return Err(exit::config(format!(
            "{problems} problem{} found",
            if problems == 1 { "" } else { "s" }
        )));
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {total} test{} failed", if total == 1 { "" } else { "s" });
    }
    println!("{total} test{} passed", if total == 1 { "" } else { "s" });
    Ok(Exit::Ok)
}

/// Run one test; `Err` says what did not match.
async fn run_case(pipeline: &Pipeline, registry: &Registry, case: &TestCase) -> Result<(), String> {
    let step = &pipeline.steps[&case.step];
    let kind =
        registry.get(&step.uses).ok_or_else(|| format!("unknown step kind `{}`", step.uses))?;
    let dir = TempDir::new().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let template_io = kind.io(&step.body);
    let mut replace = case.with.clone();
    if let Some(input) = &case.input {
        let key = input
            .key
            .clone()
            .or_else(|| template_io.inputs.first().map(|(k, _)| k.clone()))
            .ok_or("the step has no input key to replace; name one with `input.key`")?;
        let (default_name, content) = match &input.data {
            TestData::Lines(lines) => {
                ("input.log", lines.iter().map(|l| format!("{l}\n")).collect())
            }
            TestData::Rows(rows) => ("input.csv", rows_to_csv(rows)),
            _ => return Err("unsupported test input".to_owned()),
        };
        let path = dir.0.join(input.file.as_deref().unwrap_or(default_name));
        std::fs::write(&path, content)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let path = path_text(&path)?;
        let value = match step.body.get(&key) {
            Some(toml::Value::Array(_)) => toml::Value::Array(vec![toml::Value::String(path)]),
            _ => toml::Value::String(path),
        };
        replace.insert(key, value);
    }
    for (key, _) in &template_io.outputs {
        if !replace.contains_key(key) {
            let out = path_text(&dir.0.join("out").join(key))?;
            replace.insert(key.clone(), toml::Value::String(out));
        }
    }
    let each = step.for_each.as_ref().and_then(|f| f.values.first());
    let body = pipeline.resolve_with(&case.step, &HashMap::new(), each, &replace).map_err(|e| {
        format!("{e}; a test knows no other step's outputs: give the key in `with`")
    })?;
    let problems = kind.check(&body);
    if !problems.is_empty() {
        let mut text = String::from("the step's table, as the test makes it, is invalid:");
        for p in problems {
            let _ = write!(text, "\n`{}`: {}", p.path.join("."), p.message);
        }
        return Err(text);
    }
    let io = kind.io(&body);
    let ctx =
        StepContext { run_id: format!("test-{}", uuid::Uuid::now_v7()), step: case.step.clone() };
    let result = kind.run(&ctx, body).await;
    let expect = &case.expect;
    let report = match (&expect.error, result) {
        (Some(want), Err(e)) => {
            let got = format!("{e:#}");
            return if got.contains(want.as_str()) {
                Ok(())
            } else {
                Err(format!("expected an error containing {want:?}\ngot: {got}"))
            };
        }
        (Some(want), Ok(_)) => {
            return Err(format!("expected the step to fail with {want:?}; it succeeded"));
        }
        (None, Err(e)) => return Err(format!("the step failed: {e:#}")),
        (None, Ok(report)) => report,
    };
    let mut why = Vec::new();
    for (name, want) in &expect.metrics {
        let want = state::toml_to_json(want);
        match report.metrics.get(name) {
            None => why.push(format!(
                "metrics.{name}: expected {want}, but the step reports no such metric (it has: {})",
                report.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(got) if !same_number_or_value(got, &want) => {
                why.push(format!("metrics.{name}: expected {want}, got {got}"));
            }
            Some(_) => {}
        }
    }
    if expect.rows.is_some() || expect.num_rows.is_some() {
        match output_rows(&io, expect.output.as_deref()).await {
            Err(e) => why.push(e),
            Ok(rows) => {
                if let Some(n) = expect.num_rows
                    && rows.len() as u64 != n
                {
                    why.push(format!("num_rows: expected {n}, got {}", rows.len()));
                }
                if let Some(want) = &expect.rows {
                    compare_rows(want, &rows, &mut why);
                }
            }
        }
    }
    if why.is_empty() { Ok(()) } else { Err(why.join("\n")) }
}

fn path_text(path: &Path) -> Result<String, String> {
    path.to_str().map(str::to_owned).ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

/// Numbers compare by value (2 == 2.0); anything else exactly.
fn same_number_or_value(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    match (got.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        _ => got == want,
    }
}

/// CSV with a header of every key, in order of first appearance.
fn rows_to_csv(rows: &[toml::Table]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = columns.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| row.get(*c).map(|v| field(&cell_text(v))).unwrap_or_default())
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// A TOML value as the text it is compared or written as.
fn cell_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(x) => format!("{x}"),
        other => other.to_string(),
    }
}

/// Every row of the output dataset, each column as text.
async fn output_rows(
    io: &StepIo,
    key: Option<&str>,
) -> Result<Vec<HashMap<String, String>>, String> {
    let url = match key {
        Some(k) => io.outputs.iter().find(|(name, _)| name == k).map(|(_, u)| u.clone()),
        None => io.outputs.first().map(|(_, u)| u.clone()),
    }
    .ok_or_else(|| {
        format!(
            "the step has no output{} to read rows from",
            key.map(|k| format!(" `{k}`")).unwrap_or_default()
        )
    })?;
    let root = Location::parse(&url).map_err(|e| e.to_string())?;
    let dataset =
        Dataset::open_or_glob(&root).await.map_err(|e| format!("reading the output: {e}"))?;
    let options = FormatOptions::default().with_null("null");
    let mut rows = Vec::new();
    for file in dataset.files() {
        let stream = ipi_storage::read_parquet(
            &file.location,
            &ReadOptions::default().with_file_size(file.size),
        )
        .await
        .map_err(|e| e.to_string())?;
        let batches: Vec<arrow_array::RecordBatch> =
            stream.try_collect().await.map_err(|e| e.to_string())?;
        for batch in batches {
            let schema = batch.schema();
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            for i in 0..batch.num_rows() {
                let mut row = HashMap::new();
                for (field, f) in schema.fields().iter().zip(&formatters) {
                    row.insert(field.name().clone(), f.value(i).to_string());
                }
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

fn compare_rows(want: &[toml::Table], got: &[HashMap<String, String>], why: &mut Vec<String>) {
    if want.len() != got.len() {
        why.push(format!("rows: expected {} rows, got {}", want.len(), got.len()));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        for (column, value) in w {
            let want = cell_text(value);
            match g.get(column) {
                None => why.push(format!("rows[{i}].{column}: the output has no such column")),
                Some(got) if *got != want => {
                    why.push(format!("rows[{i}].{column}: expected {want:?}, got {got:?}"));
                }
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_have_every_column_and_quote_what_needs_it() {
        let rows: Vec<toml::Table> =
            vec!["a = 'x'\nb = 1".parse().unwrap(), "b = 2\nc = 'y,\"z\"'".parse().unwrap()];
        assert_eq!(rows_to_csv(&rows), "a,b,c\nx,1,\n,2,\"y,\"\"z\"\"\"\n");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(same_number_or_value(&serde_json::json!(2), &serde_json::json!(2.0)));
        assert!(!same_number_or_value(&serde_json::json!(2), &serde_json::json!(3)));
        assert!(same_number_or_value(&serde_json::json!("a"), &serde_json::json!("a")));
    }
}
