//! Datasets: Parquet files under a prefix, published atomically by one
//! manifest object.
//!
//! # The commit protocol
//!
//! A dataset is a prefix whose committed state is the single object
//! `_ipi_dataset.json` at its root: the list of its files (relative path,
//! size, rows, partition), the commit id and the schema.
//!
//! 1. A [`DatasetWriter`] gets a transaction id, a UUIDv7 (time-ordered),
//!    and writes new files as `<root>/<partition>/part-<txn>-<n>.parquet`.
//!    Names never collide with earlier or concurrent runs, and nothing reads
//!    them: readers only follow the manifest.
//! 2. [`DatasetWriter::commit`] closes every file, reads the current manifest
//!    and computes the new file list: [`WriteMode::Overwrite`] keeps only the
//!    new files, [`WriteMode::ReplacePartitions`] keeps old files of the
//!    partitions this transaction did not write, [`WriteMode::Append`] keeps
//!    all old files.
//! 3. It writes the new manifest with one PUT. A PUT is atomic on S3, in
//!    memory and on local disk (a temporary file renamed into place), so a
//!    reader sees the old manifest or the new one, never a mix. Where the
//!    store supports it (S3, memory) the PUT is conditional (`If-None-Match:
//!    *` for the first commit, `If-Match: <etag>` after), so two writers
//!    racing on the same manifest cannot both win.
//! 4. Only then it deletes every object below the root that the new manifest
//!    does not list: files of replaced partitions, of overwritten versions,
//!    and orphans of writers that crashed or were dropped before committing.
//!    It leaves alone the manifest, every top-level name starting with `_`
//!    or `.` (`_rejects/`, `_manifest.json`: they belong to others), and
//!    `part-<txn>-*` files of transactions *newer* than its own (a writer
//!    that is still running).
//! 5. A writer whose transaction is older than the commit it finds refuses to
//!    commit ([`Error::Conflict`]): that newer commit's clean-up may have
//!    deleted its files. Commits of one dataset should come from one writer
//!    at a time (one pipeline run); this rule makes a mistake fail loudly
//!    instead of losing data.
//!
//! Dropping a writer without committing leaves the committed state as it
//! was. A reader still holding an older manifest may find its files gone
//! after a newer commit's clean-up: open the dataset again.
//!
//! # Concurrency and memory
//!
//! Encoding Parquet (dictionaries, statistics, zstd) is what a write costs.
//! A [`DatasetWriter`] gives each partition it writes a tokio task fed by a
//! bounded channel: [`DatasetWriter::write`] queues the batch and returns,
//! and the task encodes that partition's batches one after the other, in
//! the order of the calls (the same calls make the same files), rolls its
//! files over and uploads them. The encoding itself runs on tokio's
//! blocking threads (`spawn_blocking`), never in the caller's task or on a
//! runtime worker, and at most [`WriterOptions::encode_concurrency`]
//! partitions (default: one per core) encode at a time. A task per partition
//! rather than a blocking thread per partition keeps the upload, which is
//! I/O, on the runtime and only the CPU work on blocking threads, and needs
//! no thread for a partition that waits.
//!
//! Memory is bounded per open partition: at most 5 batches, 2 queued (a
//! `write` waits while its partition's queue is full) and up to 3 that the
//! task took for one encoding step (what is queued is encoded in one go, to
//! save hand-offs between threads), plus its [`ParquetSink`]'s buffers: the
//! row group in progress and the upload parts (about 158 MiB with the
//! default [`ParquetOptions`]). A queued batch shares its buffers with the
//! caller's: `write` copies no data.
//!
//! An error while encoding or uploading stops that partition's task. It
//! comes back, with the object's URL, from the next `write` to that
//! partition or else from [`close_files`](DatasetWriter::close_files) or
//! [`commit`](DatasetWriter::commit); from then on the writer answers
//! [`Error::WriterFailed`] and publishes nothing. Dropping a writer stops
//! its tasks; their unfinished files are never published.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::carry::CarrySink;
use crate::error::{Error, Result};
use crate::glob::{is_hidden, list_all, list_glob};
use crate::location::Location;
use crate::parquet_io::{ParquetOptions, ParquetSink, WrittenFile, read_parquet_metadata};

/// The name of the manifest object at a dataset's root.
pub const MANIFEST_NAME: &str = "_ipi_dataset.json";

/// The `format` field of a manifest.
pub const MANIFEST_FORMAT: &str = "ipi-dataset";

/// The manifest version this crate writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// What a commit does with the files already in the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// The dataset becomes exactly the files of this transaction.
    Overwrite,
    /// Partitions written by this transaction are replaced; the others are
    /// kept. Re-running a day's job replaces that day, idempotently.
    ReplacePartitions,
    /// The files of this transaction are added to the existing ones.
    Append,
}

/// The committed state of a dataset: the content of `_ipi_dataset.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"ipi-dataset"`.
    pub format: String,
    /// Always 1 for now; readers refuse versions they do not know.
    pub version: u32,
    /// The transaction id (UUIDv7) of the commit that wrote this manifest.
    pub commit: String,
    /// When it was committed.
    pub committed_at: DateTime<Utc>,
    /// The Arrow schema of the files, as arrow-rs serialises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// The files, sorted by path.
    pub files: Vec<ManifestFile>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the dataset root, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// The partition directory (`date=2018-11-12`), `""` when unpartitioned.
    #[serde(default)]
    pub partition: String,
}

/// A file of a [`Dataset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Where it is.
    pub location: Location,
    /// Its path relative to the dataset root.
    pub path: String,
    /// Its partition directory, `""` when unpartitioned.
    pub partition: String,
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
}

/// A readable dataset: the files of its committed manifest (or, from
/// [`Dataset::open_or_glob`], the Parquet files found under a prefix).
#[derive(Debug, Clone)]
pub struct Dataset {
    root: Location,
    manifest: Option<Manifest>,
    files: Vec<DataFile>,
    schema: Option<SchemaRef>,
}

