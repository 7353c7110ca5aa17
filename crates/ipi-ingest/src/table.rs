//! Table inputs: SageMaker's training CSV (`entity,ip`, no header) and CSV
//! with a header naming its columns, so people who already hold (entity,
//! ip, timestamp) tables can start with ingest.
//!
//! Fields are split by `csv-core` (RFC 4180 quoting); a record is one line.
//! The columns ipi reads are found by name in the header:
//!
//! | column | names accepted |
//! |---|---|
//! | entity | `entity`, `user`, `user_id`, `username` |
//! | address | `ip`, `ip_address`, `client_ip` |
//! | time | `timestamp`, `time`, `event_time` (RFC 3339 with an offset) |
//! | status | `status` |
//!
//! Other columns are ignored. A table without a time column needs a
//! `default_timestamp`.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};
use csv_core::{ReadFieldResult, Reader};

use crate::parse::{Record, Reject, RejectKind};

/// Where the columns ipi reads sit in a table's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLayout {
    pub entity: usize,
    pub ip: usize,
    pub timestamp: Option<usize>,
    pub status: Option<usize>,
}

impl TableLayout {
    /// SageMaker's training CSV: `entity,ip`.
    pub const SAGEMAKER: TableLayout =
        TableLayout { entity: 0, ip: 1, timestamp: None, status: None };

    /// The layout named by a header line; `Err` says what is missing.
    pub fn from_header(header: &[u8]) -> Result<TableLayout, String> {
        let mut splitter = FieldSplitter::default();
        let names: Vec<String> =
            splitter.split(header).iter().map(|n| n.trim().to_ascii_lowercase()).collect();
        let find = |accepted: &[&str]| names.iter().position(|n| accepted.contains(&n.as_str()));
        let entity = find(&["entity", "user", "user_id", "username"]);
        let ip = find(&["ip", "ip_address", "client_ip"]);
        match (entity, ip) {
            (Some(entity), Some(ip)) => Ok(TableLayout {
                entity,
                ip,
                timestamp: find(&["timestamp", "time", "event_time"]),
                status: find(&["status"]),
            }),
            _ => Err(format!(
                "the header ({}) needs an entity column (entity, user, user_id or username) and an address column (ip, ip_address or client_ip)",
                names.join(", ")
            )),
        }
    }
}

/// Splits one CSV line into fields with `csv-core`, reusing its buffers.
#[derive(Debug)]
pub struct FieldSplitter {
    reader: Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for FieldSplitter {
    fn default() -> FieldSplitter {
        FieldSplitter { reader: Reader::new(), out: Vec::new(), ends: Vec::new() }
    }
}

impl FieldSplitter {
    /// The fields of `line`, as text (invalid UTF-8 replaced).
    pub fn split(&mut self, line: &[u8]) -> Vec<Cow<'_, str>> {
        self.reader.reset();
        self.ends.clear();
        // Unquoting only ever shortens a field.
        self.out.clear();
        self.out.resize(line.len() + 1, 0);
        let mut input = line;
        let mut written = 0;
        loop {
            let (result, read, wrote) = self.reader.read_field(input, &mut self.out[written..]);
            input = &input[read..];
            written += wrote;
            match result {
                // The line is consumed: an empty read marks its end.
                ReadFieldResult::InputEmpty if input.is_empty() => {
                    let (result, _, wrote) = self.reader.read_field(&[], &mut self.out[written..]);
                    written += wrote;
                    if let ReadFieldResult::Field { .. } = result {
                        self.ends.push(written);
                    }
                    break;
                }
                ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull => {}
                ReadFieldResult::Field { record_end } => {
                    self.ends.push(written);
                    if record_end {
                        break;
                    }
                }
                ReadFieldResult::End => break,
            }
        }
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let field = String::from_utf8_lossy(&self.out[start..end]);
                start = end;
                field
            })
            .collect()
    }
}

/// Parse a time with a UTC offset: RFC 3339 (`2018-11-12T10:00:00Z`,
/// `2018-11-12T10:00:00.5-08:00`) or the same with a space for the `T`.
pub fn parse_instant(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
}

