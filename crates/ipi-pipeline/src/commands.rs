//! From validated arguments to work: one function per subcommand.

use std::fmt::Write as _;
use std::path::Path;

use ipi_config::{Diagnostic, LoadOptions, Pipeline};

use crate::cli::{ChooseArg, EvaluateArgs, TuneArgs};
use crate::cli::{
    Cli, Command, IngestArgs, PipelineArgs, PromoteArgs, ScoreArgs, ServeArgs, SplitArgs,
    SynthArgs, TrainArgs, ValidateArgs,
};
use crate::exit::{self, Exit};
use crate::steps::Registry;

/// Run the subcommand.
pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let registry = Registry::builtin();
    match cli.command {
        Command::Run(args) => crate::runs::run(&registry, &args).await,
        Command::Plan(args) => crate::runs::plan(&registry, &args).await,
        Command::Retry(args) => crate::runs::retry(&registry, &args).await,
        Command::Runs(args) => crate::runs::runs(&args).await,
        Command::Test(args) => crate::filetests::test(&registry, &args).await,
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&crate::schema::schema(&registry))?);
            Ok(Exit::Ok)
        }
        Command::Validate(args) => validate(&registry, &args),
        Command::Graph(args) => graph(&registry, &args),
        Command::Steps => steps(&registry),
        Command::Ingest(args) => ingest(&args).await,
        Command::Synth(args) => synth(&args).await,
        Command::Split(args) => split(&args).await,
        Command::Train(args) => train(&args).await,
        Command::Score(args) => score(&args, cli.global.verbose > 0).await,
        Command::Serve(args) => serve(&args).await,
        Command::Promote(args) => promote(&args).await,
        Command::Evaluate(args) => evaluate(&args).await,
        Command::Tune(args) => tune(&args).await,
        Command::Query(args) => crate::steps::query::command(&args).await,
    }
}

pub(crate) fn load(
    registry: &Registry,
    file: &Path,
    params: &[(String, String)],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let opts = LoadOptions::new(params, now, registry);
    ipi_config::load_path(file, &opts)
}

/// Print diagnostics, one per line, and turn them into exit 78.
pub(crate) fn invalid(file: &Path, diagnostics: &[Diagnostic]) -> anyhow::Error {
    for diagnostic in diagnostics {
        eprintln!("{diagnostic}");
    }
    exit::config(format!(
        "{}: {} problem{} found",
        file.display(),
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    ))
}

fn validate(registry: &Registry, args: &ValidateArgs) -> anyhow::Result<Exit> {
    let now = chrono::Utc::now();
    let mut problems = 0;
    for file in &args.files {
        match load(registry, file, &args.params, now) {
            Ok(pipeline) => {
                let n = pipeline.order.len();
                println!("{}: ok ({n} step{})", file.display(), if n == 1 { "" } else { "s" });
            }
            Err(diagnostics) => {
                for diagnostic in &diagnostics {
                    println!("{diagnostic}");
                }
                problems += diagnostics.len();
            }
        }
    }
    if problems > 0 {
        return Err(exit::config(format!(
            "{problems} problem{} found",
            if problems == 1 { "" } else { "s" }
        )));
    }
    Ok(Exit::Ok)
}

fn graph(registry: &Registry, args: &PipelineArgs) -> anyhow::Result<Exit> {
    let pipeline = load(registry, &args.file, &args.params, chrono::Utc::now())
        .map_err(|d| invalid(&args.file, &d))?;
    print!("{}", to_dot(&pipeline));
    Ok(Exit::Ok)
}