impl Dataset {
    /// Opens the dataset committed at `root`; [`Error::NotADataset`] if it
    /// has no manifest.
    pub async fn open(root: &Location) -> Result<Dataset> {
        let Some((manifest, _)) = read_manifest(root).await? else {
            return Err(Error::NotADataset { url: root.to_string() });
        };
        let schema = manifest
            .schema
            .clone()
            .and_then(|value| serde_json::from_value::<Schema>(value).ok())
            .map(Arc::new);
        let files = manifest
            .files
            .iter()
            .map(|f| DataFile {
                location: root.join(&f.path),
                path: f.path.clone(),
                partition: f.partition.clone(),
                size: f.size,
                rows: f.rows,
            })
            .collect();
        Ok(Dataset { root: root.clone(), manifest: Some(manifest), files, schema })
    }

    /// Opens the dataset committed at `root`, or, when there is no
    /// manifest, takes every visible `**/*.parquet` below it (Parquet written
    /// by other tools; their footers are read for row counts and the schema),
    /// or the object at `root` itself if it is a `.parquet` file.
    /// [`Error::NotADataset`] when there is none of these.
    pub async fn open_or_glob(root: &Location) -> Result<Dataset> {
        let not_a_dataset = || Error::NotADataset { url: root.to_string() };
        // A single object: a Parquet file is a dataset of one.
        if !root.path().is_root() {
            match root.store().head(root.path()).await {
                Ok(meta) if root.filename().is_some_and(|n| n.ends_with(".parquet")) => {
                    let name = root.filename().unwrap_or_default().to_string();
                    return Dataset::from_parquet_files(
                        root,
                        vec![(root.clone(), name, meta.size)],
                    )
                    .await;
                }
                Ok(_) => return Err(not_a_dataset()),
                Err(e) if Error::is_missing(&e) => {}
                Err(e) => return Err(Error::store(root, e)),
            }
        }
        match Dataset::open(root).await {
            Err(Error::NotADataset { .. }) => {}
            other => return other,
        }
        let found: Vec<(Location, String, u64)> = list_glob(root, "**/*.parquet")
            .await?
            .into_iter()
            .filter_map(|meta| {
                let relative = relative_path(root.path(), &meta.location)?;
                Some((root.with_path(meta.location), relative, meta.size))
            })
            .collect();
        if found.is_empty() {
            return Err(not_a_dataset());
        }
        Dataset::from_parquet_files(root, found).await
    }

    /// A dataset of Parquet files found without a manifest: `(location, path
    /// relative to root, size)`. Reads each footer.
    async fn from_parquet_files(
        root: &Location,
        found: Vec<(Location, String, u64)>,
    ) -> Result<Dataset> {
        // Owned inputs: a closure returning a future that borrows its argument
        // would make every caller's future not `Send`.
        let inputs: Vec<(Location, u64)> = found.iter().map(|(l, _, s)| (l.clone(), *s)).collect();
        let footers: Vec<_> =
            futures::stream::iter(inputs)
                .map(|(location, size)| async move {
                    read_parquet_metadata(&location, Some(size)).await
                })
                .buffered(8)
                .try_collect()
                .await?;
        let schema = footers.first().map(|f| Arc::clone(f.schema()));
        let files = found
            .into_iter()
            .zip(footers)
            .map(|((location, path, size), footer)| DataFile {
                partition: path
                    .rsplit_once('/')
                    .map(|(dir, _)| dir.to_string())
                    .unwrap_or_default(),
                rows: footer.metadata().file_metadata().num_rows().max(0) as u64,
                location,
                path,
                size,
            })
            .collect();
        Ok(Dataset { root: root.clone(), manifest: None, files, schema })
    }

    /// The dataset's root.
    pub fn root(&self) -> &Location {
        &self.root
    }

    /// Its files, sorted by path.
    pub fn files(&self) -> &[DataFile] {
        &self.files
    }

    /// Its distinct partitions, sorted (`""` for unpartitioned files).
    pub fn partitions(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.files.iter().map(|f| f.partition.as_str()).collect();
        set.into_iter().collect()
    }

    /// Rows in all files.
    pub fn num_rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Bytes in all files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The Arrow schema, when the manifest (or a footer) gave one.
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }

    /// The manifest, `None` for a dataset found by globbing.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The id of the commit this state comes from.
    pub fn commit_id(&self) -> Option<&str> {
        self.manifest.as_ref().map(|m| m.commit.as_str())
    }
}

/// Tuning for [`DatasetWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// How each file is encoded and uploaded.
    pub parquet: ParquetOptions,
    /// [`DatasetWriter::write`] starts a new file in a partition once the
    /// current one has this many rows. Default none.
    pub target_file_rows: Option<u64>,
    /// Likewise for the (estimated) encoded size. Default 512 MiB.
    pub target_file_bytes: Option<u64>,
    /// Partitions encoded at the same time at most (each partition's
    /// batches are still encoded one after the other, in order). Default
    /// [`std::thread::available_parallelism`]; 0 counts as 1.
    pub encode_concurrency: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            parquet: ParquetOptions::default(),
            target_file_rows: None,
            target_file_bytes: Some(512 * 1024 * 1024),
            encode_concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What [`DatasetWriter::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitSummary {
    /// The dataset root (URL form).
    pub url: String,
    /// The transaction id, now the manifest's `commit`.
    pub commit: String,
    /// The write mode.
    pub mode: WriteMode,
    /// The partitions this transaction wrote, sorted.
    pub partitions_written: Vec<String>,
    /// Files written by this transaction.
    pub files_written: usize,
    /// Rows written by this transaction.
    pub rows_written: u64,
    /// Bytes written by this transaction.
    pub bytes_written: u64,
    /// Files in the dataset after the commit.
    pub files: usize,
    /// Rows in the dataset after the commit.
    pub rows: u64,
    /// Objects the clean-up deleted (replaced files and orphans).
    pub deleted: usize,
    /// Objects the clean-up failed to delete (logged; the next commit tries
    /// again). The commit itself succeeded.
    pub delete_failures: usize,
}

/// Writes the files of one transaction and publishes them atomically; see
/// the [module documentation](self) for the protocol.
///
/// Each partition is encoded by its own tokio task, so partitions encode in
/// parallel while the caller goes on (see [Concurrency and
/// memory](self#concurrency-and-memory)). It needs a tokio runtime for
/// that; outside one it encodes in the caller's task.
///
/// ```
/// # async fn f() -> ipi_storage::Result<()> {
/// # use std::sync::Arc;
/// # use arrow_array::{Int64Array, RecordBatch};
/// # use arrow_schema::{DataType, Field, Schema};
/// use ipi_storage::{DatasetWriter, Location, WriteMode};
///
/// let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
/// let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])
///     .expect("a valid batch");
/// let root = Location::parse("memory://doc-writer/scores")?;
/// let mut writer = DatasetWriter::new(root, schema, WriteMode::ReplacePartitions);
/// writer.write("date=2018-11-12", &batch).await?;
/// // Replace this day's old files even though no row is written to it.
/// writer.mark_written("date=2018-11-13")?;
/// let summary = writer.commit().await?;
/// assert_eq!(summary.rows, 2);
/// assert_eq!(summary.partitions_written, ["date=2018-11-12", "date=2018-11-13"]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DatasetWriter {
    root: Location,
    schema: SchemaRef,
    mode: WriteMode,
    txn: Uuid,
    options: WriterOptions,
    /// The partitions with a file open (or a task running).
    open: BTreeMap<String, Partition>,
    /// Partitions closed by [`close_partition`](Self::close_partition),
    /// finishing in their tasks.
    closing: Vec<(String, Partition)>,
    /// The number of the next file of each partition closed so far.
    next_file: BTreeMap<String, u32>,
    /// The number of the next carried file ([`carry`](Self::carry)).
    next_carried: u32,
    closed: Vec<ManifestFile>,
    written: BTreeSet<String>,
    /// Shared by the sinks of this writer: `encode_concurrency` permits.
    /// Made at the first partition, after the last `with_options`.
    permits: Option<Arc<Semaphore>>,
    /// Why this writer cannot go on, once a partition failed.
    failed: Option<String>,
}

