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

use crate::config::{Config, Task};
use crate::data::{Prepared, Split};
use crate::error::Failure;
use crate::files::write_atomically;
use crate::metrics::{EpochMetrics, SegmentationMetrics};
use crate::model::Network;
use crate::predict::{load, Checkpoint, Loaded, SplitName};
use crate::results::RunRecord;
use anyhow::Result;
use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The backend of every probe: the CPU, with autodiff for input gradients.
pub type AD = Autodiff<Flex>;

/// One of the four studies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Study {
    Perturbation,
    Noise,
    Adversarial,
    ReceptiveField,
}

impl Study {
    pub const ALL: [Study; 4] = [
        Study::Perturbation,
        Study::Noise,
        Study::Adversarial,
        Study::ReceptiveField,
    ];

    /// Whether the study measures a network of `task`: the attacks maximise
    /// a class map's loss and score paper IoU, so they are segmentation's.
    pub fn supports(self, task: Task) -> bool {
        self != Study::Adversarial || task == Task::Segmentation
    }

    pub fn name(self) -> &'static str {
        match self {
            Study::Perturbation => "perturbation",
            Study::Noise => "noise",
            Study::Adversarial => "adversarial",
            Study::ReceptiveField => "receptive-field",
        }
    }
}

/// What to probe and how hard.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Empty: every study the run's task supports.
    pub studies: Vec<Study>,
    #[serde(serialize_with = "checkpoint_name")]
    pub checkpoint: Checkpoint,
    #[serde(serialize_with = "split_name")]
    pub split: SplitName,
    /// Images of the split (the first ones, in evaluation batches) used by
    /// the perturbation, adversarial and receptive-field studies; the noise
    /// study evaluates the whole split.
    pub images: usize,
    /// Relative sizes ‖δ‖/‖x‖ of the random perturbations.
    pub perturbation_sizes: Vec<f64>,
    /// Random perturbations drawn per image and size.
    pub draws: usize,
    /// Power iterations for the largest singular value.
    pub power_iterations: usize,
    /// Noise levels σ, in units of the data's standard deviation (the
    /// normalised input has unit variance over the training split).
    pub noise_levels: Vec<f64>,
    /// L∞ attack sizes ε on the normalised input scale.
    pub attack_sizes: Vec<f64>,
    /// PGD steps (each of size ε/4, from a uniform random start in the ball).
    pub pgd_steps: usize,
    /// The probed image whose PGD attack is kept whole (image, attacked
    /// image, class maps) for the report's figure.
    pub example_image: usize,
    pub seed: u64,
}

fn checkpoint_name<S: serde::Serializer>(c: &Checkpoint, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.name())
}

fn split_name<S: serde::Serializer>(split: &SplitName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(split.name())
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            studies: Vec::new(),
            checkpoint: Checkpoint::Best,
            split: SplitName::Val,
            images: 16,
            perturbation_sizes: vec![1e-4, 1e-3, 1e-2, 1e-1],
            draws: 4,
            power_iterations: 10,
            noise_levels: vec![0.0, 0.05, 0.1, 0.2, 0.5, 1.0],
            attack_sizes: vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            pgd_steps: 10,
            example_image: 3,
            seed: 0,
        }
    }
}

impl Settings {
    /// Refuses empty or negative levels and counts of zero, naming the flag.
    pub fn validate(&self) -> Result<()> {
        let lists = [
            ("--sizes", &self.perturbation_sizes, false),
            ("--sigmas", &self.noise_levels, true),
            ("--epsilons", &self.attack_sizes, false),
        ];
        for (flag, values, zero_allowed) in lists {
            if values.is_empty() {
                return Err(Failure::Config(format!("{flag} needs at least one value")).into());
            }
            if let Some(bad) = values
                .iter()
                .find(|&&v| !v.is_finite() || v < 0.0 || (v == 0.0 && !zero_allowed))
            {
                let expected = if zero_allowed { ">= 0" } else { "> 0" };
                return Err(Failure::Config(format!(
                    "{flag}: {bad} is not a valid level (expected finite values {expected})"
                ))
                .into());
            }
        }
        for (flag, n) in [
            ("--images", self.images),
            ("--draws", self.draws),
            ("--power-iterations", self.power_iterations),
            ("--pgd-steps", self.pgd_steps),
        ] {
            if n == 0 {
                return Err(Failure::Config(format!("{flag} must be at least 1")).into());
            }
        }
        Ok(())
    }

