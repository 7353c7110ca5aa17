//! Parsing a chunk of lines into Arrow record batches.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int16Builder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::cast::AsArray as _;
use arrow_array::types::UInt64Type;
use arrow_array::{ArrayRef, RecordBatch};
use ipi_core::schema::{self, events_schema, rejects_schema};

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};

use crate::config::{EntitySource, Filter};
use crate::parse::{Decode, LineFormat, Record, Reject, parse_line_with};
use crate::source::Chunk;
use crate::table::{FieldSplitter, TableLayout, parse_table_line};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// What one chunk became.
#[derive(Debug, Default)]
pub struct ParsedChunk {
    /// Events by UTC day (days since 1970-01-01), in input order.
    pub events: BTreeMap<i64, RecordBatch>,
    /// Rejected lines, in input order.
    pub rejects: Option<RecordBatch>,
    /// Line counts.
    pub counts: Counts,
}

impl ParsedChunk {
    /// Number the chunk's lines from `lines_before + 1` rather than from 1:
    /// a chunk's lines are numbered within it ([`parse_chunk`]), and where
    /// it sits in its input is known only once the chunks before it are
    /// parsed.
    pub fn renumber(&mut self, lines_before: u64) {
        if lines_before == 0 {
            return;
        }
        for batch in self.events.values_mut() {
            *batch = shift_lines(batch, schema::events::LINE, lines_before);
        }
        if let Some(batch) = &mut self.rejects {
            *batch = shift_lines(batch, schema::rejects::LINE, lines_before);
        }
    }
}

/// `batch` with `by` added to its line-number column, `line`.
fn shift_lines(batch: &RecordBatch, line: &str, by: u64) -> RecordBatch {
    let index = batch.schema().index_of(line).expect("events and rejects have a line column");
    let mut columns = batch.columns().to_vec();
    let lines = columns[index].as_primitive::<UInt64Type>();
    columns[index] = Arc::new(lines.unary::<_, UInt64Type>(|line| line + by));
    RecordBatch::try_new(batch.schema(), columns).expect("only the values changed")
}

/// How lines were accounted for. `lines == rows + filtered + rejected`.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub lines: u64,
    pub rows: u64,
    pub filtered: u64,
    pub rejected: u64,
    /// Rejected lines by reason code (`status: malformed`).
    pub reasons: BTreeMap<String, u64>,
}

impl Counts {
    /// Add another chunk's counts.
    pub fn add(&mut self, other: &Counts) {
        self.lines += other.lines;
        self.rows += other.rows;
        self.filtered += other.filtered;
        self.rejected += other.rejected;
        for (reason, n) in &other.reasons {
            *self.reasons.entry(reason.clone()).or_default() += n;
        }
    }
}

/// Which optional event columns are filled (the others are null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub method: bool,
    pub path: bool,
    pub protocol: bool,
    pub bytes: bool,
    pub referer: bool,
    pub user_agent: bool,
    pub vhost: bool,
    pub forwarded_for: bool,
}

impl Keep {
    /// Every optional column.
    pub const ALL: Keep = Keep {
        method: true,
        path: true,
        protocol: true,
        bytes: true,
        referer: true,
        user_agent: true,
        vhost: true,
        forwarded_for: true,
    };

    /// From column names; `Err` names the first unknown one.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Keep, String> {
        let mut keep = Keep {
            method: false,
            path: false,
            protocol: false,
            bytes: false,
            referer: false,
            user_agent: false,
            vhost: false,
            forwarded_for: false,
        };
        for name in names {
            let flag = match name.as_ref() {
                "method" => &mut keep.method,
                "path" => &mut keep.path,
                "protocol" => &mut keep.protocol,
                "bytes" => &mut keep.bytes,
                "referer" => &mut keep.referer,
                "user_agent" => &mut keep.user_agent,
                "vhost" => &mut keep.vhost,
                "forwarded_for" => &mut keep.forwarded_for,
                other => return Err(other.to_owned()),
            };
            *flag = true;
        }
        Ok(keep)
    }
}

