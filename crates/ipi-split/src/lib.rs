//! Out-of-time train, validation and test windows for IP Insights.
//!
//! # Brief overview
//!
//! [`split`] reads a committed `events` dataset, or Parquet or CSV files
//! with `timestamp`, `entity` and `ip` columns, from any `ipi-storage`
//! location (local, `s3://`, ...), with polars (remote files are staged on
//! the local disk first). It drops rows with a null entity, a non-IPv4
//! address or no usable time, puts every other row in a window by its UTC
//! instant (train `< train_end`, validation `[train_end + gap,
//! validation_end)`, test `>= validation_end + gap`), shuffles train with a
//! seed, and publishes `train/`, `validation/`, `test/` as committed
//! datasets (zstd Parquet), optionally SageMaker's headerless `entity,ip`
//! CSV, and `_manifest.json` (the [`SplitReport`]).
//!
//! Boundaries are RFC 3339 instants, local times in an IANA zone
//! (daylight saving included), or durations back from the last event; see
//! [`SplitConfig`]. Every comparison is between UTC microseconds. Input
//! times without a zone are refused unless
//! [`assume_timezone`](SplitConfig::assume_timezone) says how to read them.

mod config;
mod error;
mod input;
mod report;
mod run;
mod times;

pub use config::SplitConfig;
pub use error::{Error, Result};
pub use report::{AssumedTimezone, Boundaries, Dropped, SplitReport, SplitStats};
pub use run::{COLUMNS, SPLITS, split};