impl Drop for DatasetWriter {
    /// Stops the partitions' tasks: their open files are dropped unfinished
    /// and nothing is published (as with a [`ParquetSink`] dropped).
    fn drop(&mut self) {
        for partition in self.open.values().chain(self.closing.iter().map(|(_, p)| p)) {
            if let Partition::Task { task, .. } | Partition::Closing { task } = partition {
                task.abort();
            }
        }
    }
}

impl DatasetWriter {
    /// A writer for the dataset at `root`. Nothing happens in the store
    /// until a partition is written.
    pub fn new(root: Location, schema: SchemaRef, mode: WriteMode) -> DatasetWriter {
        DatasetWriter {
            root,
            schema,
            mode,
            txn: Uuid::now_v7(),
            options: WriterOptions::default(),
            open: BTreeMap::new(),
            closing: Vec::new(),
            next_file: BTreeMap::new(),
            next_carried: 0,
            closed: Vec::new(),
            written: BTreeSet::new(),
            permits: None,
            failed: None,
        }
    }

    /// Uses these options for the partitions not yet started.
    pub fn with_options(mut self, options: WriterOptions) -> DatasetWriter {
        self.options = options;
        self.permits = None;
        self
    }

    /// The transaction id: part of every file name, and the manifest's
    /// `commit` once committed.
    pub fn txn(&self) -> String {
        self.txn.to_string()
    }

    /// The dataset root.
    pub fn root(&self) -> &Location {
        &self.root
    }

