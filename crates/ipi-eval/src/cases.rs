//! The test cases: normal test traffic against each kind of attack.
//!
//! * **Normal**: the test events of entities seen in training that no
//!   label names.
//! * **`notebook`**: as many pairs of a training entity (drawn in
//!   proportion to its training events) with a uniformly random IPv4
//!   address: the SageMaker notebook's test ([`ipi_model::metrics::random_ip_case`]).
//! * **One case per labelled attack kind** (synth's `labels`): the test
//!   events a label names (same entity, address and second), of entities
//!   seen in training. Attacks on entities never seen are counted, not
//!   scored: every pair of an unseen entity is suspicious anyway.
//! * **`all_labelled`**: every labelled attack together.

use std::collections::{BTreeMap, HashMap};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use ipi_model::Model;
use ipi_model::data::Pairs;
use ipi_storage::Location;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The name of the generated random-address case.
pub const NOTEBOOK: &str = "notebook";
/// The name of the case of every labelled attack together.
pub const ALL_LABELLED: &str = "all_labelled";

/// synth's attack kinds, in the order reports list them; other kinds follow
/// alphabetically.
const KNOWN_KINDS: [&str; 5] =
    ["random_ip", "credential_stuffing", "impossible_travel", "same_country_isp", "cgnat"];

/// Labelled attacks: `(entity, IPv4, second)` → attack kind.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    by_event: HashMap<(String, u32, i64), u16>,
    kinds: Vec<String>,
    /// Rows read.
    pub rows: u64,
    /// Rows left out: an address that is not IPv4, or a null field.
    pub skipped: u64,
}

impl Labels {
    /// From `(entity, ip, timestamp µs, attack_kind)` rows (tests, examples).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, u32, i64, &'a str)>) -> Labels {
        let mut labels = Labels::default();
        for (entity, ip, t, kind) in rows {
            labels.push(entity, ip, t, kind);
        }
        labels
    }

    fn push(&mut self, entity: &str, ip: u32, t_us: i64, kind: &str) {
        self.rows += 1;
        let k = match self.kinds.iter().position(|k| k == kind) {
            Some(k) => k,
            None => {
                self.kinds.push(kind.to_owned());
                self.kinds.len() - 1
            }
        };
        let Ok(k) = u16::try_from(k) else {
            self.skipped += 1;
            return;
        };
        self.by_event.insert((entity.to_owned(), ip, t_us.div_euclid(1_000_000)), k);
    }

    /// The kind names, in order of first appearance.
    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }
}

/// Reads synth's `labels` dataset (or any Parquet with `timestamp`,
/// `entity`, `ip` and `attack_kind`).
pub async fn read_labels(url: &str) -> Result<Labels> {
    let location = Location::parse(url)?;
    let dataset = ipi_storage::dataset::Dataset::open_or_glob(&location).await?;
    let mut labels = Labels::default();
    for file in dataset.files() {
        let bytes = ipi_storage::get_bytes(&file.location).await?;
        read_labels_file(&file.location.to_string(), bytes, &mut labels)?;
    }
    Ok(labels)
}

fn read_labels_file(file: &str, bytes: Bytes, labels: &mut Labels) -> Result<()> {
    let bad = |reason: String| Error::Input { url: file.to_owned(), reason };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| bad(e.to_string()))?
        .with_batch_size(65_536)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        read_labels_batch(&batch, labels).map_err(bad)?;
    }
    Ok(())
}

