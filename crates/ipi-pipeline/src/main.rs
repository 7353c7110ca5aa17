//! `ipi-pipeline`: IP Insights on Arrow and Parquet.
//!
//! The binary parses the command line ([`cli`]), sets up logging
//! ([`logging`]), and hands the command to [`commands`]. Every failure comes
//! back here as an [`anyhow::Error`] carrying an [`ExitCode`](exit::Exit), and
//! is printed once with its whole chain of causes.

mod cli;
mod commands;
mod exec;
mod exit;
mod logging;
mod steps;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::Exit;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    logging::init(&args.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Exit::StepFailed.into();
        }
    };
    match runtime.block_on(commands::dispatch(args)) {
        Ok(code) => code.into(),
        Err(error) => report(&error).into(),
    }
}

/// Print an error chain the way ripgrep does and choose the exit code.
///
/// A broken pipe (`ipi-pipeline query ... | head`) is not an error.
fn report(error: &anyhow::Error) -> Exit {
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return Exit::Ok;
    }
    let code = exit::code_of(error);
    eprintln!("error: {error:#}");
    code
}
