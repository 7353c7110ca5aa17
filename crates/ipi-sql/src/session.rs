//! A DataFusion session over a store's datasets, and running SQL text in
//! it: several statements, bound parameters, the read-only guard, and
//! errors that point into the text.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use ipi_storage::Location;

use crate::error::{Error, Result, SqlError};
use crate::params::{self, Params};
use crate::tables::{self, DatasetTable, FoundTable};

/// What a session is made of.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// The store whose datasets become the standard tables (`events`,
    /// `scores`, `labels`, `train`, `validation`, `test`); `None` for
    /// none.
    pub store: Option<String>,
    /// More tables, or other places for standard ones: `(name, URL)`.
    pub tables: Vec<(String, String)>,
    /// Allow DDL, DML, `COPY` and `SET`. Off: only queries run.
    pub allow_write: bool,
    /// Threads a query may use; `None` for one per core.
    pub target_partitions: Option<usize>,
}

/// A table of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Its name in SQL.
    pub name: String,
    /// Where its dataset is.
    pub url: String,
    /// How many files it has.
    pub files: usize,
}

/// SQL text to run, with where it came from and its parameters.
#[derive(Debug, Clone)]
pub struct Query {
    /// The file name, or `-e`, for messages.
    pub source_name: String,
    /// One or more statements, separated by `;`. All but the last may only
    /// be DDL (with `allow_write`); the last one's result is the query's.
    pub sql: String,
    /// Values for `$name` placeholders; `-- @param` defaults fill the rest.
    pub params: Params,
}

impl Query {
    /// A query from text given on the command line.
    pub fn inline(sql: impl Into<String>, params: Params) -> Query {
        Query { source_name: "-e".into(), sql: sql.into(), params }
    }
}

/// A query planned and ready to run.
#[derive(Debug)]
pub struct Prepared {
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    used_params: Vec<String>,
    source_name: String,
}

impl Prepared {
    /// The physical plan of the last statement.
    pub fn plan(&self) -> &Arc<dyn ExecutionPlan> {
        &self.plan
    }

    /// The schema of its result.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// The parameters the text used, by name.
    pub fn used_params(&self) -> &[String] {
        &self.used_params
    }

    /// Every data file the plan will read (object paths, sorted): only the
    /// partitions the filters leave.
    pub fn files(&self) -> Vec<String> {
        scanned_files(&self.plan)
    }

    /// Runs it: the result's batches, as they are made.
    pub fn execute(&self) -> Result<SendableRecordBatchStream> {
        execute_stream(Arc::clone(&self.plan), Arc::clone(&self.task))
            .map_err(|e| Error::execution(format!("running {}", self.source_name), e))
    }
}

/// The data files a physical plan reads, sorted.
pub fn scanned_files(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut files = BTreeSet::new();
    let mut stack = vec![Arc::clone(plan)];
    while let Some(node) = stack.pop() {
        if let Some(exec) = node.downcast_ref::<DataSourceExec>()
            && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
        {
            for group in &config.file_groups {
                for file in group.files() {
                    files.insert(file.object_meta.location.to_string());
                }
            }
        }
        stack.extend(node.children().into_iter().cloned());
    }
    files.into_iter().collect()
}

/// A DataFusion session whose tables are a store's datasets.
pub struct QuerySession {
    ctx: SessionContext,
    tables: Vec<TableInfo>,
    allow_write: bool,
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySession")
            .field("tables", &self.tables)
            .field("allow_write", &self.allow_write)
            .finish_non_exhaustive()
    }
}