/// The compiled form of an [`EntitySource`].
#[derive(Debug, Clone)]
pub enum EntityExtractor {
    User,
    QueryParam(String),
    PathRegex(regex::Regex),
}

impl EntityExtractor {
    /// Compile a source (the regex, for `path_regex`).
    pub fn new(source: &EntitySource) -> Result<EntityExtractor, regex::Error> {
        Ok(match source {
            EntitySource::User => EntityExtractor::User,
            EntitySource::QueryParam { name } => EntityExtractor::QueryParam(name.clone()),
            EntitySource::PathRegex { pattern } => {
                EntityExtractor::PathRegex(regex::Regex::new(pattern)?)
            }
        })
    }

    /// Whether the entity comes from the request line.
    pub fn needs_request(&self) -> bool {
        !matches!(self, EntityExtractor::User)
    }

    /// The entity of a parsed line; `None` when there is none (or it is
    /// empty).
    pub fn extract<'a>(&self, record: &'a Record<'a>) -> Option<Cow<'a, str>> {
        let found = match self {
            EntityExtractor::User => record.user.as_deref().map(Cow::Borrowed),
            EntityExtractor::QueryParam(name) => {
                let path = record.path.as_deref()?;
                let (_, query) = path.split_once('?')?;
                form_urlencoded::parse(query.as_bytes())
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value)
            }
            EntityExtractor::PathRegex(re) => {
                let path = record.path.as_deref()?;
                re.captures(path)?.get(1).map(|m| Cow::Borrowed(m.as_str()))
            }
        };
        found.filter(|entity| !entity.is_empty())
    }
}

/// What an input holds.
#[derive(Debug, Clone, Copy)]
pub enum InputKind<'a> {
    /// Access-log lines.
    Log(LineFormat),
    /// Table records, one a line.
    Table { layout: &'a TableLayout, default_timestamp: Option<DateTime<FixedOffset>> },
}

/// What [`parse_chunk`] needs to know besides the bytes.
#[derive(Debug, Clone, Copy)]
pub struct ParseSettings<'a> {
    pub input: InputKind<'a>,
    pub rows: RowSettings<'a>,
}

/// How parsed records become rows, whatever the input.
#[derive(Debug, Clone, Copy)]
pub struct RowSettings<'a> {
    /// The input's URL, written in every row.
    pub source: &'a str,
    pub filter: &'a Filter,
    pub keep: Keep,
    pub entity: &'a EntityExtractor,
}

/// Builders for the events of one UTC day.
struct EventsBuilder {
    keep: Keep,
    rows: usize,
    timestamp: TimestampMicrosecondBuilder,
    tz_offset: Int16Builder,
    entity: StringBuilder,
    ip: StringBuilder,
    ipv4: UInt32Builder,
    method: StringBuilder,
    path: StringBuilder,
    protocol: StringBuilder,
    status: UInt16Builder,
    bytes: UInt64Builder,
    referer: StringBuilder,
    user_agent: StringBuilder,
    vhost: StringBuilder,
    forwarded_for: StringBuilder,
    line: UInt64Builder,
}

/// How big the builders of one day grew, to size the next ones: growing a
/// builder copies what it holds, and its first pages fault in one by one.
#[derive(Debug, Clone, Copy, Default)]
struct SizeHint {
    rows: usize,
    /// Value bytes of the string columns, in [`EventsBuilder::strings`] order.
    bytes: [usize; 8],
}

impl SizeHint {
    /// The larger of two hints, column by column.
    fn max(self, other: SizeHint) -> SizeHint {
        let mut bytes = self.bytes;
        for (mine, theirs) in bytes.iter_mut().zip(other.bytes) {
            *mine = (*mine).max(theirs);
        }
        SizeHint { rows: self.rows.max(other.rows), bytes }
    }
}

