//! Streaming Parquet to and from any [`Location`].

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema, SchemaRef};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt, TryFutureExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{AsyncFileReader, MetadataSuffixFetch};
use parquet::arrow::{ArrowWriter, ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::location::Location;

/// How [`ParquetSink`] encodes and uploads.
///
/// # Memory bound
///
/// One sink holds at most about `max_row_group_bytes` of encoded column data
/// for the row group in progress (a row group is flushed when it reaches
/// `max_row_group_rows` rows or an estimated `max_row_group_bytes`,
/// whichever comes first), plus one `upload_part_size` buffer being filled
/// and up to `upload_concurrency` parts in flight. With the defaults that is
/// about 128 + 10 × (1 + 2) = 158 MiB per open sink, plus the batch being
/// written. A [`DatasetWriter`](crate::DatasetWriter) keeps one sink open per
/// partition it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetOptions {
    /// zstd level, 1 to 22. Default 3.
    pub zstd_level: i32,
    /// Rows per row group at most. Default 1,048,576 (parquet's own).
    pub max_row_group_rows: usize,
    /// Estimated encoded bytes per row group at most. Default 128 MiB.
    pub max_row_group_bytes: usize,
    /// Objects larger than this are uploaded in parts of this size
    /// (multipart upload); smaller ones with one PUT. S3 wants at least
    /// 5 MiB. Default 10 MiB.
    pub upload_part_size: usize,
    /// Parts uploaded at once. Default 2.
    pub upload_concurrency: usize,
    /// Columns written without dictionary encoding. Dictionaries pay off for
    /// repetitive columns (user agents, paths) and cost time for nearly
    /// unique ones (addresses, timestamps, line numbers). Default none.
    pub plain_columns: Vec<String>,
    /// Columns written without min/max statistics. Statistics let readers
    /// skip row groups by value, which helps for timestamps and ids but not
    /// for free text (user agents, referers), where computing them means
    /// comparing every value. Default none.
    pub no_statistics_columns: Vec<String>,
    /// Integer columns written with `DELTA_BINARY_PACKED` and no dictionary:
    /// line numbers and sorted ids shrink to a few bits a value before zstd
    /// sees them. Default none.
    pub delta_columns: Vec<String>,
    /// Text columns written with `DELTA_LENGTH_BYTE_ARRAY` and no
    /// dictionary: the lengths are packed apart from the bytes, so zstd sees
    /// only the text. For nearly unique short text (addresses) that halves
    /// zstd's time and saves a fifth of the space against `PLAIN`. Default
    /// none.
    pub delta_length_columns: Vec<String>,
    /// Columns written without compression: values zstd cannot shrink
    /// (addresses as integers, delta-packed timestamps), where compressing
    /// costs time and saves nothing. Default none.
    pub uncompressed_columns: Vec<String>,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            zstd_level: 3,
            max_row_group_rows: 1024 * 1024,
            max_row_group_bytes: 128 * 1024 * 1024,
            upload_part_size: 10 * 1024 * 1024,
            upload_concurrency: 2,
            plain_columns: Vec::new(),
            no_statistics_columns: Vec::new(),
            delta_columns: Vec::new(),
            delta_length_columns: Vec::new(),
            uncompressed_columns: Vec::new(),
        }
    }
}

impl ParquetOptions {
    /// The writer properties for `schema`: zstd, the row group limits, 8,192
    /// values a column at a time, `created_by = "ipi <version>"`, and the
    /// encodings asked for column by column, each given only to columns of
    /// a type it can encode (a `status` column of text, in a table someone
    /// scores, keeps its dictionary rather than failing the write).
    pub fn writer_properties(&self, schema: &Schema) -> Result<WriterProperties, ParquetError> {
        let type_of = |column: &str| schema.field_with_name(column).ok().map(|f| f.data_type());
        let mut builder = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
            .set_created_by(format!("ipi {}", env!("CARGO_PKG_VERSION")))
            .set_max_row_group_row_count(Some(self.max_row_group_rows.max(1)))
            .set_max_row_group_bytes(Some(self.max_row_group_bytes.max(1)))
            // Values a column takes at a time (parquet's default is 1,024):
            // fewer rounds of page-size checks and statistics; about 1% of
            // a `--keep=` ingest (43 interleaved pairs, noisy).
            .set_write_batch_size(8192);
        for column in &self.plain_columns {
            builder = builder.set_column_dictionary_enabled(column.as_str().into(), false);
        }
        for column in self.delta_columns.iter().filter(|c| type_of(c).is_some_and(delta_packs)) {
            builder = builder
                .set_column_dictionary_enabled(column.as_str().into(), false)
                .set_column_encoding(column.as_str().into(), Encoding::DELTA_BINARY_PACKED);
        }
        let is_bytes = |t: &DataType| {
            matches!(
                t,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary
            )
        };
        for column in self.delta_length_columns.iter().filter(|c| type_of(c).is_some_and(is_bytes))
        {
            builder = builder
                .set_column_dictionary_enabled(column.as_str().into(), false)
                .set_column_encoding(column.as_str().into(), Encoding::DELTA_LENGTH_BYTE_ARRAY);
        }
        for column in &self.no_statistics_columns {
            builder = builder
                .set_column_statistics_enabled(column.as_str().into(), EnabledStatistics::None);
        }
        for column in &self.uncompressed_columns {
            builder =
                builder.set_column_compression(column.as_str().into(), Compression::UNCOMPRESSED);
        }
        Ok(builder.build())
    }
}

