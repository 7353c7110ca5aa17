//! Where ipi keeps its data: one way to name a place on local disk, S3 or in
//! memory, glob listing, streaming Parquet, and datasets that are published
//! atomically.
//!
//! # Brief overview
//!
//! * [`Location`]: a local path, `file://`, `s3://bucket/prefix` or
//!   `memory://name/prefix`, mapped to a shared [`object_store`] store. S3 is
//!   configured only by the standard `AWS_*` variables; retries of transient
//!   errors are object_store's own ([`StorageOptions`]).
//! * [`list_glob`] and [`expand`]: list objects by pattern
//!   (`date=2018-11-*/*.parquet`), skipping hidden (`_`, `.`) names.
//! * [`ParquetSink`] and [`read_parquet`]: stream record batches to and from
//!   Parquet (zstd, bounded memory, multipart upload for large objects).
//! * [`DatasetWriter`] and [`Dataset`]: Parquet files under a prefix whose
//!   committed state is one manifest object, `_ipi_dataset.json`, replaced in
//!   one atomic PUT. Readers see the old state or the new one, never a mix;
//!   re-running a write replaces instead of duplicating. Partitions are
//!   encoded in parallel, off the caller's task. The protocol and the
//!   memory bound are described in [`dataset`].
//! * [`ParquetSource`], [`RowGroup`] and [`CarrySink`]: row groups carried
//!   from one Parquet object into another, their column chunks copied byte
//!   for byte beside new columns (a step that adds columns to a table does
//!   not decode and encode the ones it passes on); [`DatasetWriter::carry`]
//!   publishes such files with a commit.
//! * [`put_atomic`] and [`put_if_absent`]: small objects such as run manifests;
//!   [`copy_object`]: any object, streamed from one store to another.
//!
//! # Example
//!
//! Write a partitioned dataset and read it back:
//!
//! ```
//! use std::sync::Arc;
//!
//! use arrow_array::{Int64Array, RecordBatch};
//! use arrow_schema::{DataType, Field, Schema};
//! use futures::TryStreamExt;
//! use ipi_storage::{read_parquet, Dataset, DatasetWriter, Location, ReadOptions, WriteMode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
//! let root = Location::parse("memory://example/events")?;
//!
//! let mut writer = DatasetWriter::new(root.clone(), schema.clone(), WriteMode::ReplacePartitions);
//! for (day, values) in [("date=2018-11-12", vec![1, 2, 3]), ("date=2018-11-13", vec![4])] {
//!     let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))])?;
//!     writer.write(day, &batch).await?;
//! }
//! // Until this returns, readers see the previous state (here: no dataset).
//! writer.commit().await?;
//!
//! let dataset = Dataset::open(&root).await?;
//! assert_eq!(dataset.partitions(), ["date=2018-11-12", "date=2018-11-13"]);
//! assert_eq!(dataset.num_rows(), 4);
//!
//! let file = &dataset.files()[0];
//! let options = ReadOptions::default().with_file_size(file.size);
//! let batches: Vec<RecordBatch> = read_parquet(&file.location, &options).await?.try_collect().await?;
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
//! # Ok(())
//! # }
//! ```

pub mod carry;
pub mod dataset;
mod error;
mod glob;
mod location;
mod parquet_io;

pub use carry::{CarrySink, ParquetSource, RowGroup};
pub use dataset::{
    CommitSummary, DataFile, Dataset, DatasetWriter, MANIFEST_NAME, Manifest, ManifestFile, Upload,
    WriteMode, WriterOptions, copy_object, delete, get_bytes, get_stream, put_atomic,
    put_if_absent,
};
pub use error::{Error, Result};
pub use glob::{expand, is_glob, is_hidden, list_all, list_glob};
pub use location::{Location, StorageOptions};
pub use parquet_io::{
    ParquetOptions, ParquetSink, ParquetStream, ReadOptions, WrittenFile, read_parquet,
    read_parquet_metadata,
};

/// Re-exported so callers name the same versions we use.
pub use object_store::{self, ObjectMeta, ObjectStore, ObjectStoreExt};
