//! What to probe and how hard: the studies, their levels and counts.

use crate::error::Failure;
use crate::predict::{Checkpoint, SplitName};
use anyhow::Result;
use serde::Serialize;

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
}

/// What to probe and how hard.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
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
            studies: Study::ALL.to_vec(),
            checkpoint: Checkpoint::Best,
            split: SplitName::Val,
            images: 16,
            perturbation_sizes: vec![1e-4, 1e-3, 1e-2, 1e-1],
            draws: 4,
            power_iterations: 10,
            noise_levels: vec![0.0, 0.05, 0.1, 0.2, 0.5, 1.0],
            attack_sizes: vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            pgd_steps: 10,
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
        if self.studies.is_empty() {
            return Err(Failure::Config("no study chosen".into()).into());
        }
        Ok(())
    }
}