fn read_labels_batch(batch: &RecordBatch, labels: &mut Labels) -> std::result::Result<(), String> {
    use ipi_core::schema::labels::{ATTACK_KIND, ENTITY, IP, TIMESTAMP};
    let utf8 = |name: &str| -> std::result::Result<arrow_array::ArrayRef, String> {
        let column =
            batch.column_by_name(name).ok_or_else(|| format!("no `{name}` column; not labels"))?;
        arrow::compute::cast(column, &DataType::Utf8).map_err(|e| format!("column `{name}`: {e}"))
    };
    let (entity, ip, kind) = (utf8(ENTITY)?, utf8(IP)?, utf8(ATTACK_KIND)?);
    let (entity, ip, kind) =
        (entity.as_string::<i32>(), ip.as_string::<i32>(), kind.as_string::<i32>());
    let t = batch
        .column_by_name(TIMESTAMP)
        .ok_or_else(|| format!("no `{TIMESTAMP}` column; not labels"))?;
    let t =
        arrow::compute::cast(t, &DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None))
            .map_err(|e| format!("column `{TIMESTAMP}`: {e}"))?;
    let t = t.as_primitive::<TimestampMicrosecondType>();
    for i in 0..batch.num_rows() {
        let row = (
            entity.is_valid(i).then(|| entity.value(i)),
            ip.is_valid(i).then(|| ip.value(i)).and_then(|s| ipi_core::ipv4::parse(s.as_bytes())),
            t.is_valid(i).then(|| t.value(i)),
            kind.is_valid(i).then(|| kind.value(i)),
        );
        match row {
            (Some(e), Some(ip), Some(t), Some(k)) if !e.is_empty() && !k.is_empty() => {
                labels.push(e, ip, t, k)
            }
            _ => {
                labels.rows += 1;
                labels.skipped += 1;
            }
        }
    }
    Ok(())
}

/// One case: attack scores against the shared normal scores.
#[derive(Debug, Clone)]
pub struct Case {
    /// `notebook`, a labelled attack kind, or `all_labelled`.
    pub name: String,
    /// What its attacks are.
    pub description: String,
    /// Whether its attacks were generated (the notebook's) or labelled.
    pub generated: bool,
    /// The attacks' `dot_product`s.
    pub attack: Vec<f32>,
    /// For the notebook case, its own normal events' scores (the same
    /// events as [`Cases::normal`]); `None` for labelled cases.
    pub normal: Option<Vec<f32>>,
}

/// What went into the cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Test events read (IPv4, with an entity).
    pub test_events: u64,
    /// Normal test events of entities seen in training: the normal side.
    pub normal_events: u64,
    /// Normal test events of entities never seen in training (not scored).
    pub normal_unseen_entity: u64,
    /// Distinct entities among the normal events.
    pub normal_entities: u64,
    /// Test events a label names.
    pub labelled_events: u64,
    /// Of those, events of entities never seen in training (not scored).
    pub labelled_unseen_entity: u64,
    /// Labelled events of seen entities, by kind.
    pub labelled_by_kind: BTreeMap<String, u64>,
    /// Label rows read.
    pub label_rows: u64,
    /// Label rows that could not be used.
    pub label_rows_skipped: u64,
}

/// The normal side and every case.
#[derive(Debug, Clone, Default)]
pub struct Cases {
    /// Normal events' `dot_product`s.
    pub normal: Vec<f32>,
    /// Each normal event's entity, an index into `names`.
    pub normal_entity: Vec<u32>,
    /// Entity strings of the test data.
    pub names: Vec<String>,
    /// The cases, `notebook` first.
    pub cases: Vec<Case>,
    /// Counts.
    pub counts: Counts,
}

