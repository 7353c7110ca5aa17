//! Training and validation pairs: from the split's Parquet datasets (or any
//! Parquet with an entity and an address column) or from SageMaker's
//! headerless `entity,ip` CSV, local or in object storage.

use std::collections::{HashMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMicrosecondType, UInt32Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use ipi_storage::Location;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Column names tried for the entity, in order.
const ENTITY_COLUMNS: [&str; 2] = ["entity", "user"];
/// Column names tried for a `UInt32` address.
const IPV4_COLUMNS: [&str; 1] = ["ipv4"];
/// Column names tried for a dotted-quad address.
const IP_COLUMNS: [&str; 2] = ["ip", "ip_address"];

/// `(entity row, IPv4)` pairs, ready for training or scoring.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    /// Row of each pair's entity in the entity table.
    pub entity_rows: Vec<u32>,
    /// Each pair's address.
    pub ips: Vec<u32>,
    /// What was read.
    pub summary: DataSummary,
    /// Each pair's entity string and timestamp, when asked for
    /// ([`load_with_details`]): evaluation needs them, training does not.
    pub details: Option<PairDetails>,
}

/// Per-pair details beyond the entity row and address.
#[derive(Debug, Clone, Default)]
pub struct PairDetails {
    /// Each pair's entity, as an index into `names`.
    pub entity: Vec<u32>,
    /// The distinct entity strings, in order of first appearance.
    pub names: Vec<String>,
    /// Each pair's timestamp (µs since the epoch, UTC), when the data has one.
    pub timestamps: Vec<Option<i64>>,
}

impl Pairs {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }
}

/// A description of training data, as `model.json` records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// The URL read.
    pub url: String,
    /// Pairs kept.
    pub rows: u64,
    /// Distinct entity strings among them.
    pub entities: u64,
    /// Rows left out because the address was not IPv4 (null `ipv4`).
    pub skipped_non_ipv4: u64,
    /// Rows left out because the entity was null or empty.
    pub skipped_no_entity: u64,
    /// Earliest timestamp (RFC 3339), when the data has one.
    pub time_min: Option<String>,
    /// Latest timestamp (RFC 3339), when the data has one.
    pub time_max: Option<String>,
}

/// Reads pairs from `url`: a `.csv` file (SageMaker's headerless
/// `entity,ip`), a Parquet file, or a Parquet dataset or directory.
pub async fn load(url: &str, num_entity_vectors: u64) -> Result<Pairs> {
    read(Reader::new(url, num_entity_vectors), url).await
}

/// [`load`], also keeping each pair's entity string and timestamp
/// ([`Pairs::details`]).
pub async fn load_with_details(url: &str, num_entity_vectors: u64) -> Result<Pairs> {
    let mut reader = Reader::new(url, num_entity_vectors);
    reader.details = Some(Details::default());
    read(reader, url).await
}

async fn read(mut reader: Reader, url: &str) -> Result<Pairs> {
    let files = list(url).await?;
    if files.is_empty() {
        return Err(Error::Data(format!("{url}: no data files found")));
    }
    for file in files {
        let bytes = ipi_storage::get_bytes(&file).await?;
        if file.path().as_ref().ends_with(".csv") {
            reader.csv(&file.to_string(), &bytes)?;
        } else {
            reader.parquet(&file.to_string(), bytes)?;
        }
    }
    Ok(reader.finish())
}

/// The data files of `url`: itself when it names a file, else the files
/// of the committed dataset or directory.
async fn list(url: &str) -> Result<Vec<Location>> {
    let location = Location::parse(url)?;
    let is_file = {
        let name = location.filename().unwrap_or_default();
        name.ends_with(".csv") || name.ends_with(".parquet")
    };
    if is_file {
        return Ok(vec![location]);
    }
    let dataset = ipi_storage::dataset::Dataset::open_or_glob(&location).await?;
    Ok(dataset.files().iter().map(|f| f.location.clone()).collect())
}

