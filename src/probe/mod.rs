//! `imex-run probe RUN`: the stability the talk promises, measured on a
//! trained network rather than on the scalar test equation.
//!
//! - [`perturbation`]: how a small random change of the input grows through
//!   the layers, and the worst direction (largest singular value of the
//!   input-to-layer Jacobian);
//! - [`noise`]: the metrics under additive Gaussian noise;
//! - [`adversarial`]: the metrics under FGSM and PGD attacks on the run's own
//!   loss, and per image the smallest attack that halves its paper IoU;
//! - [`receptive_field`]: |∂z_c(p)/∂x|, how far the output at one pixel looks.
//!
//! The network evaluates as in training's evaluation (kernels projected, the
//! run's BN semantics and evaluation batches: the paper's batch-statistics BN
//! sees batches of `training.eval_batch_size`), and every random draw comes
//! from a ChaCha stream of (seed, study, level, batch), so a probe is
//! reproducible. Depth runs get every study but the adversarial one (an
//! attack on a class map's loss), with the depth metrics.
//!
//! Input gradients only: the probed network's weights do not require
//! gradients, so a backward pass skips the kernels' gradients.

pub mod adversarial;
pub mod noise;
pub mod perturbation;
pub mod receptive_field;
mod rows;
mod sampling;
mod settings;
mod subject;

pub use rows::{csv_bytes, metric_values, task_metrics, METRIC_COLUMNS};
pub use sampling::{gaussian, image_norms, stream, tensor};
pub use settings::{Settings, Study};
pub use subject::{Subject, AD};

use crate::error::Failure;
use crate::files::write_atomically;
use crate::results::RunRecord;
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Runs the chosen studies on `run` and writes one CSV per study (and the
/// receptive-field maps) plus `probe.json` into `out`, only once every study
/// has finished: a failed probe leaves nothing half-written.
pub fn probe(
    run: &RunRecord,
    settings: &Settings,
    out: &Path,
    mut progress: impl FnMut(&str),
) -> Result<Vec<PathBuf>> {
    settings.validate()?;
    let settings = &Settings {
        studies: settings.studies_for(run.config.model.task, &run.dir)?,
        ..settings.clone()
    };
    let subject = Subject::load(run, settings.checkpoint, settings.split)?;
    let probed = settings.images.min(subject.split().len());
    if settings.studies.contains(&Study::Adversarial) && settings.example_image >= probed {
        return Err(Failure::Config(format!(
            "--example-image {} is not one of the {probed} probed images (--images)",
            settings.example_image
        ))
        .into());
    }
    let started = std::time::Instant::now();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut seconds = serde_json::Map::new();
    for &study in &settings.studies {
        progress(study.name());
        let clock = std::time::Instant::now();
        match study {
            Study::Perturbation => files.extend(perturbation::run(&subject, settings)?),
            Study::Noise => files.extend(noise::run(&subject, settings)?),
            Study::Adversarial => files.extend(adversarial::run(&subject, settings)?),
            Study::ReceptiveField => files.extend(receptive_field::run(&subject, settings)?),
        }
        seconds.insert(
            study.name().to_string(),
            json!(clock.elapsed().as_secs_f64()),
        );
    }
    let record = json!({
        "run": run.name(),
        "run_dir": run.dir,
        "checkpoint": settings.checkpoint.name(),
        "epoch": subject.epoch,
        "split": settings.split.name(),
        "images_in_split": subject.split().len(),
        "eval_batch_size": subject.batch_size,
        "batchnorm": run.config.model.batchnorm,
        "arch": run.config.model.arch,
        "task": run.config.model.task,
        "settings": settings,
        "seconds": seconds,
        "total_seconds": started.elapsed().as_secs_f64(),
        "imex_run_version": env!("CARGO_PKG_VERSION"),
        "git_commit": crate::provenance::git(&["rev-parse", "HEAD"]),
        "command_line": std::env::args().collect::<Vec<_>>(),
    });
    files.push((
        "probe.json".into(),
        (serde_json::to_string_pretty(&record)? + "\n").into_bytes(),
    ));
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Output(format!("cannot create {}: {e}", out.display())))?;
    let mut written = Vec::new();
    for (name, bytes) in files {
        let path = out.join(name);
        write_atomically(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}