/// Builds and scores the cases. `test` must have been read with
/// [`ipi_model::data::load_with_details`] when `labels` are given.
pub fn build(
    model: &Model,
    train: &Pairs,
    test: &Pairs,
    labels: Option<&Labels>,
    seed: u64,
) -> Result<Cases> {
    let no_details = || Error::Input {
        url: test.summary.url.clone(),
        reason: "test events were read without entity names".into(),
    };
    let details = test.details.as_ref().ok_or_else(no_details)?;
    let n = test.len();
    // Each test event's label, if any.
    let mut label: Vec<Option<u16>> = vec![None; n];
    if let Some(labels) = labels {
        let mut key = (String::new(), 0u32, 0i64);
        for (i, slot) in label.iter_mut().enumerate() {
            let Some(t) = details.timestamps.get(i).copied().flatten() else { continue };
            let name = details.entity.get(i).and_then(|&e| details.names.get(e as usize));
            let Some(name) = name else { continue };
            key.0.clear();
            key.0.push_str(name);
            key.1 = test.ips[i];
            key.2 = t.div_euclid(1_000_000);
            *slot = labels.by_event.get(&key).copied();
        }
    }
    let keep: Vec<bool> = label.iter().map(Option::is_none).collect();
    let notebook = ipi_model::metrics::random_ip_case(model, train, test, Some(&keep), seed)?
        .ok_or_else(|| Error::Input {
            url: test.summary.url.clone(),
            reason: "no normal test event of an entity seen in training; nothing to evaluate"
                .into(),
        })?;

    let mut counts = Counts {
        test_events: n as u64,
        normal_events: notebook.normal.len() as u64,
        label_rows: labels.map_or(0, |l| l.rows),
        label_rows_skipped: labels.map_or(0, |l| l.skipped),
        ..Counts::default()
    };
    counts.normal_unseen_entity = keep.iter().filter(|&&k| k).count() as u64 - counts.normal_events;
    let normal_entity: Vec<u32> = notebook
        .normal_index
        .iter()
        .map(|&i| details.entity.get(i).copied().unwrap_or(0))
        .collect();
    let mut distinct = normal_entity.clone();
    distinct.sort_unstable();
    distinct.dedup();
    counts.normal_entities = distinct.len() as u64;

    let mut cases = vec![Case {
        name: NOTEBOOK.into(),
        description: "a known user from a uniformly random IPv4 address, as many as normal \
                      events (the SageMaker notebook's test)"
            .into(),
        generated: true,
        attack: notebook.attack,
        normal: Some(notebook.normal.clone()),
    }];

    if let Some(labels) = labels {
        let kinds = labels.kinds();
        let mut by_kind: Vec<(Vec<u32>, Vec<u32>)> = vec![(Vec::new(), Vec::new()); kinds.len()];
        for (i, l) in label.iter().enumerate() {
            let Some(k) = *l else { continue };
            counts.labelled_events += 1;
            let row = test.entity_rows[i];
            if !model.entity_seen(row) {
                counts.labelled_unseen_entity += 1;
                continue;
            }
            let (rows, ips) = &mut by_kind[usize::from(k)];
            rows.push(row);
            ips.push(test.ips[i]);
        }
        let mut order: Vec<usize> = (0..kinds.len()).collect();
        let rank = |k: &str| KNOWN_KINDS.iter().position(|&x| x == k).unwrap_or(KNOWN_KINDS.len());
        order.sort_by(|&a, &b| (rank(&kinds[a]), &kinds[a]).cmp(&(rank(&kinds[b]), &kinds[b])));
        let mut all = Vec::new();
        for k in order {
            let (rows, ips) = &by_kind[k];
            if rows.is_empty() {
                continue;
            }
            let scores = model.score(rows, ips)?;
            counts.labelled_by_kind.insert(kinds[k].clone(), scores.len() as u64);
            all.extend_from_slice(&scores);
            cases.push(Case {
                name: kinds[k].clone(),
                description: describe(&kinds[k]),
                generated: false,
                attack: scores,
                normal: None,
            });
        }
        if !all.is_empty() {
            cases.push(Case {
                name: ALL_LABELLED.into(),
                description: "every labelled attack in the test window".into(),
                generated: false,
                attack: all,
                normal: None,
            });
        }
    }
    Ok(Cases {
        normal: notebook.normal,
        normal_entity,
        names: details.names.clone(),
        cases,
        counts,
    })
}

/// What a labelled kind is (synth's kinds; others by name).
fn describe(kind: &str) -> String {
    match kind {
        "random_ip" => "labelled: a known user from a random network of the address table".into(),
        "credential_stuffing" => {
            "labelled: a botnet's hosting addresses against many accounts within hours".into()
        }
        "impossible_travel" => {
            "labelled: another continent minutes after one of the user's logins".into()
        }
        "same_country_isp" => {
            "labelled: another ISP of the user's own country, at the user's hours".into()
        }
        "cgnat" => "labelled: a mobile carrier's CGNAT address the user never used".into(),
        other => format!("labelled `{other}` attacks"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_key_on_entity_address_and_second() {
        let labels = Labels::from_rows([
            ("u1", 1, 5_000_000, "cgnat"),
            ("u2", 2, 6_500_000, "random_ip"),
            ("u3", 3, 7_000_000, "cgnat"),
        ]);
        assert_eq!(labels.kinds(), ["cgnat", "random_ip"]);
        assert_eq!(labels.by_event.get(&("u2".into(), 2, 6)), Some(&1));
        assert_eq!(labels.by_event.get(&("u1".into(), 1, 5)), Some(&0));
        assert_eq!(labels.by_event.get(&("u1".into(), 2, 5)), None);
        assert_eq!(labels.rows, 3);
    }
}