struct Reader {
    url: String,
    num_entity_vectors: u64,
    pairs: Pairs,
    entities: HashSet<u64>,
    time: Option<(i64, i64)>,
    details: Option<Details>,
}

#[derive(Default)]
struct Details {
    out: PairDetails,
    index: HashMap<String, u32>,
}

impl Reader {
    fn new(url: &str, num_entity_vectors: u64) -> Reader {
        Reader {
            url: url.to_owned(),
            num_entity_vectors,
            pairs: Pairs::default(),
            entities: HashSet::new(),
            time: None,
            details: None,
        }
    }

    fn push(&mut self, entity: &str, ip: u32, timestamp: Option<i64>) {
        let hash = ipi_core::hash::entity_hash(entity);
        self.entities.insert(hash);
        self.pairs.entity_rows.push((hash % self.num_entity_vectors) as u32);
        self.pairs.ips.push(ip);
        if let Some(d) = &mut self.details {
            let next = d.out.names.len() as u32;
            let id = *d.index.entry(entity.to_owned()).or_insert(next);
            if id == next {
                d.out.names.push(entity.to_owned());
            }
            d.out.entity.push(id);
            d.out.timestamps.push(timestamp);
        }
    }

    fn csv(&mut self, file: &str, bytes: &[u8]) -> Result<()> {
        use csv_core::ReadRecordResult as R;
        let mut reader = csv_core::Reader::new();
        let mut input = bytes;
        let (mut out, mut ends) = (vec![0u8; 4096], [0usize; 8]);
        // A record can take several calls (when `out` fills up): these are
        // the output and field ends written so far.
        let (mut out_len, mut ends_len) = (0, 0);
        let mut line = 0u64;
        loop {
            let (result, read, written, ended) =
                reader.read_record(input, &mut out[out_len..], &mut ends[ends_len..]);
            input = &input[read..];
            out_len += written;
            ends_len += ended;
            match result {
                R::InputEmpty => continue,
                R::OutputFull => out.resize(out.len() * 2, 0),
                R::OutputEndsFull => {
                    return Err(Error::Data(format!(
                        "{file}:{}: more than 8 fields; expected `entity,ip`",
                        line + 1
                    )));
                }
                R::Record => {
                    line += 1;
                    self.csv_record(file, line, &out[..out_len], &ends[..ends_len])?;
                    (out_len, ends_len) = (0, 0);
                }
                R::End => return Ok(()),
            }
        }
    }

    fn csv_record(&mut self, file: &str, line: u64, out: &[u8], ends: &[usize]) -> Result<()> {
        if ends.len() == 1 && ends[0] == 0 {
            return Ok(()); // blank line
        }
        if ends.len() < 2 {
            return Err(Error::Data(format!("{file}:{line}: one field; expected `entity,ip`")));
        }
        let entity = std::str::from_utf8(&out[..ends[0]])
            .map_err(|_| Error::Data(format!("{file}:{line}: field `entity` is not UTF-8")))?;
        let ip_text = &out[ends[0]..ends[1]];
        let Some(ip) = ipi_core::ipv4::parse(ip_text) else {
            return Err(Error::Data(format!(
                "{file}:{line}: field `ip`: {:?} is not an IPv4 address",
                String::from_utf8_lossy(ip_text)
            )));
        };
        if entity.is_empty() {
            return Err(Error::Data(format!("{file}:{line}: field `entity` is empty")));
        }
        self.push(entity, ip, None);
        Ok(())
    }

    fn parquet(&mut self, file: &str, bytes: Bytes) -> Result<()> {
        let error = |e: parquet::errors::ParquetError| Error::Data(format!("{file}: {e}"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(error)?
            .with_batch_size(65_536)
            .build()
            .map_err(error)?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::Data(format!("{file}: {e}")))?;
            self.batch(file, &batch)?;
        }
        Ok(())
    }

