//! Row groups carried from one Parquet object into another: their column
//! chunks copied byte for byte, with new columns added beside them.
//!
//! A step that adds columns to a table (the batch transform adds scores to
//! events) need not decode and re-encode the columns it only passes on.
//! [`ParquetSource::row_group`] fetches one row group's bytes in one ranged
//! GET; [`RowGroup::read`] decodes just the columns the step needs from
//! those bytes; and [`CarrySink::append`] writes the row group to a new
//! object as the same column chunks (pages, dictionaries, statistics)
//! followed by the new columns, encoded as [`ParquetSink`](crate::ParquetSink)
//! encodes. Readers see an ordinary Parquet file whose schema is the
//! source's fields followed by the new ones.
//!
//! A chunk can be carried only into a column of the same Parquet type:
//! [`CarrySink::accepts`] says whether a source's columns are the sink's
//! first ones. Callers fall back to decoding and writing batches when not.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::{Buf, Bytes};
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::OffsetIndexMetaData;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnDescPtr, SchemaDescriptor};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::location::Location;
use crate::parquet_io::{ParquetOptions, WrittenFile, read_footer};

/// A Parquet object whose row groups can be fetched one at a time.
#[derive(Debug, Clone)]
pub struct ParquetSource {
    location: Location,
    metadata: ArrowReaderMetadata,
}

impl ParquetSource {
    /// Reads the footer of the object at `location`, with its page index
    /// (carried along with the chunks) when it has one; `file_size` saves a
    /// request when known.
    pub async fn open(location: &Location, file_size: Option<u64>) -> Result<ParquetSource> {
        let metadata = read_footer(location, file_size, true).await?;
        Ok(ParquetSource { location: location.clone(), metadata })
    }

    /// Where the object is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Its Arrow schema.
    pub fn schema(&self) -> &SchemaRef {
        self.metadata.schema()
    }

    /// Its Parquet schema: the column types a [`CarrySink`] must have.
    pub fn parquet_schema(&self) -> &SchemaDescriptor {
        self.metadata.parquet_schema()
    }

    /// How many row groups it has.
    pub fn num_row_groups(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    /// The bytes [`row_group`](Self::row_group) would fetch for row group
    /// `index`: what holding it costs in memory.
    pub fn row_group_bytes(&self, index: usize) -> u64 {
        span_of(&self.metadata, index).map_or(0, |(start, end)| end - start)
    }

    /// Fetches row group `index` whole, in one ranged GET.
    pub async fn row_group(&self, index: usize) -> Result<RowGroup> {
        let (start, end) = span_of(&self.metadata, index).ok_or_else(|| {
            Error::parquet(&self.location, ParquetError::General(format!("no row group {index}")))
        })?;
        let bytes = self
            .location
            .store()
            .get_range(self.location.path(), start..end)
            .await
            .map_err(|e| Error::store(&self.location, e))?;
        Ok(RowGroup {
            location: self.location.clone(),
            index,
            metadata: self.metadata.clone(),
            span: Span { start, bytes },
        })
    }
}

/// The byte range `[start, end)` that row group `index`'s column chunks
/// cover, `None` when there is no such row group.
fn span_of(metadata: &ArrowReaderMetadata, index: usize) -> Option<(u64, u64)> {
    let group = metadata.metadata().row_groups().get(index)?;
    let ranges = group.columns().iter().map(|c| {
        let (start, length) = c.byte_range();
        (start, start.saturating_add(length))
    });
    let (start, end) = ranges.fold((u64::MAX, 0), |(s, e), (a, b)| (s.min(a), e.max(b)));
    Some(if start > end { (0, 0) } else { (start, end) })
}

/// One row group of a [`ParquetSource`], held in memory.
#[derive(Debug, Clone)]
pub struct RowGroup {
    location: Location,
    index: usize,
    metadata: ArrowReaderMetadata,
    span: Span,
}

impl RowGroup {
    /// Its rows.
    pub fn num_rows(&self) -> usize {
        self.metadata.metadata().row_group(self.index).num_rows().max(0) as usize
    }

    /// The object it came from.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Its position in the object, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its Parquet schema.
    pub fn parquet_schema(&self) -> &SchemaDescriptor {
        self.metadata.parquet_schema()
    }

    /// Whether its object has an offset index (where each page is).
    fn has_offset_index(&self) -> bool {
        self.offset_indexes().is_some()
    }

    fn offset_indexes(&self) -> Option<&Vec<OffsetIndexMetaData>> {
        self.metadata.metadata().offset_index().and_then(|o| o.get(self.index))
    }

