//! Exit codes, the contract scripts and cron rely on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | a step failed (bad data over its limit, storage, a failed gate) |
//! | 2 | usage: the command line itself is wrong (clap exits with it too) |
//! | 75 | another run of the same pipeline and date holds the run lock; nothing was done (`EX_TEMPFAIL`) |
//! | 78 | the configuration (pipeline file, params) is invalid (`EX_CONFIG`) |

use std::fmt;
use std::process::ExitCode;

/// The process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    StepFailed = 1,
    Usage = 2,
    Locked = 75,
    Config = 78,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// An error that asks for a particular exit code. Attach it with
/// [`anyhow::Error::context`] or return it directly; anything without one
/// exits with [`Exit::StepFailed`].
#[derive(Debug)]
pub struct Coded {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// A usage error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Coded { exit: Exit::Usage, message: message.into() }.into()
}

/// An invalid-configuration error (exit 78).
pub fn config(message: impl Into<String>) -> anyhow::Error {
    Coded { exit: Exit::Config, message: message.into() }.into()
}

/// Another run holds the run lock (exit 75).
pub fn locked(message: impl Into<String>) -> anyhow::Error {
    Coded { exit: Exit::Locked, message: message.into() }.into()
}

/// The exit code an error asks for.
pub fn code_of(error: &anyhow::Error) -> Exit {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Coded>())
        .map_or(Exit::StepFailed, |coded| coded.exit)
}
