//! `run.json`: what ran (code, versions, device, seed, data, parameter
//! counts), how far it got and how it ended. One typed record for the run
//! folder that writes it and for everything that reads it back (resuming, a
//! sweep's states, the report, `predict`), so that they agree on every name.

use crate::config::{Config, Loss, Task};
use crate::data::{DepthStats, Prepared};
use crate::error::Failure;
use crate::model::ParamCounts;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Version of Burn this binary is built with (pinned in Cargo.toml).
pub const BURN_VERSION: &str = "0.21.0";

/// The file's name in a run folder.
pub const FILE: &str = "run.json";

/// The contents of `run.json`. Missing keys take their defaults, so that a
/// record written by an older imex-run still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    pub name: String,
    pub status: Status,
    pub imex_run_version: String,
    pub burn_version: String,
    /// None where git or the repository is not there.
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub device: String,
    pub seed: u64,
    /// RFC 3339, to the second.
    pub started: String,
    pub finished: Option<String>,
    pub resumed: Vec<Resumption>,
    pub epochs_completed: usize,
    pub command_line: Vec<String>,
    pub host: Host,
    pub parameters: ParamCounts,
    pub data: DataSummary,
    pub task: Task,
    /// The loss trained with, `auto` resolved.
    pub loss: Loss,
    /// The epoch of `best.safetensors`.
    pub best: Option<BestEpoch>,
    /// Its checkpoint score (lower is better).
    pub best_score: Option<f64>,
    /// Why the run failed or stopped, once it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a run stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Training, or killed before it could say otherwise.
    #[default]
    Running,
    Finished,
    /// Stopped by Ctrl-C or SIGTERM (resumable).
    Interrupted,
    Failed,
}

impl Status {
    /// The word written in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
        }
    }
}

/// A resumption of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resumption {
    pub at: String,
    pub from_epoch: usize,
}

/// The machine that started the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
}

/// The data the run trained on, as loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataSummary {
    pub path: PathBuf,
    pub train_images: usize,
    pub val_images: usize,
    pub height: usize,
    pub width: usize,
    pub normalisation_mean: f64,
    pub normalisation_std: f64,
    pub class_weights: Vec<f64>,
    pub depth_normalisation: Option<DepthStats>,
}

/// The kept epoch's losses and validation metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    pub epoch: usize,
    pub train_loss: f64,
    /// `val_loss` and `val_<metric>` of the task's headline metrics.
    #[serde(flatten)]
    pub val: BTreeMap<String, f64>,
}

impl Provenance {
    /// A new run's record: running, no epoch completed yet.
    pub fn start(cfg: &Config, data: &Prepared, device: &str) -> Self {
        Self {
            name: cfg.experiment.name.clone(),
            status: Status::Running,
            imex_run_version: env!("CARGO_PKG_VERSION").to_string(),
            burn_version: BURN_VERSION.to_string(),
            git_commit: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain"]).map(|s| !s.is_empty()),
            device: device.to_string(),
            seed: cfg.experiment.seed,
            started: now(),
            finished: None,
            resumed: Vec::new(),
            epochs_completed: 0,
            command_line: std::env::args().collect(),
            host: Host {
                os: std::env::consts::OS.to_string(),
                arch: std::env::consts::ARCH.to_string(),
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            parameters: ParamCounts::of(&cfg.model),
            data: DataSummary {
                path: cfg.data.path.clone(),
                train_images: data.train.len(),
                val_images: data.val.len(),
                height: data.train.height,
                width: data.train.width,
                normalisation_mean: data.mean,
                normalisation_std: data.std,
                class_weights: data.class_weights.clone(),
                depth_normalisation: data.depth,
            },
            task: cfg.model.task,
            loss: cfg.training.loss.resolve(cfg.model.task),
            best: None,
            best_score: None,
            error: None,
        }
    }

    /// `dir/run.json`, if it is there and reads as a record.
    pub fn read(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join(FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The file's text: pretty JSON with its keys sorted, as every run.json
    /// has been written (from a `serde_json` map, which sorts them).
    pub fn to_json(&self) -> Result<String> {
        let map = serde_json::to_value(self)?;
        Ok(serde_json::to_string_pretty(&map)? + "\n")
    }

    /// Running again, on `device`, from the end of epoch `epoch`.
    pub fn resume(&mut self, epoch: usize, device: &str) {
        self.status = Status::Running;
        self.device = device.to_string();
        self.resumed.push(Resumption {
            at: now(),
            from_epoch: epoch,
        });
    }

    /// Finished, interrupted or failed (with the reason), as `outcome` says.
    pub fn finish(&mut self, outcome: &Result<()>) {
        self.finished = Some(now());
        self.status = match outcome {
            Ok(()) => Status::Finished,
            Err(e) if matches!(e.downcast_ref::<Failure>(), Some(Failure::Interrupted(_))) => {
                Status::Interrupted
            }
            Err(_) => Status::Failed,
        };
        if let Err(e) = outcome {
            self.error = Some(format!("{e:#}"));
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// What `git ARGS` prints, trimmed; None where git fails.
pub(crate) fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed run.json reads as a record and writes back the bytes
    /// it gives as an untyped JSON value: the record keeps the file's names,
    /// types and key order. (serde_json may read a float's last digit
    /// differently from how it was written, the same way for both.)
    #[test]
    fn committed_records_write_back_as_untyped_json_does() {
        let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let files: Vec<PathBuf> = walkdir::WalkDir::new(results)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() == FILE)
            .map(|e| e.into_path())
            .collect();
        assert!(!files.is_empty(), "no committed run.json");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let record: Provenance = serde_json::from_str(&text).unwrap();
            let untyped: serde_json::Value = serde_json::from_str(&text).unwrap();
            let expected = serde_json::to_string_pretty(&untyped).unwrap() + "\n";
            assert_eq!(record.to_json().unwrap(), expected, "{}", path.display());
        }
    }
}
