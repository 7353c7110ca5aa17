//! The report runner behind the `query` step: SQL files in, one result
//! file each out, and `_manifest.json` beside them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use ipi_storage::{Location, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::output::{self, Format, Target};
use crate::params::Params;
use crate::session::{Query, QuerySession, SessionOptions};

/// The `query` step: run report files against a store's tables and write
/// each result as `OUTPUT/<report name>.<format>`.
///
/// ```toml
/// [steps.report]
/// uses    = "query"
/// needs   = ["score"]
/// store   = "${params.store}"
/// queries = ["sql/daily_flagged.sql", "sql/flagged_by_network.sql"]
/// params  = { date = "${params.date}" }
/// format  = "csv"
/// output  = "${params.store}/reports/${params.date}"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// The store whose datasets are the tables (`events`, `scores`,
    /// `labels`, `train`, `validation`, `test`): a path or `s3://bucket/prefix`.
    pub store: Option<String>,
    /// The report files (paths relative to the working directory, or URLs),
    /// run in order. Each result is named after its file.
    pub queries: Vec<String>,
    /// Values of the reports' `$name` parameters; reports that do not use
    /// one ignore it.
    #[serde(default)]
    pub params: Params,
    /// `csv` (default), `parquet`, `json`, `jsonl` or `table`.
    #[serde(default = "default_format")]
    pub format: Format,
    /// The folder the results go to (a path or `s3://`).
    pub output: String,
    /// More tables, or other places for standard ones: name → URL.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    /// Allow statements that write (DDL, DML, `COPY`). Default false.
    #[serde(default)]
    pub allow_write: bool,
    /// Skip (and record as skipped) a report that names a standard table
    /// the store lacks, such as `labels` when logs are real, instead of
    /// failing. Default false.
    #[serde(default)]
    pub skip_missing_tables: bool,
}

fn default_format() -> Format {
    Format::Csv
}

impl QueryConfig {
    /// Problems serde cannot see, as `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.queries.is_empty() {
            problems.push(("queries", "give at least one SQL file".to_string()));
        }
        let mut names = BTreeSet::new();
        for query in &self.queries {
            let name = report_name(query);
            if name.is_empty() {
                problems.push(("queries", format!("`{query}` does not name a file")));
            } else if !names.insert(name.clone()) {
                problems.push((
                    "queries",
                    format!("two reports would both write `{name}`; rename one file"),
                ));
            }
        }
        if self.output.trim().is_empty() {
            problems.push(("output", "give the folder the reports go to".to_string()));
        }
        problems
    }
}

/// What one report did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportResult {
    /// The SQL file.
    pub query: String,
    /// Where its result is.
    pub output: String,
    /// Result rows.
    pub rows: u64,
    /// Data files the query read.
    pub files_read: usize,
    /// The parameters it used, with their values.
    pub params: Params,
    /// Wall time.
    pub seconds: f64,
    /// Why it did not run (`skip_missing_tables`); then nothing was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// What a `query` step did; also written as `OUTPUT/_manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary {
    /// The step kind, `query`.
    pub step: String,
    /// The output folder.
    pub output: String,
    /// The tables the store offered, by name, with their URLs.
    pub tables: BTreeMap<String, String>,
    /// Each report, in order.
    pub reports: Vec<ReportResult>,
    /// Wall time of the whole step.
    pub seconds: f64,
}

/// A report's result name: its file name without the extension.
pub fn report_name(query: &str) -> String {
    let file = query.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    file.strip_suffix(".sql").unwrap_or(file).to_string()
}

/// Reads a SQL file from a local path or a URL.
pub async fn read_sql(source: &str) -> Result<String> {
    if source.contains("://") {
        let location = Location::parse(source)?;
        let bytes = ipi_storage::get_bytes(&location).await?;
        return String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::Config(format!("{source}: not UTF-8 text")));
    }
    tokio::fs::read_to_string(source)
        .await
        .map_err(|e| Error::Config(format!("cannot read {source}: {e}")))
}

