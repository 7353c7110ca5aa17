//! The versioned Arrow schemas of ipi's datasets.
//!
//! Every timestamp is a UTC instant (`Timestamp(µs, "UTC")`). Each schema
//! carries `ipi.schema` (its name) and `ipi.schema_version` in its metadata;
//! bump the version whenever a column is added, removed or retyped, and keep
//! readers able to tell the difference.
//!
//! The tables below are the contract that users, SQL reports and tests rely
//! on; `DESIGN.md` documents the same columns.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Metadata key naming the dataset a schema belongs to.
pub const SCHEMA_NAME_KEY: &str = "ipi.schema";
/// Metadata key holding the schema's version.
pub const SCHEMA_VERSION_KEY: &str = "ipi.schema_version";
/// The Hive partition column of `events`, `labels` and `scores`.
pub const PARTITION_COLUMN: &str = "date";

/// The timestamp type of every dataset: microseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn versioned(name: &str, version: u32, fields: Vec<Field>) -> SchemaRef {
    let metadata = HashMap::from([
        (SCHEMA_NAME_KEY.to_owned(), name.to_owned()),
        (SCHEMA_VERSION_KEY.to_owned(), version.to_string()),
    ]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// Column names of the `events` dataset.
pub mod events {
    pub const TIMESTAMP: &str = "timestamp";
    pub const TZ_OFFSET_MINUTES: &str = "tz_offset_minutes";
    pub const ENTITY: &str = "entity";
    pub const IP: &str = "ip";
    pub const IPV4: &str = "ipv4";
    pub const METHOD: &str = "method";
    pub const PATH: &str = "path";
    pub const PROTOCOL: &str = "protocol";
    pub const STATUS: &str = "status";
    pub const BYTES: &str = "bytes";
    pub const REFERER: &str = "referer";
    pub const USER_AGENT: &str = "user_agent";
    pub const VHOST: &str = "vhost";
    pub const FORWARDED_FOR: &str = "forwarded_for";
    pub const SOURCE: &str = "source";
    pub const LINE: &str = "line";
    /// Version of [`super::events_schema`].
    pub const VERSION: u32 = 1;

    /// How writers encode these columns, wherever they are written (the
    /// events dataset, and the scores dataset, which carries them on).
    /// Nearly unique columns get no dictionary: interning them costs time
    /// and saves nothing.
    pub const PLAIN: [&str; 2] = [IPV4, BYTES];
    /// Nearly unique text written `DELTA_LENGTH_BYTE_ARRAY` (no dictionary):
    /// zstd then sees the addresses without a length before each, which
    /// halves its time on them and saves a fifth of the space.
    pub const DELTA_LENGTH: [&str; 1] = [IP];
    /// Integer columns written `DELTA_BINARY_PACKED`: those that grow almost
    /// in step (time, line numbers), and the offset and status, which are
    /// the same row after row in most logs (a run packs to no bits a value).
    /// Against a dictionary, that saved 3% of a `--keep=` ingest's time (no
    /// value hashed); on a real log of mixed statuses `status` took 0.29
    /// rather than 0.15 bytes a row, 0.6% more in all.
    pub const DELTA: [&str; 4] = [TIMESTAMP, TZ_OFFSET_MINUTES, STATUS, LINE];
    /// Columns zstd cannot shrink, written uncompressed: addresses as
    /// integers, and the delta-packed columns. On a day of the 10,000-user
    /// log zstd took `timestamp` from 1.49 to 1.43 MB, `ipv4` from 1.25 to
    /// 1.25 MB and `line` from 0.24 to 0.21 MB.
    pub const UNCOMPRESSED: [&str; 3] = [TIMESTAMP, IPV4, LINE];
    /// Columns without min/max statistics: readers prune by time, entity,
    /// address (`ipv4`) and status, never by free text, whose statistics
    /// mean comparing every value. Nor by `ip`: the text order of addresses
    /// means nothing (`"10.0.0.1" < "9.0.0.1"`), and `ipv4` has the order.
    pub const NO_STATISTICS: [&str; 11] = [
        IP,
        METHOD,
        PATH,
        PROTOCOL,
        REFERER,
        USER_AGENT,
        VHOST,
        FORWARDED_FOR,
        SOURCE,
        LINE,
        BYTES,
    ];
}

/// One parsed access-log line, partitioned `date=YYYY-MM-DD/` by UTC date.
///
/// | column | type | null when |
/// |---|---|---|
/// | `timestamp` | Timestamp(µs, UTC) | never |
/// | `tz_offset_minutes` | Int16 | never (the offset the line carried) |
/// | `entity` | Utf8 | the log had `-` |
/// | `ip` | Utf8 | never (as written) |
/// | `ipv4` | UInt32 | `ip` is not IPv4 |
/// | `method`, `path`, `protocol` | Utf8 | the request was empty or malformed |
/// | `status` | UInt16 | the input was a table without a status column |
/// | `bytes` | UInt64 | the log had `-` |
/// | `referer`, `user_agent` | Utf8 | the log had `-` or no such field |
/// | `vhost` | Utf8 | the line had no virtual host (`%v:%p`) |
/// | `forwarded_for` | Utf8 | the client field was one address, not a forwarded list |
/// | `source` | Utf8 | never (file or object it came from) |
/// | `line` | UInt64 | never (1-based line number in `source`) |
pub fn events_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        use events::*;
        versioned(
            "events",
            VERSION,
            vec![
                Field::new(TIMESTAMP, timestamp_type(), false),
                Field::new(TZ_OFFSET_MINUTES, DataType::Int16, false),
                Field::new(ENTITY, DataType::Utf8, true),
                Field::new(IP, DataType::Utf8, false),
                Field::new(IPV4, DataType::UInt32, true),
                Field::new(METHOD, DataType::Utf8, true),
                Field::new(PATH, DataType::Utf8, true),
                Field::new(PROTOCOL, DataType::Utf8, true),
                Field::new(STATUS, DataType::UInt16, true),
                Field::new(BYTES, DataType::UInt64, true),
                Field::new(REFERER, DataType::Utf8, true),
                Field::new(USER_AGENT, DataType::Utf8, true),
                Field::new(VHOST, DataType::Utf8, true),
                Field::new(FORWARDED_FOR, DataType::Utf8, true),
                Field::new(SOURCE, DataType::Utf8, false),
                Field::new(LINE, DataType::UInt64, false),
            ],
        )
    });
    SCHEMA.clone()
}

