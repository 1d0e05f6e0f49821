//! `imex-run report`: every table and figure of the study, from the run
//! folders alone.
//!
//! Runs are grouped into *configurations* (identical resolved configs but for
//! name, seed, device and output folder: the seeds of one experiment) and
//! configurations into *studies* (identical but for the architecture and the
//! implicit term: IMEXnet against its ResNet baseline).

pub mod curves;
pub mod figure;
pub mod panels;
pub mod probe;
pub mod propagation;
pub mod stability;
mod study;
pub mod sweep;
pub mod table;

pub use study::{studies, Group, Study};

use crate::config::{Arch, Task};
use crate::error::Failure;
use crate::files::write_atomically;
use crate::predict::{predict, predict_depth, Checkpoint, DepthPrediction, Prediction, SplitName};
use crate::results::discover;
use anyhow::Result;
use curves::{Curve, CurveGrid, CurvePanel};
use figure::save;
use std::path::{Path, PathBuf};
use study::{colour, group_label};

/// What `report` wrote, and what it could not draw.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    pub skipped: Vec<String>,
}

/// (epoch, value).
type Points = Vec<(f64, f64)>;
/// (epoch, lowest, highest) over seeds.
type Band = Vec<(f64, f64, f64)>;

/// Mean over seeds per epoch (the epochs every seed reached), and the
/// min–max band when there are several seeds.
fn mean_curve(group: &Group, column: &str) -> Result<(Points, Option<Band>)> {
    let series = group
        .runs
        .iter()
        .map(|r| r.metrics.column(column))
        .collect::<Result<Vec<_>>>()?;
    let epochs = group.runs[0].metrics.epochs();
    let common = series.iter().map(Vec::len).min().unwrap_or(0);
    let mut mean = Vec::new();
    let mut band = Vec::new();
    for e in 0..common {
        let values: Vec<f64> = series.iter().map(|s| s[e]).collect();
        let m = values.iter().sum::<f64>() / values.len() as f64;
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        mean.push((epochs[e] as f64, m));
        band.push((epochs[e] as f64, lo, hi));
    }
    Ok((mean, (series.len() > 1).then_some(band)))
}

/// The training (dashed) and validation (solid) curves of one metric.
fn curve_panel(
    study: &Study,
    metric: &str,
    label: &str,
    y_range: Option<std::ops::Range<f64>>,
) -> Result<CurvePanel> {
    let mut curves = Vec::new();
    for g in 0..study.groups.len() {
        for (split, dashed) in [("train", true), ("val", false)] {
            let (points, band) = mean_curve(&study.groups[g], &format!("{split}_{metric}"))?;
            curves.push(Curve {
                label: format!(
                    "{}, {}",
                    group_label(study, g),
                    if dashed { "training" } else { "validation" }
                ),
                colour: colour(study, g),
                dashed,
                points,
                band,
            });
        }
    }
    Ok(CurvePanel {
        x_label: "epoch".into(),
        title: match study.groups.iter().any(|g| g.runs.len() > 1) {
            true => format!("{label}: training (dashed), validation (solid); band: seed range"),
            false => format!("{label}: training (dashed) and validation (solid)"),
        },
        y_label: label.to_string(),
        y_range,
        curves,
    })
}

/// (metric, axis label, fixed y range) of one curve figure.
type CurveSpec = (&'static str, &'static str, Option<std::ops::Range<f64>>);