    /// Marks a partition (`"date=2018-11-12"`, nested `"a=1/b=2"`, or
    /// `None`/`""` for the root) as written without writing to it: with
    /// [`WriteMode::ReplacePartitions`] its old files go even if no row is
    /// written to it. [`write`](Self::write) marks its partition too.
    pub fn mark_written<'a>(&mut self, partition: impl Into<Option<&'a str>>) -> Result<()> {
        let key = self.partition_key(partition.into())?;
        self.written.insert(key);
        Ok(())
    }

    /// Writes a batch to a partition (and marks it written), starting a new
    /// file there when the current one reaches
    /// [`WriterOptions::target_file_rows`] or
    /// [`WriterOptions::target_file_bytes`]. Files with no rows are not
    /// kept.
    ///
    /// The batch is queued for the partition's task and encoded there, in
    /// the order of the calls; this waits only while the partition already
    /// has its few batches queued. A batch whose column types are not the
    /// writer's is refused at once ([`Error::SchemaMismatch`]). An error
    /// while encoding or uploading comes back from a later `write` to the
    /// same partition, or from [`close_files`](Self::close_files) and
    /// [`commit`](Self::commit); from then on every call fails with
    /// [`Error::WriterFailed`].
    pub async fn write<'a>(
        &mut self,
        partition: impl Into<Option<&'a str>>,
        batch: &RecordBatch,
    ) -> Result<()> {
        self.check_not_failed()?;
        let key = self.partition_key(partition.into())?;
        self.check_batch(batch)?;
        self.settle(&key).await?;
        self.written.insert(key.clone());
        let partition = match self.open.entry(key.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let files = PartitionFiles::start(
                    &self.root,
                    &key,
                    self.txn,
                    &self.schema,
                    &self.options,
                    self.next_file.get(&key).copied().unwrap_or(0),
                    self.permits.get_or_insert_with(|| {
                        let n = self.options.encode_concurrency.clamp(1, Semaphore::MAX_PERMITS);
                        Arc::new(Semaphore::new(n))
                    }),
                )?;
                entry.insert(Partition::start(files))
            }
        };
        let error = match partition.write(batch).await {
            Ok(true) => return Ok(()),
            Ok(false) => {
                // The task has stopped, which it does only on an error.
                let Some(partition) = self.open.remove(&key) else { return Ok(()) };
                match partition.finish(self.root.join(&key)).await {
                    Err(error) => error,
                    Ok(_) => Error::WriterFailed {
                        url: self.root.join(&key).to_string(),
                        reason: "the partition's task stopped early".to_string(),
                    },
                }
            }
            Err(error) => {
                self.open.remove(&key);
                error
            }
        };
        Err(self.fail(error))
    }

    /// Adds a finished Parquet object, written by another encoder (polars,
    /// pyarrow, a `ParquetSink`), to a partition of this transaction: it is
    /// copied with [`copy_object`] to the partition's next
    /// `part-<txn>-<n>.parquet` and published by [`commit`](Self::commit)
    /// like the files [`write`](Self::write) makes. Unlike those, a file
    /// with no rows is kept (it still tells readers the schema).
    ///
    /// Its footer is read first: column types other than the writer's are
    /// refused ([`Error::SchemaMismatch`]), and so is a partition with
    /// batches being written (add files before writing batches there, or
    /// after [`close_files`](Self::close_files)).
    pub async fn add_file<'a>(
        &mut self,
        partition: impl Into<Option<&'a str>>,
        source: &Location,
    ) -> Result<WrittenFile> {
        self.check_not_failed()?;
        let key = self.partition_key(partition.into())?;
        self.settle(&key).await?;
        if self.open.contains_key(&key) {
            return Err(Error::InvalidPartition {
                url: self.root.to_string(),
                partition: key,
                reason: "batches are being written to it; add files before writing batches, or after close_files".into(),
            });
        }
        let footer = read_parquet_metadata(source, None).await?;
        if !same_types(&self.schema, footer.schema()) {
            return Err(Error::SchemaMismatch {
                url: self.root.to_string(),
                reason: format!(
                    "the writer has [{}], {source} has [{}]",
                    describe_fields(&self.schema),
                    describe_fields(footer.schema())
                ),
            });
        }
        let rows = footer.metadata().file_metadata().num_rows().max(0) as u64;
        let n = self.next_file.get(&key).copied().unwrap_or(0);
        let location = self.root.join(&key).join(&format!("part-{}-{n:05}.parquet", self.txn));
        self.next_file.insert(key.clone(), n + 1);
        let size = copy_object(source, &location).await?;
        self.written.insert(key.clone());
        self.closed.push(ManifestFile {
            path: relative_path(self.root.path(), location.path()).unwrap_or_default(),
            size,
            rows,
            partition: key,
        });
        Ok(WrittenFile { location, size, rows })
    }

    /// Starts a file of this transaction in a partition whose row groups
    /// are carried from other Parquet objects, their first `carried_fields`
    /// fields copied chunk for chunk ([`CarrySink`]); the writer's schema is
    /// the file's. [`add_carried`](Self::add_carried) closes it and adds it
    /// to the transaction, to be published by [`commit`](Self::commit) with
    /// the files [`write`](Self::write) makes (the same partition may have
    /// both).
    pub fn carry<'a>(
        &mut self,
        partition: impl Into<Option<&'a str>>,
        carried_fields: usize,
    ) -> Result<CarrySink> {
        self.check_not_failed()?;
        let key = self.partition_key(partition.into())?;
        let name = format!("part-{}-c{:05}.parquet", self.txn, self.next_carried);
        self.next_carried += 1;
        let location = self.root.join(&key).join(&name);
        CarrySink::create(
            &location,
            Arc::clone(&self.schema),
            carried_fields,
            &self.options.parquet,
        )
    }

    /// Closes a file started by [`carry`](Self::carry) and adds it to its
    /// partition (and marks the partition written). A file with no rows is
    /// dropped.
    pub async fn add_carried(&mut self, sink: CarrySink) -> Result<()> {
        self.check_not_failed()?;
        let relative = relative_path(self.root.path(), sink.location().path()).unwrap_or_default();
        let partition = relative.rsplit_once('/').map(|(p, _)| p.to_string()).unwrap_or_default();
        if sink.rows() == 0 {
            return sink.abort().await;
        }
        let file = match sink.close().await {
            Ok(file) => file,
            Err(error) => return Err(self.fail(error)),
        };
        self.written.insert(partition.clone());
        self.closed.push(ManifestFile {
            path: relative,
            size: file.size,
            rows: file.rows,
            partition,
        });
        Ok(())
    }

    /// Closes the open file of one partition, without waiting: its task
    /// encodes what is queued and closes the file while the caller goes on
    /// (a later `write` there starts a new file). A writer whose input
    /// comes partition after partition calls this when it moves on, so that
    /// only the partitions in progress hold their buffered row groups.
    /// Errors come back from [`close_files`](Self::close_files) or
    /// [`commit`](Self::commit).
    pub fn close_partition<'a>(&mut self, partition: impl Into<Option<&'a str>>) -> Result<()> {
        self.check_not_failed()?;
        let key = self.partition_key(partition.into())?;
        if let Some(open) = self.open.remove(&key) {
            self.closing.push((key, open.close()));
        }
        Ok(())
    }

    /// Waits for a partition closed by [`close_partition`](Self::close_partition)
    /// to finish, if it is still finishing, so that new files there are
    /// numbered after its own.
    async fn settle(&mut self, key: &str) -> Result<()> {
        let Some(at) = self.closing.iter().position(|(k, _)| k == key) else { return Ok(()) };
        let (key, partition) = self.closing.swap_remove(at);
        match partition.finish(self.root.join(&key)).await {
            Ok(files) => {
                self.next_file.insert(key, files.next_file);
                self.closed.extend(files.closed);
                Ok(())
            }
            Err(error) => Err(self.fail(error)),
        }
    }

    /// Closes every open file, so that each exists in the store (still
    /// unpublished), and waits for the partitions' tasks.
    /// [`commit`](Self::commit) does this first; calling it earlier only
    /// moves the work. The first error of any partition is returned (the
    /// others are logged).
    pub async fn close_files(&mut self) -> Result<()> {
        self.check_not_failed()?;
        let open = std::mem::take(&mut self.open);
        // Close every channel first, so that all partitions finish at once.
        let finishing: Vec<_> = open
            .into_iter()
            .chain(std::mem::take(&mut self.closing))
            .map(|(key, partition)| {
                let url = self.root.join(&key);
                partition.finish(url).map(move |result| (key, result))
            })
            .collect();
        let mut first_error = None;
        for (key, result) in futures::future::join_all(finishing).await {
            match result {
                Ok(files) => {
                    self.next_file.insert(key, files.next_file);
                    self.closed.extend(files.closed);
                }
                Err(error) if first_error.is_none() => first_error = Some(error),
                Err(error) => {
                    tracing::error!(url = %self.root.join(&key), %error, "Failed to write a partition.");
                }
            }
        }
        match first_error {
            Some(error) => Err(self.fail(error)),
            None => Ok(()),
        }
    }

    /// Publishes this transaction (see the [module documentation](self)).
    ///
    /// On error nothing is published: the dataset keeps its previous state
    /// and the files written so far are orphans for the next commit to
    /// remove.
    pub async fn commit(mut self) -> Result<CommitSummary> {
        self.close_files().await?;
        let root = self.root.clone();
        let txn = self.txn.to_string();
        let previous = read_manifest(&root).await?;

        if let Some((manifest, _)) = &previous {
            if let Ok(theirs) = Uuid::parse_str(&manifest.commit)
                && theirs > self.txn
            {
                return Err(Error::Conflict {
                    url: root.to_string(),
                    reason: format!(
                        "transaction {} committed after this one ({txn}) started; \
                         its clean-up may have removed this transaction's files",
                        manifest.commit
                    ),
                });
            }
            if self.mode != WriteMode::Overwrite {
                check_schema(&root, manifest, &self.schema)?;
            }
        }

        let written = &self.written;
        let kept: Vec<ManifestFile> = match (&previous, self.mode) {
            (None, _) | (_, WriteMode::Overwrite) => Vec::new(),
            (Some((m, _)), WriteMode::Append) => m.files.clone(),
            (Some((m, _)), WriteMode::ReplacePartitions) => {
                m.files.iter().filter(|f| !written.contains(&f.partition)).cloned().collect()
            }
        };
        let mut files = kept;
        files.extend(self.closed.iter().cloned());
        files.sort_by(|a, b| a.path.cmp(&b.path));

        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_string(),
            version: MANIFEST_VERSION,
            commit: txn.clone(),
            committed_at: Utc::now(),
            schema: serde_json::to_value(self.schema.as_ref()).ok(),
            files,
        };
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Manifest {
            url: root.join(MANIFEST_NAME).to_string(),
            reason: e.to_string(),
        })?;
        let expected = previous.map(|(_, version)| version);
        put_manifest(&root, Bytes::from(body), expected).await?;

        let keep: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        let (deleted, delete_failures) = collect_garbage(&root, &keep, self.txn).await?;
        tracing::info!(
            url = %root,
            commit = %txn,
            files = manifest.files.len(),
            deleted,
            "Committed dataset."
        );
        Ok(CommitSummary {
            url: root.to_string(),
            commit: txn,
            mode: self.mode,
            partitions_written: self.written.iter().cloned().collect(),
            files_written: self.closed.len(),
            rows_written: self.closed.iter().map(|f| f.rows).sum(),
            bytes_written: self.closed.iter().map(|f| f.size).sum(),
            files: manifest.files.len(),
            rows: manifest.files.iter().map(|f| f.rows).sum(),
            deleted,
            delete_failures,
        })
    }

    /// Remembers that this writer failed, and returns the error.
    fn fail(&mut self, error: Error) -> Error {
        if self.failed.is_none() {
            let mut reason = error.to_string();
            let mut cause = std::error::Error::source(&error);
            while let Some(e) = cause {
                reason = format!("{reason}: {e}");
                cause = e.source();
            }
            self.failed = Some(reason);
        }
        error
    }

    fn check_not_failed(&self) -> Result<()> {
        match &self.failed {
            Some(reason) => {
                Err(Error::WriterFailed { url: self.root.to_string(), reason: reason.clone() })
            }
            None => Ok(()),
        }
    }

    /// Refuses a batch whose columns are not of the writer's types (nested
    /// field names aside), before it reaches an encoder.
    fn check_batch(&self, batch: &RecordBatch) -> Result<()> {
        if same_types(&self.schema, batch.schema_ref()) {
            return Ok(());
        }
        Err(Error::SchemaMismatch {
            url: self.root.to_string(),
            reason: format!(
                "the writer has [{}], a batch has [{}]",
                describe_fields(&self.schema),
                describe_fields(batch.schema_ref())
            ),
        })
    }

    /// Validates a partition name: relative, `/`-separated, no empty, `.`,
    /// `..` or hidden (`_`, `.`) segments.
    fn partition_key(&self, partition: Option<&str>) -> Result<String> {
        let raw = partition.unwrap_or_default();
        let trimmed = raw.trim_matches('/');
        let invalid = |reason: &str| Error::InvalidPartition {
            url: self.root.to_string(),
            partition: raw.to_string(),
            reason: reason.to_string(),
        };
        if trimmed.is_empty() {
            return Ok(String::new());
        }
        for segment in trimmed.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(invalid("empty, `.` or `..` segment"));
            }
            if is_hidden(segment) {
                return Err(invalid("segments starting with `_` or `.` are hidden from readers"));
            }
            if object_store::path::PathPart::parse(segment).is_err()
                || segment.contains(['*', '?', '[', '%', '\\'])
            {
                return Err(invalid("contains a character not allowed in object names"));
            }
        }
        Ok(trimmed.to_string())
    }
}

