//! Runs grouped for the report: the seeds of one experiment make a
//! configuration (a [`Group`]), and configurations that differ only in the
//! architecture and the implicit term make a [`Study`]; and how each
//! configuration is named and coloured in every figure.

use super::figure::{BLUE, PALETTE, VERMILLION};
use crate::config::{Arch, Config, Device, Form, Operator};
use crate::results::RunRecord;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The seeds of one configuration.
#[derive(Debug, Clone)]
pub struct Group {
    /// The experiment name without its `_seedN` suffix.
    pub name: String,
    pub runs: Vec<RunRecord>,
}

/// Configurations that differ only in the network's architecture.
#[derive(Debug, Clone)]
pub struct Study {
    pub name: String,
    pub groups: Vec<Group>,
}

fn strip_seed(name: &str) -> &str {
    match name.rfind("_seed") {
        Some(i) if name[i + 5..].chars().all(|c| c.is_ascii_digit()) && i + 5 < name.len() => {
            &name[..i]
        }
        _ => name,
    }
}

/// A config with the keys that do not change the experiment blanked out.
fn configuration_key(config: &Config) -> String {
    let mut c = config.clone();
    c.experiment.name.clear();
    c.experiment.seed = 0;
    c.experiment.device = Device::Cpu;
    c.experiment.output_dir = PathBuf::new();
    c.to_toml()
}

/// ... and with the architecture and the implicit term blanked out too.
fn study_key(config: &Config) -> String {
    let mut c = config.clone();
    c.model.arch = Arch::Imex;
    c.model.alpha = 0.0;
    c.model.operator = Operator::Learned;
    c.model.form = Form::Damped;
    configuration_key(&c)
}

/// Groups runs into studies of configurations of seeds. Within a
/// configuration one run per seed is kept (one with checkpoints, then the
/// one with the most epochs).
pub fn studies(runs: Vec<RunRecord>) -> Vec<Study> {
    let mut groups: BTreeMap<String, Vec<RunRecord>> = BTreeMap::new();
    for run in runs {
        groups
            .entry(configuration_key(&run.config))
            .or_default()
            .push(run);
    }
    let mut by_study: BTreeMap<String, Vec<Group>> = BTreeMap::new();
    for (_, mut runs) in groups {
        runs.sort_by_key(|r| {
            (
                r.config.experiment.seed,
                r.checkpoint("best").is_none(),
                std::cmp::Reverse(r.metrics.rows.len()),
            )
        });
        let before = runs.len();
        runs.dedup_by_key(|r| r.config.experiment.seed);
        if runs.len() < before {
            tracing::info!(
                "{}: {} runs repeat a seed of the same configuration; one per seed is kept",
                strip_seed(runs[0].name()),
                before - runs.len()
            );
        }
        let name = strip_seed(runs[0].name()).to_string();
        by_study
            .entry(study_key(&runs[0].config))
            .or_default()
            .push(Group { name, runs });
    }
    let mut studies: Vec<Study> = by_study
        .into_values()
        .map(|mut groups| {
            groups.sort_by_key(|g| (g.runs[0].config.model.arch != Arch::Imex, g.name.clone()));
            let name = study_name(&groups);
            Study { name, groups }
        })
        .collect();
    studies.sort_by(|a, b| a.name.cmp(&b.name));
    for k in 1..studies.len() {
        if studies[..k].iter().any(|s| s.name == studies[k].name) {
            studies[k].name = format!("{}_{k}", studies[k].name);
        }
    }
    studies
}

/// The groups' common name with the architecture words removed:
/// qtips_imex_small + qtips_resnet_small → qtips_small.
fn study_name(groups: &[Group]) -> String {
    let words: Vec<&str> = groups[0]
        .name
        .split('_')
        .filter(|w| !matches!(*w, "imex" | "imexnet" | "resnet"))
        .collect();
    match words.join("_") {
        name if name.is_empty() => "study".to_string(),
        name => name,
    }
}

/// Colour of a configuration: IMEX blue and ResNet vermillion (as in every
/// figure of the report), further configurations from the palette.
pub(super) fn colour(study: &Study, g: usize) -> plotters::style::RGBColor {
    let arch = study.groups[g].runs[0].config.model.arch;
    let first_of_arch = study.groups[..g]
        .iter()
        .all(|h| h.runs[0].config.model.arch != arch);
    match (arch, first_of_arch) {
        (Arch::Imex, true) => BLUE,
        (Arch::Resnet, true) => VERMILLION,
        _ => PALETTE[(g + 2) % PALETTE.len()],
    }
}

pub(super) fn group_label(study: &Study, g: usize) -> String {
    let group = &study.groups[g];
    let arch = group.runs[0].config.model.arch;
    let same_arch = study
        .groups
        .iter()
        .filter(|h| h.runs[0].config.model.arch == arch)
        .count();
    let mut label = arch.display_name().to_string();
    if same_arch > 1 {
        label = format!("{label} ({})", group.name);
    }
    if group.runs.len() > 1 {
        label = format!("{label}, {} seeds", group.runs.len());
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_suffixes_are_stripped() {
        assert_eq!(strip_seed("qtips_imex_small_seed12"), "qtips_imex_small");
        assert_eq!(strip_seed("qtips_imex_small"), "qtips_imex_small");
        assert_eq!(strip_seed("run_seed"), "run_seed");
        assert_eq!(strip_seed("a_seedling"), "a_seedling");
    }
}
