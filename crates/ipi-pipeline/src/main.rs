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
mod filetests;
mod lock;
mod logging;
mod runs;
mod schema;
mod state;
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
    eprintln!("error: {}", chain_text(error));
    code
}

/// An error and its causes, joined by `: ` (as `{:#}` does), leaving out a
/// cause whose text the message already holds: many errors print their
/// source as part of their own message.
fn chain_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_text_says_each_cause_once() {
        #[derive(Debug)]
        struct Wrapped(std::io::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "x.log: {}", self.0)
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::other("disk on fire");
        let error = anyhow::Error::new(Wrapped(io)).context("step `ingest` failed");
        assert_eq!(chain_text(&error), "step `ingest` failed: x.log: disk on fire");
    }
}
