//! End-to-end tests of the `ipi-pipeline` binary and of the pipeline files.
//!
//! One test binary, with modules:
//!
//! * `util`: an isolated temp dir per test and a command builder.
//! * `cli`: exit codes and help of the binary itself.
//! * `ingest`: the ingest command on fixtures and real logs, checked by DuckDB.
//! * `evaluate`: the evaluate and tune commands on a small synth run: AUC
//!   per attack kind, the HTML report in headless Chromium, the gate (alone
//!   and before scoring in a pipeline), and the search.
//! * `validate`: `ipi-pipeline validate` on broken pipeline files.
//! * `pipelines`: the shipped `pipelines/*.toml`, run end to end.
//! * `query`: `ipi-pipeline query` and the `query` step: every report in
//!   `sql/` against DuckDB (local and S3) and its snapshot, partition
//!   pruning, bound parameters, the read-only guard.
//! * `run`: `run`, `retry`, `plan`, `test` and `schema`: a run killed during
//!   train and resumed, every step reused on a second run, the daily job on
//!   S3, two runs racing for the lock, invalid files refused.
//! * `s3`: Parquet written through ipi-storage to the real S3-compatible test
//!   server, read back by pyarrow.
//! * `split`: the split command from and to S3, and on naive CSV times.
//! * `train`: the train command: SageMaker CSV in, model out (local and S3),
//!   refused hyperparameters.
//! * `score`: the score command: events to the scores dataset by day (local
//!   and S3), re-scoring a day, rejects, SageMaker request and response bodies.
//! * `serve`: the SageMaker-compatible endpoint over HTTP on loopback: every
//!   format, 4xx for bad input, concurrency, SIGTERM.

mod util;

mod cli;
mod evaluate;
mod ingest;
mod pipelines;
mod query;
mod run;
mod s3;
mod score;
mod serve;
mod split;
mod train;
mod validate;