/// Column names of the `rejects` dataset.
pub mod rejects {
    pub const SOURCE: &str = "source";
    pub const LINE: &str = "line";
    pub const REASON: &str = "reason";
    pub const RAW: &str = "raw";
    /// Version of [`super::rejects_schema`].
    pub const VERSION: u32 = 1;
}

/// A record that a step could not use, kept whole with the reason
/// (`<output>/_rejects/`). `raw` holds the original bytes, so nothing is
/// lost even when they are not UTF-8.
pub fn rejects_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        use rejects::*;
        versioned(
            "rejects",
            VERSION,
            vec![
                Field::new(SOURCE, DataType::Utf8, false),
                Field::new(LINE, DataType::UInt64, false),
                Field::new(REASON, DataType::Utf8, false),
                Field::new(RAW, DataType::Binary, false),
            ],
        )
    });
    SCHEMA.clone()
}

/// Column names of the `labels` dataset.
pub mod labels {
    pub const TIMESTAMP: &str = "timestamp";
    pub const ENTITY: &str = "entity";
    pub const IP: &str = "ip";
    pub const ATTACK_KIND: &str = "attack_kind";
    /// Version of [`super::labels_schema`].
    pub const VERSION: u32 = 1;
}

/// Ground truth written by `synth`: one row per injected attack event.
/// `attack_kind` is one of `random_ip`, `credential_stuffing`,
/// `impossible_travel`, `same_country_isp`, `cgnat`, ...
pub fn labels_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        use labels::*;
        versioned(
            "labels",
            VERSION,
            vec![
                Field::new(TIMESTAMP, timestamp_type(), false),
                Field::new(ENTITY, DataType::Utf8, false),
                Field::new(IP, DataType::Utf8, false),
                Field::new(ATTACK_KIND, DataType::Utf8, false),
            ],
        )
    });
    SCHEMA.clone()
}

