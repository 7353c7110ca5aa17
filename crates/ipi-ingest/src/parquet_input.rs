//! Parquet tables with named columns as ingest inputs: the same column
//! names as CSV tables (see [`crate::table`]), read in batches.
//!
//! | column | accepted types |
//! |---|---|
//! | entity, address | Utf8, LargeUtf8, Utf8View |
//! | time | Timestamp with a time zone (any unit), or text with an offset (RFC 3339) |
//! | status | any integer type |
//!
//! A `Timestamp` without a time zone is a naive time that could mean any
//! instant: the input is refused rather than guessed. `tz_offset_minutes`
//! is the text's offset for text times and 0 for `Timestamp` columns.

use std::borrow::Cow;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, FixedOffset};

use crate::batch::{ChunkBuilder, ParsedChunk, RowSettings};
use crate::parse::{Record, Reject, RejectKind};
use crate::table::parse_instant;

const ENTITY: &[&str] = &["entity", "user", "user_id", "username"];
const IP: &[&str] = &["ip", "ip_address", "client_ip"];
const TIME: &[&str] = &["timestamp", "time", "event_time"];

/// Which columns of a Parquet input hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetLayout {
    entity: usize,
    ip: usize,
    timestamp: Option<usize>,
    status: Option<usize>,
}

impl ParquetLayout {
    /// Find the columns by name in a schema; `Err` says what is missing or
    /// unusable.
    pub fn from_schema(
        schema: &arrow_schema::Schema,
        has_default_timestamp: bool,
    ) -> Result<ParquetLayout, String> {
        let names: Vec<String> =
            schema.fields().iter().map(|f| f.name().to_ascii_lowercase()).collect();
        let find = |accepted: &[&str]| names.iter().position(|n| accepted.contains(&n.as_str()));
        let (Some(entity), Some(ip)) = (find(ENTITY), find(IP)) else {
            return Err(format!(
                "the columns ({}) need an entity column (entity, user, user_id or username) and an address column (ip, ip_address or client_ip)",
                names.join(", ")
            ));
        };
        for index in [entity, ip] {
            let field = schema.field(index);
            if !matches!(
                field.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) {
                return Err(format!(
                    "column `{}` is {}, not text",
                    field.name(),
                    field.data_type()
                ));
            }
        }
        let timestamp = find(TIME);
        match timestamp.map(|i| schema.field(i)) {
            Some(field) => match field.data_type() {
                DataType::Timestamp(_, Some(_))
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View => {}
                DataType::Timestamp(_, None) => {
                    return Err(format!(
                        "column `{}` holds naive times (no time zone), which could mean any instant; write it as UTC timestamps or RFC 3339 text",
                        field.name()
                    ));
                }
                other => return Err(format!("column `{}` is {other}, not a time", field.name())),
            },
            None if !has_default_timestamp => {
                return Err(
                    "no time column (timestamp, time or event_time); set default_timestamp".into(),
                );
            }
            None => {}
        }
        let status = names.iter().position(|n| n == "status");
        Ok(ParquetLayout { entity, ip, timestamp, status })
    }
}

/// Text values of a column, whatever its string type.
fn text_at(array: &dyn Array, row: usize) -> Option<&str> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(array.as_string_view().value(row)),
        _ => None,
    }
}

/// Microseconds since the epoch of a `Timestamp` value.
fn micros_at(array: &dyn Array, row: usize) -> Option<i64> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive::<TimestampSecondType>().value(row).checked_mul(1_000_000)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().value(row).checked_mul(1_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Some(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Some(array.as_primitive::<TimestampNanosecondType>().value(row).div_euclid(1_000))
        }
        _ => None,
    }
}

/// An integer value of any integer column.
fn integer_at(array: &dyn Array, row: usize) -> Option<i64> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => i64::try_from(array.as_primitive::<UInt64Type>().value(row)).ok()?,
        _ => return None,
    })
}

fn reject(field: &'static str, kind: RejectKind) -> Reject {
    Reject { field, kind }
}

/// One row as a record.
fn record_at<'b>(
    batch: &'b RecordBatch,
    layout: &ParquetLayout,
    default_timestamp: Option<DateTime<FixedOffset>>,
    row: usize,
) -> Result<Record<'b>, Reject> {
    let entity = text_at(batch.column(layout.entity).as_ref(), row).map(str::trim);
    let ip = text_at(batch.column(layout.ip).as_ref(), row)
        .map(str::trim)
        .filter(|ip| !ip.is_empty())
        .ok_or(reject("ip", RejectKind::Missing))?;
    let (timestamp_us, tz_offset_minutes) = match layout.timestamp {
        None => {
            let t = default_timestamp.ok_or(reject("timestamp", RejectKind::Missing))?;
            (t.timestamp_micros(), (t.offset().local_minus_utc() / 60) as i16)
        }
        Some(index) => {
            let column = batch.column(index).as_ref();
            match micros_at(column, row) {
                Some(us) => (us, 0),
                None => {
                    let text =
                        text_at(column, row).ok_or(reject("timestamp", RejectKind::Missing))?;
                    let t = parse_instant(text.trim()).ok_or(reject(
                        "timestamp",
                        RejectKind::Malformed("an RFC 3339 time with a UTC offset"),
                    ))?;
                    (t.timestamp_micros(), (t.offset().local_minus_utc() / 60) as i16)
                }
            }
        }
    };
    let status = match layout.status {
        None => None,
        Some(index) => Some(
            integer_at(batch.column(index).as_ref(), row)
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (100..=999).contains(s))
                .ok_or(reject("status", RejectKind::Malformed("a three-digit HTTP status")))?,
        ),
    };
    Ok(Record::table_row(
        Cow::Borrowed(ip),
        entity.map(Cow::Borrowed),
        timestamp_us,
        tz_offset_minutes,
        status,
    ))
}

/// The row as text, for the rejects' `raw` column: its values joined by `,`.
fn row_text(batch: &RecordBatch, row: usize) -> Vec<u8> {
    let values: Vec<String> = batch
        .columns()
        .iter()
        .map(|c| {
            text_at(c.as_ref(), row)
                .map(str::to_owned)
                .or_else(|| micros_at(c.as_ref(), row).map(|us| us.to_string()))
                .or_else(|| integer_at(c.as_ref(), row).map(|i| i.to_string()))
                .unwrap_or_default()
        })
        .collect();
    values.join(",").into_bytes()
}

/// Turn one batch of a Parquet input into a parsed chunk; `first_row` is the
/// 1-based number of its first row in the file.
pub fn parse_batch(
    batch: &RecordBatch,
    layout: &ParquetLayout,
    default_timestamp: Option<DateTime<FixedOffset>>,
    settings: RowSettings<'_>,
    first_row: u64,
) -> ParsedChunk {
    let mut out = ChunkBuilder::new(settings);
    for row in 0..batch.num_rows() {
        let line = first_row + row as u64;
        match record_at(batch, layout, default_timestamp, row) {
            Ok(record) => out.record(&record, line),
            Err(why) => out.reject(&why, &row_text(batch, row), line),
        }
    }
    out.finish()
}
