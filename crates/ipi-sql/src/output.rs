//! Writing a result: an aligned table for a terminal, CSV, JSON, JSON
//! Lines or Parquet, to stdout or to a URL (local or `s3://`).
//!
//! Everything but the table streams: a batch is encoded and written before
//! the next one is computed. The table needs every row to align the
//! columns, so it holds the whole result; so does Parquet sent to stdout.

use std::io::Write as _;
use std::str::FromStr;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::FormatOptions;
use datafusion::arrow::util::pretty::{
    pretty_format_batches_with_options, pretty_format_batches_with_schema,
};
use datafusion::arrow::{csv, json};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::ArrowWriter;
use futures::StreamExt;
use ipi_storage::object_store::buffered::BufWriter;
use ipi_storage::{Location, ParquetOptions, ParquetSink};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// How a result is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Columns aligned for a terminal (`NULL` for nulls).
    #[default]
    Table,
    /// CSV with a header line; timestamps in RFC 3339.
    Csv,
    /// One JSON array of objects, every column present (`null`s too).
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Parquet (zstd), the result's Arrow types kept.
    Parquet,
}

impl Format {
    /// Every format, as named on the command line.
    pub const ALL: [Format; 5] =
        [Format::Table, Format::Csv, Format::Json, Format::Jsonl, Format::Parquet];

    /// The name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }

    /// The file extension of its files.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            other => other.name(),
        }
    }

    /// The format a file name's extension implies, if any.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "txt" => Some(Format::Table),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("unknown format `{s}`; expected one of {}", names.join(", "))
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a result goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// An object (a local file or `s3://`), replaced whole when complete.
    Location(Location),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Stdout => f.write_str("stdout"),
            Target::Location(l) => write!(f, "{l}"),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// Result rows.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Bytes out, to stdout or an object.
enum Sink {
    Stdout,
    Object { upload: Box<BufWriter>, location: Location },
}

impl Sink {
    fn new(target: &Target) -> Sink {
        match target {
            Target::Stdout => Sink::Stdout,
            Target::Location(location) => Sink::Object {
                upload: Box::new(BufWriter::new(location.store(), location.path().clone())),
                location: location.clone(),
            },
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            // A closed pipe stays an io::Error, which the binary treats as
            // the reader having had enough.
            Sink::Stdout => Ok(std::io::stdout().lock().write_all(bytes)?),
            Sink::Object { upload, location } => upload.write_all(bytes).await.map_err(|e| {
                Error::Output { target: location.to_string(), message: e.to_string() }
            }),
        }
    }

    async fn finish(self) -> Result<()> {
        match self {
            Sink::Stdout => Ok(std::io::stdout().lock().flush()?),
            Sink::Object { mut upload, location } => upload.shutdown().await.map_err(|e| {
                Error::Output { target: location.to_string(), message: e.to_string() }
            }),
        }
    }

    async fn abort(self) {
        if let Sink::Object { mut upload, .. } = self {
            let _ = upload.abort().await;
        }
    }
}

/// Writes every batch of `stream` in `format` to `target`. An object is
/// written only when the whole result is: a failed query leaves no partial
/// file behind.
pub async fn write(
    stream: SendableRecordBatchStream,
    format: Format,
    target: &Target,
) -> Result<Written> {
    if let (Format::Parquet, Target::Location(location)) = (format, target) {
        return write_parquet(stream, location).await;
    }
    let mut sink = Sink::new(target);
    match encode(stream, format, &mut sink).await {
        Ok(written) => {
            sink.finish().await?;
            Ok(written)
        }
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    }
}