/// Batches queued for a partition's task, besides those it is encoding.
const QUEUED_BATCHES: usize = 2;

/// Batches a partition's task takes from its queue for one encoding step.
const BATCHES_PER_STEP: usize = QUEUED_BATCHES + 1;

/// Where the batches of one partition go.
#[derive(Debug)]
enum Partition {
    /// To a tokio task, through a bounded channel.
    Task { batches: mpsc::Sender<RecordBatch>, task: JoinHandle<Result<PartitionFiles>> },
    /// Straight to the files, in the caller's task: no tokio runtime.
    Inline(Box<PartitionFiles>),
    /// A task whose channel is closed: it is finishing its file.
    Closing { task: JoinHandle<Result<PartitionFiles>> },
}

impl Partition {
    /// Runs `files` in a task of the current tokio runtime, or inline when
    /// there is none.
    fn start(files: PartitionFiles) -> Partition {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let (batches, receiver) = mpsc::channel(QUEUED_BATCHES);
                let task = runtime.spawn(files.run(receiver));
                Partition::Task { batches, task }
            }
            Err(_) => Partition::Inline(Box::new(files)),
        }
    }

    /// Queues the batch (waiting while the queue is full), or writes it when
    /// inline. `Ok(false)` when the task has stopped: `finish` says why.
    async fn write(&mut self, batch: &RecordBatch) -> Result<bool> {
        match self {
            Partition::Task { batches, .. } => Ok(batches.send(batch.clone()).await.is_ok()),
            Partition::Inline(files) => files.write(vec![batch.clone()]).await.map(|()| true),
            Partition::Closing { .. } => Ok(false),
        }
    }

    /// Closes the channel, so that the task finishes its file while the
    /// caller goes on.
    fn close(self) -> Partition {
        match self {
            Partition::Task { batches, task } => {
                drop(batches);
                Partition::Closing { task }
            }
            other => other,
        }
    }

    /// Closes the channel at once; the future waits for the task to write
    /// what is queued and close its file.
    fn finish(self, url: Location) -> BoxFuture<'static, Result<PartitionFiles>> {
        match self {
            Partition::Task { batches, task } => {
                drop(batches);
                Partition::Closing { task }.finish(url)
            }
            Partition::Closing { task } => async move {
                task.await.unwrap_or_else(|e| {
                    Err(Error::WriterFailed {
                        url: url.to_string(),
                        reason: format!("the partition's task ended abnormally: {e}"),
                    })
                })
            }
            .boxed(),
            Partition::Inline(files) => files.finish().boxed(),
        }
    }
}

