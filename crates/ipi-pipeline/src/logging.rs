//! Logging and progress.
//!
//! Logs go to stderr through `tracing`: human-readable on a terminal, or one
//! JSON object per line with `--log-format json` for machines. The level comes
//! from `-v`/`-q`, or from `IPI_LOG` in `tracing`'s filter syntax
//! (`IPI_LOG=ipi_storage=debug`). Progress bars (indicatif) are drawn only
//! when stderr is a terminal and logs are human, so cron mail and JSON logs
//! stay clean.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

static PROGRESS: OnceLock<bool> = OnceLock::new();

/// Install the global subscriber. Call once, first thing.
pub fn init(args: &GlobalArgs) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("IPI_LOG").unwrap_or_else(|_| {
        // Our crates at the chosen level; chatty dependencies one notch down.
        EnvFilter::new(format!("warn,ipi_pipeline={level},ipi_storage={level},ipi_config={level},ipi_ingest={level},ipi_synth={level},ipi_split={level},ipi_model={level},ipi_eval={level},ipi_score={level},ipi_sql={level}"))
    });
    let stderr_is_terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Human => {
            builder.with_ansi(stderr_is_terminal).with_target(false).compact().init()
        }
    }
    let _ = PROGRESS
        .set(stderr_is_terminal && args.log_format == LogFormat::Human && !args.no_progress);
}

/// A progress bar over `len` units, hidden unless progress is enabled.
pub fn bar(len: u64, message: impl Into<String>) -> ProgressBar {
    if !progress_enabled() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(message.into());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg:<24} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Whether progress bars are drawn.
pub fn progress_enabled() -> bool {
    PROGRESS.get().copied().unwrap_or(false)
}

/// A bar style for byte counts (uncompressed sizes can pass the total; the
/// bar then simply stays full).
pub fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {msg:<12} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A callback that advances `bar`, for the step crates' progress hooks.
pub fn progress_fn(bar: &ProgressBar) -> std::sync::Arc<dyn Fn(u64) + Send + Sync> {
    let bar = bar.clone();
    std::sync::Arc::new(move |n: u64| bar.inc(n))
}