async fn encode(
    mut stream: SendableRecordBatchStream,
    format: Format,
    sink: &mut Sink,
) -> Result<Written> {
    let schema = stream.schema();
    let target = "the result";
    let encode_error = |e: &dyn std::fmt::Display| Error::Output {
        target: target.to_string(),
        message: e.to_string(),
    };
    let mut rows = 0u64;
    let mut bytes = 0u64;
    match format {
        Format::Table | Format::Parquet => {
            let mut batches = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Error::execution("running the query", e))?;
                rows += batch.num_rows() as u64;
                batches.push(batch);
            }
            let out = if format == Format::Table {
                table_text(&schema, &batches).map_err(|e| encode_error(&e))?.into_bytes()
            } else {
                let mut writer =
                    ArrowWriter::try_new(Vec::new(), schema, None).map_err(|e| encode_error(&e))?;
                for batch in &batches {
                    writer.write(batch).map_err(|e| encode_error(&e))?;
                }
                writer.into_inner().map_err(|e| encode_error(&e))?
            };
            bytes += out.len() as u64;
            sink.write(&out).await?;
        }
        Format::Csv | Format::Json | Format::Jsonl => {
            if format == Format::Json {
                sink.write(b"[").await?;
                bytes += 1;
            }
            // Until the first row is out: CSV still owes its header, JSON
            // its first object without a comma.
            let mut first = true;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Error::execution("running the query", e))?;
                if batch.num_rows() == 0 {
                    continue;
                }
                rows += batch.num_rows() as u64;
                let out = encode_text(&batch, format, first).map_err(|e| encode_error(&e))?;
                first = false;
                bytes += out.len() as u64;
                sink.write(&out).await?;
            }
            let end: Vec<u8> = match format {
                // CSV always has its header, even without rows.
                Format::Csv if first => encode_text(&RecordBatch::new_empty(schema), format, true)
                    .map_err(|e| encode_error(&e))?,
                Format::Json if first => b"]\n".to_vec(),
                Format::Json => b"\n]\n".to_vec(),
                _ => Vec::new(),
            };
            bytes += end.len() as u64;
            sink.write(&end).await?;
        }
    }
    Ok(Written { rows, bytes })
}

/// One batch as CSV (with the header when `first`), JSON Lines, or the
/// objects of a JSON array (with a leading comma unless `first`).
fn encode_text(batch: &RecordBatch, format: Format, first: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match format {
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new().with_header(first).build(&mut out);
            writer.write(batch).map_err(|e| e.to_string())?;
        }
        Format::Jsonl | Format::Json => {
            let mut lines = Vec::new();
            {
                let mut writer = json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, json::writer::LineDelimited>(&mut lines);
                writer.write(batch).map_err(|e| e.to_string())?;
                writer.finish().map_err(|e| e.to_string())?;
            }
            if format == Format::Jsonl {
                return Ok(lines);
            }
            // JSON strings escape newlines, so each line is one object.
            for (i, line) in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
                out.extend_from_slice(if first && i == 0 { b"\n" } else { b",\n" });
                out.extend_from_slice(line);
            }
        }
        Format::Table | Format::Parquet => {}
    }
    Ok(out)
}

/// The result as an aligned table, `NULL` for nulls.
pub fn table_text(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String, String> {
    let text = if batches.iter().all(|b| b.num_rows() == 0) {
        pretty_format_batches_with_schema(schema.clone(), &[]).map(|t| t.to_string())
    } else {
        let options = FormatOptions::default().with_null("NULL").with_display_error(true);
        pretty_format_batches_with_options(batches, &options).map(|t| t.to_string())
    };
    text.map(|t| format!("{t}\n")).map_err(|e| e.to_string())
}

/// Parquet to an object, streamed through ipi-storage's sink (multipart
/// upload, bounded memory).
async fn write_parquet(
    mut stream: SendableRecordBatchStream,
    location: &Location,
) -> Result<Written> {
    let mut sink = ParquetSink::create(location, stream.schema(), &ParquetOptions::default())?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                let _ = sink.abort().await;
                return Err(Error::execution("running the query", e));
            }
        };
        rows += batch.num_rows() as u64;
        if let Err(e) = sink.write(&batch).await {
            let _ = sink.abort().await;
            return Err(e.into());
        }
    }
    let file = sink.close().await?;
    Ok(Written { rows, bytes: file.size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_come_from_extensions() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("xml".parse::<Format>().unwrap_err().contains("table, csv, json, jsonl, parquet"));
        assert_eq!(Format::from_file_name("out/r.PARQUET"), Some(Format::Parquet));
        assert_eq!(Format::from_file_name("r.ndjson"), Some(Format::Jsonl));
        assert_eq!(Format::from_file_name("r"), None);
    }
}
