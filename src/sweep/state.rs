//! Where each point of a sweep stands, read from its run folder.

use super::spec::Point;
use crate::lock;
use crate::provenance::{Provenance, Status};

/// Where a point stands, read from its run folder.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// No run folder (or nothing in it yet).
    Pending,
    /// A live process on this machine holds the folder's lock.
    Running { pid: u32, epochs: u64 },
    /// Stopped before its last epoch (Ctrl-C, SIGTERM, a kill, a lost node):
    /// running the point again resumes it.
    Interrupted { epochs: u64 },
    /// The run ended with an error (run.json's `error`).
    Failed { error: String },
    /// Finished all its epochs.
    Done,
}

impl State {
    pub fn word(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running { .. } => "running",
            State::Interrupted { .. } => "interrupted",
            State::Failed { .. } => "failed",
            State::Done => "done",
        }
    }
}

/// The state of `point`'s run folder.
pub fn state(point: &Point) -> State {
    let dir = point.dir();
    let provenance = Provenance::read(&dir);
    let epochs = provenance.as_ref().map_or(0, |p| p.epochs_completed as u64);
    if let Some(pid) = lock::holder(&dir) {
        return State::Running { pid, epochs };
    }
    let Some(provenance) = provenance else {
        return State::Pending;
    };
    match provenance.status {
        Status::Finished if epochs >= point.config.training.epochs as u64 => State::Done,
        Status::Failed => State::Failed {
            error: provenance.error.unwrap_or_default(),
        },
        // Interrupted, or running left behind by a killed process.
        _ => State::Interrupted { epochs },
    }
}
