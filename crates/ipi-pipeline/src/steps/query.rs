//! The `query` step kind and the `ipi-pipeline query` subcommand: SQL over
//! the store's datasets (ipi-sql, on DataFusion).

use std::io::{IsTerminal, Read};
use std::time::Instant;

use futures::future::BoxFuture;
use ipi_config::{BodyError, ParamType};
use ipi_sql::{
    Format, ParamValue, Params, Query, QueryConfig, QuerySession, SessionOptions, Target,
};

use super::{StepContext, StepIo, StepKind, StepReport, check_config};
use crate::cli::QueryArgs;
use crate::exit::{self, Exit};

/// `uses = "query"`.
#[derive(Debug)]
pub struct QueryStep;

impl StepKind for QueryStep {
    fn kind(&self) -> &'static str {
        "query"
    }

    fn about(&self) -> &'static str {
        "Run SQL reports (sql/*.sql) over the store's tables; one CSV or Parquet file each."
    }

    fn outputs(&self) -> Vec<(&'static str, ParamType)> {
        vec![("output", ParamType::Url), ("rows", ParamType::Int)]
    }

    fn check(&self, body: &toml::Table) -> Vec<BodyError> {
        check_config(body, QueryConfig::problems)
    }

    /// The report files, and every place a table may come from: the store's
    /// standard datasets (where they exist or not: a new one changes the
    /// result) and the `tables` given. A new commit to any of them is a
    /// new input, so the reports run again.
    fn io(&self, body: &toml::Table) -> StepIo {
        let Ok(config) = body.clone().try_into::<QueryConfig>() else {
            return StepIo::guess(body);
        };
        let mut io = StepIo::default();
        io.inputs.extend(config.queries.iter().map(|q| ("queries".to_owned(), q.clone())));
        if let Some(store) = &config.store {
            let store = store.trim_end_matches('/');
            let standard = ipi_sql::tables::STANDARD_TABLES.iter().flat_map(|(_, places)| *places);
            for place in standard.copied().chain(["splits"]) {
                io.inputs.push(("store".to_owned(), format!("{store}/{place}")));
            }
        }
        io.inputs.extend(config.tables.values().map(|url| ("tables".to_owned(), url.clone())));
        io.outputs.push(("output".to_owned(), config.output.clone()));
        io
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
        body: toml::Table,
    ) -> BoxFuture<'a, anyhow::Result<StepReport>> {
        Box::pin(async move {
            let config: QueryConfig = body.try_into()?;
            let summary = guarded(async move { ipi_sql::run_reports(&config).await }).await??;
            let rows: u64 = summary.reports.iter().map(|r| r.rows).sum();
            let skipped = summary.reports.iter().filter(|r| r.skipped.is_some()).count();
            tracing::info!(
                reports = summary.reports.len(),
                skipped,
                rows,
                output = %summary.output,
                "Reports written."
            );
            let mut out = StepReport::default();
            out.outputs.insert("output".into(), toml::Value::String(summary.output.clone()));
            out.outputs.insert("rows".into(), toml::Value::Integer(rows as i64));
            out.metrics.insert("reports".into(), summary.reports.len().into());
            out.metrics.insert("skipped".into(), skipped.into());
            out.metrics.insert("rows".into(), rows.into());
            Ok(out)
        })
    }
}

/// Runs `work` on its own task, so that a panic inside DataFusion on some
/// query becomes an error instead of ending the process.
async fn guarded<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> anyhow::Result<T> {
    match tokio::spawn(work).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => Err(ipi_sql::Error::Internal(
            "the query engine panicked (see the message above)".into(),
        )
        .into()),
        Err(e) => Err(anyhow::anyhow!("the query was cancelled: {e}")),
    }
}

/// `ipi-pipeline query`.
pub async fn command(args: &QueryArgs) -> anyhow::Result<Exit> {
    let (source_name, sql) = match (&args.file, &args.execute) {
        (_, Some(sql)) => ("-e".to_string(), sql.clone()),
        (Some(file), None) if file == "-" => {
            let mut sql = String::new();
            std::io::stdin().read_to_string(&mut sql)?;
            ("<stdin>".to_string(), sql)
        }
        (Some(file), None) => (file.clone(), ipi_sql::read_sql(file).await.map_err(usage)?),
        (None, None) => return Err(exit::usage("give a SQL file or -e SQL")),
    };
    let format = match (args.format, &args.output) {
        (Some(format), _) => format,
        (None, Some(output)) => Format::from_file_name(output).unwrap_or(Format::Csv),
        (None, None) => Format::Table,
    };
    if format == Format::Parquet && args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(exit::usage("Parquet is not for a terminal: give --output FILE.parquet"));
    }
    let target = match &args.output {
        Some(url) if url != "-" => Target::Location(ipi_storage::Location::parse(url)?),
        _ => Target::Stdout,
    };
    let params: Params =
        args.params.iter().map(|(k, v)| (k.clone(), ParamValue::Text(v.clone()))).collect();
    let options = SessionOptions {
        store: Some(args.store.clone()),
        tables: args.tables.clone(),
        allow_write: args.allow_write,
        target_partitions: None,
    };
    let started = Instant::now();
    let query = Query { source_name, sql, params };
    let work = async move {
        let session = QuerySession::open(&options).await?;
        let prepared = session.prepare(&query).await?;
        let files = prepared.files().len();
        let total: usize = session.tables().iter().map(|t| t.files).sum();
        let written = ipi_sql::output::write(prepared.execute()?, format, &target).await?;
        Ok::<_, ipi_sql::Error>((written, files, total, target))
    };
    let (written, files, total, target) = guarded(work).await?.map_err(usage)?;
    tracing::info!(
        rows = written.rows,
        files_read = files,
        files_in_tables = total,
        seconds = format_args!("{:.2}", started.elapsed().as_secs_f64()),
        output = %target,
        "Query done."
    );
    Ok(Exit::Ok)
}

/// Mistakes in the query (its text, parameters, a refused statement) are
/// usage errors (exit 2); the rest failed while running (exit 1).
fn usage(error: ipi_sql::Error) -> anyhow::Error {
    match &error {
        // Kept bare, so that a closed pipe (`| head`) is seen as one.
        ipi_sql::Error::Io(_) => match error {
            ipi_sql::Error::Io(io) => anyhow::Error::new(io),
            other => anyhow::Error::new(other),
        },
        ipi_sql::Error::Sql(_)
        | ipi_sql::Error::ReadOnly { .. }
        | ipi_sql::Error::Param { .. }
        | ipi_sql::Error::Table { .. }
        | ipi_sql::Error::Config(_) => exit::usage(error.to_string()),
        _ => anyhow::Error::new(error),
    }
}