/// Whether `DELTA_BINARY_PACKED` can encode a column of this type: integers,
/// and the times and dates stored as integers.
fn delta_packs(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Timestamp(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Duration(_)
        )
}

/// One Parquet object being written, streamed to the store as row groups
/// fill (see [`ParquetOptions`] for the memory bound).
///
/// Encoding (dictionaries, statistics, zstd) is CPU work: it runs on
/// tokio's blocking thread pool ([`tokio::task::spawn_blocking`]), so a
/// [`write`](Self::write) never stalls the runtime's worker threads. Outside
/// a tokio runtime it runs inline. Uploads stay on the caller's task.
///
/// Nothing is visible at the location until [`close`](Self::close) returns;
/// a sink dropped before that leaves no object behind (an S3 multipart
/// upload already started is left incomplete: S3 never lists it, and a
/// bucket lifecycle rule `AbortIncompleteMultipartUpload` reclaims it). Use
/// [`abort`](Self::abort) to clean up at once.
pub struct ParquetSink {
    location: Location,
    /// The encoder, writing into an in-memory buffer that is handed to
    /// `upload` after each row group. `None` while a blocking thread has it,
    /// and for good if that write was cancelled or panicked.
    encoder: Option<ArrowWriter<Vec<u8>>>,
    upload: BufWriter,
    rows: u64,
    /// Taken around each encoding step: bounds how many sinks sharing it
    /// encode at once (see [`DatasetWriter`](crate::DatasetWriter)).
    permits: Option<Arc<Semaphore>>,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("location", &self.location)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// What a closed [`ParquetSink`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where.
    pub location: Location,
    /// Bytes in the object.
    pub size: u64,
    /// Rows in the file.
    pub rows: u64,
}

impl ParquetSink {
    /// A sink that writes `schema`'d batches to `location`.
    pub fn create(
        location: &Location,
        schema: SchemaRef,
        options: &ParquetOptions,
    ) -> Result<ParquetSink> {
        let props = options.writer_properties(&schema).map_err(|e| Error::parquet(location, e))?;
        let upload = BufWriter::with_capacity(
            location.store(),
            location.path().clone(),
            options.upload_part_size.max(1),
        )
        .with_max_concurrency(options.upload_concurrency.max(1));
        let encoder = ArrowWriter::try_new(Vec::new(), schema, Some(props))
            .map_err(|e| Error::parquet(location, e))?;
        Ok(ParquetSink {
            location: location.clone(),
            encoder: Some(encoder),
            upload,
            rows: 0,
            permits: None,
        })
    }

    /// Encodes only while holding one of `permits`.
    pub(crate) fn with_encode_permits(mut self, permits: Arc<Semaphore>) -> ParquetSink {
        self.permits = Some(permits);
        self
    }