/// Runs every report of `config` and writes the results and
/// `_manifest.json`.
pub async fn run_reports(config: &QueryConfig) -> Result<ReportSummary> {
    if let Some((field, problem)) = config.problems().into_iter().next() {
        return Err(Error::Config(format!("{field}: {problem}")));
    }
    let started = Instant::now();
    let session = QuerySession::open(&SessionOptions {
        store: config.store.clone(),
        tables: config.tables.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        allow_write: config.allow_write,
        target_partitions: None,
    })
    .await?;
    let output = Location::parse(config.output.trim_end_matches('/'))?;
    let mut reports = Vec::new();
    for source in &config.queries {
        let t = Instant::now();
        let sql = read_sql(source).await?;
        let query = Query { source_name: source.clone(), sql, params: config.params.clone() };
        let target = output.join(&format!("{}.{}", report_name(source), config.format.extension()));
        if config.skip_missing_tables {
            let missing = session.missing_tables(&query)?;
            if !missing.is_empty() {
                let reason = format!("the store has no {} table", missing.join(", "));
                tracing::warn!(query = %source, %reason, "Report skipped.");
                // A result of an earlier run would pass for today's.
                remove_if_present(&target).await?;
                reports.push(ReportResult {
                    query: source.clone(),
                    output: target.to_string(),
                    rows: 0,
                    files_read: 0,
                    params: Params::new(),
                    seconds: t.elapsed().as_secs_f64(),
                    skipped: Some(reason),
                });
                continue;
            }
        }
        let prepared = session.prepare(&query).await?;
        let written =
            output::write(prepared.execute()?, config.format, &Target::Location(target.clone()))
                .await?;
        let all = crate::params::with_defaults(&query.sql, &query.params);
        let params = prepared
            .used_params()
            .iter()
            .filter_map(|n| Some((n.clone(), all.get(n)?.clone())))
            .collect();
        tracing::info!(query = %source, rows = written.rows, output = %target, "Report written.");
        reports.push(ReportResult {
            query: source.clone(),
            output: target.to_string(),
            rows: written.rows,
            files_read: prepared.files().len(),
            params,
            seconds: t.elapsed().as_secs_f64(),
            skipped: None,
        });
    }
    let summary = ReportSummary {
        step: "query".into(),
        output: output.to_string(),
        tables: session.tables().iter().map(|t| (t.name.clone(), t.url.clone())).collect(),
        reports,
        seconds: started.elapsed().as_secs_f64(),
    };
    let manifest = serde_json::to_vec_pretty(&summary)
        .map_err(|e| Error::Internal(format!("encoding the manifest: {e}")))?;
    ipi_storage::put_atomic(&output.join("_manifest.json"), manifest.into()).await?;
    Ok(summary)
}

/// Deletes an object; one that is not there is fine.
async fn remove_if_present(location: &Location) -> Result<()> {
    match location.store().delete(location.path()).await {
        Ok(()) | Err(ipi_storage::object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::Output { target: location.to_string(), message: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(queries: &[&str]) -> QueryConfig {
        QueryConfig {
            store: Some("var/ipi".into()),
            queries: queries.iter().map(|q| q.to_string()).collect(),
            params: Params::new(),
            format: Format::Csv,
            output: "out".into(),
            tables: BTreeMap::new(),
            allow_write: false,
            skip_missing_tables: false,
        }
    }

    #[test]
    fn report_names_come_from_file_names() {
        assert_eq!(report_name("sql/daily_flagged.sql"), "daily_flagged");
        assert_eq!(report_name("s3://b/sql/x.sql"), "x");
        assert_eq!(report_name("plain"), "plain");
    }

    #[test]
    fn problems_catch_empty_lists_and_clashing_names() {
        assert!(config(&["a.sql"]).problems().is_empty());
        assert_eq!(config(&[]).problems()[0].0, "queries");
        let clash = config(&["a/x.sql", "b/x.sql"]).problems();
        assert!(clash[0].1.contains("`x`"), "{clash:?}");
    }

    #[test]
    fn the_step_table_is_strict() {
        let err = toml::from_str::<QueryConfig>("queries = []\noutput = \"o\"\nfromat = \"csv\"")
            .unwrap_err();
        assert!(err.to_string().contains("fromat"), "{err}");
        let ok: QueryConfig = toml::from_str(
            "queries = [\"a.sql\"]\noutput = \"o\"\nformat = \"parquet\"\nparams = { date = \"2018-11-12\", days = 7 }",
        )
        .unwrap();
        assert_eq!(ok.format, Format::Parquet);
        assert_eq!(ok.params["days"], crate::ParamValue::Int(7));
    }
}