thread_local! {
    /// The largest day this thread built in its last chunk: chunks of one
    /// input look alike, so the next chunk's days are sized from it.
    static LAST_DAY: std::cell::Cell<SizeHint> = const {
        std::cell::Cell::new(SizeHint { rows: 0, bytes: [0; 8] })
    };
}

impl EventsBuilder {
    fn new(keep: Keep, hint: SizeHint) -> EventsBuilder {
        // A little headroom, so a day a bit larger than the last does not
        // grow (and copy) every column at its end.
        let rows = hint.rows + hint.rows / 8;
        let text = |i: usize, kept: bool| {
            if kept {
                let bytes = hint.bytes[i] + hint.bytes[i] / 8;
                StringBuilder::with_capacity(rows, bytes)
            } else {
                StringBuilder::new()
            }
        };
        let number = |kept: bool| if kept { rows } else { 0 };
        EventsBuilder {
            keep,
            rows: 0,
            timestamp: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            tz_offset: Int16Builder::with_capacity(rows),
            entity: text(0, true),
            ip: text(1, true),
            ipv4: UInt32Builder::with_capacity(rows),
            method: text(2, keep.method),
            path: text(3, keep.path),
            protocol: text(4, keep.protocol),
            status: UInt16Builder::with_capacity(rows),
            bytes: UInt64Builder::with_capacity(number(keep.bytes)),
            referer: text(5, keep.referer),
            user_agent: text(6, keep.user_agent),
            vhost: text(7, keep.vhost),
            forwarded_for: StringBuilder::new(),
            line: UInt64Builder::with_capacity(rows),
        }
    }

    /// The string columns whose sizes [`SizeHint`] keeps.
    fn strings(&self) -> [&StringBuilder; 8] {
        [
            &self.entity,
            &self.ip,
            &self.method,
            &self.path,
            &self.protocol,
            &self.referer,
            &self.user_agent,
            &self.vhost,
        ]
    }

    /// This builder's size, as a hint for the next.
    fn size(&self) -> SizeHint {
        SizeHint { rows: self.rows, bytes: self.strings().map(|b| b.values_slice().len()) }
    }

    fn append(&mut self, r: &Record<'_>, entity: Option<&str>, line: u64) {
        self.timestamp.append_value(r.timestamp_us);
        self.tz_offset.append_value(r.tz_offset_minutes);
        self.entity.append_option(entity);
        self.ip.append_value(&r.client);
        self.ipv4.append_option(ipi_core::ipv4::parse(r.client.as_bytes()));
        self.status.append_option(r.status);
        self.line.append_value(line);
        let keep = self.keep;
        if keep.method {
            self.method.append_option(r.method.as_deref());
        }
        if keep.path {
            self.path.append_option(r.path.as_deref());
        }
        if keep.protocol {
            self.protocol.append_option(r.protocol.as_deref());
        }
        if keep.bytes {
            self.bytes.append_option(r.bytes);
        }
        if keep.referer {
            self.referer.append_option(r.referer.as_deref());
        }
        if keep.user_agent {
            self.user_agent.append_option(r.user_agent.as_deref());
        }
        if keep.vhost {
            self.vhost.append_option(r.vhost.as_deref());
        }
        if keep.forwarded_for {
            self.forwarded_for.append_option(r.forwarded_for.as_deref());
        }
        self.rows += 1;
    }

