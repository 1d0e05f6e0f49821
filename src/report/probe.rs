//! Figures and a table of `imex-run probe` results (the best checkpoint on
//! the validation split, `RUN/probe-best-val/`): each configuration's mean
//! over the seeds that were probed, with the seeds' range as a band.

use super::curves::{Curve, CurveGrid, CurvePanel};
use super::figure::save;
use super::panels::{Attack, AttackPanels};
use super::propagation::{SensitivityMaps, SensitivityRow};
use super::study::{colour, group_label, Group, Study};
use super::task;
use crate::config::Task;
use crate::results::RunRecord;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the report looks for a run's probe results.
pub const PROBE_DIR: &str = "probe-best-val";

/// The headline levels of the table.
const TABLE_PERTURBATION: f64 = 1e-2;
const TABLE_NOISE: f64 = 0.2;
const TABLE_ATTACK: f64 = 0.1;

type Row = BTreeMap<String, String>;
/// (x, y) points of a line.
type Points = Vec<(f64, f64)>;
/// (x, lowest, highest) over seeds.
type Band = Vec<(f64, f64, f64)>;
/// A line of a panel: label suffix, dashed, which rows.
type Variant<'a> = (&'a str, bool, &'a dyn Fn(&Row) -> bool);

/// The rows of `file` in a run's probe folder; None when it was not probed.
fn rows(run: &crate::results::RunRecord, file: &str) -> Result<Option<Vec<Row>>> {
    let path = run.dir.join(PROBE_DIR).join(file);
    if !path.exists() {
        return Ok(None);
    }
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(String::from).collect();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        out.push(
            header
                .iter()
                .cloned()
                .zip(record.iter().map(String::from))
                .collect(),
        );
    }
    Ok(Some(out))
}

