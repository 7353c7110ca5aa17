//! End-to-end tests of the `ipi-pipeline` binary and of the pipeline files.
//!
//! One test binary, with modules:
//!
//! * `util`: an isolated temp dir per test and a command builder.
//! * `cli`: exit codes and help of the binary itself.
//! * `ingest`: the ingest command on fixtures and real logs, checked by DuckDB.
//! * `validate`: `ipi-pipeline validate` on broken pipeline files.
//! * `pipelines`: the shipped `pipelines/*.toml`, run end to end.
//! * `s3`: Parquet written through ipi-storage to the real S3-compatible test
//!   server, read back by pyarrow.

mod util;

mod cli;
mod ingest;
mod pipelines;
mod s3;
mod validate;
