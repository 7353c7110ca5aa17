//! Arrow batches of the `events` and `labels` datasets, and whole-object
//! uploads of the log files.

use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{
    ArrayRef, Int16Array, RecordBatch, StringArray, UInt16Array, UInt32Array, UInt64Array,
};
use bytes::Bytes;
use ipi_core::schema::{events_schema, labels_schema};
use ipi_storage::Location;
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use crate::clock::Window;
use crate::error::{Error, Result};
use crate::model::{Label, LoginRow};
use crate::traffic::{REFERERS, REQUESTS, USER_AGENTS, push_ip, push_u64};

/// Parts of a multipart upload (and the size under which an object is
/// sent with one PUT).
const PART_BYTES: usize = 16 << 20;

fn ip_text(addr: u32, scratch: &mut Vec<u8>) -> &str {
    scratch.clear();
    push_ip(scratch, addr);
    std::str::from_utf8(scratch).unwrap_or_default()
}

fn user_text(user: u64, scratch: &mut Vec<u8>) -> &str {
    scratch.clear();
    scratch.extend_from_slice(b"user_");
    push_u64(scratch, user);
    std::str::from_utf8(scratch).unwrap_or_default()
}

fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    let mut builder = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for v in values {
        builder.append_value(v * 1_000_000);
    }
    Arc::new(builder.finish())
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The `events` rows of a block's logins, one batch per UTC day, as ingest
/// would write them from the log with the login filter (`source` names
/// the log file the block would have been, `line` counts logins).
pub fn events_batches(
    window: &Window,
    rows: &[LoginRow],
    source: &str,
) -> Result<Vec<(u32, RecordBatch)>> {
    let mut days: Vec<Vec<usize>> = vec![Vec::new(); window.days as usize];
    for (i, row) in rows.iter().enumerate() {
        days[window.day_of(row.line.t) as usize].push(i);
    }
    let login = &REQUESTS[0];
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    for (day, picked) in days.into_iter().enumerate() {
        if picked.is_empty() {
            continue;
        }
        let n = picked.len();
        let rows: Vec<&LoginRow> = picked.into_iter().map(|i| &rows[i]).collect();
        let mut entity = StringBuilder::with_capacity(n, n * 10);
        let mut ip = StringBuilder::with_capacity(n, n * 15);
        let mut referer = StringBuilder::with_capacity(n, n * 30);
        let mut agent = StringBuilder::with_capacity(n, n * 120);
        for row in &rows {
            entity.append_value(user_text(row.user, &mut scratch));
            ip.append_value(ip_text(row.line.addr, &mut scratch));
            match REFERERS[row.line.referer as usize] {
                "-" => referer.append_null(),
                text => referer.append_value(text),
            }
            agent.append_value(USER_AGENTS[row.line.agent as usize]);
        }
        let repeat = |text: &str| -> ArrayRef { Arc::new(StringArray::from(vec![text; n])) };
        let columns: Vec<ArrayRef> = vec![
            timestamps(rows.iter().map(|r| r.line.t)),
            Arc::new(Int16Array::from_iter_values(rows.iter().map(|r| r.line.offset_minutes))),
            Arc::new(entity.finish()),
            Arc::new(ip.finish()),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.line.addr))),
            repeat(login.method),
            repeat(login.path),
            repeat("HTTP/1.1"),
            Arc::new(UInt16Array::from_iter_values(rows.iter().map(|r| r.line.status))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| u64::from(r.line.bytes)))),
            Arc::new(referer.finish()),
            Arc::new(agent.finish()),
            Arc::new(StringArray::new_null(n)),
            Arc::new(StringArray::new_null(n)),
            repeat(source),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.number))),
        ];
        let batch = RecordBatch::try_new(events_schema(), columns).map_err(internal)?;
        out.push((day as u32, batch));
    }
    Ok(out)
}

/// A `labels` batch.
pub fn labels_batch(labels: &[Label]) -> Result<RecordBatch> {
    let mut entity = StringBuilder::with_capacity(labels.len(), labels.len() * 10);
    let mut ip = StringBuilder::with_capacity(labels.len(), labels.len() * 15);
    let mut scratch = Vec::new();
    for label in labels {
        entity.append_value(user_text(label.user, &mut scratch));
        ip.append_value(ip_text(label.addr, &mut scratch));
    }
    let columns: Vec<ArrayRef> = vec![
        timestamps(labels.iter().map(|l| l.t)),
        Arc::new(entity.finish()),
        Arc::new(ip.finish()),
        Arc::new(StringArray::from_iter_values(labels.iter().map(|l| l.kind.name()))),
    ];
    RecordBatch::try_new(labels_schema(), columns).map_err(internal)
}

/// Writes one object in one go: a single PUT when small, else a multipart
/// upload that becomes visible only when complete, so a reader never sees
/// half a file.
pub async fn put_object(location: &Location, bytes: Bytes) -> Result<()> {
    let url = location.to_string();
    let mut writer =
        BufWriter::with_capacity(location.store(), location.path().clone(), PART_BYTES)
            .with_max_concurrency(2);
    if let Err(error) = writer.put(bytes).await {
        if let Err(abort) = writer.abort().await {
            tracing::debug!(%url, error = %abort, "Failed to abort an upload.");
        }
        return Err(Error::Write { url, source: std::io::Error::other(error) });
    }
    writer.shutdown().await.map_err(|source| Error::Write { url, source })?;
    Ok(())
}