    /// Decodes the top-level `columns` (all when `None`; a name it does not
    /// have is skipped), in the object's order, `batch_size` rows at a time.
    pub fn read(
        &self,
        columns: Option<&[&str]>,
        batch_size: usize,
    ) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send + use<>> {
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.span.clone(),
            self.metadata.clone(),
        )
        .with_row_groups(vec![self.index])
        .with_batch_size(batch_size.max(1));
        let builder = match columns {
            None => builder,
            Some(names) => {
                let schema = self.metadata.schema();
                let roots = names.iter().filter_map(|name| schema.index_of(name).ok());
                let mask = ProjectionMask::roots(self.metadata.parquet_schema(), roots);
                builder.with_projection(mask)
            }
        };
        let reader: ParquetRecordBatchReader =
            builder.build().map_err(|e| Error::parquet(&self.location, e))?;
        let location = self.location.clone();
        Ok(reader.map(move |batch| {
            batch.map_err(|e| Error::parquet(&location, ParquetError::ArrowError(e.to_string())))
        }))
    }

    /// The Arrow schema of its object.
    pub fn schema(&self) -> &SchemaRef {
        self.metadata.schema()
    }
}

/// A row group's bytes, addressed by their offsets in the object.
#[derive(Debug, Clone)]
struct Span {
    start: u64,
    bytes: Bytes,
}

impl Span {
    fn slice(&self, start: u64, length: Option<usize>) -> parquet::errors::Result<Bytes> {
        let end = length.map_or(self.len(), |n| start.saturating_add(n as u64));
        if start < self.start || end > self.len() {
            return Err(ParquetError::EOF(format!(
                "bytes {start}..{end} are outside the row group's {}..{}",
                self.start,
                self.len()
            )));
        }
        Ok(self.bytes.slice((start - self.start) as usize..(end - self.start) as usize))
    }
}

impl Length for Span {
    /// The end of the span: reads never go past it.
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for Span {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// A Parquet object written as row groups carried from sources, each with
/// new columns beside it; see the [module docs](self).
///
/// Like [`ParquetSink`](crate::ParquetSink), nothing is visible at the
/// location until [`close`](Self::close) returns, encoding runs on tokio's
/// blocking pool, and each row group is uploaded once written (multipart for
/// large objects). It holds the row group being encoded (its bytes and new
/// columns) while the caller prepares the next.
pub struct CarrySink {
    location: Location,
    /// `None` while a blocking thread has it, and for good if that failed.
    writer: Option<Box<Writer>>,
    /// The row group being encoded on a blocking thread, if any.
    encoding: Option<JoinHandle<Encoded>>,
    /// The types of the leaf columns carried from the sources (the rest
    /// are encoded here).
    columns: Vec<ColumnDescPtr>,
    upload: BufWriter,
    rows: u64,
    /// Whether the row groups so far had a page index; `None` before the
    /// first.
    page_index: Option<bool>,
}

/// The writer back from a blocking thread, and what it encoded.
type Encoded = (Box<Writer>, parquet::errors::Result<Bytes>);

struct Writer {
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Top-level fields carried, and their leaf columns.
    carried_fields: usize,
    carried_leaves: usize,
}

impl std::fmt::Debug for CarrySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrySink")
            .field("location", &self.location)
            .field("carried", &self.columns.len())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl CarrySink {
    /// A sink writing `schema` to `location`, whose first `carried_fields`
    /// fields are carried from sources and the rest encoded with `options`.
    pub fn create(
        location: &Location,
        schema: SchemaRef,
        carried_fields: usize,
        options: &ParquetOptions,
    ) -> Result<CarrySink> {
        let props = options.writer_properties(&schema).map_err(|e| Error::parquet(location, e))?;
        let (file, factory) = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|e| Error::parquet(location, e))?;
        let descr = file.schema_descr();
        let carried_leaves = (0..descr.num_columns())
            .filter(|&i| descr.get_column_root_idx(i) < carried_fields)
            .count();
        let columns = descr.columns()[..carried_leaves].to_vec();
        let upload = BufWriter::with_capacity(
            location.store(),
            location.path().clone(),
            options.upload_part_size.max(1),
        )
        .with_max_concurrency(options.upload_concurrency.max(1));
        Ok(CarrySink {
            location: location.clone(),
            writer: Some(Box::new(Writer {
                file,
                factory,
                schema,
                carried_fields,
                carried_leaves,
            })),
            encoding: None,
            columns,
            upload,
            rows: 0,
            page_index: None,
        })
    }

    /// Where this sink writes.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether `group` can be carried into this file: its columns are
    /// exactly the sink's carried ones, of the same Parquet types, and it
    /// has a page index if (and only if) the row groups before it had one
    /// (a file's chunks all have one or none).
    pub fn accepts(&self, group: &RowGroup) -> bool {
        let theirs = group.parquet_schema();
        theirs.num_columns() == self.columns.len()
            && self.columns.iter().enumerate().all(|(i, ours)| theirs.column(i) == *ours)
            && self.page_index.is_none_or(|had| had == group.has_offset_index())
    }

    /// Appends `group` with `extra` (the new columns, one row per row of the
    /// group) beside it, as one row group.
    ///
    /// The row group is encoded on a blocking thread while the caller goes
    /// on (the previous one is waited for first): an error while encoding
    /// or uploading it comes back from the next `append` or from
    /// [`close`](Self::close).
    pub async fn append(&mut self, group: &RowGroup, extra: &RecordBatch) -> Result<()> {
        if !self.accepts(group) {
            return Err(self.problem(format!(
                "the columns of {} are not the ones this file carries",
                group.location
            )));
        }
        if extra.num_rows() != group.num_rows() {
            return Err(self.problem(format!(
                "{} new rows beside a row group of {}",
                extra.num_rows(),
                group.num_rows()
            )));
        }
        self.settle().await?;
        let Some(mut writer) = self.writer.take() else {
            return Err(self.problem("an earlier write to this file failed".into()));
        };
        self.rows += group.num_rows() as u64;
        self.page_index = Some(group.has_offset_index());
        let (group, extra) = (group.clone(), extra.clone());
        let job = move || {
            let result = writer.append(&group, &extra);
            let bytes = Bytes::from(std::mem::take(writer.file.inner_mut()));
            (writer, result.map(|()| bytes))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => self.encoding = Some(runtime.spawn_blocking(job)),
            Err(_) => {
                let (writer, result) = job();
                self.finish_encoding(writer, result).await?;
            }
        }
        Ok(())
    }

    /// Writes the footer and completes the upload; the object exists once
    /// this returns.
    pub async fn close(mut self) -> Result<WrittenFile> {
        self.settle().await?;
        let Some(mut writer) = self.writer.take() else {
            return Err(self.problem("an earlier write to this file failed".into()));
        };
        let mut job = move || {
            let result = writer.file.finish().map(drop);
            let size = writer.file.bytes_written() as u64;
            (size, result.map(|()| Bytes::from(std::mem::take(writer.file.inner_mut()))))
        };
        let (size, result) = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(job)
                .await
                .map_err(|e| self.problem(format!("encoding stopped: {e}")))?,
            Err(_) => job(),
        };
        let bytes = result.map_err(|e| Error::parquet(&self.location, e))?;
        self.upload(bytes).await?;
        self.upload.shutdown().await.map_err(|e| Error::parquet(&self.location, e.into()))?;
        Ok(WrittenFile { location: self.location.clone(), size, rows: self.rows })
    }

