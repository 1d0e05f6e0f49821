//! Where each point of a sweep stands, read from its run folder.

use super::spec::Point;
use crate::lock;
use serde_json::Value;

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
    let provenance: Value = std::fs::read_to_string(dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let epochs = provenance["epochs_completed"].as_u64().unwrap_or(0);
    if let Some(pid) = lock::holder(&dir) {
        return State::Running { pid, epochs };
    }
    match provenance["status"].as_str() {
        None => State::Pending,
        Some("finished") if epochs >= point.config.training.epochs as u64 => State::Done,
        Some("failed") => State::Failed {
            error: provenance["error"].as_str().unwrap_or("").to_string(),
        },
        // "interrupted", or "running" left behind by a killed process.
        Some(_) => State::Interrupted { epochs },
    }
}