    /// The studies to run on a network of `task`: the chosen ones, or every
    /// one the task supports; a chosen study the task does not support is
    /// refused.
    pub fn studies_for(&self, task: Task, run: &Path) -> Result<Vec<Study>> {
        if self.studies.is_empty() {
            return Ok(Study::ALL
                .into_iter()
                .filter(|s| s.supports(task))
                .collect());
        }
        if let Some(study) = self.studies.iter().find(|s| !s.supports(task)) {
            return Err(Failure::Config(format!(
                "{} is a depth run: the {} study attacks segmentation networks only \
                 (--study perturbation,noise,receptive-field)",
                run.display(),
                study.name()
            ))
            .into());
        }
        Ok(self.studies.clone())
    }
}

/// A trained network and the split it is probed on.
pub struct Subject {
    /// As it evaluates (see [`Network::evaluating`]), on the autodiff backend,
    /// its weights not requiring gradients.
    pub net: Network<AD>,
    /// The same network without autodiff, for forward passes alone.
    pub inference: Network<Flex>,
    pub config: Config,
    pub data: Prepared,
    pub split: SplitName,
    pub epoch: usize,
    /// The run's evaluation batch size.
    pub batch_size: usize,
}

impl Subject {
    /// `run`'s `checkpoint` on `split`; a run without checkpoints is refused
    /// with what to do instead.
    pub fn load(run: &RunRecord, checkpoint: Checkpoint, split: SplitName) -> Result<Self> {
        let Loaded { net, epoch, data } = load::<AD>(run, checkpoint, &Default::default())?;
        let net = net.evaluating().no_grad();
        Ok(Self {
            inference: net.valid(),
            net,
            config: run.config.clone(),
            data,
            split,
            epoch,
            batch_size: run.config.training.eval_batch_size,
        })
    }

    pub fn split(&self) -> &Split {
        match self.split {
            SplitName::Train => &self.data.train,
            SplitName::Val => &self.data.val,
        }
    }

    pub fn task(&self) -> Task {
        self.config.model.task
    }

    /// The normalised images `indices` of the split, [n, channels, H, W].
    pub fn images<B: Backend>(&self, indices: &[usize], device: &B::Device) -> Tensor<B, 4> {
        let split = self.split();
        let values: Vec<f32> = indices
            .iter()
            .flat_map(|&i| split.image(i))
            .copied()
            .collect();
        let shape = [indices.len(), split.channels, split.height, split.width];
        tensor(values, shape, device)
    }

    /// The first `images` images of the split (all if fewer), in evaluation
    /// batches.
    pub fn batches(&self, images: usize) -> Vec<Vec<usize>> {
        let n = images.min(self.split().len());
        (0..n)
            .collect::<Vec<_>>()
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }
}

/// The random stream of one (seed, study, level, batch): independent of the
/// order in which studies and levels run.
pub fn stream(seed: u64, study: Study, level: usize, batch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let study = Study::ALL.iter().position(|&s| s == study).unwrap_or(0) as u64;
    rng.set_stream((study << 48) | ((level as u64) << 24) | batch as u64);
    rng
}

/// Standard normal samples (Box–Muller), `n` of them.
pub fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1]
        let u2: f64 = rng.gen();
        let r = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        out.push((r * angle.cos()) as f32);
        out.push((r * angle.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// A tensor of `shape` from host values.
pub fn tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// ‖t_i‖₂ of every image i of t [N, …].
pub fn image_norms<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    let n = t.dims()[0];
    let per_image: usize = t.dims()[1..].iter().product();
    t.reshape([n, per_image])
        .powi_scalar(2)
        .sum_dim(1)
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float norms")
        .into_iter()
        .map(f64::sqrt)
        .collect()
}

/// The four segmentation metrics of a CSV row.
pub fn metric_values(m: &SegmentationMetrics) -> [f64; 4] {
    [m.loss(), m.pixel_accuracy(), m.mean_iou(), m.paper_iou()]
}

pub const METRIC_COLUMNS: [&str; 4] = ["loss", "pixel_accuracy", "mean_iou", "paper_iou"];

/// The metrics of a CSV row, for either task: segmentation's four
/// ([`METRIC_COLUMNS`]), or the depth metrics of `metrics.csv` (loss, rmse,
/// abs_rel, log10, delta1–3).
pub fn task_metrics(m: &EpochMetrics) -> Vec<(String, f64)> {
    match m {
        EpochMetrics::Segmentation(m) => METRIC_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .zip(metric_values(m))
            .collect(),
        EpochMetrics::Depth(_) => m.named_values(),
    }
}

/// A CSV file in memory: header, then rows.
pub fn csv_bytes(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row)?;
    }
    Ok(writer.into_inner()?)
}

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
        "git_commit": crate::run::git(&["rev-parse", "HEAD"]),
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
