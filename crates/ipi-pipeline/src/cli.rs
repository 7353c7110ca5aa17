//! The command line, as clap sees it (the "low-level" arguments).
//!
//! Each subcommand's arguments are turned into a validated plan in
//! [`crate::commands`] before anything runs, as ripgrep's `lowargs` become
//! `hiargs`. Runtime behaviour (logging, progress) lives in flags; what a
//! pipeline does lives in its file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipi_ingest::FormatName;

const ABOUT: &str = "IP Insights on Arrow and Parquet: learn which IPv4 addresses each \
entity normally uses, and score every new (entity, IP) event.";

const AFTER_HELP: &str = "\
Examples:
  Run the daily job on the built-in defaults (local storage, no network):
    ipi-pipeline run pipelines/daily.toml

  Run it for a given day, against S3-compatible storage:
    AWS_ENDPOINT_URL=https://minio.internal:9000 \\
    ipi-pipeline run pipelines/daily.toml --param date=2018-11-12 --param store=s3://ipi/prod

  Check a pipeline file without running it (exit 78 when invalid):
    ipi-pipeline validate pipelines/daily.toml

  Draw the step graph:
    ipi-pipeline graph pipelines/daily.toml | dot -Tsvg > daily.svg

Exit codes: 0 ok, 1 a step failed, 2 usage error, 78 invalid configuration.
Logs go to stderr; set IPI_LOG (e.g. IPI_LOG=ipi_storage=debug) for finer control.";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(name = "ipi-pipeline", version, about = ABOUT, after_help = AFTER_HELP)]
#[command(rename_all = "kebab-case", propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format on stderr: `human` on a terminal, `json` for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "IPI_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// More detail in the logs (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Never draw progress bars, even on a terminal (or set IPI_NO_PROGRESS=1).
    #[arg(long, global = true, env = "IPI_NO_PROGRESS", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_progress: bool,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Compact lines for people.
    Human,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[command(rename_all = "kebab-case")]