/// The pipeline's step graph in Graphviz DOT, edges from a step to the
/// steps that need it.
fn to_dot(pipeline: &Pipeline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {:?} {{", pipeline.name);
    let _ = writeln!(out, "  rankdir=LR;\n  node [shape=box, style=rounded];");
    for name in &pipeline.order {
        let step = &pipeline.steps[name];
        let _ = writeln!(out, "  {name:?} [label={:?}];", format!("{name}\n({})", step.uses));
    }
    for name in &pipeline.order {
        for dep in &pipeline.steps[name].needs {
            let _ = writeln!(out, "  {dep:?} -> {name:?};");
        }
    }
    out.push_str("}\n");
    out
}

fn steps(registry: &Registry) -> anyhow::Result<Exit> {
    let mut any = false;
    for kind in registry.iter() {
        any = true;
        let outputs: Vec<String> =
            kind.outputs().iter().map(|(name, ty)| format!("{name}: {ty}")).collect();
        println!("{:<10} {}  [exposes {}]", kind.kind(), kind.about(), outputs.join(", "));
    }
    if !any {
        println!("no step kinds are built into this binary yet");
    }
    Ok(Exit::Ok)
}

async fn ingest(args: &IngestArgs) -> anyhow::Result<Exit> {
    use ipi_ingest::{EntitySource, Filter, IngestConfig};
    let config = IngestConfig {
        inputs: args.inputs.clone(),
        output: args.output.clone(),
        format: args.format,
        default_timestamp: args.default_timestamp.clone(),
        filter: Filter {
            method: args.method.clone(),
            path_prefix: args.path_prefix.clone(),
            status: args.status.clone(),
        },
        max_reject_ratio: args.max_reject_ratio,
        mmap: !args.no_mmap,
        chunk_bytes: args.chunk_bytes,
        entity: match (&args.entity_param, &args.entity_regex) {
            (Some(name), _) => EntitySource::QueryParam { name: name.clone() },
            (None, Some(pattern)) => EntitySource::PathRegex { pattern: pattern.clone() },
            (None, None) => EntitySource::User,
        },
        ..IngestConfig::default_for(&args.inputs, &args.output)
    };
    let config = match &args.keep {
        Some(keep) => IngestConfig {
            keep: keep.iter().filter(|c| !c.is_empty()).cloned().collect(),
            ..config
        },
        None => config,
    };
    refuse_problems(config.problems())?;
    let summary = crate::steps::ingest::run(&config).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(Exit::Ok);
    }
    let t = &summary.totals;
    println!(
        "ingested {} lines from {} input{} in {:.1}s: {} rows, {} filtered, {} rejected",
        t.lines,
        summary.inputs.len(),
        if summary.inputs.len() == 1 { "" } else { "s" },
        summary.seconds,
        t.rows,
        t.filtered,
        t.rejected
    );
    for (reason, count) in &t.reasons {
        println!("  rejected {count:>8}  {reason}");
    }
    println!("wrote {} ({} days)", summary.output, summary.partitions.len());
    Ok(Exit::Ok)
}

async fn synth(args: &SynthArgs) -> anyhow::Result<Exit> {
    use ipi_synth::{OutputFormat, SynthConfig};
    let mut config = SynthConfig::new(args.users, args.days, args.seed, args.output.clone());
    if let Some(end_date) = args.end_date {
        config.end_date = end_date;
    }
    if args.parquet {
        config.format = OutputFormat::Parquet;
    }
    config.gzip = args.gzip;
    config.server_offset = args.server_offset.clone();
    config.asn_file = args.asn_file.clone();
    config.threads = args.threads;
    if let Some(share) = args.other_traffic {
        config.other_traffic = share;
    }
    let rates = &mut config.attacks;
    for (rate, arg) in [
        (&mut rates.random_ip, args.random_ip),
        (&mut rates.credential_stuffing, args.credential_stuffing),
        (&mut rates.impossible_travel, args.impossible_travel),
        (&mut rates.same_country_isp, args.same_country_isp),
        (&mut rates.cgnat, args.cgnat),
    ] {
        if let Some(arg) = arg {
            *rate = arg;
        }
    }
    refuse_problems(config.problems())?;
    let summary = crate::steps::synth::run(&config).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_table());
    }
    Ok(Exit::Ok)
}

/// A step config built from flags: its first problem is a usage error that
/// names the flag (`default_timestamp` → `--default-timestamp`).
fn refuse_problems(problems: Vec<(&'static str, String)>) -> anyhow::Result<()> {
    match problems.into_iter().next() {
        Some((field, problem)) => {
            Err(exit::usage(format!("--{}: {problem}", field.replace('_', "-"))))
        }
        None => Ok(()),
    }
}

async fn split(args: &SplitArgs) -> anyhow::Result<Exit> {
    let config = ipi_split::SplitConfig {
        input: args.input.clone(),
        output: args.output.clone(),
        train_end: args.train_end.clone(),
        validation_end: args.validation_end.clone(),
        timezone: args.timezone.clone(),
        assume_timezone: args.assume_timezone.clone(),
        validation: args.validation.clone(),
        test: args.test.clone(),
        gap: args.gap.clone(),
        seed: args.seed,
        drop_unseen_entities: args.drop_unseen_entities,
        sagemaker_csv: args.sagemaker_csv,
    };
    refuse_problems(config.problems())?;
    let report = ipi_split::split(&config).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(Exit::Ok)
}

async fn train(args: &TrainArgs) -> anyhow::Result<Exit> {
    let mut h = ipi_model::Hyperparameters::default();
    args.hyperparameters.apply(&mut h);
    let config = ipi_model::TrainConfig {
        train: args.train.clone(),
        validation: args.validation.clone(),
        test: args.test.clone(),
        model: args.model.clone(),
        hyperparameters: h,
        early_stopping_patience: args.early_stopping_patience,
        ip_hash_buckets: args.hyperparameters.ip_hash_buckets,
    };
    if let Some(problem) = config.hyperparameters.problems().into_iter().next() {
        return Err(exit::usage(format!(
            "--{}: {problem}",
            problem.name.replace('_', "-").replace(" + ", " + --")
        )));
    }
    refuse_problems(config.problems())?;
    let card = crate::steps::train::run(&config).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        println!("model {} ({})", config.model, card.model_id);
        if let Some(auc) = card.training.test_random_ip_auc {
            println!("test:random_ip_auc {auc:.4}");
        }
        println!(
            "{:>5} {:>12} {:>9} {:>12} {:>9}",
            "epoch", "train loss", "accuracy", "pairs/s", "val AUC"
        );
        for e in &card.training.epochs {
            let auc =
                e.validation_discriminator_auc.map(|a| format!("{a:.4}")).unwrap_or("-".into());
            println!(
                "{:>5} {:>12.5} {:>9.4} {:>12.0} {:>9}",
                e.epoch,
                e.binary_classification_cross_entropy,
                e.binary_classification_accuracy,
                e.throughput_pairs_per_sec,
                auc
            );
        }
    }
    Ok(Exit::Ok)
}