/// The files of one partition of a transaction, written in order: the sink
/// of the current file and the files closed so far.
#[derive(Debug)]
struct PartitionFiles {
    root: Location,
    partition: String,
    txn: Uuid,
    schema: SchemaRef,
    options: WriterOptions,
    permits: Arc<Semaphore>,
    next_file: u32,
    sink: Option<ParquetSink>,
    closed: Vec<ManifestFile>,
}

impl PartitionFiles {
    /// Starts the partition's next file (so that a bad option fails here,
    /// in the caller).
    fn start(
        root: &Location,
        partition: &str,
        txn: Uuid,
        schema: &SchemaRef,
        options: &WriterOptions,
        next_file: u32,
        permits: &Arc<Semaphore>,
    ) -> Result<PartitionFiles> {
        let mut files = PartitionFiles {
            root: root.clone(),
            partition: partition.to_string(),
            txn,
            schema: Arc::clone(schema),
            options: options.clone(),
            permits: Arc::clone(permits),
            next_file,
            sink: None,
            closed: Vec::new(),
        };
        files.sink = Some(files.new_sink()?);
        Ok(files)
    }

    /// The task: writes the batches as they come, and closes the file once
    /// the channel is closed. Returns at the first error (the receiver is
    /// dropped with it, which the next `send` sees).
    async fn run(mut self, mut batches: mpsc::Receiver<RecordBatch>) -> Result<PartitionFiles> {
        while let Some(first) = batches.recv().await {
            // What else is queued goes into the same encoding step.
            let mut step = vec![first];
            while step.len() < BATCHES_PER_STEP
                && let Ok(batch) = batches.try_recv()
            {
                step.push(batch);
            }
            self.write(step).await?;
        }
        self.finish().await
    }

    fn new_sink(&mut self) -> Result<ParquetSink> {
        let name = format!("part-{}-{:05}.parquet", self.txn, self.next_file);
        let location = self.root.join(&self.partition).join(&name);
        let sink = ParquetSink::create(&location, Arc::clone(&self.schema), &self.options.parquet)?
            .with_encode_permits(Arc::clone(&self.permits));
        self.next_file += 1;
        Ok(sink)
    }

    /// Writes batches in order, rolling over to a new file after the batch
    /// that fills one.
    async fn write(&mut self, mut batches: Vec<RecordBatch>) -> Result<()> {
        let (max_rows, max_bytes) = (self.options.target_file_rows, self.options.target_file_bytes);
        let full = move |rows: u64, size: u64| {
            max_rows.is_some_and(|max| rows >= max) || max_bytes.is_some_and(|max| size >= max)
        };
        while !batches.is_empty() {
            let mut sink = match self.sink.take() {
                Some(sink) => sink,
                None => self.new_sink()?,
            };
            match sink.write_until(batches.clone(), full).await {
                Ok(written) => drop(batches.drain(..written)),
                Err(error) => {
                    abort_quietly(sink).await;
                    return Err(error);
                }
            }
            if full(sink.rows(), sink.estimated_size()) {
                self.finish_file(sink).await?;
            } else {
                self.sink = Some(sink);
            }
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<PartitionFiles> {
        if let Some(sink) = self.sink.take() {
            self.finish_file(sink).await?;
        }
        Ok(self)
    }

    async fn finish_file(&mut self, sink: ParquetSink) -> Result<()> {
        if sink.rows() == 0 {
            return sink.abort().await;
        }
        let file = sink.close().await?;
        let path = relative_path(self.root.path(), file.location.path()).unwrap_or_default();
        self.closed.push(ManifestFile {
            path,
            size: file.size,
            rows: file.rows,
            partition: self.partition.clone(),
        });
        Ok(())
    }
}

/// Aborts the upload of a sink that failed (best effort: the error that
/// made it fail is the one to report).
async fn abort_quietly(sink: ParquetSink) {
    let url = sink.location().to_string();
    if let Err(error) = sink.abort().await {
        tracing::debug!(%url, %error, "Failed to abort an upload.");
    }
}

/// Writes `bytes` to `location` in one atomic PUT, replacing what is there.
/// For small objects: manifests, `_manifest.json`, reports.
pub async fn put_atomic(location: &Location, bytes: Bytes) -> Result<()> {
    location
        .store()
        .put(location.path(), PutPayload::from_bytes(bytes))
        .await
        .map_err(|e| Error::store(location, e))?;
    Ok(())
}

/// Writes `bytes` to `location` unless an object is already there: `true` if
/// written, `false` if it existed (and is left as it was). One conditional
/// PUT (`If-None-Match: *` on S3, a hard link on local disk), so of
/// concurrent callers exactly one gets `true`.
pub async fn put_if_absent(location: &Location, bytes: Bytes) -> Result<bool> {
    let options = PutOptions::from(PutMode::Create);
    match location.store().put_opts(location.path(), PutPayload::from_bytes(bytes), options).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(Error::store(location, e)),
    }
}

/// The whole object at `location`.
pub async fn get_bytes(location: &Location) -> Result<Bytes> {
    let store = location.store();
    let result = store.get(location.path()).await.map_err(|e| Error::store(location, e))?;
    result.bytes().await.map_err(|e| Error::store(location, e))
}

/// Streams the object at `from` to `to`, which may be in another store
/// (S3 to the local disk, the local disk to S3, ...); returns its size.
///
/// Memory stays bounded whatever the size: the object is read as a stream
/// and uploaded in 10 MiB parts (multipart upload beyond one part, 2 parts
/// in flight). Nothing is visible at `to` until the copy is complete: a
/// failed copy leaves what was there before (and aborts its multipart
/// upload, unless completing it is what failed).
pub async fn copy_object(from: &Location, to: &Location) -> Result<u64> {
    let mut chunks = get_stream(from).await?;
    let mut upload = Upload::new(to);
    let mut size = 0u64;
    let streamed: Result<()> = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            upload.put(chunk).await?;
        }
        Ok(())
    }
    .await;
    if let Err(error) = streamed {
        upload.abort().await;
        return Err(error);
    }
    upload.finish().await?;
    Ok(size)
}

