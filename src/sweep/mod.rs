//! `imex-run sweep FILE`: many experiments from one file (a grid over `--set`
//! keys), run here (`--jobs N`), one at a time (`--index I`, what a cluster
//! task calls) or as a Slurm job array (`--slurm`, `--submit`, `--status`).
//!
//! Every point is an ordinary run folder under the sweep folder
//! `OUTPUT_DIR/NAME/`, which also holds `sweep.json` (the points and their
//! values, what `imex-run report` recognises a sweep by), `logs/` and the
//! batch script. The single-run machinery does the bookkeeping: a finished
//! run is not trained again and an interrupted one resumes, so a sweep is
//! rerun simply by running the same command again.

pub mod local;
pub mod slurm;
pub mod spec;

use crate::error::Failure;
use crate::files::write_atomically;
use crate::lock;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spec::{Point, Sweep};
use std::path::{Path, PathBuf};

/// `sweep.json`: the sweep as `report` needs it, written into the sweep folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub sweep: String,
    /// The sweep file and the base experiment, as given.
    pub file: PathBuf,
    pub base: PathBuf,
    /// The varied keys, in the order of the run names.
    pub keys: Vec<String>,
    pub points: Vec<ManifestPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPoint {
    pub index: usize,
    /// The run name; the run folder is the sweep folder joined with it.
    pub name: String,
    /// 0: the main grid; k: the k-th `[[sweep.extra]]`.
    pub block: usize,
    pub label: Option<String>,
    /// Varied key → value.
    pub values: serde_json::Map<String, Value>,
}

/// The name of the manifest in a sweep folder.
pub const MANIFEST: &str = "sweep.json";

impl Manifest {
    pub fn of(sweep: &Sweep) -> Self {
        Manifest {
            sweep: sweep.name.clone(),
            file: sweep.file.clone(),
            base: sweep.base.clone(),
            keys: sweep.keys.clone(),
            points: sweep
                .points
                .iter()
                .map(|p| ManifestPoint {
                    index: p.index,
                    name: p.name.clone(),
                    block: p.block,
                    label: p.label.clone(),
                    values: p
                        .values
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
                        .collect(),
                })
                .collect(),
        }
    }

    /// Writes `sweep.json` into the sweep folder (creating it and `logs/`),
    /// unless it already says the same: array tasks all call this at once.
    pub fn write(sweep: &Sweep) -> Result<()> {
        let logs = sweep.dir.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| Failure::Output(format!("cannot create {}: {e}", logs.display())))?;
        let text = serde_json::to_string_pretty(&Manifest::of(sweep))? + "\n";
        let path = sweep.dir.join(MANIFEST);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            write_atomically(&path, text.as_bytes())?;
        }
        Ok(())
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Data(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            Failure::Data(format!("{}: not a sweep manifest: {e}", path.display())).into()
        })
    }
}

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

/// Generates the Q-tips sets the points need and lack, once each, before
/// any point starts: points started together would each generate the same
/// folder and all but the first would find it taken.
pub fn prepare_data(sweep: &Sweep) -> Result<()> {
    let mut seen: Vec<&crate::config::DataSection> = Vec::new();
    for point in &sweep.points {
        let data = &point.config.data;
        let qtips = data.dataset == crate::config::Dataset::Qtips;
        if qtips && data.generate && !data.path.exists() && !seen.contains(&data) {
            seen.push(data);
            crate::data::Prepared::load(&point.config)?;
        }
    }
    Ok(())
}

/// What `imex-run sweep` was asked to do.
#[derive(Debug, Clone)]
pub enum Mode {
    /// List the points and their run folders; run nothing.
    DryRun,
    /// Run every unfinished point here, `jobs` at a time.
    Local { jobs: usize },
    /// Run point `index` in this process.
    Index(usize),
    /// Write the batch script; with `submit`, also hand it to `sbatch`.
    Slurm { submit: bool },
    /// Report each point's state (and Slurm's, when it answers).
    Status,
}

/// `imex-run sweep FILE ...`.
pub fn command(file: &Path, mode: Mode) -> Result<()> {
    let sweep = Sweep::load(file)?;
    match mode {
        Mode::DryRun => {
            print!("{}", listing(&sweep));
            Ok(())
        }
        Mode::Local { jobs } => local::run(&sweep, jobs),
        Mode::Index(index) => {
            let point = sweep.point(index)?;
            Manifest::write(&sweep)?;
            crate::interrupt::install();
            let options = crate::experiment::RunOptions {
                config: sweep.base.clone(),
                overrides: point.overrides.clone(),
                device: None,
                existing: crate::run::ExistingRun::Continue,
            };
            let dir = crate::experiment::run_experiment(&options)?;
            println!("run folder: {}", dir.display());
            Ok(())
        }
        Mode::Slurm { submit } => slurm::write_and_submit(&sweep, submit),
        Mode::Status => slurm::status(&sweep),
    }
}

/// The points, their values and run folders (`--dry-run`).
pub fn listing(sweep: &Sweep) -> String {
    let extras = sweep.points.iter().filter(|p| p.block > 0).count();
    let mut out = format!(
        "sweep {}: {} points{} from {}, base {}, in {}\n",
        sweep.name,
        sweep.points.len(),
        match extras {
            0 => String::new(),
            n => format!(" ({n} of them from [[sweep.extra]])"),
        },
        sweep.file.display(),
        sweep.base.display(),
        sweep.dir.display()
    );
    for p in &sweep.points {
        out.push_str(&format!(
            "{:>5}  {}  {}\n",
            p.index,
            p.dir().display(),
            p.describe()
        ));
    }
    out
}

/// The exit code of a failed point, as the [`Failure`] it stands for.
pub(crate) fn failure_of_code(code: i32, message: String) -> anyhow::Error {
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