fn reject(field: &'static str, kind: RejectKind) -> Reject {
    Reject { field, kind }
}

/// Parse one record of a table input.
pub fn parse_table_line<'a>(
    line: &[u8],
    layout: &TableLayout,
    default_timestamp: Option<DateTime<FixedOffset>>,
    splitter: &mut FieldSplitter,
) -> Result<Record<'a>, Reject> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(reject("line", RejectKind::Empty));
    }
    let fields = splitter.split(line);
    let get = |index: usize, name: &'static str| -> Result<String, Reject> {
        fields.get(index).map(|f| f.trim().to_owned()).ok_or(reject(name, RejectKind::Missing))
    };
    let entity = get(layout.entity, "entity")?;
    let ip = get(layout.ip, "ip")?;
    if ip.is_empty() {
        return Err(reject("ip", RejectKind::Missing));
    }
    let instant = match layout.timestamp {
        Some(index) => parse_instant(&get(index, "timestamp")?).ok_or(reject(
            "timestamp",
            RejectKind::Malformed("an RFC 3339 time with a UTC offset, e.g. 2018-11-12T10:00:00Z"),
        ))?,
        None => default_timestamp.ok_or(reject("timestamp", RejectKind::Missing))?,
    };
    let status = match layout.status {
        Some(index) => Some(
            get(index, "status")?
                .parse::<u16>()
                .ok()
                .filter(|s| (100..=999).contains(s))
                .ok_or(reject("status", RejectKind::Malformed("a three-digit HTTP status")))?,
        ),
        None => None,
    };
    Ok(Record::table_row(
        Cow::Owned(ip),
        Some(Cow::Owned(entity)),
        instant.timestamp_micros(),
        (instant.offset().local_minus_utc() / 60) as i16,
        status,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_fields() {
        let mut s = FieldSplitter::default();
        assert_eq!(s.split(b"a,b"), ["a", "b"]);
        assert_eq!(s.split(br#""x,y","say ""hi""",3"#), ["x,y", r#"say "hi""#, "3"]);
        assert_eq!(s.split(b"a,"), ["a", ""]);
        assert_eq!(s.split(b"single"), ["single"]);
    }

    #[test]
    fn header_finds_columns_by_name() {
        let layout = TableLayout::from_header(b"Time,User,ip_address,other").unwrap();
        assert_eq!(layout, TableLayout { entity: 1, ip: 2, timestamp: Some(0), status: None });
        assert!(TableLayout::from_header(b"a,b").unwrap_err().contains("entity column"));
    }

    #[test]
    fn sagemaker_lines_and_timestamps() {
        let mut s = FieldSplitter::default();
        let day = parse_instant("2018-11-12T00:00:00Z");
        let r = parse_table_line(b"user_1,192.168.1.2\r", &TableLayout::SAGEMAKER, day, &mut s)
            .unwrap();
        assert_eq!((r.user.as_deref(), r.client.as_ref()), (Some("user_1"), "192.168.1.2"));
        assert_eq!(r.timestamp_us, 1_541_980_800_000_000);
        let err =
            parse_table_line(b"user_1,1.2.3.4", &TableLayout::SAGEMAKER, None, &mut s).unwrap_err();
        assert_eq!(err.code(), "timestamp: missing");
        assert_eq!(
            parse_table_line(b"user_1", &TableLayout::SAGEMAKER, day, &mut s).unwrap_err().code(),
            "ip: missing"
        );

        let layout = TableLayout { entity: 0, ip: 1, timestamp: Some(2), status: Some(3) };
        let r = parse_table_line(b"u,1.2.3.4,2018-11-12 10:00:00+05:30,200", &layout, None, &mut s)
            .unwrap();
        assert_eq!((r.tz_offset_minutes, r.status), (330, Some(200)));
        assert_eq!(r.timestamp_us, 1_541_997_000_000_000);
        let naive = parse_table_line(b"u,1.2.3.4,2018-11-12 10:00:00,200", &layout, None, &mut s);
        assert_eq!(naive.unwrap_err().code(), "timestamp: malformed");
    }
}