/// The object at `location` as a stream of chunks, read as they arrive:
/// memory stays bounded whatever its size.
pub async fn get_stream(location: &Location) -> Result<BoxStream<'static, Result<Bytes>>> {
    let source =
        location.store().get(location.path()).await.map_err(|e| Error::store(location, e))?;
    let at = location.clone();
    Ok(source.into_stream().map(move |chunk| chunk.map_err(|e| Error::store(&at, e))).boxed())
}

/// An object written as a stream, published whole or not at all: in
/// 10 MiB parts (multipart upload beyond one part, 2 parts in flight), so
/// memory stays bounded. Nothing is visible at the location until
/// [`finish`](Self::finish) succeeds; [`abort`](Self::abort), or dropping
/// it unfinished, leaves what was there before.
#[derive(Debug)]
pub struct Upload {
    location: Location,
    writer: object_store::buffered::BufWriter,
}

impl Upload {
    /// An upload to `location`; nothing happens in the store until data comes.
    pub fn new(location: &Location) -> Upload {
        const PART: usize = 10 * 1024 * 1024;
        let writer = object_store::buffered::BufWriter::with_capacity(
            location.store(),
            location.path().clone(),
            PART,
        )
        .with_max_concurrency(2);
        Upload { location: location.clone(), writer }
    }

    /// Appends `bytes`.
    pub async fn put(&mut self, bytes: Bytes) -> Result<()> {
        self.writer.put(bytes).await.map_err(|e| Error::store(&self.location, e))
    }

    /// Publishes the object.
    pub async fn finish(mut self) -> Result<()> {
        tokio::io::AsyncWriteExt::shutdown(&mut self.writer).await.map_err(|e| {
            let source = match e.downcast::<object_store::Error>() {
                Ok(e) => e,
                Err(e) => object_store::Error::Generic { store: "upload", source: Box::new(e) },
            };
            Error::store(&self.location, source)
        })
    }

    /// Gives up: what was at the location stays (best effort; a failure
    /// is logged, since the error that made the caller abort is the one
    /// to report).
    pub async fn abort(mut self) {
        if let Err(error) = self.writer.abort().await {
            tracing::debug!(url = %self.location, %error, "Failed to abort an upload.");
        }
    }
}

/// Deletes the object at `location` (an error if there is none).
pub async fn delete(location: &Location) -> Result<()> {
    location.store().delete(location.path()).await.map_err(|e| Error::store(location, e))
}

/// The current manifest and the version to make a conditional PUT against.
async fn read_manifest(root: &Location) -> Result<Option<(Manifest, UpdateVersion)>> {
    let location = root.join(MANIFEST_NAME);
    let store = location.store();
    let result = match store.get(location.path()).await {
        Ok(result) => result,
        Err(e) if Error::is_missing(&e) => return Ok(None),
        Err(e) => return Err(Error::store(&location, e)),
    };
    let version =
        UpdateVersion { e_tag: result.meta.e_tag.clone(), version: result.meta.version.clone() };
    let bytes = result.bytes().await.map_err(|e| Error::store(&location, e))?;
    let invalid = |reason: String| Error::Manifest { url: location.to_string(), reason };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(invalid(format!(
            "format is {:?}, expected {MANIFEST_FORMAT:?}",
            manifest.format
        )));
    }
    if manifest.version != MANIFEST_VERSION {
        return Err(invalid(format!(
            "version {} is not supported by this ipi (which reads version {MANIFEST_VERSION})",
            manifest.version
        )));
    }
    for file in &manifest.files {
        let valid = Path::parse(&file.path).is_ok_and(|p| {
            p.as_ref() == file.path
                && p.parts().all(|part| part.as_ref() != "." && part.as_ref() != "..")
                && p.parts().next().is_some_and(|first| !is_hidden(first.as_ref()))
        });
        if !valid {
            return Err(invalid(format!(
                "file path {:?} is not a relative visible path",
                file.path
            )));
        }
    }
    Ok(Some((manifest, version)))
}

/// PUTs the manifest, conditionally where the store can: `Create` for a
/// first commit, `Update(etag)` after. A store without conditional updates
/// (local disk) gets a plain atomic PUT.
async fn put_manifest(root: &Location, body: Bytes, expected: Option<UpdateVersion>) -> Result<()> {
    let location = root.join(MANIFEST_NAME);
    let store = location.store();
    let payload = PutPayload::from_bytes(body);
    let mode = match expected {
        None => PutMode::Create,
        Some(version) if version.e_tag.is_some() || version.version.is_some() => {
            PutMode::Update(version)
        }
        Some(_) => PutMode::Overwrite,
    };
    let conflict = || Error::Conflict {
        url: root.to_string(),
        reason: "the manifest changed while this transaction was committing".to_string(),
    };
    match store.put_opts(location.path(), payload.clone(), PutOptions::from(mode)).await {
        Ok(_) => Ok(()),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Err(conflict()),
        Err(object_store::Error::NotImplemented { .. }) => {
            tracing::debug!(url = %location, "Store has no conditional put; writing the manifest unconditionally.");
            store.put(location.path(), payload).await.map_err(|e| Error::store(&location, e))?;
            Ok(())
        }
        Err(e) => Err(Error::store(&location, e)),
    }
}

/// Refuses to mix schemas: the fields must equal the manifest's (metadata
/// may differ).
fn check_schema(root: &Location, manifest: &Manifest, schema: &Schema) -> Result<()> {
    let Some(theirs) =
        manifest.schema.clone().and_then(|v| serde_json::from_value::<Schema>(v).ok())
    else {
        return Ok(());
    };
    if theirs.fields() == schema.fields() {
        return Ok(());
    }
    Err(Error::SchemaMismatch {
        url: root.to_string(),
        reason: format!(
            "the dataset has [{}], this write has [{}]",
            describe_fields(&theirs),
            describe_fields(schema)
        ),
    })
}

/// The same number of columns, of the same types (nested field names
/// aside).
fn same_types(ours: &Schema, theirs: &Schema) -> bool {
    let (ours, theirs) = (ours.fields(), theirs.fields());
    ours.len() == theirs.len()
        && ours.iter().zip(theirs.iter()).all(|(a, b)| a.data_type().equals_datatype(b.data_type()))
}