    fn finish(mut self, source: &str) -> RecordBatch {
        let rows = self.rows;
        // A column that is not kept is all nulls of its type.
        let optional = |kept: bool, array: ArrayRef| -> ArrayRef {
            if kept { array } else { constant::nulls(array.data_type(), rows) }
        };
        let keep = self.keep;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish()),
            Arc::new(self.tz_offset.finish()),
            Arc::new(self.entity.finish()),
            Arc::new(self.ip.finish()),
            Arc::new(self.ipv4.finish()),
            optional(keep.method, Arc::new(self.method.finish())),
            optional(keep.path, Arc::new(self.path.finish())),
            optional(keep.protocol, Arc::new(self.protocol.finish())),
            Arc::new(self.status.finish()),
            optional(keep.bytes, Arc::new(self.bytes.finish())),
            optional(keep.referer, Arc::new(self.referer.finish())),
            optional(keep.user_agent, Arc::new(self.user_agent.finish())),
            optional(keep.vhost, Arc::new(self.vhost.finish())),
            optional(keep.forwarded_for, Arc::new(self.forwarded_for.finish())),
            constant::source(source, rows),
            Arc::new(self.line.finish()),
        ];
        // The columns follow events_schema() one for one; a mismatch is a
        // bug caught by the tests, never a data error.
        RecordBatch::try_new(events_schema(), columns).expect("events columns match the schema")
    }
}

/// Columns that are the same in every row: `source`, and the optional
/// columns that are not kept (all null). Each thread builds them once, as
/// long as the longest batch so far, and gives each batch a slice (which
/// shares the buffers). Built per batch, they were about 100 bytes a row
/// written and freed again (the source's text alone is as long as the rest
/// of a `--keep=` row).
mod constant {
    use std::cell::RefCell;

    use arrow_array::{Array, ArrayRef, StringArray, new_null_array};
    use arrow_schema::DataType;

    use super::Arc;

    /// Batches longer than this get columns of their own, not slices of a
    /// cached one (a table input can make batches of a million rows).
    const MAX_CACHED_ROWS: usize = 1 << 16;

    #[derive(Default)]
    struct Cache {
        /// The source, and a column of it.
        source: Option<(String, ArrayRef)>,
        /// A null column of each type asked for.
        nulls: Vec<ArrayRef>,
    }

    thread_local! {
        static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    }

    /// How long to build a column that must hold `rows`.
    fn cached_len(rows: usize) -> usize {
        rows.next_power_of_two().max(1024)
    }

    /// `rows` rows of `source`.
    pub(super) fn source(source: &str, rows: usize) -> ArrayRef {
        if rows > MAX_CACHED_ROWS {
            return Arc::new(StringArray::new_repeated(source, rows));
        }
        CACHE.with_borrow_mut(|cache| {
            let fits = |(text, column): &(String, ArrayRef)| text == source && column.len() >= rows;
            if !cache.source.as_ref().is_some_and(fits) {
                let column = StringArray::new_repeated(source, cached_len(rows));
                cache.source = Some((source.to_owned(), Arc::new(column)));
            }
            let (_, column) = cache.source.as_ref().expect("just set");
            column.slice(0, rows)
        })
    }

    /// `rows` nulls of `data_type`.
    pub(super) fn nulls(data_type: &DataType, rows: usize) -> ArrayRef {
        if rows > MAX_CACHED_ROWS {
            return new_null_array(data_type, rows);
        }
        CACHE.with_borrow_mut(|cache| {
            let found = cache.nulls.iter().position(|column| column.data_type() == data_type);
            let index = match found {
                Some(index) if cache.nulls[index].len() >= rows => index,
                Some(index) => {
                    cache.nulls[index] = new_null_array(data_type, cached_len(rows));
                    index
                }
                None => {
                    cache.nulls.push(new_null_array(data_type, cached_len(rows)));
                    cache.nulls.len() - 1
                }
            };
            cache.nulls[index].slice(0, rows)
        })
    }

    #[cfg(test)]
    mod tests {
        use arrow_array::cast::AsArray as _;

        use super::*;

        #[test]
        fn slices_hold_the_asked_rows_whatever_was_cached_before() {
            for (text, rows) in [("a", 3), ("a", 5000), ("a", 2), ("bb", 2), ("a", 70_000)] {
                let column = source(text, rows);
                assert_eq!(column.len(), rows);
                assert!(column.as_string::<i32>().iter().all(|v| v == Some(text)), "{text}");
                for data_type in [DataType::Utf8, DataType::UInt64] {
                    let column = nulls(&data_type, rows);
                    assert_eq!((column.len(), column.null_count()), (rows, rows));
                    assert_eq!(column.data_type(), &data_type);
                }
            }
        }
    }
}