fn number(row: &Row, column: &str) -> f64 {
    row.get(column)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Points (x, y) of every probed seed of `group` from `file`, rows chosen by
/// `keep`; x and y through `x_of` and `y_of`.
fn seed_series(
    group: &Group,
    file: &str,
    keep: &dyn Fn(&Row) -> bool,
    x_of: &dyn Fn(&Row) -> f64,
    y_of: &dyn Fn(&Row) -> f64,
) -> Result<Vec<Points>> {
    let mut series = Vec::new();
    for run in &group.runs {
        if let Some(rows) = rows(run, file)? {
            series.push(
                rows.iter()
                    .filter(|r| keep(r))
                    .map(|r| (x_of(r), y_of(r)))
                    .collect(),
            );
        }
    }
    Ok(series)
}

/// Mean line over seeds (points every seed has) and the min–max band.
fn mean_with_band(series: &[Points]) -> (Points, Option<Band>) {
    let common = series.iter().map(Vec::len).min().unwrap_or(0);
    let (mut mean, mut band) = (Vec::new(), Vec::new());
    for k in 0..common {
        let values: Vec<f64> = series.iter().map(|s| s[k].1).collect();
        let x = series[0][k].0;
        mean.push((x, values.iter().sum::<f64>() / values.len() as f64));
        band.push((
            x,
            values.iter().copied().fold(f64::INFINITY, f64::min),
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ));
    }
    (mean, (series.len() > 1).then_some(band))
}

/// One panel: a line per configuration (and per `variants`: label suffix,
/// dashed, row filter).
#[allow(clippy::too_many_arguments)]
fn panel(
    study: &Study,
    (title, x_label, y_label): (&str, &str, &str),
    file: &str,
    variants: &[Variant],
    x_of: &dyn Fn(&Row) -> f64,
    y_of: &dyn Fn(&Row) -> f64,
    y_range: Option<std::ops::Range<f64>>,
) -> Result<Option<CurvePanel>> {
    let mut curves = Vec::new();
    for g in 0..study.groups.len() {
        for (suffix, dashed, keep) in variants {
            let series = seed_series(&study.groups[g], file, keep, x_of, y_of)?;
            if series.is_empty() {
                continue;
            }
            let (points, band) = mean_with_band(&series);
            curves.push(Curve {
                label: format!("{}{suffix}", probed_label(study, g, series.len())),
                colour: colour(study, g),
                dashed: *dashed,
                points,
                band,
            });
        }
    }
    Ok((!curves.is_empty()).then(|| CurvePanel {
        title: title.to_string(),
        x_label: x_label.to_string(),
        y_label: y_label.to_string(),
        y_range,
        curves,
    }))
}

/// The group's label, with the number of seeds that were probed.
fn probed_label(study: &Study, g: usize, probed: usize) -> String {
    let label = group_label(study, g);
    let base = label.split(", ").next().unwrap_or(&label).to_string();
    match probed {
        1 => base,
        n => format!("{base}, {n} seeds"),
    }
}

fn all(_: &Row) -> bool {
    true
}

/// Whether any run of the study was probed.
pub fn probed(study: &Study) -> bool {
    study
        .groups
        .iter()
        .flat_map(|g| &g.runs)
        .any(|r| r.dir.join(PROBE_DIR).join("probe.json").exists())
}

/// The probe figures of a study and its headline table (.md, .csv).
pub fn probe_figures(study: &Study, out: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let layer = |r: &Row| number(r, "layer") + 1.0;
    let log10 = |v: f64| v.log10();
    let mut figure = |stem: &str, title: &str, panels: Vec<Option<CurvePanel>>| -> Result<()> {
        let panels: Vec<CurvePanel> = panels.into_iter().flatten().collect();
        if !panels.is_empty() {
            let path = out.join(format!("{}_probe_{stem}", study.name));
            files.extend(save(&CurveGrid::new(title, panels), &path)?);
        }
        Ok(())
    };
    let sizes = [1e-4, 1e-3, 1e-2, 1e-1];
    let mut growth = Vec::new();
    for size in sizes {
        let at_size = move |r: &Row| (number(r, "epsilon") - size).abs() < 1e-12 * size;
        growth.push(panel(
            study,
            (
                &format!(
                    "random perturbations of relative size {size:e}: median over images and draws"
                ),
                "layer",
                "log₁₀ amplification",
            ),
            "perturbation.csv",
            &[("", false, &at_size)],
            &layer,
            &|r| log10(number(r, "median")),
            None,
        )?);
    }
    growth.push(panel(
        study,
        (
            "worst direction: σ_max of ∂Y_j/∂x (power iteration), relative gain σ‖x‖/‖Y_j‖",
            "layer",
            "log₁₀ relative gain",
        ),
        "jacobian.csv",
        &[("", false, &all)],
        &layer,
        &|r| log10(number(r, "relative_gain")),
        None,
    )?);
    figure(
        "amplification",
        &format!("{}: how a change of the input grows with depth", study.name),
        growth,
    )?;
    let sigma = |r: &Row| number(r, "sigma");
    let noise_panels = noise_metrics(task(study))
        .into_iter()
        .map(|(column, title, label, range)| {
            panel(
                study,
                (title, "noise σ (in data standard deviations)", label),
                "noise.csv",
                &[("", false, &all)],
                &sigma,
                &|r| number(r, column),
                range,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    figure(
        "noise",
        &format!("{}: additive Gaussian noise", study.name),
        noise_panels,
    )?;
    let fgsm = |r: &Row| r.get("method").is_some_and(|m| m == "fgsm");
    let pgd = |r: &Row| r.get("method").is_some_and(|m| m == "pgd");
    let epsilon = |r: &Row| log10(number(r, "epsilon"));
    let attacks: [Variant; 2] = [(", FGSM", true, &fgsm), (", PGD", false, &pgd)];
    figure(
        "adversarial",
        &format!("{}: L∞ attacks on the normalised input", study.name),
        vec![
            panel(
                study,
                (
                    "paper's IoU under attack: FGSM dashed, PGD solid",
                    "log₁₀ ε (normalised input scale)",
                    "paper IoU",
                ),
                "adversarial.csv",
                &attacks,
                &epsilon,
                &|r| number(r, "paper_iou"),
                Some(0.0..1.0),
            )?,
            panel(
                study,
                (
                    "loss under attack: FGSM dashed, PGD solid",
                    "log₁₀ ε (normalised input scale)",
                    "weighted cross-entropy",
                ),
                "adversarial.csv",
                &attacks,
                &epsilon,
                &|r| number(r, "loss"),
                None,
            )?,
        ],
    )?;
    let centre = |r: &Row| number(r, "position") == 0.0;
    figure(
        "receptive_field",
        &format!(
            "{}: effective receptive field of the centre pixel",
            study.name
        ),
        vec![panel(
            study,
            (
                "share of Σ_c |∂z_c(p)/∂x| within a radius of p (periodic distance)",
                "radius (pixels)",
                "mass fraction",
            ),
            "receptive_field_curve.csv",
            &[("", false, &centre)],
            &|r| number(r, "radius"),
            &|r| number(r, "mass_fraction"),
            Some(0.0..1.0),
        )?],
    )?;
    files.extend(attack_figure(study, out)?);
    files.extend(receptive_field_maps(study, out)?);
    let (markdown, csv) = table(study)?;
    for (extension, text) in [("md", markdown), ("csv", csv)] {
        let path = out.join(format!("{}_probe_table.{extension}", study.name));
        crate::files::write_atomically(&path, text.as_bytes())?;
        files.push(path);
    }
    Ok(files)
}

/// (column of noise.csv, panel title, axis label, fixed y range) of the noise
/// figure's panels, for the study's task.
type NoiseMetric = (
    &'static str,
    &'static str,
    &'static str,
    Option<std::ops::Range<f64>>,
);

fn noise_metrics(task: Task) -> Vec<NoiseMetric> {
    match task {
        Task::Segmentation => vec![
            (
                "paper_iou",
                "paper's IoU under noise",
                "paper IoU",
                Some(0.0..1.0),
            ),
            ("loss", "loss under noise", "weighted cross-entropy", None),
        ],
        Task::Depth => vec![
            (
                "delta1",
                "share of pixels with δ < 1.25 under noise",
                "δ < 1.25",
                Some(0.0..1.0),
            ),
            ("rmse", "RMSE under noise", "RMSE (m)", None),
        ],
    }
}

/// A headline number of the table: its column title, the probe file, which
/// of its rows (the last one kept), and which column.
struct Headline {
    title: &'static str,
    file: &'static str,
    keep: fn(&Row) -> bool,
    column: &'static str,
}

fn near(r: &Row, column: &str, value: f64) -> bool {
    (number(r, column) - value).abs() < 1e-12
}

/// The headline numbers: last layer's median amplification at relative size
/// 1e-2 and σ_max gain, the task's main metric at noise σ = 0.2 (paper IoU;
/// depth: δ < 1.25) and, for segmentation, paper IoU under PGD at ε = 0.1,
/// and the centre pixel's 90% receptive-field radius.
fn headlines(task: Task) -> Vec<Headline> {
    let mut out = vec![
        Headline {
            title: "amplification at the last layer (ε = 1e-2, median)",
            file: "perturbation.csv",
            keep: |r| near(r, "epsilon", TABLE_PERTURBATION),
            column: "median",
        },
        Headline {
            title: "σ_max gain at the last layer",
            file: "jacobian.csv",
            keep: all,
            column: "relative_gain",
        },
    ];
    let at_noise = |r: &Row| near(r, "sigma", TABLE_NOISE);
    out.extend(match task {
        Task::Segmentation => vec![
            Headline {
                title: "paper IoU at noise σ = 0.2",
                file: "noise.csv",
                keep: at_noise,
                column: "paper_iou",
            },
            Headline {
                title: "paper IoU under PGD ε = 0.1",
                file: "adversarial.csv",
                keep: |r| {
                    near(r, "epsilon", TABLE_ATTACK) && r.get("method").is_some_and(|m| m == "pgd")
                },
                column: "paper_iou",
            },
        ],
        Task::Depth => vec![Headline {
            title: "δ < 1.25 at noise σ = 0.2",
            file: "noise.csv",
            keep: at_noise,
            column: "delta1",
        }],
    });
    out.push(Headline {
        title: "90% receptive-field radius (px)",
        file: "receptive_field.csv",
        keep: |r| number(r, "position") == 0.0,
        column: "r90",
    });
    out
}

/// One seed's headline numbers (NaN where it was not probed).
fn headline(run: &crate::results::RunRecord, headlines: &[Headline]) -> Result<Vec<f64>> {
    headlines
        .iter()
        .map(|h| {
            Ok(rows(run, h.file)?
                .and_then(|rows| rows.into_iter().rfind(|r| (h.keep)(r)))
                .map_or(f64::NAN, |r| number(&r, h.column)))
        })
        .collect()
}

/// Markdown and CSV of the headline numbers, mean ± sample std over seeds.
fn table(study: &Study) -> Result<(String, String)> {
    let headlines = headlines(task(study));
    let titles: Vec<&str> = headlines.iter().map(|h| h.title).collect();
    let mut markdown = format!(
        "| network | seeds | {} |\n|{}\n",
        titles.join(" | "),
        " --- |".repeat(titles.len() + 2)
    );
    let mut csv = String::from("network,seeds");
    for c in &titles {
        csv.push_str(&format!(",\"{c} mean\",\"{c} std\""));
    }
    csv.push('\n');
    for (g, group) in study.groups.iter().enumerate() {
        let probed: Vec<Vec<f64>> = group
            .runs
            .iter()
            .filter(|r| r.dir.join(PROBE_DIR).join("probe.json").exists())
            .map(|r| headline(r, &headlines))
            .collect::<Result<_>>()?;
        if probed.is_empty() {
            continue;
        }
        let name = probed_label(study, g, 1);
        markdown.push_str(&format!("| {name} | {} |", probed.len()));
        csv.push_str(&format!("{name},{}", probed.len()));
        for k in 0..headlines.len() {
            let values: Vec<f64> = probed.iter().map(|p| p[k]).collect();
            let stats = super::table::Summary::of(&values);
            markdown.push_str(&format!(" {} |", stats.show(3, 1.0, " ± ")));
            csv.push_str(&format!(
                ",{},{}",
                stats.mean,
                stats.std.unwrap_or(f64::NAN)
            ));
        }
        markdown.push('\n');
        csv.push('\n');
    }
    Ok((markdown, csv))
}

/// The first probed seed of `group` whose probe folder holds `file`.
fn first_with<'a>(group: &'a Group, file: &str) -> Option<&'a RunRecord> {
    group
        .runs
        .iter()
        .find(|r| r.dir.join(PROBE_DIR).join(file).is_file())
}

/// "IMEXnet, seed 0": the group's network and the run's seed.
fn network_and_seed(study: &Study, g: usize, run: &RunRecord) -> String {
    format!(
        "{}, seed {}",
        probed_label(study, g, 1),
        run.config.experiment.seed
    )
}

/// One image's PGD attack on each network (its first probed seed):
/// `STUDY_probe_attack_example`.
fn attack_figure(study: &Study, out: &Path) -> Result<Vec<PathBuf>> {
    let mut attacks = Vec::new();
    for (g, group) in study.groups.iter().enumerate() {
        if let Some(run) = first_with(group, ATTACK_EXAMPLE) {
            let path = run.dir.join(PROBE_DIR).join(ATTACK_EXAMPLE);
            attacks.push(Attack::read(&path, &network_and_seed(study, g, run))?);
        }
    }
    if attacks.is_empty() {
        return Ok(Vec::new());
    }
    let path = out.join(format!("{}_probe_attack_example", study.name));
    save(&AttackPanels::new(&attacks), &path)
}

/// The effective receptive fields of each network (its first probed seed)
/// on a log scale, in the propagation figure's layout:
/// `STUDY_probe_receptive_field_maps`.
fn receptive_field_maps(study: &Study, out: &Path) -> Result<Vec<PathBuf>> {
    let mut rows = Vec::new();
    let mut geometry = None;
    for (g, group) in study.groups.iter().enumerate() {
        let Some(run) = first_with(group, RECEPTIVE_FIELD_MAPS) else {
            continue;
        };
        let path = run.dir.join(PROBE_DIR).join(RECEPTIVE_FIELD_MAPS);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let file = npyz::NpyFile::new(&bytes[..])
            .with_context(|| format!("reading {}", path.display()))?;
        let (positions, height, width) = match file.shape() {
            &[p, h, w] => (p as usize, h as usize, w as usize),
            shape => anyhow::bail!("{}: shape {shape:?}, not [positions, H, W]", path.display()),
        };
        let values: Vec<f32> = file.into_vec()?;
        let summary = self::rows(run, "receptive_field.csv")?.unwrap_or_default();
        let pixels: Vec<(usize, usize)> = summary
            .iter()
            .map(|r| (number(r, "row") as usize, number(r, "column") as usize))
            .collect();
        if pixels.len() != positions {
            anyhow::bail!(
                "{}: {positions} maps, but receptive_field.csv lists {} pixels",
                path.display(),
                pixels.len()
            );
        }
        rows.push(SensitivityRow {
            label: network_and_seed(study, g, run),
            colour: colour(study, g),
            maps: values.chunks(height * width).map(<[f32]>::to_vec).collect(),
            r50: summary.iter().map(|r| number(r, "r50")).collect(),
        });
        geometry = Some((pixels, height, width, &run.config.model));
    }
    let Some((positions, height, width, model)) = geometry else {
        return Ok(Vec::new());
    };
    let figure = SensitivityMaps {
        title: format!(
            "{}: effective receptive fields Σ_c |∂z_c(p)/∂x|, mean over the probed images",
            study.name
        ),
        width,
        height,
        positions,
        rows,
        explicit_radius: explicit_radius(model),
    };
    let path = out.join(format!("{}_probe_receptive_field_maps", study.name));
    save(&figure, &path)
}

/// How far the network's 3×3 steps alone reach: one pixel per opening layer
/// (the first of a block), two per residual layer (K then Kᵀ).
pub fn explicit_radius(model: &crate::config::ModelSection) -> usize {
    model
        .depths
        .iter()
        .map(|&d| 1 + 2 * d.saturating_sub(1))
        .sum()
}

/// The files of a probe folder the report's image figures read.
const ATTACK_EXAMPLE: &str = "adversarial_example.safetensors";
const RECEPTIVE_FIELD_MAPS: &str = "receptive_field.npy";
