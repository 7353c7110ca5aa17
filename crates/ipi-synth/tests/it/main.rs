//! Integration tests of `ipi-synth`, one binary (see STYLE.md).
//!
//! * `determinism`: same seed, same bytes, at any thread count.
//! * `ingest`: every line parses; ingest's login filter drops exactly the
//!   other lines.
//! * `labels`: labels and attack lines match one for one; normal traffic
//!   does not move with the attack rates.
//! * `sizes`: odd user counts, one user, one day, re-runs.
//! * `asn`: an ip2asn file instead of the seeded table.
//! * `offsets`: per-user zones and one server offset.
//! * `parquet`: `format = "parquet"` equals ingesting the logs.

mod asn;
mod determinism;
mod ingest;
mod labels;
mod offsets;
mod parquet;
mod sizes;
mod util;
