//! `imex-run CONFIG`: load, prepare, train, record.

use crate::config::{Config, Device};
use crate::data::Prepared;
use crate::device::{dispatch, resolve, Accelerator, BackendTask};
use crate::run::{ExistingRun, Opened, ResumePoint, RunFolder};
use crate::train::train;
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use std::path::PathBuf;

/// How the user asked for the run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub config: PathBuf,
    pub overrides: Vec<String>,
    pub device: Option<Device>,
    pub existing: ExistingRun,
}

/// Trains the experiment; returns the run folder.
pub fn run_experiment(options: &RunOptions) -> Result<PathBuf> {
    let mut cfg = Config::load(&options.config, &options.overrides)?;
    if let Some(device) = options.device {
        cfg.experiment.device = device;
    }
    let accelerator = resolve(cfg.experiment.device)?;
    let data = Prepared::load(&cfg)?;
    tracing::info!(
        "{}: {} on {}, {} train / {} val images of {}×{}",
        cfg.experiment.name,
        cfg.model.arch.display_name(),
        accelerator.label(),
        data.train.len(),
        data.val.len(),
        data.train.height,
        data.train.width
    );
    let (mut run, resume) =
        match RunFolder::open(&cfg, &data, &accelerator.label(), options.existing)? {
            Opened::Ready(run, resume) => (run, resume),
            Opened::AlreadyFinished(dir) => {
                tracing::info!(
                    "{} already holds this finished run (--restart to train it again)",
                    dir.display()
                );
                return Ok(dir);
            }
        };
    let outcome = dispatch(
        accelerator,
        Training {
            cfg: &cfg,
            data: &data,
            run: &mut run,
            resume,
        },
    );
    run.finish(&outcome)?;
    outcome?;
    Ok(run.dir().to_path_buf())
}

struct Training<'a> {
    cfg: &'a Config,
    data: &'a Prepared,
    run: &'a mut RunFolder,
    resume: Option<ResumePoint>,
}

impl BackendTask for Training<'_> {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device, _: Accelerator) -> Result<()> {
        train::<B>(self.cfg, self.data, &device, self.run, self.resume)
    }
}