impl QuerySession {
    /// Opens the store's datasets (reading each manifest, not the data) and
    /// registers them as tables.
    pub async fn open(options: &SessionOptions) -> Result<QuerySession> {
        let mut config = SessionConfig::new().with_information_schema(true);
        if let Some(n) = options.target_partitions {
            config = config.with_target_partitions(n.max(1));
        }
        let opts = config.options_mut();
        // Spans make plan errors point into the text.
        opts.sql_parser.collect_spans = true;
        let ctx = SessionContext::new_with_config(config);

        let mut found: Vec<FoundTable> = Vec::new();
        if let Some(store) = &options.store {
            let store = Location::parse(store)?;
            found = tables::discover(&store).await?;
        }
        for (name, url) in &options.tables {
            check_table_name(name)?;
            let location = Location::parse(url)
                .map_err(|e| Error::Table { name: name.clone(), message: e.to_string() })?;
            let Some(dataset) = tables::open_if_exists(&location).await? else {
                return Err(Error::Table {
                    name: name.clone(),
                    message: format!("no dataset or Parquet files at {location}"),
                });
            };
            found.retain(|t| t.name != *name);
            found.push(FoundTable { name: name.clone(), dataset });
        }

        let mut infos = Vec::new();
        for table in found {
            let root = table.dataset.root();
            if table.dataset.files().is_empty() && table.dataset.schema().is_none() {
                // Committed empty, without a schema: nothing to query.
                tracing::debug!(table = %table.name, url = %root, "Empty dataset without a schema; not registered.");
                continue;
            }
            ctx.register_object_store(&root.url(), root.store());
            let daily = tables::DAILY_TABLES.contains(&table.name.as_str());
            let provider = DatasetTable::new(&ctx.state(), &table.dataset, daily).await?;
            infos.push(TableInfo {
                name: table.name.clone(),
                url: root.to_string(),
                files: provider.num_files(),
            });
            ctx.register_table(table.name.as_str(), Arc::new(provider))
                .map_err(|e| Error::execution(format!("registering table {}", table.name), e))?;
        }
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(QuerySession { ctx, tables: infos, allow_write: options.allow_write })
    }

    /// The tables, by name.
    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    /// The DataFusion context, to register more tables or functions.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The standard tables (`scores`, `labels`, ...) that `query` names but
    /// this session lacks: the store has no such dataset.
    pub fn missing_tables(&self, query: &Query) -> Result<Vec<String>> {
        let dialect = GenericDialect {};
        let statements = DFParserBuilder::new(query.sql.as_str())
            .with_dialect(&dialect)
            .build()
            .and_then(|mut parser| parser.parse_statements())
            .map_err(|e| Error::Sql(Box::new(sql_error(&e, &query.source_name, &query.sql))))?;
        let state = self.ctx.state();
        let standard: Vec<&str> = tables::STANDARD_TABLES
            .iter()
            .map(|(name, _)| *name)
            .chain(tables::SPLIT_TABLES.iter().copied())
            .collect();
        let mut missing = BTreeSet::new();
        for statement in &statements {
            let references = state
                .resolve_table_references(statement)
                .map_err(|e| Error::Sql(Box::new(sql_error(&e, &query.source_name, &query.sql))))?;
            for reference in references {
                let name = reference.table();
                if standard.contains(&name) && !self.tables.iter().any(|t| t.name == name) {
                    missing.insert(name.to_string());
                }
            }
        }
        Ok(missing.into_iter().collect())
    }