/// Builders for rejected lines.
struct RejectsBuilder {
    source: StringBuilder,
    line: UInt64Builder,
    reason: StringBuilder,
    raw: BinaryBuilder,
}

impl RejectsBuilder {
    fn new() -> RejectsBuilder {
        RejectsBuilder {
            source: StringBuilder::new(),
            line: UInt64Builder::new(),
            reason: StringBuilder::new(),
            raw: BinaryBuilder::new(),
        }
    }

    fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.raw.finish()),
        ];
        RecordBatch::try_new(rejects_schema(), columns).expect("rejects columns match the schema")
    }
}

/// Parse every line of a chunk, numbering them from 1 (see
/// [`ParsedChunk::renumber`]).
pub fn parse_chunk(chunk: &Chunk, settings: &ParseSettings<'_>) -> ParsedChunk {
    let ParseSettings { input, rows } = *settings;
    let RowSettings { filter, keep, entity, .. } = rows;
    let mut splitter = FieldSplitter::default();
    let mut out = ChunkBuilder::new(rows);
    let decode = Decode {
        request: keep.method
            || keep.path
            || keep.protocol
            || filter.needs_request()
            || entity.needs_request(),
        referer: keep.referer,
        user_agent: keep.user_agent,
        vhost: keep.vhost,
        forwarded_for: keep.forwarded_for,
    };
    for (line_no, line) in (1..).zip(lines(&chunk.bytes)) {
        let parsed = match input {
            InputKind::Log(format) => parse_line_with(line, format, decode),
            InputKind::Table { layout, default_timestamp } => {
                parse_table_line(line, layout, default_timestamp, &mut splitter)
            }
        };
        match parsed {
            Ok(record) => out.record(&record, line_no),
            Err(reject) => out.reject(&reject, line, line_no),
        }
    }
    out.finish()
}

/// Accumulates one chunk's events (by UTC day), rejects and counts.
pub struct ChunkBuilder<'a> {
    settings: RowSettings<'a>,
    /// The days seen, in the order first seen, and their builders
    /// (`builders[i]` is for `days[i]`; the keys are apart so that finding a
    /// day scans a few words, not the builders); `last` is the one the
    /// previous row went to (rows of a day tend to come together).
    days: Vec<i64>,
    builders: Vec<EventsBuilder>,
    last: usize,
    /// How to size a new day's builders.
    hint: SizeHint,
    rejects: Option<RejectsBuilder>,
    counts: Counts,
}

impl std::fmt::Debug for ChunkBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkBuilder").field("counts", &self.counts).finish_non_exhaustive()
    }
}