    /// Appends a batch (its schema must be the sink's).
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.write_until(vec![batch.clone()], |_, _| false).await.map(drop)
    }

    /// Appends `batches` in order in one encoding step, stopping after the
    /// first one that leaves the file `full(rows, estimated_size)`; returns
    /// how many it wrote. One step for several batches saves the hand-offs
    /// between threads that a step per batch costs.
    pub(crate) async fn write_until<F>(
        &mut self,
        batches: Vec<RecordBatch>,
        full: F,
    ) -> Result<usize>
    where
        F: Fn(u64, u64) -> bool + Send + 'static,
    {
        let mut rows = self.rows;
        let (encoded, (written, rows)) = self
            .encode(move |encoder| {
                for (i, batch) in batches.iter().enumerate() {
                    encoder.write(batch)?;
                    rows += batch.num_rows() as u64;
                    if full(rows, estimated_size(encoder)) {
                        return Ok((i + 1, rows));
                    }
                }
                Ok((batches.len(), rows))
            })
            .await?;
        self.upload(encoded).await?;
        self.rows = rows;
        Ok(written)
    }

    /// Where this sink writes.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Encoded bytes so far, including the estimate for the row group in
    /// progress: what the file would roughly weigh if closed now.
    pub fn estimated_size(&self) -> u64 {
        self.encoder.as_ref().map_or(0, estimated_size)
    }

    /// Flushes the last row group, writes the footer and completes the
    /// upload; the object exists once this returns.
    pub async fn close(mut self) -> Result<WrittenFile> {
        let (encoded, ()) = self.encode(|encoder| encoder.finish().map(drop)).await?;
        self.upload(encoded).await?;
        self.upload.shutdown().await.map_err(|e| self.io_error(e))?;
        let size = self.encoder.as_ref().map_or(0, |e| e.bytes_written() as u64);
        Ok(WrittenFile { size, rows: self.rows, location: self.location })
    }

    /// Gives up: aborts a multipart upload in progress; nothing is written.
    pub async fn abort(mut self) -> Result<()> {
        self.upload.abort().await.map_err(|e| Error::store(&self.location, e))
    }

    /// Runs `step` on the encoder on a blocking thread (holding a permit,
    /// when the sink has some); returns the bytes it produced and its result.
    async fn encode<F, T>(&mut self, step: F) -> Result<(Bytes, T)>
    where
        F: FnOnce(&mut ArrowWriter<Vec<u8>>) -> Result<T, ParquetError> + Send + 'static,
        T: Send + 'static,
    {
        let poisoned =
            |reason: String| Error::parquet(&self.location, ParquetError::General(reason));
        let permit = match &self.permits {
            Some(permits) => Some(
                Arc::clone(permits)
                    .acquire_owned()
                    .await
                    .map_err(|e| poisoned(format!("encoding slots closed: {e}")))?,
            ),
            None => None,
        };
        let Some(mut encoder) = self.encoder.take() else {
            return Err(poisoned("an earlier write to this file was cancelled or panicked".into()));
        };
        let job = move || {
            let result = step(&mut encoder);
            // Everything the step flushed, whole row groups or the footer.
            let bytes = Bytes::from(std::mem::take(encoder.inner_mut()));
            // Free the slot now, not once this task is polled again.
            drop(permit);
            (encoder, result.map(|value| (bytes, value)))
        };
        let (encoder, result) = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(job)
                .await
                .map_err(|e| poisoned(format!("encoding stopped: {e}")))?,
            Err(_) => job(),
        };
        self.encoder = Some(encoder);
        result.map_err(|e| Error::parquet(&self.location, e))
    }

    /// Hands encoded bytes to the upload (which waits while
    /// `upload_concurrency` parts are in flight).
    async fn upload(&mut self, bytes: Bytes) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.upload.put(bytes).await.map_err(|e| Error::store(&self.location, e))
    }

    fn io_error(&self, error: std::io::Error) -> Error {
        match error.downcast::<object_store::Error>() {
            Ok(store) => Error::store(&self.location, store),
            Err(other) => Error::parquet(&self.location, ParquetError::External(Box::new(other))),
        }
    }
}

/// Encoded bytes so far plus the estimate for the row group in progress.
fn estimated_size(encoder: &ArrowWriter<Vec<u8>>) -> u64 {
    (encoder.bytes_written() + encoder.in_progress_size()) as u64
}

/// How [`read_parquet`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Rows per batch at most. Default 8192.
    pub batch_size: usize,
    /// Only these top-level columns, in this order; `None` reads all.
    pub columns: Option<Vec<String>>,
    /// The object's size, when known (from a listing or a manifest): saves a
    /// request and reads the footer with bounded ranges.
    pub file_size: Option<u64>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { batch_size: 8192, columns: None, file_size: None }
    }
}

impl ReadOptions {
    /// Batches of at most `batch_size` rows.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Reads only `columns`, in that order.
    pub fn with_columns<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// The object's size in bytes.
    pub fn with_file_size(mut self, size: u64) -> Self {
        self.file_size = Some(size);
        self
    }
}

/// A stream of record batches from one Parquet object; see [`read_parquet`].
pub struct ParquetStream {
    schema: SchemaRef,
    inner: BoxStream<'static, Result<RecordBatch>>,
}

impl std::fmt::Debug for ParquetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetStream").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl ParquetStream {
    /// The schema of every batch (after projection).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl Stream for ParquetStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Streams the record batches of the Parquet object at `location`.