    /// Parses, checks and plans `query`; runs every statement but the last
    /// (DDL, with `allow_write`), and plans the last one.
    pub async fn prepare(&self, query: &Query) -> Result<Prepared> {
        let text = &query.sql;
        let sql_error = |e: &DataFusionError| sql_error(e, &query.source_name, text);
        let dialect = GenericDialect {};
        let statements = DFParserBuilder::new(text.as_str())
            .with_dialect(&dialect)
            .build()
            .and_then(|mut parser| parser.parse_statements())
            .map_err(|e| Error::Sql(Box::new(sql_error(&e))))?;
        let starts = statement_starts(text);
        let count = statements.len();
        if count == 0 {
            return Err(Error::Sql(Box::new(SqlError {
                source_name: query.source_name.clone(),
                position: None,
                message: "no SQL statement to run".into(),
                snippet: None,
            })));
        }
        let params = params::with_defaults(text, &query.params);
        let mut used = BTreeSet::new();
        let state = self.ctx.state();
        for (i, statement) in statements.into_iter().enumerate() {
            let (line, column) = starts.get(i).copied().unwrap_or((1, 1));
            let kind = statement_kind(&statement);
            let plan = state
                .statement_to_plan(statement)
                .await
                .map_err(|e| Error::Sql(Box::new(sql_error(&e))))?;
            if !self.allow_write && writes(&plan) {
                return Err(Error::ReadOnly {
                    source_name: query.source_name.clone(),
                    line,
                    column,
                    statement: kind,
                });
            }
            let (plan, names) = params::bind(plan, &params, &query.source_name)?;
            used.extend(names);
            let frame = self
                .ctx
                .execute_logical_plan(plan)
                .await
                .map_err(|e| Error::Sql(Box::new(sql_error(&e))))?;
            if i + 1 < count {
                frame
                    .collect()
                    .await
                    .map_err(|e| Error::execution(format!("running {}", query.source_name), e))?;
                continue;
            }
            let task = Arc::new(frame.task_ctx());
            let plan = frame
                .create_physical_plan()
                .await
                .map_err(|e| Error::Sql(Box::new(sql_error(&e))))?;
            let unused: Vec<&String> = query.params.keys().filter(|k| !used.contains(*k)).collect();
            if !unused.is_empty() {
                tracing::debug!(source = %query.source_name, ?unused, "Parameters not used by this query.");
            }
            return Ok(Prepared {
                plan,
                task,
                used_params: used.into_iter().collect(),
                source_name: query.source_name.clone(),
            });
        }
        Err(Error::Internal("no statement was planned".into()))
    }
}

/// Table names are plain identifiers, so SQL can name them unquoted.
fn check_table_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Table {
            name: name.to_string(),
            message:
                "a table name is lower-case letters, digits and `_`, not starting with a digit"
                    .into(),
        })
    }
}

/// Whether a plan writes or changes the session: DDL, DML, `COPY` or a
/// statement such as `SET` (the nodes DataFusion's `SQLOptions` refuses).
fn writes(plan: &LogicalPlan) -> bool {
    let read_only =
        SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    if read_only.verify_plan(plan).is_err() {
        return true;
    }
    // Belt and braces: the same check by hand, should SQLOptions ever miss
    // a node kind.
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        if matches!(
            node,
            LogicalPlan::Ddl(_)
                | LogicalPlan::Dml(_)
                | LogicalPlan::Copy(_)
                | LogicalPlan::Statement(_)
        ) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// What a statement is, for messages: its first keywords.
fn statement_kind(statement: &Statement) -> String {
    let text = match statement {
        Statement::CopyTo(_) => return "COPY".into(),
        Statement::CreateExternalTable(_) => return "CREATE EXTERNAL TABLE".into(),
        other => other.to_string(),
    };
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    let take = match words.first().map(|w| w.to_ascii_uppercase()) {
        Some(w) if w == "CREATE" || w == "DROP" => {
            if words.get(1).is_some_and(|w| w.eq_ignore_ascii_case("OR")) { 3 } else { 2 }
        }
        Some(w) if w == "INSERT" => 2,
        _ => 1,
    };
    words.into_iter().take(take).collect::<Vec<_>>().join(" ").to_ascii_uppercase()
}

/// The 1-based (line, column) where each statement of `text` starts: the
/// first token that is not whitespace or a comment, at the start and after
/// each `;`.
fn statement_starts(text: &str) -> Vec<(u64, u64)> {
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize_with_location() else {
        return Vec::new();
    };
    let mut starts = Vec::new();
    let mut at_start = true;
    for token in tokens {
        match token.token {
            Token::Whitespace(_) | Token::EOF => {}
            Token::SemiColon => at_start = true,
            _ if at_start => {
                starts.push((token.span.start.line, token.span.start.column));
                at_start = false;
            }
            _ => {}
        }
    }
    starts
}

/// A DataFusion error as a mistake in the text, pointing at it where
/// DataFusion or the parser says where.
fn sql_error(error: &DataFusionError, source_name: &str, text: &str) -> SqlError {
    let mut position = error
        .diagnostic()
        .and_then(|d| d.span)
        .filter(|s| s.start.line > 0)
        .map(|s| (s.start.line, s.start.column));
    let mut message = clean_message(error);
    if let Some((rest, line, column)) = split_parser_location(&message) {
        position = position.or(Some((line, column)));
        message = rest;
    }
    let snippet = position.and_then(|(line, column)| snippet(text, line, column));
    SqlError { source_name: source_name.to_string(), position, message, snippet }
}

/// DataFusion's message without its prefixes, wrappers and backtrace.
pub(crate) fn clean_message(error: &DataFusionError) -> String {
    let root = error.find_root();
    let message = match root {
        DataFusionError::SQL(e, _) => match &**e {
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                format!("syntax error: {m}")
            }
            ParserError::RecursionLimitExceeded => {
                "syntax error: the query is nested too deeply".to_string()
            }
        },
        DataFusionError::Collection(errors) => {
            errors.iter().map(|e| e.message().into_owned()).collect::<Vec<_>>().join("; ")
        }
        other => other.message().into_owned(),
    };
    message.split(DataFusionError::BACK_TRACE_SEP).next().unwrap_or_default().trim().to_string()
}