impl<'a> ChunkBuilder<'a> {
    /// An empty chunk.
    pub fn new(settings: RowSettings<'a>) -> ChunkBuilder<'a> {
        ChunkBuilder {
            settings,
            days: Vec::new(),
            builders: Vec::new(),
            last: 0,
            hint: LAST_DAY.get(),
            rejects: None,
            counts: Counts::default(),
        }
    }

    /// A parsed record from line (or row) `line`: kept or filtered.
    pub fn record(&mut self, record: &Record<'_>, line: u64) {
        let RowSettings { filter, keep, entity, .. } = self.settings;
        self.counts.lines += 1;
        if !filter.keeps(record) {
            self.counts.filtered += 1;
            return;
        }
        self.counts.rows += 1;
        let day = record.timestamp_us.div_euclid(MICROS_PER_DAY);
        if self.days.get(self.last) != Some(&day) {
            self.last = match self.days.iter().position(|d| *d == day) {
                Some(found) => found,
                None => {
                    self.days.push(day);
                    self.builders.push(EventsBuilder::new(keep, self.hint));
                    self.days.len() - 1
                }
            };
        }
        self.builders[self.last].append(record, entity.extract(record).as_deref(), line);
    }

    /// A line (or row) that could not be used, kept whole as `raw`.
    pub fn reject(&mut self, reject: &Reject, raw: &[u8], line: u64) {
        self.counts.lines += 1;
        self.counts.rejected += 1;
        *self.counts.reasons.entry(reject.code()).or_default() += 1;
        let b = self.rejects.get_or_insert_with(RejectsBuilder::new);
        b.source.append_value(self.settings.source);
        b.line.append_value(line);
        b.reason.append_value(reject.to_string());
        b.raw.append_value(raw);
    }

    /// The chunk's batches and counts.
    pub fn finish(self) -> ParsedChunk {
        if let Some(size) = self.builders.iter().map(EventsBuilder::size).reduce(SizeHint::max) {
            LAST_DAY.set(size);
        }
        let source = self.settings.source;
        let events = self.days.into_iter().zip(self.builders);
        ParsedChunk {
            events: events.map(|(day, b)| (day, b.finish(source))).collect(),
            rejects: self.rejects.map(RejectsBuilder::finish),
            counts: self.counts,
        }
    }
}

/// The lines of a chunk without their `\n`: a last line with no `\n` is
/// included, and a chunk that ends in `\n` has no empty line after it.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let open_end = (!bytes.is_empty() && !bytes.ends_with(b"\n")).then_some(bytes.len());
    let mut start = 0;
    memchr::memchr_iter(b'\n', bytes).chain(open_end).map(move |end| {
        let line = &bytes[start..end];
        start = end + 1;
        line
    })
}

/// The Hive partition of a UTC day: `date=YYYY-MM-DD`.
pub fn partition_of(day: i64) -> String {
    let date = DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.date_naive().format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "invalid".to_owned());
    format!("date={date}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_like_a_text_file() {
        let split = |b: &'static [u8]| lines(b).collect::<Vec<_>>();
        assert_eq!(split(b""), Vec::<&[u8]>::new());
        assert_eq!(split(b"\n"), [b"" as &[u8]]);
        assert_eq!(split(b"a\nb"), [b"a" as &[u8], b"b"]);
        assert_eq!(split(b"a\n\nb\n"), [b"a" as &[u8], b"", b"b"]);
    }

    #[test]
    fn every_line_is_accounted_for() {
        let text = b"1.2.3.4 - bob [01/Jan/2020:23:30:00 -0100] \"GET /login_success HTTP/1.1\" 200 1 \"-\" \"UA\"\r\n\
garbage\n\
\n\
1.2.3.4 - - [01/Jan/2020:10:00:00 +0000] \"POST /x HTTP/1.1\" 500 1 \"-\" \"UA\"\n\
1.2.3.4 - amy [01/Jan/2020:10:00:00 +0000] \"GET /login_success HTTP/1.1\" 200 1 \"-\" \"UA\"";
        let chunk = Chunk { seq: 0, bytes: text.to_vec().into() };
        let filter = Filter {
            method: vec!["GET".into()],
            path_prefix: Some("/login".into()),
            status: vec![200],
        };
        let settings = ParseSettings {
            input: InputKind::Log(LineFormat::Auto),
            rows: RowSettings {
                source: "mem://x",
                filter: &filter,
                keep: Keep::ALL,
                entity: &EntityExtractor::User,
            },
        };
        let mut parsed = parse_chunk(&chunk, &settings);
        let line_numbers = |batch: &RecordBatch| {
            batch.column_by_name("line").unwrap().as_primitive::<UInt64Type>().values().to_vec()
        };
        let kept: Vec<Vec<u64>> = parsed.events.values().map(line_numbers).collect();
        assert_eq!(kept, [vec![5], vec![1]]);
        // The chunk after nine lines of its input.
        parsed.renumber(9);
        let kept: Vec<Vec<u64>> = parsed.events.values().map(line_numbers).collect();
        assert_eq!(kept, [vec![14], vec![10]]);
        let c = &parsed.counts;
        assert_eq!((c.lines, c.rows, c.filtered, c.rejected), (5, 2, 1, 2));
        assert_eq!(c.reasons.get("empty line"), Some(&1));
        // 23:30 at -01:00 is 00:30 the next UTC day.
        let days: Vec<String> = parsed.events.keys().map(|&d| partition_of(d)).collect();
        assert_eq!(days, ["date=2020-01-01", "date=2020-01-02"]);
        let rejects = parsed.rejects.unwrap();
        let lines = rejects.column(1).as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
        assert_eq!(lines.values(), &[11, 12]);
        let raw = rejects.column(3).as_any().downcast_ref::<arrow_array::BinaryArray>().unwrap();
        assert_eq!(raw.value(0), b"garbage");
    }
}

