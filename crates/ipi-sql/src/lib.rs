//! SQL over ipi's datasets, on [DataFusion](https://datafusion.apache.org).
//!
//! # Brief overview
//!
//! * [`QuerySession`]: a DataFusion session whose tables are the datasets of
//!   a store (a local path or `s3://bucket/prefix`): `events`, `scores`,
//!   `labels`, `train`, `validation` and `test`, each registered only where
//!   it exists ([`tables::discover`]). A table is a dataset's *committed*
//!   files (its `_ipi_dataset.json`), never a listing: `_rejects/`,
//!   `_manifest.json` and files of unfinished writers are not rows. Hive
//!   partitions (`date=2018-11-12/`) are columns, and filters on them choose
//!   the files before anything is read ([`Prepared::files`] shows which).
//! * [`Query`]: SQL text with `$name` placeholders. Values are bound as
//!   literals of the placeholder's type, never spliced into the text
//!   ([`params`]); reports declare theirs in `-- @param` comments.
//! * Read-only by default: DDL, DML, `COPY` and `SET` are refused unless
//!   [`SessionOptions::allow_write`]. Mistakes in the text come back as
//!   [`Error::Sql`] with the line and column ([`SqlError`]).
//! * [`output::write`]: a result as an aligned table, CSV, JSON, JSON Lines
//!   or Parquet, to stdout or a URL.
//! * [`run_reports`]: the `query` step ([`QueryConfig`]): report files in,
//!   one result file each out, plus `_manifest.json`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use arrow_array::{Float32Array, RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//! use futures::TryStreamExt;
//! use ipi_sql::{Params, ParamValue, Query, QuerySession, SessionOptions};
//! use ipi_storage::{DatasetWriter, Location, WriteMode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A tiny scores dataset, two days.
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("entity", DataType::Utf8, false),
//!     Field::new("anomaly_score", DataType::Float32, false),
//! ]));
//! let scores = Location::parse("memory://doc-sql/ipi/scores")?;
//! let mut writer = DatasetWriter::new(scores, schema.clone(), WriteMode::ReplacePartitions);
//! for (day, entity, score) in [("date=2018-11-12", "alice", 3.5), ("date=2018-11-13", "bob", -1.0)] {
//!     let batch = RecordBatch::try_new(
//!         schema.clone(),
//!         vec![Arc::new(StringArray::from(vec![entity])), Arc::new(Float32Array::from(vec![score]))],
//!     )?;
//!     writer.write(day, &batch).await?;
//! }
//! writer.commit().await?;
//!
//! let session = QuerySession::open(&SessionOptions {
//!     store: Some("memory://doc-sql/ipi".into()),
//!     ..SessionOptions::default()
//! })
//! .await?;
//! let params = Params::from([("day".to_string(), ParamValue::from("2018-11-12"))]);
//! let query = Query::inline(
//!     "SELECT entity, anomaly_score FROM scores WHERE date = CAST($day AS DATE)",
//!     params,
//! );
//! let prepared = session.prepare(&query).await?;
//! assert_eq!(prepared.files().len(), 1, "only that day's file is read");
//! let batches: Vec<RecordBatch> = prepared.execute()?.try_collect().await?;
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
//! # Ok(())
//! # }
//! ```

mod error;
pub mod output;
pub mod params;
mod report;
mod session;
pub mod tables;

pub use error::{Error, Result, SqlError};
pub use output::{Format, Target, Written};
pub use params::{DeclaredParam, ParamValue, Params, declared_params};
pub use report::{QueryConfig, ReportResult, ReportSummary, read_sql, report_name, run_reports};
pub use session::{Prepared, Query, QuerySession, SessionOptions, TableInfo, scanned_files};

/// Re-exported so callers name the same DataFusion (and Arrow) we use.
pub use datafusion;