/// `"... at Line: 3, Column: 7"` → the message without it, 3 and 7.
fn split_parser_location(message: &str) -> Option<(String, u64, u64)> {
    let at = message.rfind(" at Line: ")?;
    let rest = message.get(at + " at Line: ".len()..)?;
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let tail = rest.get(column.len()..).unwrap_or_default();
    let line = line.trim().parse().ok()?;
    let column = column.parse().ok()?;
    let head = message.get(..at).unwrap_or_default();
    Some((format!("{head}{tail}"), line, column))
}

/// The line of `text` with a caret under `column`, as compilers show it.
fn snippet(text: &str, line: u64, column: u64) -> Option<String> {
    let index = usize::try_from(line.checked_sub(1)?).ok()?;
    let source_line = text.lines().nth(index)?;
    let width = line.to_string().len();
    let pad: String = source_line
        .chars()
        .take(usize::try_from(column.saturating_sub(1)).unwrap_or(0))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    Some(format!("{:width$} |\n{line} | {source_line}\n{:width$} | {pad}^", "", "", width = width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_starts_skip_comments_and_whitespace() {
        let text = "-- comment\n  SELECT 1;\n\n/* c */ SELECT\n 2;";
        assert_eq!(statement_starts(text), [(2, 3), (4, 9)]);
    }

    #[test]
    fn parser_locations_are_split_off() {
        let (m, l, c) = split_parser_location(
            "syntax error: Expected: end of statement, found: x at Line: 3, Column: 14",
        )
        .unwrap();
        assert_eq!(
            (m.as_str(), l, c),
            ("syntax error: Expected: end of statement, found: x", 3, 14)
        );
        assert_eq!(split_parser_location("no location"), None);
    }

    #[test]
    fn snippets_point_at_the_column() {
        let s = snippet("SELECT 1\nFROM nowhere", 2, 6).unwrap();
        assert_eq!(s, "  |\n2 | FROM nowhere\n  |      ^");
        assert_eq!(snippet("x", 5, 1), None);
        assert_eq!(snippet("x", 0, 1), None);
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        assert!(check_table_name("scores_2").is_ok());
        assert!(check_table_name("Scores").is_err());
        assert!(check_table_name("2x").is_err());
        assert!(check_table_name("a-b").is_err());
        assert!(check_table_name("").is_err());
    }
}