#[cfg(test)]
mod keep_tests {
    use super::*;

    #[test]
    fn columns_not_kept_are_null_and_the_schema_is_unchanged() {
        let line = b"1.2.3.4 - bob [01/Jan/2020:10:00:00 +0000] \"GET /x HTTP/1.1\" 200 7 \"http://r\" \"UA\"\n";
        let chunk = Chunk { seq: 0, bytes: line.to_vec().into() };
        let keep = Keep::from_names(&["path"]).unwrap();
        let filter = Filter::default();
        let settings = ParseSettings {
            input: InputKind::Log(LineFormat::Auto),
            rows: RowSettings {
                source: "s",
                filter: &filter,
                keep,
                entity: &EntityExtractor::User,
            },
        };
        let parsed = parse_chunk(&chunk, &settings);
        let batch = parsed.events.values().next().unwrap();
        assert_eq!(batch.schema(), events_schema());
        let null_count = |name: &str| batch.column_by_name(name).unwrap().null_count();
        assert_eq!(null_count("path"), 0);
        for dropped in ["method", "protocol", "bytes", "referer", "user_agent"] {
            assert_eq!(null_count(dropped), 1, "{dropped}");
        }
        assert_eq!(null_count("entity"), 0);
        assert_eq!(Keep::from_names(&["nope"]), Err("nope".to_owned()));
    }
}

#[cfg(test)]
mod entity_tests {
    use super::*;
    use crate::parse::parse_line;

    fn entity_of(source: EntitySource, line: &[u8]) -> Option<String> {
        let record = parse_line(line, LineFormat::Auto).unwrap();
        EntityExtractor::new(&source).unwrap().extract(&record).map(Cow::into_owned)
    }

    #[test]
    fn entity_sources() {
        let line = br#"1.2.3.4 - bob [01/Jan/2020:10:00:00 +0000] "GET /accounts/a%20b/login?x=1&userId=al%C3%ADce&y= HTTP/1.1" 200 7 "-" "UA""#;
        assert_eq!(entity_of(EntitySource::User, line).as_deref(), Some("bob"));
        let param = |name: &str| EntitySource::QueryParam { name: name.into() };
        assert_eq!(entity_of(param("userId"), line).as_deref(), Some("alíce"));
        assert_eq!(entity_of(param("y"), line), None, "empty means none");
        assert_eq!(entity_of(param("nope"), line), None);
        let regex = EntitySource::PathRegex { pattern: "^/accounts/([^/]+)/".into() };
        assert_eq!(entity_of(regex, line).as_deref(), Some("a%20b"));
        let no_query =
            br#"1.2.3.4 - - [01/Jan/2020:10:00:00 +0000] "GET /login HTTP/1.1" 200 7 "-" "UA""#;
        assert_eq!(entity_of(param("userId"), no_query), None);
        assert_eq!(entity_of(EntitySource::User, no_query), None);
    }
}