pub enum Command {
    /// Run a pipeline file: every step, in dependency order, reusing what is already done.
    #[command(after_help = "\
A step whose config, input versions and code match an earlier successful run (within its
`cache.expire_after`; keys in `cache.ignore` left out), and whose outputs are still as that
run left them, is not run again: its result is reused. Outputs are committed atomically.
Each run takes a lock in the store (STORE/runs/_locks/PIPELINE/DATE/), so two runs of the
same pipeline and date never overlap: the second exits 75 and says who holds it. A run that
takes over the lock of one that died marks that run failed. Everything is recorded in
STORE/runs/RUN_ID/manifest.json (STORE is the pipeline's `store` param), also when a run
fails; `ipi-pipeline retry RUN_ID` resumes a failed run.

Examples:
  ipi-pipeline run pipelines/daily.toml
  ipi-pipeline run pipelines/daily.toml --param date=2018-11-12
  ipi-pipeline run pipelines/daily.toml --param store=s3://security-ml/ipi
  ipi-pipeline run pipelines/daily.toml --only train      # just train, on the last split
  ipi-pipeline run pipelines/daily.toml --force           # reuse nothing")]
    Run(RunArgs),
    /// Show what `run` would do: params, step order, outputs, cache hits and misses and why.
    #[command(after_help = "\
Writes nothing (it reads the store to version inputs and find earlier runs).

Examples:
  ipi-pipeline plan pipelines/daily.toml
  ipi-pipeline plan pipelines/daily.toml --param date=2018-11-12 --json")]
    Plan(PlanArgs),
    /// Resume a failed run: same file, same params; steps that succeeded are not run again.
    #[command(after_help = "\
The run's manifest (STORE/runs/RUN_ID/manifest.json) holds the pipeline file as it was
run and its params (dates resolved), so a retry does exactly what the run was doing. Steps
that succeeded (or were reused) are kept; the failed step and those after it run.

Examples:
  ipi-pipeline retry 20181113T023000Z-1a2b3c4d
  ipi-pipeline retry 20181113T023000Z-1a2b3c4d --store s3://security-ml/ipi")]
    Retry(RetryArgs),
    /// List the runs a store keeps, newest first, or show one run's steps.
    #[command(after_help = "\
Each run leaves STORE/runs/RUN_ID/manifest.json behind, also when it failed or was killed.
The list shows each run's pipeline, status (and the step that failed), start, duration and
params; with a RUN_ID, that run's steps as `run` printed them, and its error.

Examples:
  ipi-pipeline runs                                  # the last 20 runs in var/ipi
  ipi-pipeline runs --failed --pipeline daily        # what needs a retry
  ipi-pipeline runs 20181113T023000Z-1a2b3c4d        # one run's steps
  ipi-pipeline runs --store s3://security-ml/ipi --json --limit 100")]
    Runs(RunsArgs),
    /// Run the `[[tests]]` of pipeline files: one step each, on given input lines or rows.
    #[command(after_help = "\
Exits 0 when every test passes, 1 when one fails, 78 when a file is invalid.

Example:
  ipi-pipeline test pipelines/*.toml")]
    Test(TestArgs),
    /// Print the JSON Schema of pipeline files, for editor completion.
    #[command(after_help = "\
Example (VS Code with Even Better TOML, or taplo):
  ipi-pipeline schema > .ipi-pipeline.schema.json
  # then in a pipeline file's first line:  #:schema ./.ipi-pipeline.schema.json")]
    Schema,
    /// Check a pipeline file and report every problem at once, with line and column.
    #[command(after_help = "\
Exits 0 when the file is valid and 78 when it is not, printing one line per problem:
  pipelines/daily.toml:12:1: step `ingest`: unknown key `fromat`

Examples:
  ipi-pipeline validate pipelines/daily.toml
  ipi-pipeline validate pipelines/*.toml")]
    Validate(ValidateArgs),
    /// Print the step graph of a pipeline file in Graphviz DOT.
    #[command(
        after_help = "Example:\n  ipi-pipeline graph pipelines/daily.toml | dot -Tsvg > daily.svg"
    )]
    Graph(PipelineArgs),
    /// List the step kinds a pipeline file can `uses`, with what each exposes.
    Steps,
    /// Parse Apache/Nginx access logs into the events dataset (Parquet, by UTC date).
    #[command(after_help = "\
Every line is accounted for: lines = rows + filtered + rejected, per input. Rejected lines
are kept whole, with the reason, in OUTPUT/_rejects/.

Examples:
  ipi-pipeline ingest /var/log/apache2/access.log* --output var/ipi/events
  ipi-pipeline ingest 's3://logs/2018-11-*/*.gz' --output s3://ipi/events \\
      --method GET --path-prefix /login_success --status 200
  ipi-pipeline ingest big.log --output events --max-reject-ratio 0.001 --json
  ipi-pipeline ingest app.log --output events --entity-param userId --keep ''
  ipi-pipeline ingest train.csv --format sagemaker_csv --default-timestamp 2018-11-12T00:00:00Z \\
      --output events")]
    Ingest(IngestArgs),
    /// Synthesise seeded login logs with labelled attacks (logs + labels/ Parquet).
    #[command(after_help = "\
The same seed and flags give byte-identical output at any thread count. Attack rates are
attack logins per 1,000 normal logins; every attack is also a row of OUTPUT/labels/.

Examples:
  ipi-pipeline synth --users 10000 --days 10 --seed 1 --output var/ipi/synth
  ipi-pipeline synth --users 1000 --days 3 --seed 7 --output demo --gzip --server-offset +0000
  ipi-pipeline synth --users 500 --days 10 --seed 1 --output demo --random-ip 0 --cgnat 5
  ipi-pipeline synth --users 10000 --days 10 --seed 1 --output s3://bucket/synth --format parquet")]
    Synth(SynthArgs),
    /// Cut events into out-of-time train, validation and test sets (UTC instants).
    #[command(after_help = "\
Windows are half-open: train < train_end <= validation < validation_end <= test.
Every comparison is on UTC instants, whatever offset each log line was written in.
Input times without a zone (CSV text, naive Parquet timestamps) are refused unless
--assume-timezone says how to read them. train/, validation/ and test/ are committed
datasets (_ipi_dataset.json); a re-run replaces them.

Examples:
  ipi-pipeline split --input var/ipi/events --output var/ipi/splits --validation 1d --test 2d
  ipi-pipeline split --input events --output splits \\
      --train-end 2018-11-11T00:00:00Z --validation-end 2018-11-12T00:00:00-08:00
  ipi-pipeline split --input events --output splits --timezone America/New_York \\
      --train-end 2018-11-11 --validation-end 2018-11-12 --sagemaker-csv
  ipi-pipeline split --input s3://ipi/events --output s3://ipi/splits/2018-11-13 --validation 1d --test 1d
  ipi-pipeline split --input logins.csv --assume-timezone Asia/Kolkata --output splits \\
      --validation 1d --test 1d")]
    Split(SplitArgs),
    /// Train the IP Insights model on (entity, IP) pairs; writes model.safetensors + model.json.
    #[command(after_help = "\
Hyperparameters carry SageMaker's names, defaults and ranges; a value out of range is refused
with the allowed range. Training data is the split's train/ dataset, any Parquet with entity
and ip (or ipv4) columns, or SageMaker's headerless entity,ip CSV, local or s3://. With
--validation, validation:discriminator_auc (one random-address negative per positive) is
reported after every epoch. MODEL/model.json records the hyperparameters, the data, and the
metrics of every epoch; the model is written atomically and a re-run replaces it.

Examples:
  ipi-pipeline train --train var/ipi/splits/2018-11-13/train \\
      --validation var/ipi/splits/2018-11-13/validation --model var/ipi/model
  ipi-pipeline train --train train.csv --model model --num-entity-vectors 20000 --vector-dim 128 \\
      --epochs 5 --mini-batch-size 1000 --learning-rate 0.01 --random-negative-sampling-rate 5
  ipi-pipeline train --train s3://ipi/splits/latest/train --model s3://ipi/models/latest --device cuda")]
    Train(TrainArgs),
    /// Score events (or SageMaker request bodies) with a model: the scores dataset, by UTC day.
    #[command(after_help = "\
Reads the events dataset, a day of it (events/date=YYYY-MM-DD), Parquet with entity and
ipv4 (or ip) columns, or SageMaker request bodies (text/csv entity,ip lines, application/json
{\"instances\":[...]}, application/jsonlines), local or s3://. Writes the scores dataset
(the input's columns plus dot_product, anomaly_score, entity_seen, flagged, model_id),
partitioned date=YYYY-MM-DD/; re-scoring a day replaces it. Rows that cannot be scored go to
OUTPUT/_rejects/ with their reason. With --accept, writes SageMaker's response bodies instead.

Examples:
  ipi-pipeline score --model var/ipi/models/2018-11-13 --input var/ipi/events/date=2018-11-13 \\
      --output var/ipi/scores --threshold 2.5
  ipi-pipeline score --model s3://ipi/models/latest --input s3://ipi/requests/ --output out \\
      --content-type text/csv --accept application/jsonlines --embeddings")]
    Score(ScoreArgs),
    /// Serve a model as a SageMaker-compatible HTTP endpoint (GET /ping, POST /invocations).
    #[command(after_help = "\
Loads the model once and answers SageMaker's real-time inference requests on --listen:
GET /ping is 200 once the model is loaded; POST /invocations takes a body of Content-Type
text/csv (entity,ip lines), application/json ({\"instances\":[...]}) or application/jsonlines,
and answers in the Accept format: application/json ({\"predictions\":[{\"dot_product\":...}]},
the default), application/jsonlines, or either with \"; verbose=True\" for ip_embedding and
entity_embedding. A higher dot_product means a more usual (entity, IP) pair.

Bad input gets a 4xx with a message, never a 500: 413 for a body over --max-body-bytes,
415 for another Content-Type, 406 for another Accept, 400 for a body that cannot be read or a
pair that cannot be scored (an empty entity, or an address that is not IPv4, IPv6 included),
naming its line or instance. The whole request is refused then, since replies are positional.
SIGTERM or Ctrl-C finishes the requests in flight and exits 0. Request bodies are never logged.

Examples:
  ipi-pipeline serve --model var/ipi/models/latest
  ipi-pipeline serve --model s3://ipi/models/latest --listen 0.0.0.0:8080 --max-body-bytes 1048576
  curl -s localhost:8080/ping
  curl -s localhost:8080/invocations -H 'Content-Type: text/csv' \\
      --data-binary $'user_1,192.168.1.2\\nuser_2,10.10.1.2\\n'
  curl -s localhost:8080/invocations -H 'Content-Type: application/json' \\
      -H 'Accept: application/json; verbose=True' \\
      -d '{\"instances\":[{\"features\":[\"user_1\",\"192.168.1.2\"]}]}'")]
    Serve(ServeArgs),
    /// Point a models folder's latest.json at a model: score and serve then load the folder.
    #[command(after_help = "\
The daily pipeline promotes its model every morning once it passed its checks, with the
threshold its evaluate step chose; a model that failed them is never promoted, so the
nightly scoring keeps the last good one. Scoring with the folder flags at the promoted
threshold unless given --threshold. The model is loaded (and its tensors checked against
its card) before the pointer is replaced, atomically.

Examples:
  ipi-pipeline promote --model var/ipi/models/2018-11-13 --to var/ipi/models --threshold 3.4
  ipi-pipeline score --model var/ipi/models --input var/ipi/events/date=2018-11-14 \\
      --output var/ipi/scores")]
    Promote(PromoteArgs),
    /// Measure a model per attack kind; choose a threshold; write report.html and report.json.
    #[command(after_help = "\
Normal test events of entities seen in training are set against the SageMaker notebook's
attacks (a known user from a uniformly random address, as many as normal events) and, with
--labels (synth's labels/), against every labelled attack kind separately. Reports AUC, ROC,
and precision, recall and FPR by threshold on anomaly_score (= -dot_product; flagged when
above), the threshold for --target-fpr and for --target-recall, and per-entity percentiles.
Writes OUTPUT/report.html (self-contained), report.json, entities.csv and plots/*.svg|png.
With --min-auc, exits 1 (after writing the report) when the notebook case's AUC is lower.

Examples:
  ipi-pipeline evaluate --model var/ipi/models/2018-11-13 --train var/ipi/splits/2018-11-13/train \\
      --test var/ipi/splits/2018-11-13/test --labels var/ipi/demo/labels --output var/ipi/eval
  ipi-pipeline evaluate --model m --train s/train --test s/test --output eval --target-fpr 0.005 \\
      --min-auc 0.9 --min-auc-case credential_stuffing=0.95 --json")]
    Evaluate(EvaluateArgs),
    /// Search hyperparameters within SageMaker's recommended ranges by validation AUC.
    #[command(after_help = "\
Trial 1 trains with the base hyperparameters as given (the train flags below, SageMaker's
defaults otherwise); the other trials draw vector_dim (8-256), learning_rate (1e-4-0.1),
num_ip_encoder_layers (1-3), random_negative_sampling_rate (1-10: without random-address
negatives a model cannot tell a foreign address, so 0 is searched only with --space
random_negative_sampling_rate=0..10) and shuffled_negative_sampling_rate (0-10) at random,
log-uniform where a range spans 10x or more. The objective is the last epoch's
validation:discriminator_auc; the winner (ties to the earlier trial, so never worse than trial 1)
is written to OUTPUT/model and, with --test, measured once on test. Writes OUTPUT/trials.csv
and OUTPUT/tune.json, and prints the table of trials.

Examples:
  ipi-pipeline tune --train var/ipi/splits/2018-11-13/train \\
      --validation var/ipi/splits/2018-11-13/validation --test var/ipi/splits/2018-11-13/test \\
      --output var/ipi/tune --trials 8 --num-entity-vectors 20000 --epochs 2
  ipi-pipeline tune --train t --validation v --output o --space learning_rate=0.001..0.05 \\
      --space epochs=1..5 --fixed num_ip_encoder_layers")]
    Tune(TuneArgs),
    /// Run SQL over the store's datasets (events, scores, labels, train, validation, test).
    #[command(after_help = "\
Tables are the store's committed datasets, registered where they exist: events, scores and
labels (or demo/labels), and train, validation and test from splits/ (the latest day).
Partition folders are columns (date, a DATE), and a filter on date reads only those days'
files. $name placeholders are bound to --param values (typed as the query uses them), never
pasted into the text; a report declares its own with `-- @param NAME [= DEFAULT]` lines.
Queries are read-only unless --allow-write (no CREATE, INSERT, COPY or SET). Mistakes exit 2
and point at the line and column. SHOW TABLES and DESCRIBE scores list what there is.

Examples:
  ipi-pipeline query sql/daily_flagged.sql --param date=2018-11-12
  ipi-pipeline query -e \"SELECT date, count(*) FROM scores GROUP BY date ORDER BY date\"
  ipi-pipeline query --store s3://security-ml/ipi sql/top_anomalous_entities.sql \\
      --param date=2018-11-12 --format csv --output s3://security-ml/reports/top.csv
  ipi-pipeline query sql/score_shift.sql --param date=2018-11-12 --param min_shift=2 --format json
  ipi-pipeline query -e \"SELECT * FROM t\" --table t=s3://bucket/other/dataset --output t.parquet")]
    Query(QueryArgs),
}

/// `ipi-pipeline evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The model folder (model.safetensors + model.json), path or s3://.
    #[arg(long, value_name = "URL")]
    pub model: String,
    /// Training pairs (the split's train/): known entities, and who the generated attacks pose as.
    #[arg(long, value_name = "URL")]
    pub train: String,
    /// Test events (the split's test/).
    #[arg(long, value_name = "URL")]
    pub test: String,
    /// synth's labels dataset: labelled test events are attacks of their kind.
    #[arg(long, value_name = "URL")]
    pub labels: Option<String>,
    /// Where report.html, report.json, entities.csv and plots/ go.
    #[arg(long, value_name = "URL")]
    pub output: String,
    /// Choose the threshold that flags at most this share of normal events.
    #[arg(long, value_name = "FPR", default_value_t = 0.01)]
    pub target_fpr: f64,
    /// Also find the threshold that catches this share of attacks.
    #[arg(long, value_name = "RECALL", default_value_t = 0.95)]
    pub target_recall: f64,
    /// The case --target-recall is about (default: all_labelled, or notebook without labels).
    #[arg(long, value_name = "CASE")]
    pub recall_case: Option<String>,
    /// Which target's threshold is the chosen one.
    #[arg(long, value_enum, default_value_t = ChooseArg::Fpr)]
    pub choose: ChooseArg,
    /// Exit 1 when the notebook case's AUC is below this.
    #[arg(long, value_name = "AUC")]
    pub min_auc: Option<f64>,
    /// Exit 1 when a case's AUC is below a floor: CASE=AUC (repeatable).
    #[arg(long, value_name = "CASE=AUC", value_parser = parse_key_value)]
    pub min_auc_case: Vec<(String, String)>,
    /// Seed of the random-address attacks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run the IP encoder on this device (cpu, cuda, cuda:N).
    #[arg(long)]
    pub device: Option<String>,
    /// Print report.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Which target chooses the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChooseArg {
    /// --target-fpr.
    Fpr,
    /// --target-recall.
    Recall,
}

/// `ipi-pipeline tune`.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Training pairs: the split's train/, Parquet, or SageMaker entity,ip CSV.
    #[arg(long, value_name = "URL")]
    pub train: String,
    /// Validation pairs: the objective is validation:discriminator_auc on them.
    #[arg(long, value_name = "URL")]
    pub validation: String,
    /// Test pairs: the winner's random-address test AUC is measured once.
    #[arg(long, value_name = "URL")]
    pub test: Option<String>,
    /// Where trials.csv, tune.json and the winner's model/ go.
    #[arg(long, value_name = "URL")]
    pub output: String,
    /// Trials, the base hyperparameters included.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub trials: usize,
    /// Trials at once (default: one per core, cores shared out).
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Search NAME within LO..HI instead of its default range (repeatable).
    #[arg(long, value_name = "NAME=LO..HI", value_parser = parse_key_value)]
    pub space: Vec<(String, String)>,
    /// Do not search NAME: keep its base value (repeatable).
    #[arg(long, value_name = "NAME")]
    pub fixed: Vec<String>,
    /// Seed of the search (training uses --seed).
    #[arg(long, default_value_t = 0)]
    pub search_seed: u64,
    // The base hyperparameters: trial 1 trains with them, the other trials
    // draw the searched ones from their ranges (epochs, batch size and
    // weight decay only with --space; num_entity_vectors never).
    #[command(flatten)]
    pub hyperparameters: HyperparameterArgs,
    /// Print tune.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `ipi-pipeline promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The model folder to promote (model.safetensors + model.json), path or s3://.
    #[arg(long, value_name = "URL")]
    pub model: String,
    /// The models folder whose latest.json now names it.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The anomaly_score threshold to flag at with this model (e.g. the one `evaluate`
    /// chose); `score` and the nightly job use it when given none.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub threshold: Option<f64>,
}

/// `ipi-pipeline score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The model folder (model.safetensors + model.json), path or s3://.
    #[arg(long, value_name = "URL")]
    pub model: String,
    /// Events dataset, a day of it (…/date=YYYY-MM-DD) or a Parquet file; or request bodies
    /// (.csv, .json, .jsonl: a file, a folder or a glob). Local or s3://.
    #[arg(long, value_name = "URL")]
    pub input: String,
    /// Where the scores dataset (or, with --accept, the .out files) goes.
    #[arg(long, value_name = "URL")]
    pub output: String,
    /// Read the input as SageMaker request bodies of this type (default: by extension).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Write SageMaker responses (application/json or application/jsonlines) instead of Parquet.
    #[arg(long, value_name = "TYPE")]
    pub accept: Option<String>,
    /// Also output ip_embedding and entity_embedding (SageMaker's verbose=True). The global
    /// --verbose does this too, for the shape in DESIGN.md, and also logs at debug level.
    #[arg(long)]
    pub embeddings: bool,
    /// Set flagged = anomaly_score > T (default: the threshold a models folder was promoted
    /// with, if any).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub threshold: Option<f64>,
    /// Run the IP encoder on this device (cpu, cuda, cuda:N).
    #[arg(long)]
    pub device: Option<String>,
    /// Rows per batch (bounds memory).
    #[arg(long, value_name = "N")]
    pub batch_rows: Option<usize>,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// `ipi-pipeline serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The model folder (model.safetensors + model.json), path or s3://.
    #[arg(long, value_name = "URL")]
    pub model: String,
    /// The address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Answer 413 to request bodies larger than this (SageMaker's limit is 6 MiB).
    #[arg(long, value_name = "N", default_value_t = ipi_score::serve::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Run the IP encoder on this device (cpu, cuda, cuda:N).
    #[arg(long)]
    pub device: Option<String>,
}

/// SageMaker's IP Insights hyperparameters, by their names, plus ipi's own
/// `--ip-hash-buckets`, for `train` and `tune`; each one left out keeps its
/// default.
#[derive(Debug, Args)]
pub struct HyperparameterArgs {
    /// Rows of the entity table, about 2x the distinct entities [1, 250000000].
    #[arg(long, value_name = "N")]
    pub num_entity_vectors: Option<u64>,
    /// Length of the entity and IP vectors [4, 4096].
    #[arg(long, value_name = "D")]
    pub vector_dim: Option<usize>,
    /// Passes over the training data [1, ...] (default 10).
    #[arg(long, value_name = "E")]
    pub epochs: Option<usize>,
    /// Positives per step [1, 500000] (default 10000).
    #[arg(long, value_name = "B")]
    pub mini_batch_size: Option<usize>,
    /// Adam's learning rate [1e-6, 10] (default 0.001).
    #[arg(long, value_name = "LR")]
    pub learning_rate: Option<f64>,
    /// L2 weight decay [0, 10] (default 0.00001).
    #[arg(long, value_name = "W")]
    pub weight_decay: Option<f64>,
    /// Fully connected layers after the prefix embeddings [0, 100] (default 1).
    #[arg(long, value_name = "L")]
    pub num_ip_encoder_layers: Option<usize>,
    /// Random-address negatives per positive [0, 500] (default 1).
    #[arg(long, value_name = "R")]
    pub random_negative_sampling_rate: Option<usize>,
    /// Shuffled-entity negatives per positive [0, 500] (default 1).
    #[arg(long, value_name = "S")]
    pub shuffled_negative_sampling_rate: Option<usize>,
    /// Batches between training-metric reports (default 1000).
    #[arg(long, value_name = "N")]
    pub batch_metrics_publish_interval: Option<usize>,
    /// Seed of initialisation, sampling and shuffling (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the dense layers run: cpu, cuda or cuda:N (cuda needs a build with --features cuda).
    #[arg(long)]
    pub device: Option<String>,
    /// Rows per hashed prefix (/24, /32) of the IP encoder (default 65536).
    #[arg(long, value_name = "ROWS")]
    pub ip_hash_buckets: Option<u32>,
}

impl HyperparameterArgs {
    /// Sets each hyperparameter given on the command line.
    pub fn apply(&self, h: &mut ipi_model::Hyperparameters) {
        macro_rules! set {
            ($($name:ident),*) => {$(
                if let Some(value) = self.$name.clone() {
                    h.$name = value;
                }
            )*};
        }
        set!(
            num_entity_vectors,
            vector_dim,
            epochs,
            mini_batch_size,
            learning_rate,
            weight_decay,
            num_ip_encoder_layers,
            random_negative_sampling_rate,
            shuffled_negative_sampling_rate,
            batch_metrics_publish_interval,
            seed,
            device
        );
    }
}

/// `ipi-pipeline train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training pairs: the split's train/, Parquet, or SageMaker entity,ip CSV (path or s3://).
    #[arg(long, value_name = "URL")]
    pub train: String,
    /// Validation pairs, for validation:discriminator_auc after each epoch.
    #[arg(long, value_name = "URL")]
    pub validation: Option<String>,
    /// Test pairs: after training, record the random-address test AUC (the notebook's test).
    #[arg(long, value_name = "URL")]
    pub test: Option<String>,
    /// Where to write model.safetensors and model.json (a directory; path or s3://).
    #[arg(long, value_name = "URL")]
    pub model: String,
    #[command(flatten)]
    pub hyperparameters: HyperparameterArgs,
    /// Stop when validation AUC has not improved for this many epochs.
    #[arg(long, value_name = "EPOCHS", requires = "validation")]
    pub early_stopping_patience: Option<usize>,
    /// Print model.json on stdout when done.
    #[arg(long)]
    pub json: bool,
}

/// `ipi-pipeline split`.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// The events dataset, or Parquet or CSV with timestamp,entity,ip columns (path or s3://).
    #[arg(short, long, value_name = "URL")]
    pub input: String,
    /// Where to write train/, validation/ and test/ (path or s3://).
    #[arg(short, long, value_name = "URL")]
    pub output: String,
    /// The end of train: an RFC 3339 instant, or a local time with --timezone.
    #[arg(long, value_name = "TIME", requires = "validation_end")]
    pub train_end: Option<String>,
    /// The end of validation (the start of test).
    #[arg(long, value_name = "TIME", requires = "train_end")]
    pub validation_end: Option<String>,
    /// IANA zone for local --train-end / --validation-end (DST-correct).
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Read input times that have no zone in this IANA zone or offset (e.g. +05:30).
    #[arg(long, value_name = "ZONE")]
    pub assume_timezone: Option<String>,
    /// Validation length back from the end of the data (e.g. 1d), before --test.
    #[arg(long, value_name = "DURATION", conflicts_with = "train_end", requires = "test")]
    pub validation: Option<String>,
    /// Test length back from the end of the data (e.g. 2d).
    #[arg(long, value_name = "DURATION", conflicts_with = "train_end", requires = "validation")]
    pub test: Option<String>,
    /// A gap between windows; rows in it are dropped and counted.
    #[arg(long, value_name = "DURATION")]
    pub gap: Option<String>,
    /// Seed of the train shuffle.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Drop validation and test rows whose entity never appears in train.
    #[arg(long)]
    pub drop_unseen_entities: bool,
    /// Also write SageMaker's headerless entity,ip CSV for each split.
    #[arg(long)]
    pub sagemaker_csv: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ipi-pipeline synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// How many users (`user_0` ...).
    #[arg(long, default_value_t = 1000)]
    pub users: u64,
    /// Days of traffic, ending at --end-date.
    #[arg(long, default_value_t = 10)]
    pub days: u32,
    /// The seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write (a path or s3://bucket/prefix).
    #[arg(short, long, value_name = "URL")]
    pub output: String,
    /// The first day after the window (default 2018-11-14, as SageMaker's generator).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub end_date: Option<chrono::NaiveDate>,
    /// Write the events dataset (Parquet) directly instead of access logs.
    #[arg(long)]
    pub parquet: bool,
    /// Gzip the log files.
    #[arg(long)]
    pub gzip: bool,
    /// Write every timestamp in this offset (e.g. +0000) instead of each user's own.
    #[arg(long, value_name = "±HHMM", allow_hyphen_values = true)]
    pub server_offset: Option<String>,
    /// Share of lines that are not successful logins (0.0 to 0.95).
    #[arg(long, value_name = "SHARE")]
    pub other_traffic: Option<f64>,
    /// An ip2asn TSV (iptoasn.com format) to draw networks from instead of the seeded table.
    #[arg(long, value_name = "PATH")]
    pub asn_file: Option<String>,
    /// Worker threads (the output does not depend on it).
    #[arg(long)]
    pub threads: Option<usize>,
    /// `random_ip` attacks per 1,000 logins.
    #[arg(long, value_name = "RATE")]
    pub random_ip: Option<f64>,
    /// `credential_stuffing` attacks per 1,000 logins.
    #[arg(long, value_name = "RATE")]
    pub credential_stuffing: Option<f64>,
    /// `impossible_travel` attacks per 1,000 logins.
    #[arg(long, value_name = "RATE")]
    pub impossible_travel: Option<f64>,
    /// `same_country_isp` attacks per 1,000 logins.
    #[arg(long, value_name = "RATE")]
    pub same_country_isp: Option<f64>,
    /// `cgnat` attacks per 1,000 logins.
    #[arg(long, value_name = "RATE")]
    pub cgnat: Option<f64>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ipi-pipeline ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files, directories or globs, local or s3://; plain or gzip.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// The events dataset to write (a path or s3://bucket/prefix).
    #[arg(short, long, value_name = "URL")]
    pub output: String,
    /// Input layout: access logs (`auto` decides per line), or tables
    /// (`sagemaker_csv`: SageMaker's headerless entity,ip CSV; `csv` or `parquet`:
    /// named entity, ip and timestamp columns).
    #[arg(long, value_enum, default_value_t = FormatName::Auto)]
    pub format: FormatName,
    /// The time of every event of a table without a time column (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub default_timestamp: Option<String>,
    /// Take the entity from this query-string parameter instead of the user field.
    #[arg(long, value_name = "NAME", conflicts_with = "entity_regex")]
    pub entity_param: Option<String>,
    /// Take the entity from the first capture group of this regex on the path.
    #[arg(long, value_name = "PATTERN")]
    pub entity_regex: Option<String>,
    /// Keep only these request methods (repeatable).
    #[arg(long, value_name = "METHOD")]
    pub method: Vec<String>,
    /// Keep only request paths starting with this.
    #[arg(long, value_name = "PREFIX")]
    pub path_prefix: Option<String>,
    /// Keep only these statuses (repeatable).
    #[arg(long, value_name = "CODE")]
    pub status: Vec<u16>,
    /// Optional columns to fill (comma-separated; the rest are written as nulls).
    /// `--keep ''` keeps only what IP Insights needs. Default: all.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub keep: Option<Vec<String>>,
    /// Fail (exit 1) when more than this share of lines is rejected.
    #[arg(long, default_value_t = 0.05, value_name = "RATIO")]
    pub max_reject_ratio: f64,
    /// Read local files with read calls instead of memory-mapping them. A
    /// mapped file truncated during the ingest (a log rotated with
    /// copytruncate) kills the process with SIGBUS; nothing is committed then.
    #[arg(long)]
    pub no_mmap: bool,
    /// Bytes of input per parallel chunk (cut at the next line end). Larger
    /// chunks write fewer, longer batches; smaller ones use less memory.
    /// Default: 16 MiB for a local plain file (memory-mapped), 4 MiB for
    /// gzip, s3:// and --no-mmap (read into buffers).
    #[arg(long, value_name = "BYTES")]
    pub chunk_bytes: Option<usize>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ipi-pipeline query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL file to run (a path or URL; `-` reads stdin).
    #[arg(
        value_name = "FILE.sql",
        required_unless_present = "execute",
        conflicts_with = "execute"
    )]
    pub file: Option<String>,
    /// Run this SQL text instead of a file.
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    pub execute: Option<String>,
    /// The store whose datasets are the tables (a path or s3://bucket/prefix).
    #[arg(long, value_name = "URL", env = "IPI_STORE", default_value = "var/ipi")]
    pub store: String,
    /// A value for a `$KEY` placeholder: `--param date=2018-11-12`. Repeatable.
    #[arg(short, long = "param", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
    /// table (aligned, the default on stdout), csv, json, jsonl or parquet; default by
    /// --output's extension.
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<ipi_sql::Format>,
    /// Write the result here (a path or s3://) instead of stdout.
    #[arg(short, long, value_name = "URL")]
    pub output: Option<String>,
    /// Another table, or another place for a standard one: `--table NAME=URL`. Repeatable.
    #[arg(long = "table", value_name = "NAME=URL", value_parser = parse_key_value)]
    pub tables: Vec<(String, String)>,
    /// Allow statements that write or change the session (CREATE, INSERT, COPY, SET).
    #[arg(long)]
    pub allow_write: bool,
}

/// `ipi-pipeline run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Run every step, reusing nothing from earlier runs.
    #[arg(long)]
    pub force: bool,
    /// Run only this step (repeatable), whatever the cache says; the steps it needs are
    /// reused from earlier runs.
    #[arg(long, value_name = "STEP")]
    pub only: Vec<String>,
    /// How long the run lock lasts unless renewed (it is renewed while the run lives).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub lock_ttl: String,
}

/// `ipi-pipeline plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Plan as `run --force` would.
    #[arg(long)]
    pub force: bool,
    /// Plan as `run --only STEP` would.
    #[arg(long, value_name = "STEP")]
    pub only: Vec<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `ipi-pipeline retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The run id, as `run` printed it (also the folder name under STORE/runs/).
    pub run_id: String,
    /// The store the run kept its state in (the pipeline's `store` param).
    #[arg(long, value_name = "URL", default_value = "var/ipi", env = "IPI_STORE")]
    pub store: String,
    /// How long the run lock lasts unless renewed.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub lock_ttl: String,
}

/// `ipi-pipeline runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Show this run's steps instead of the list.
    pub run_id: Option<String>,
    /// The store the runs kept their state in (the pipelines' `store` param).
    #[arg(long, value_name = "URL", default_value = "var/ipi", env = "IPI_STORE")]
    pub store: String,
    /// Only runs of this pipeline (its `name`).
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Only runs that failed (including ones killed and taken over).
    #[arg(long)]
    pub failed: bool,
    /// At most this many runs, newest first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// One JSON object per run (with RUN_ID: the whole manifest).
    #[arg(long)]
    pub json: bool,
}

/// `ipi-pipeline test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// One or more pipeline files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Override a declared parameter: `--param date=2018-11-12`. Repeatable.
    #[arg(short, long = "param", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
}

/// A pipeline file and its parameter overrides.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline file (TOML), e.g. `pipelines/daily.toml`.
    pub file: PathBuf,
    /// Override a declared parameter: `--param date=2018-11-12`. Repeatable.
    #[arg(short, long = "param", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
}

/// `validate` takes several files.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// One or more pipeline files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Override a declared parameter: `--param date=2018-11-12`. Repeatable.
    #[arg(short, long = "param", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
}

/// Parse `key=value`; the value may itself contain `=`.
pub fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got `{raw}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_value_keeps_equals_in_the_value() {
        assert_eq!(parse_key_value("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
