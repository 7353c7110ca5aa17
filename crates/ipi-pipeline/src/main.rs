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
    keep_freed_memory();
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

/// Tell glibc's malloc to keep memory it frees for the next allocation
/// instead of handing it back to the kernel at once. By default, a buffer of
/// more than 128 KiB is a fresh `mmap` each time, and a freed heap top is
/// trimmed: every new page then faults in, zeroed, again. An ingest makes and
/// drops hundreds of MB of Arrow and Parquet buffers, so that was a tenth of
/// its CPU time; keeping them cost 15 MiB of peak RSS and saved 5% of wall
/// time (crates/ipi-ingest/README.md). Buffers of 32 MiB and more are still
/// mapped and returned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    const TRIM_THRESHOLD: libc::c_int = 256 << 20;
    const TOP_PAD: libc::c_int = 16 << 20;
    for (parameter, value) in [
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (libc::M_TOP_PAD, TOP_PAD),
    ] {
        // SAFETY: `mallopt` only sets malloc's tuning parameters, and these
        // values are within their documented ranges. It is called first thing
        // in `main`, before any other thread exists, so no allocation races
        // with it (glibc marks it MT-unsafe for that reason alone). A refused
        // value (0 returned) leaves glibc's default, which is only slower.
        let _ = unsafe { libc::mallopt(parameter, value) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

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