/// The curve figures of a study: Q-tips loss, mean IoU and accuracy; depth
/// loss, RMSE and δ < 1.25.
fn curve_specs(study: &Study) -> Result<Vec<CurveSpec>> {
    if task(study) == Task::Depth {
        return Ok(vec![
            ("loss", "loss", None),
            ("rmse", "RMSE (m)", None),
            ("delta1", "share of pixels with δ < 1.25", Some(0.0..1.0)),
        ]);
    }
    let max_loss = study
        .groups
        .iter()
        .flat_map(|g| &g.runs)
        .flat_map(|r| ["train_loss", "val_loss"].map(|c| r.metrics.column(c)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
    // The authors plotted the loss on [0, 1.5].
    Ok(vec![
        (
            "loss",
            "weighted cross-entropy",
            (max_loss <= 1.5).then_some(0.0..1.5),
        ),
        ("mean_iou", "mean IoU over classes", Some(0.0..1.0)),
        ("pixel_accuracy", "pixel accuracy", None),
    ])
}

fn task(study: &Study) -> Task {
    study.groups[0].runs[0].config.model.task
}

/// Metric against epoch, one file per metric.
fn curve_figures(study: &Study, out: &Path) -> Result<Vec<PathBuf>> {
    let dataset = match task(study) {
        Task::Segmentation => "Q-tips",
        Task::Depth => "depth",
    };
    let mut files = Vec::new();
    for (metric, label, range) in curve_specs(study)? {
        let panel = curve_panel(study, metric, label, range)?;
        let title = format!("{dataset}, {}: {label} by epoch", study.name);
        files.extend(save(
            &CurveGrid::new(&title, vec![panel]),
            &out.join(format!("{}_{metric}", study.name)),
        )?);
    }
    Ok(files)
}

/// The depth figure (RGB | truth | ResNet | IMEX, as on the slides) from the
/// first seed of every configuration.
fn depth_figure(study: &Study, out: &Path, images: &[usize]) -> Result<Vec<PathBuf>> {
    let mut predictions = study
        .groups
        .iter()
        .map(|g| predict_depth(&g.runs[0], Checkpoint::Best, SplitName::Val, images))
        .collect::<Result<Vec<DepthPrediction>>>()?;
    predictions.sort_by_key(|p| p.source.arch == Arch::Imex);
    save(
        &panels::DepthPanels::new(&predictions),
        &out.join(format!("{}_depth", study.name)),
    )
}

/// Predictions and probability maps of the first seed of every configuration.
fn prediction_figures(study: &Study, out: &Path, images: &[usize]) -> Result<Vec<PathBuf>> {
    let predictions = study
        .groups
        .iter()
        .map(|g| predict(&g.runs[0], Checkpoint::Best, SplitName::Val, images))
        .collect::<Result<Vec<Prediction>>>()?;
    let mut files = save(
        &panels::PredictionPanels::new(&predictions),
        &out.join(format!("{}_predictions", study.name)),
    )?;
    files.extend(save(
        &panels::ProbabilityPanels::new(&predictions),
        &out.join(format!("{}_probabilities", study.name)),
    )?);
    Ok(files)
}

/// Regenerates every table and figure from the runs under `results` into
/// `out`. The runs of a sweep (a folder with `sweep.json`) get the sweep's
/// figures ([`sweep::draw`], of `sweep_metric` or its default) instead of
/// joining the studies.
pub fn report(
    results: &Path,
    out: &Path,
    images: &[usize],
    sweep_metric: Option<&str>,
) -> Result<Written> {
    let mut runs = discover(results)?;
    let sweeps = sweep::take_sweeps(results, &mut runs)?;
    if runs.is_empty() && sweeps.is_empty() {
        return Err(Failure::Data(format!(
            "no run folders (metrics.csv with config.toml) under {}",
            results.display()
        ))
        .into());
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Output(format!("cannot create {}: {e}", out.display())))?;
    let studies = studies(runs);
    let mut written = Written::default();
    for s in &sweeps {
        let (files, skipped) = sweep::draw(s, out, sweep_metric)?;
        written.files.extend(files);
        written.skipped.extend(skipped);
    }
    let (mut rows, mut depth_rows) = (Vec::new(), Vec::new());
    for study in &studies {
        for group in &study.groups {
            match task(study) {
                Task::Segmentation => rows.push(table::Row::of(&study.name, group)?),
                Task::Depth => depth_rows.push(table::DepthRow::of(group)?),
            }
        }
        written.files.extend(curve_figures(study, out)?);
        if probe::probed(study) {
            written.files.extend(probe::probe_figures(study, out)?);
        }
        let missing: Vec<String> = study
            .groups
            .iter()
            .filter(|g| g.runs[0].checkpoint("best").is_none())
            .map(|g| g.runs[0].dir.display().to_string())
            .collect();
        if missing.is_empty() {
            written.files.extend(match task(study) {
                Task::Segmentation => prediction_figures(study, out, images)?,
                Task::Depth => depth_figure(study, out, images)?,
            });
        } else {
            written.skipped.push(format!(
                "{}: predictions and probability maps need the trained checkpoints of {} \
                 (they are not committed; train the runs, e.g. `make reproduce-small`)",
                study.name,
                missing.join(", ")
            ));
        }
    }
    let mut tables = Vec::new();
    if !rows.is_empty() {
        let texts = [
            table::markdown(&rows),
            table::latex(&rows),
            table::csv(&rows)?,
        ];
        tables.push(("qtips_table", texts));
    }
    if !depth_rows.is_empty() {
        tables.push(("depth_table", table::depth_tables(&depth_rows)?));
    }
    for (stem, texts) in tables {
        for (extension, text) in ["md", "tex", "csv"].iter().zip(texts) {
            let path = out.join(format!("{stem}.{extension}"));
            write_atomically(&path, text.as_bytes())?;
            written.files.push(path);
        }
    }
    written.files.extend(save(
        &stability::StabilityFigure,
        &out.join("stability_regions"),
    )?);
    written.files.extend(save(
        &propagation::PropagationFigure::new(Default::default()),
        &out.join("propagation"),
    )?);
    Ok(written)
}
