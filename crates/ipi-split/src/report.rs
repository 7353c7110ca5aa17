//! `SplitReport`: what a split did, for people (`to_table`) and machines
//! (`_manifest.json`).

use serde::Serialize;

/// One window's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SplitStats {
    /// Rows written.
    pub rows: u64,
    /// Distinct entities.
    pub entities: u64,
    /// Distinct `ip` strings.
    pub distinct_ips: u64,
    /// The earliest event (RFC 3339, UTC); `None` when empty.
    pub min_timestamp: Option<String>,
    /// The latest event (RFC 3339, UTC); `None` when empty.
    pub max_timestamp: Option<String>,
    /// Distinct entities of this window that train lacks (before any
    /// `drop_unseen_entities`); 0 for train.
    pub unseen_entities: u64,
    /// `unseen_entities / entities` (0 when empty).
    pub unseen_entity_share: f64,
    /// Rows whose entity train lacks (before any `drop_unseen_entities`).
    pub unseen_entity_rows: u64,
    /// Files written, relative to the output: the dataset's Parquet file
    /// (`train/part-<commit>-00000.parquet`) and, with `sagemaker_csv`,
    /// `<split>.csv`.
    pub files: Vec<String>,
    /// The commit of the dataset `<split>/` (its `_ipi_dataset.json`).
    pub commit: String,
}

/// Rows left out, by reason; each row counts once, under the first reason
/// that applies in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// `entity` was null (the log had `-`).
    pub null_entity: u64,
    /// `ipv4` was null: the address is not IPv4.
    pub non_ipv4: u64,
    /// The time was missing or unreadable, or, read in `assume_timezone`,
    /// one that a daylight-saving change skips.
    pub bad_timestamp: u64,
    /// The event fell in a `gap` between windows.
    pub gap: u64,
    /// Validation or test rows of entities unseen in train, with
    /// `drop_unseen_entities`.
    pub unseen_entity: u64,
}

/// How naive input times were read, with `assume_timezone`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AssumedTimezone {
    /// The zone or offset (`America/New_York`, `+05:30`).
    pub zone: String,
    /// Rows whose time had no zone and was read in this one.
    pub naive_rows: u64,
    /// Of those, times the zone repeats when its clocks go back: each was
    /// read as the earlier instant.
    pub ambiguous_rows: u64,
    /// Of those, times the zone skips when its clocks go forward: dropped
    /// (counted in `dropped.bad_timestamp`).
    pub skipped_rows: u64,
}

/// The windows as UTC instants (RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Boundaries {
    /// Train is before this.
    pub train_end: String,
    /// Validation starts here.
    pub validation_start: String,
    /// Validation ends before this.
    pub validation_end: String,
    /// Test starts here.
    pub test_start: String,
}

/// What a split did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SplitReport {
    /// Rows read.
    pub input_rows: u64,
    /// Files read.
    pub input_files: u64,
    /// `parquet` or `csv`.
    pub input_format: String,
    /// The windows.
    pub boundaries: Boundaries,
    /// Training window (shuffled).
    pub train: SplitStats,
    /// Validation window (in input order).
    pub validation: SplitStats,
    /// Test window (in input order).
    pub test: SplitStats,
    /// Rows left out.
    pub dropped: Dropped,
    /// How naive input times were read; `None` without `assume_timezone`.
    pub assumed_timezone: Option<AssumedTimezone>,
    /// `max(train) < min(validation) <= max(validation) < min(test)`, over
    /// the windows that have rows; always true (a split that fails it is
    /// an error).
    pub leakage_check_passed: bool,
    /// The shuffle seed.
    pub seed: u64,
    /// Wall time.
    pub seconds: f64,
}

impl SplitReport {
    /// A short human summary.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "{:<11} {:>12} {:>10} {:>12} {:>8}  {:<25} {:<25}\n",
            "split", "rows", "entities", "ips", "unseen", "from", "to"
        );
        for (name, s) in
            [("train", &self.train), ("validation", &self.validation), ("test", &self.test)]
        {
            out += &format!(
                "{:<11} {:>12} {:>10} {:>12} {:>7.2}%  {:<25} {:<25}\n",
                name,
                s.rows,
                s.entities,
                s.distinct_ips,
                100.0 * s.unseen_entity_share,
                s.min_timestamp.as_deref().unwrap_or("-"),
                s.max_timestamp.as_deref().unwrap_or("-"),
            );
        }
        let d = &self.dropped;
        out += &format!(
            "boundaries: train < {} <= validation < {} <= test (validation from {}, test from {})\n\
             input {} rows; dropped: null entity {}, non-IPv4 {}, bad timestamp {}, gap {}, unseen entity {}\n\
             leakage check {}; {:.2} s\n",
            self.boundaries.train_end,
            self.boundaries.validation_end,
            self.boundaries.validation_start,
            self.boundaries.test_start,
            self.input_rows,
            d.null_entity,
            d.non_ipv4,
            d.bad_timestamp,
            d.gap,
            d.unseen_entity,
            if self.leakage_check_passed { "passed" } else { "FAILED" },
            self.seconds,
        );
        if let Some(a) = &self.assumed_timezone {
            out += &format!(
                "naive times read in {}: {} rows ({} repeated by a DST change, read as the earlier instant; {} skipped by one, dropped)\n",
                a.zone, a.naive_rows, a.ambiguous_rows, a.skipped_rows
            );
        }
        out
    }
}