/// `verbose`: the global `--verbose`, which for `score` also asks for the
/// embeddings (`score ... --verbose` in DESIGN.md).
async fn score(args: &ScoreArgs, verbose: bool) -> anyhow::Result<Exit> {
    let mut config = ipi_score::ScoreConfig::new(&args.model, &args.input, &args.output);
    config.content_type = args.content_type.clone();
    config.accept = args.accept.clone();
    config.verbose = args.embeddings || verbose;
    config.threshold = args.threshold;
    config.device = args.device.clone();
    if let Some(n) = args.batch_rows {
        config.batch_rows = n;
    }
    refuse_problems(config.problems())?;
    let report = ipi_score::score(&config).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "scored {} rows ({} unseen entities, {} flagged, {} rejected) with model {} into {} ({:.0} pairs/s)",
            report.rows,
            report.unseen_entities,
            report.flagged,
            report.rejected,
            report.model_id,
            report.output,
            report.pairs_per_sec
        );
    }
    Ok(Exit::Ok)
}

/// Serves until SIGTERM or Ctrl-C, then exits 0.
async fn serve(args: &ServeArgs) -> anyhow::Result<Exit> {
    let mut config = ipi_score::ServeConfig::new(&args.model);
    config.listen = args.listen;
    config.max_body_bytes = args.max_body_bytes;
    config.device = args.device.clone();
    ipi_score::serve(&config).await?;
    Ok(Exit::Ok)
}

async fn promote(args: &PromoteArgs) -> anyhow::Result<Exit> {
    let latest = ipi_model::registry::promote(&args.model, &args.to, args.threshold).await?;
    let threshold = latest.threshold.map(|t| format!(", flagging above {t}")).unwrap_or_default();
    println!(
        "{}/{} now names model {} ({}){threshold}",
        args.to.trim_end_matches('/'),
        ipi_model::registry::LATEST,
        latest.model_id,
        latest.model
    );
    Ok(Exit::Ok)
}

async fn evaluate(args: &EvaluateArgs) -> anyhow::Result<Exit> {
    let mut config =
        ipi_eval::EvaluateConfig::new(&args.model, &args.train, &args.test, &args.output);
    config.labels = args.labels.clone();
    config.target_fpr = args.target_fpr;
    config.target_recall = args.target_recall;
    config.recall_case = args.recall_case.clone();
    config.choose = match args.choose {
        ChooseArg::Fpr => ipi_eval::Choose::Fpr,
        ChooseArg::Recall => ipi_eval::Choose::Recall,
    };
    config.seed = args.seed;
    config.device = args.device.clone();
    if args.min_auc.is_some() || !args.min_auc_case.is_empty() {
        let mut gate = ipi_eval::Gate { min_auc: args.min_auc, ..Default::default() };
        for (case, floor) in &args.min_auc_case {
            let floor: f64 = floor
                .parse()
                .map_err(|_| exit::usage(format!("--min-auc-case {case}={floor}: not a number")))?;
            gate.min_auc_by_case.insert(case.clone(), floor);
        }
        config.gate = Some(gate);
    }
    refuse_problems(config.problems())?;
    let evaluation = crate::steps::evaluate::run(&config).await?;
    let report = &evaluation.report;
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.to_table());
        println!("report: {}/report.html", evaluation.output);
    }
    match report.gate_failure() {
        Some(failure) => Err(anyhow::anyhow!(failure)),
        None => Ok(Exit::Ok),
    }
}

async fn tune(args: &TuneArgs) -> anyhow::Result<Exit> {
    let mut config = ipi_eval::TuneConfig::new(&args.train, &args.validation, &args.output);
    config.test = args.test.clone();
    config.trials = args.trials;
    config.parallel = args.parallel;
    config.seed = args.search_seed;
    config.ip_hash_buckets = args.hyperparameters.ip_hash_buckets;
    args.hyperparameters.apply(&mut config.hyperparameters);
    for name in &args.fixed {
        config.space.set(name, None).map_err(|e| exit::usage(format!("--fixed: {e}")))?;
    }
    for (name, range) in &args.space {
        let bad = || exit::usage(format!("--space {name}={range}: expected LO..HI, e.g. 8..256"));
        let (lo, hi) = range.split_once("..").ok_or_else(bad)?;
        let lo: f64 = lo.trim().parse().map_err(|_| bad())?;
        let hi: f64 = hi.trim().parse().map_err(|_| bad())?;
        config.space.set(name, Some([lo, hi])).map_err(|e| exit::usage(format!("--space: {e}")))?;
    }
    refuse_problems(config.problems())?;
    let report = ipi_eval::tune(&config, None).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(Exit::Ok)
}
