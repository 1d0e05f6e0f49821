//! Failures a user can act on, each with its own exit code.
//!
//! Everything else (a bug, an I/O error nobody anticipated) surfaces as a plain
//! `anyhow::Error` and exits with code 1.

use std::fmt;

/// A failure caused by the user's input or environment, not by a bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The experiment file or a `--set` override is malformed or out of range.
    Config(String),
    /// A data folder or file is missing, unreadable or inconsistent.
    Data(String),
    /// The requested device cannot be used on this machine.
    Device(String),
    /// The run folder cannot be written, or belongs to a different run.
    Output(String),
    /// The loss or a gradient became NaN or infinite.
    Numerical(String),
    /// Ctrl-C or SIGTERM stopped the run (resumable).
    Interrupted(String),
}

impl Failure {
    /// Process exit code, documented in the README ("When things go wrong").
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Config(_) => 2,
            Failure::Data(_) => 3,
            Failure::Device(_) => 4,
            Failure::Output(_) => 5,
            Failure::Numerical(_) => 6,
            Failure::Interrupted(_) => 130,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, msg) = match self {
            Failure::Config(m) => ("config error", m),
            Failure::Data(m) => ("data error", m),
            Failure::Device(m) => ("device error", m),
            Failure::Output(m) => ("output error", m),
            Failure::Numerical(m) => ("numerical error", m),
            Failure::Interrupted(m) => ("interrupted", m),
        };
        write!(f, "{kind}: {msg}")
    }
}

impl std::error::Error for Failure {}

/// A [`Failure::Data`], as the data readers return it.
pub fn data_error(msg: String) -> anyhow::Error {
    Failure::Data(msg).into()
}

/// The [`Failure`] an exit code stands for (the inverse of
/// [`Failure::exit_code`]), e.g. a child process's; other codes are plain errors.
pub fn failure_of_code(code: i32, message: String) -> anyhow::Error {
    match code {
        2 => Failure::Config(message).into(),
        3 => Failure::Data(message).into(),
        4 => Failure::Device(message).into(),
        5 => Failure::Output(message).into(),
        6 => Failure::Numerical(message).into(),
        130 => Failure::Interrupted(message).into(),
        _ => anyhow::anyhow!(message),
    }
}

/// Exit code for any error chain: the first [`Failure`] in it decides, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(1, Failure::exit_code)
}