    /// Waits for the row group being encoded, and uploads it.
    async fn settle(&mut self) -> Result<()> {
        let Some(task) = self.encoding.take() else { return Ok(()) };
        let (writer, result) =
            task.await.map_err(|e| self.problem(format!("encoding stopped: {e}")))?;
        self.finish_encoding(writer, result).await
    }

    async fn finish_encoding(
        &mut self,
        writer: Box<Writer>,
        encoded: parquet::errors::Result<Bytes>,
    ) -> Result<()> {
        let bytes = encoded.map_err(|e| Error::parquet(&self.location, e))?;
        self.writer = Some(writer);
        self.upload(bytes).await
    }

    fn problem(&self, reason: String) -> Error {
        Error::parquet(&self.location, ParquetError::General(reason))
    }

    /// Gives up: aborts a multipart upload in progress; nothing is written.
    pub async fn abort(mut self) -> Result<()> {
        self.upload.abort().await.map_err(|e| Error::store(&self.location, e))
    }

    async fn upload(&mut self, bytes: Bytes) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.upload.put(bytes).await.map_err(|e| Error::store(&self.location, e))
    }
}

impl Writer {
    /// One row group: `group`'s chunks copied, then `extra` encoded.
    fn append(&mut self, group: &RowGroup, extra: &RecordBatch) -> parquet::errors::Result<()> {
        let index = self.file.flushed_row_groups().len();
        let writers = self.factory.create_column_writers(index)?;
        let mut writers = writers.into_iter().skip(self.carried_leaves);
        let mut chunks = Vec::new();
        let fields = self.schema.fields().iter().skip(self.carried_fields);
        for (field, column) in fields.zip(extra.columns()) {
            for leaf in compute_leaves(field, column)? {
                let mut writer = writers.next().ok_or_else(|| {
                    ParquetError::General("more new columns than the schema has".into())
                })?;
                writer.write(&leaf)?;
                chunks.push(writer.close()?);
            }
        }
        let rows = group.num_rows() as u64;
        let metadata = group.metadata.metadata();
        let offset_indexes = group.offset_indexes();
        let column_indexes = metadata.column_index().and_then(|c| c.get(group.index));
        // The writer's footer wants an offset index for every chunk or for
        // none: the new columns keep theirs only if the carried ones have one.
        if offset_indexes.is_none() {
            for chunk in &mut chunks {
                chunk.close_mut().offset_index = None;
            }
        }
        let mut row_group = self.file.next_row_group()?;
        for (i, column) in metadata.row_group(group.index).columns().iter().enumerate() {
            let column_index = column_indexes
                .and_then(|c| c.get(i))
                .filter(|c| !matches!(c, ColumnIndexMetaData::NONE))
                .cloned();
            let close = ColumnCloseResult {
                bytes_written: column.compressed_size().max(0) as u64,
                rows_written: rows,
                metadata: column.clone(),
                bloom_filter: None,
                column_index,
                offset_index: offset_indexes.and_then(|o| o.get(i)).cloned(),
            };
            row_group.append_column(&group.span, close)?;
        }
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }
}
