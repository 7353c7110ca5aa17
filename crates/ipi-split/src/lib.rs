//! Out-of-time train, validation and test windows of the `events`
//! dataset, for IP Insights.
//!
//! # Brief overview
//!
//! [`split`] reads the committed files of an `events` dataset with polars
//! (`timestamp`, `entity`, `ip`, `ipv4`), drops rows with a null entity or
//! a non-IPv4 address, puts every other row in a window by its UTC instant
//! (train `< train_end`, validation `[train_end + gap, validation_end)`,
//! test `>= validation_end + gap`), shuffles train with a seed, and writes
//! `train/`, `validation/`, `test/` (zstd Parquet), optionally SageMaker's
//! headerless `entity,ip` CSV, and `_manifest.json` (the [`SplitReport`]).
//!
//! Boundaries are RFC 3339 instants, local times in an IANA zone
//! (daylight saving included), or durations back from the last event; see
//! [`SplitConfig`]. Every comparison is between UTC microseconds.

mod config;
mod error;
mod report;
mod run;

pub use config::SplitConfig;
pub use error::{Error, Result};
pub use report::{Boundaries, Dropped, SplitReport, SplitStats};
pub use run::{COLUMNS, SPLITS, split};