    fn batch(&mut self, file: &str, batch: &RecordBatch) -> Result<()> {
        let column = |names: &[&str]| names.iter().find_map(|n| batch.column_by_name(n)).cloned();
        let Some(entity) = column(&ENTITY_COLUMNS) else {
            return Err(Error::Data(format!("{file}: no `entity` (or `user`) column")));
        };
        let entity = arrow::compute::cast(&entity, &DataType::Utf8)
            .map_err(|e| Error::Data(format!("{file}: column `entity`: {e}")))?;
        let entity = entity.as_string::<i32>();
        let ips: Vec<Option<u32>> = if let Some(ipv4) = column(&IPV4_COLUMNS) {
            let ipv4 = arrow::compute::cast(&ipv4, &DataType::UInt32)
                .map_err(|e| Error::Data(format!("{file}: column `ipv4`: {e}")))?;
            ipv4.as_primitive::<UInt32Type>().iter().collect()
        } else if let Some(ip) = column(&IP_COLUMNS) {
            let ip = arrow::compute::cast(&ip, &DataType::Utf8)
                .map_err(|e| Error::Data(format!("{file}: column `ip`: {e}")))?;
            ip.as_string::<i32>()
                .iter()
                .map(|t| t.and_then(|t| ipi_core::ipv4::parse(t.as_bytes())))
                .collect()
        } else {
            return Err(Error::Data(format!("{file}: no `ipv4`, `ip` or `ip_address` column")));
        };
        let ts = batch.column_by_name("timestamp");
        let ts = ts.and_then(|ts| ts.as_primitive_opt::<TimestampMicrosecondType>());
        if let Some(ts) = ts {
            for t in ts.iter().flatten() {
                self.time = Some(match self.time {
                    None => (t, t),
                    Some((lo, hi)) => (lo.min(t), hi.max(t)),
                });
            }
        }
        for (i, (entity, ip)) in entity.iter().zip(ips).enumerate() {
            match (entity, ip) {
                (None, _) | (Some(""), _) => self.pairs.summary.skipped_no_entity += 1,
                (_, None) => self.pairs.summary.skipped_non_ipv4 += 1,
                (Some(entity), Some(ip)) => {
                    let t = ts.filter(|ts| ts.is_valid(i)).map(|ts| ts.value(i));
                    self.push(entity, ip, t);
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Pairs {
        let summary = &mut self.pairs.summary;
        summary.url = self.url;
        summary.rows = self.pairs.ips.len() as u64;
        summary.entities = self.entities.len() as u64;
        let fmt = |us: i64| {
            chrono::DateTime::from_timestamp_micros(us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        };
        if let Some((lo, hi)) = self.time {
            summary.time_min = fmt(lo);
            summary.time_max = fmt(hi);
        }
        self.pairs.details = self.details.map(|d| d.out);
        self.pairs
    }
}

/// Pairs from memory (tests and examples).
pub fn from_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, u32)>,
    num_entity_vectors: u64,
) -> Pairs {
    let mut reader = Reader::new("memory", num_entity_vectors);
    for (entity, ip) in pairs {
        reader.push(entity, ip, None);
    }
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sagemaker_csv_is_read_and_bad_lines_are_named() {
        let mut r = Reader::new("x", 100);
        r.csv("train.csv", b"user_1,192.168.1.2\r\n\"user,2\",10.0.0.1\n\nuser_3,1.2.3.4").unwrap();
        let p = r.finish();
        assert_eq!(p.ips, [0xC0A8_0102, 0x0A00_0001, 0x0102_0304]);
        assert_eq!(p.entity_rows[1], (ipi_core::hash::entity_hash("user,2") % 100) as u32);
        assert_eq!(p.summary.entities, 3);

        let mut r = Reader::new("x", 100);
        let err = r.csv("train.csv", b"user_1,192.168.1.2\nuser_2,2001:db8::1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "train.csv:2: field `ip`: \"2001:db8::1\" is not an IPv4 address"
        );
        let err = Reader::new("x", 100).csv("t.csv", b"a,1.2.3.4\nonly\n").unwrap_err();
        assert_eq!(err.to_string(), "t.csv:2: one field; expected `entity,ip`");
    }
}