/// `name: type, …` of a schema's fields, for error messages.
fn describe_fields(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deletes every object under `root` not in `keep`, except the manifest,
/// top-level hidden names, and files of transactions newer than `txn`.
/// Returns (deleted, failed).
async fn collect_garbage(
    root: &Location,
    keep: &HashSet<&str>,
    txn: Uuid,
) -> Result<(usize, usize)> {
    let doomed: Vec<Path> = list_all(root)
        .await?
        .into_iter()
        .filter(|meta| {
            let Some(relative) = relative_path(root.path(), &meta.location) else { return false };
            let first = relative.split('/').next().unwrap_or_default();
            !is_hidden(first)
                && !keep.contains(relative.as_str())
                && file_txn(&relative).is_none_or(|theirs| theirs < txn)
        })
        .map(|meta| meta.location)
        .collect();
    if doomed.is_empty() {
        return Ok((0, 0));
    }
    let store = root.store();
    let results: Vec<_> =
        store.delete_stream(futures::stream::iter(doomed).map(Ok).boxed()).collect().await;
    let mut deleted = 0;
    let mut failed = 0;
    for result in results {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
            Err(error) => {
                failed += 1;
                tracing::warn!(url = %root, %error, "Failed to delete an unreferenced object.");
            }
        }
    }
    if let Some(dir) = root.as_local_path() {
        remove_empty_dirs(dir).await;
    }
    Ok((deleted, failed))
}

/// The transaction of a `part-<uuid>-<n>.parquet` file name.
fn file_txn(relative: &str) -> Option<Uuid> {
    let name = relative.rsplit('/').next()?;
    let id = name.strip_prefix("part-")?.get(..36)?;
    Uuid::parse_str(id).ok()
}

/// `path` relative to `root`, `/`-separated; `None` when not below it.
fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let parts: Vec<_> = path.prefix_match(root)?.collect();
    if parts.is_empty() {
        return None;
    }
    Some(parts.iter().map(|p| p.as_ref()).collect::<Vec<_>>().join("/"))
}

/// Removes the empty directories a local-disk clean-up leaves (the root and
/// top-level hidden directories excepted). Best effort.
async fn remove_empty_dirs(root: std::path::PathBuf) {
    fn walk(dir: &std::path::Path, top: bool) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = top && entry.file_name().to_str().is_some_and(is_hidden);
            if !hidden && entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path, false);
                // Fails, as it should, unless the directory is empty.
                let _ = std::fs::remove_dir(&path);
            }
        }
    }
    let job = move || walk(&root, true);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let _ = handle.spawn_blocking(job).await;
        }
        Err(_) => job(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_txn_reads_part_names() {
        let txn = Uuid::now_v7();
        assert_eq!(file_txn(&format!("date=x/part-{txn}-00003.parquet")), Some(txn));
        assert_eq!(file_txn("date=x/part-0.parquet"), None);
        assert_eq!(file_txn("foreign.parquet"), None);
    }

    #[test]
    fn transactions_are_time_ordered() {
        let a = Uuid::now_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Uuid::now_v7();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn partition_names_are_validated() {
        let root = Location::parse("memory://partition-names/ds").unwrap();
        let schema = Arc::new(Schema::empty());
        let writer = DatasetWriter::new(root, schema, WriteMode::Append);
        assert_eq!(writer.partition_key(None).unwrap(), "");
        assert_eq!(writer.partition_key(Some("/")).unwrap(), "");
        assert_eq!(writer.partition_key(Some("date=2018-11-12/")).unwrap(), "date=2018-11-12");
        assert_eq!(writer.partition_key(Some("a=1/b=2")).unwrap(), "a=1/b=2");
        for bad in ["_rejects", "a/../b", "a//b", ".x", "a=*", "date=1/_tmp"] {
            assert!(
                matches!(writer.partition_key(Some(bad)), Err(Error::InvalidPartition { .. })),
                "{bad}"
            );
        }
    }

    /// Polls a future to completion on this thread, outside any tokio
    /// runtime (the memory store never waits).
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn writes_inline_outside_a_tokio_runtime() {
        use arrow_array::Int64Array;
        let schema = Arc::new(Schema::new(vec![arrow_schema::Field::new(
            "n",
            arrow_schema::DataType::Int64,
            false,
        )]));
        let batch = |values: Vec<i64>| {
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(values))])
                .unwrap()
        };
        let root = Location::parse("memory://inline-writer/ds").unwrap();
        let mut writer =
            DatasetWriter::new(root.clone(), Arc::clone(&schema), WriteMode::Overwrite)
                .with_options(WriterOptions {
                    target_file_rows: Some(3),
                    ..WriterOptions::default()
                });
        let summary = block_on(async {
            for (day, values) in [("d=1", vec![1, 2]), ("d=2", vec![3]), ("d=1", vec![4, 5])] {
                writer.write(day, &batch(values)).await?;
            }
            assert!(writer.open.values().all(|p| matches!(p, Partition::Inline(_))));
            writer.commit().await
        })
        .unwrap();
        assert_eq!((summary.files_written, summary.rows_written), (2, 5));
        assert_eq!(summary.partitions_written, ["d=1", "d=2"]);
    }

    #[test]
    fn manifest_json_has_the_documented_shape() {
        let schema =
            Schema::new(vec![arrow_schema::Field::new("n", arrow_schema::DataType::Int64, true)]);
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            commit: "0190c3a4-0000-7000-8000-000000000000".into(),
            committed_at: DateTime::parse_from_rfc3339("2018-11-13T01:02:03Z").unwrap().into(),
            schema: serde_json::to_value(&schema).ok(),
            files: vec![ManifestFile {
                path: "date=2018-11-12/part-x-00000.parquet".into(),
                size: 10,
                rows: 2,
                partition: "date=2018-11-12".into(),
            }],
        };
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(json["format"], "ipi-dataset");
        assert_eq!(json["version"], 1);
        assert_eq!(json["committed_at"], "2018-11-13T01:02:03Z");
        assert_eq!(json["files"][0]["partition"], "date=2018-11-12");
        let back: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, manifest);
        let schema_back: Schema = serde_json::from_value(back.schema.unwrap()).unwrap();
        assert_eq!(schema_back, schema);
    }
}