/// Column names that `scores` adds to its input's columns.
pub mod scores {
    pub const DOT_PRODUCT: &str = "dot_product";
    pub const ANOMALY_SCORE: &str = "anomaly_score";
    pub const ENTITY_SEEN: &str = "entity_seen";
    pub const FLAGGED: &str = "flagged";
    pub const MODEL_ID: &str = "model_id";
    pub const ENTITY_EMBEDDING: &str = "entity_embedding";
    pub const IP_EMBEDDING: &str = "ip_embedding";
    /// Version of [`super::scores_schema`].
    pub const VERSION: u32 = 1;

    /// Score columns written without a dictionary (see [`super::events::PLAIN`]):
    /// every score is different.
    pub const PLAIN: [&str; 2] = [DOT_PRODUCT, ANOMALY_SCORE];
}

/// The schema of scores for an input with schema `input`: the input's
/// columns, then `dot_product` (SageMaker's output; higher is more normal),
/// `anomaly_score` (= −dot_product), `entity_seen`, `flagged` (null when no
/// threshold was given) and `model_id`. With `embedding_dim`, also the
/// verbose `entity_embedding` and `ip_embedding` vectors.
pub fn scores_schema(input: &Schema, embedding_dim: Option<i32>) -> SchemaRef {
    use scores::*;
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend([
        Field::new(DOT_PRODUCT, DataType::Float32, false),
        Field::new(ANOMALY_SCORE, DataType::Float32, false),
        Field::new(ENTITY_SEEN, DataType::Boolean, false),
        Field::new(FLAGGED, DataType::Boolean, true),
        Field::new(MODEL_ID, DataType::Utf8, false),
    ]);
    if let Some(dim) = embedding_dim {
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        for name in [ENTITY_EMBEDDING, IP_EMBEDDING] {
            fields.push(Field::new(name, DataType::FixedSizeList(item.clone(), dim), false));
        }
    }
    versioned("scores", VERSION, fields)
}

/// The dataset name and version recorded in a schema's metadata, if any.
pub fn identify(schema: &Schema) -> Option<(&str, u32)> {
    let name = schema.metadata().get(SCHEMA_NAME_KEY)?;
    let version = schema.metadata().get(SCHEMA_VERSION_KEY)?.parse().ok()?;
    Some((name.as_str(), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_identifies_itself() {
        assert_eq!(identify(&events_schema()), Some(("events", 1)));
        assert_eq!(identify(&rejects_schema()), Some(("rejects", 1)));
        assert_eq!(identify(&labels_schema()), Some(("labels", 1)));
        let scores = scores_schema(&labels_schema(), None);
        assert_eq!(identify(&scores), Some(("scores", 1)));
    }

    #[test]
    fn timestamps_are_utc_microseconds() {
        for schema in [events_schema(), labels_schema()] {
            let field = schema.field_with_name("timestamp").unwrap();
            assert_eq!(field.data_type(), &timestamp_type());
        }
    }

    #[test]
    fn scores_keep_input_columns_and_add_their_own() {
        let events = events_schema();
        let scores = scores_schema(&events, Some(16));
        let names: Vec<&str> = scores.fields().iter().map(|f| f.name().as_str()).collect();
        let input: Vec<&str> = events.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(&names[..input.len()], input.as_slice());
        assert_eq!(
            &names[input.len()..],
            [
                "dot_product",
                "anomaly_score",
                "entity_seen",
                "flagged",
                "model_id",
                "entity_embedding",
                "ip_embedding"
            ]
        );
    }
}
