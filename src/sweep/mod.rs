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
mod manifest;
mod prepare;
pub mod slurm;
pub mod spec;
mod state;

pub use manifest::{Manifest, ManifestPoint, MANIFEST};
pub use prepare::prepare_data;
pub use state::{state, State};

use anyhow::Result;
use spec::Sweep;
use std::path::Path;

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