///
/// Only the footer and then one row group's column chunks at a time are
/// fetched (with ranged GETs), never the whole object.
pub async fn read_parquet(location: &Location, options: &ReadOptions) -> Result<ParquetStream> {
    let reader = ObjectReader::new(location, options.file_size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| Error::parquet(location, e))?;
    let file_schema = Arc::clone(builder.schema());
    let (builder, order) = match &options.columns {
        None => (builder, None),
        Some(columns) => {
            let mut indices = Vec::with_capacity(columns.len());
            for column in columns {
                let index = file_schema.index_of(column).map_err(|_| Error::ColumnNotFound {
                    url: location.to_string(),
                    column: column.clone(),
                })?;
                indices.push(index);
            }
            let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
            // The mask yields columns in file order; `order` puts them in the
            // order asked for.
            let mut in_file_order = indices.clone();
            in_file_order.sort_unstable();
            in_file_order.dedup();
            let order: Vec<usize> = indices
                .iter()
                .map(|i| in_file_order.binary_search(i).unwrap_or_default())
                .collect();
            (builder.with_projection(mask), Some(order))
        }
    };
    let stream = builder
        .with_batch_size(options.batch_size.max(1))
        .build()
        .map_err(|e| Error::parquet(location, e))?;
    let mut schema = Arc::clone(stream.schema());
    if let Some(order) = &order {
        schema = Arc::new(schema.project(order).map_err(|e| Error::parquet(location, e.into()))?);
    }
    let url = location.to_string();
    let inner = stream
        .map(move |batch| {
            let batch = batch.map_err(|e| Error::parquet(&url, e))?;
            match &order {
                None => Ok(batch),
                Some(order) => batch.project(order).map_err(|e| Error::parquet(&url, e.into())),
            }
        })
        .boxed();
    Ok(ParquetStream { schema, inner })
}

/// The footer of the Parquet object at `location`: row counts, row groups
/// and the Arrow schema, in one or two ranged GETs.
pub async fn read_parquet_metadata(
    location: &Location,
    file_size: Option<u64>,
) -> Result<ArrowReaderMetadata> {
    read_footer(location, file_size, false).await
}

/// [`read_parquet_metadata`], with the page index (each page's place and
/// statistics) when `page_index` and the object has one.
pub(crate) async fn read_footer(
    location: &Location,
    file_size: Option<u64>,
    page_index: bool,
) -> Result<ArrowReaderMetadata> {
    let mut reader = ObjectReader::new(location, file_size);
    let policy = if page_index { PageIndexPolicy::Optional } else { PageIndexPolicy::Skip };
    let options = ArrowReaderOptions::new().with_page_index_policy(policy);
    let metadata =
        reader.get_metadata(Some(&options)).await.map_err(|e| Error::parquet(location, e))?;
    ArrowReaderMetadata::try_new(metadata, options).map_err(|e| Error::parquet(location, e))
}

/// parquet's [`AsyncFileReader`] over an object store (what parquet's
/// deprecated `ParquetObjectReader` did; parquet 59.2 asks users to write
/// their own).
#[derive(Debug, Clone)]
struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    file_size: Option<u64>,
}

impl ObjectReader {
    fn new(location: &Location, file_size: Option<u64>) -> Self {
        ObjectReader { store: location.store(), path: location.path().clone(), file_size }
    }
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.store.get_range(&self.path, range).map_err(external).boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(external) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let reader = ParquetMetaDataReader::new().with_arrow_reader_options(options);
            let metadata = match self.file_size {
                Some(size) => reader.load_and_finish(self, size).await?,
                None => reader.load_via_suffix_and_finish(self).await?,
            };
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

impl MetadataSuffixFetch for &mut ObjectReader {
    fn fetch_suffix(&mut self, suffix: usize) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        let options =
            GetOptions { range: Some(GetRange::Suffix(suffix as u64)), ..Default::default() };
        async move {
            let result = self.store.get_opts(&self.path, options).await.map_err(external)?;
            result.bytes().await.map_err(external)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{ArrayRef, StringArray, UInt64Array};
    use arrow_schema::Field;
    use parquet::schema::types::ColumnPath;

    use super::*;

    #[test]
    fn encodings_go_only_to_columns_of_a_type_they_encode() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("status", DataType::Utf8, false),
            Field::new("line", DataType::UInt64, false),
            Field::new("ip", DataType::UInt64, false),
        ]));
        let options = ParquetOptions {
            delta_columns: vec!["status".into(), "line".into(), "absent".into()],
            delta_length_columns: vec!["ip".into()],
            ..ParquetOptions::default()
        };
        let props = options.writer_properties(&schema).unwrap();
        let encoding = |column: &str| props.encoding(&ColumnPath::from(column));
        assert_eq!(encoding("status"), None);
        assert_eq!(encoding("line"), Some(Encoding::DELTA_BINARY_PACKED));
        assert_eq!(encoding("ip"), None);
        // And the write a text `status` would have failed goes through.
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["200", "404"])),
            Arc::new(UInt64Array::from(vec![1, 2])),
            Arc::new(UInt64Array::from(vec![3, 4])),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
}
