//! What to probe and how hard: the studies, their levels and counts.

use crate::config::Task;
use crate::error::Failure;
use crate::predict::{Checkpoint, SplitName};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

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
