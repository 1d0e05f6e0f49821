//! A sweep's runs found and pooled: the points of one block that differ only
//! in their seed make one cell, the metric at each run's kept checkpoint.

use crate::provenance::Status;
use crate::report::table::Summary;
use crate::results::RunRecord;
use crate::sweep::{Manifest, ManifestPoint, MANIFEST};
use anyhow::Result;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The key averaged over rather than drawn.
pub(super) const SEED: &str = "experiment.seed";

/// A sweep's manifest and the run folders found for its points.
#[derive(Debug, Clone)]
pub struct SweepRuns {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// One per manifest point: its run, if it has a finished epoch.
    pub runs: Vec<Option<RunRecord>>,
}

/// Every `sweep.json` under `root`, with the runs of its points taken out
/// of `runs` (what is left are the ordinary studies' runs).
pub fn take_sweeps(root: &Path, runs: &mut Vec<RunRecord>) -> Result<Vec<SweepRuns>> {
    let mut manifests: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() == MANIFEST)
        .map(|e| e.path().to_path_buf())
        .collect();
    manifests.sort();
    let mut sweeps = Vec::new();
    for path in manifests {
        let manifest = Manifest::read(&path)?;
        let dir = path.parent().unwrap_or(root).to_path_buf();
        let found = manifest
            .points
            .iter()
            .map(|p| {
                let run_dir = dir.join(&p.name);
                runs.iter()
                    .position(|r| r.dir == run_dir)
                    .map(|i| runs.remove(i))
            })
            .collect();
        sweeps.push(SweepRuns {
            dir,
            manifest,
            runs: found,
        });
    }
    Ok(sweeps)
}

/// The default metric: the paper's IoU for segmentation, RMSE for depth.
pub fn default_metric(sweep: &SweepRuns) -> &'static str {
    let depth = sweep
        .runs
        .iter()
        .flatten()
        .any(|r| r.config.model.task == crate::config::Task::Depth);
    match depth {
        true => "val_rmse",
        false => "val_paper_iou",
    }
}

/// A value as a label: numbers as written (`0.5`, `4`), strings bare.
pub fn show_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

pub(super) fn finished(run: &RunRecord) -> bool {
    run.provenance
        .as_ref()
        .is_some_and(|p| p.status == Status::Finished)
}

/// The value of `column` at the run's kept checkpoint.
pub(super) fn at_kept(run: &RunRecord, column: &str) -> Result<f64> {
    let row = run.metrics.checkpoint_row(run.config.training.checkpoint)?;
    Ok(run.metrics.column(column)?[row])
}

/// Points of one block with the same values but for the seed.
#[derive(Debug, Clone)]
pub struct Cell {
    pub block: usize,
    /// (key, value) without the seed.
    pub values: Vec<(String, Value)>,
    /// The metric of each finished seed.
    pub seeds: Vec<f64>,
    /// Points of the cell in the sweep (finished or not).
    pub points: usize,
}

impl Cell {
    pub fn summary(&self) -> Option<Summary> {
        (!self.seeds.is_empty()).then(|| Summary::of(&self.seeds))
    }

    pub(super) fn value(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

fn without_seed(point: &ManifestPoint, keys: &[String]) -> Vec<(String, Value)> {
    keys.iter()
        .filter(|k| k.as_str() != SEED)
        .filter_map(|k| point.values.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// The sweep's cells (seeds pooled), in manifest order.
pub fn cells(sweep: &SweepRuns, metric: &str) -> Result<Vec<Cell>> {
    let keys = &sweep.manifest.keys;
    let mut cells: Vec<Cell> = Vec::new();
    for (point, run) in sweep.manifest.points.iter().zip(&sweep.runs) {
        let values = without_seed(point, keys);
        let k = match cells
            .iter()
            .position(|c| c.block == point.block && c.values == values)
        {
            Some(k) => k,
            None => {
                cells.push(Cell {
                    block: point.block,
                    values,
                    seeds: Vec::new(),
                    points: 0,
                });
                cells.len() - 1
            }
        };
        cells[k].points += 1;
        if let Some(run) = run.as_ref().filter(|r| finished(r)) {
            cells[k].seeds.push(at_kept(run, metric)?);
        }
    }
    Ok(cells)
}

/// The varied keys of a block (its values differ between its cells), seed aside.
pub(super) fn varied(cells: &[Cell], block: usize, keys: &[String]) -> Vec<String> {
    let of_block: Vec<&Cell> = cells.iter().filter(|c| c.block == block).collect();
    keys.iter()
        .filter(|k| k.as_str() != SEED)
        .filter(|k| {
            let mut seen: Vec<&Value> = Vec::new();
            for c in &of_block {
                if let Some(v) = c.value(k) {
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
            }
            seen.len() > 1
        })
        .cloned()
        .collect()
}

/// A block's name in legends: its label, else its constant values.
pub(super) fn block_name(sweep: &SweepRuns, cells: &[Cell], block: usize) -> String {
    if let Some(label) = sweep
        .manifest
        .points
        .iter()
        .find(|p| p.block == block)
        .and_then(|p| p.label.clone())
    {
        return label;
    }
    if block == 0 {
        return "grid".to_string();
    }
    let varied = varied(cells, block, &sweep.manifest.keys);
    cells
        .iter()
        .find(|c| c.block == block)
        .map(|c| {
            c.values
                .iter()
                .filter(|(k, _)| !varied.contains(k))
                .map(|(k, v)| format!("{k}={}", show_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The distinct values of `key` among `cells`, in order of appearance.
pub(super) fn levels(cells: &[&Cell], key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for c in cells {
        if let Some(v) = c.value(key) {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_show_as_written() {
        assert_eq!(show_value(&json!(0.5)), "0.5");
        assert_eq!(show_value(&json!(4.0)), "4");
        assert_eq!(show_value(&json!(3)), "3");
        assert_eq!(show_value(&json!("resnet")), "resnet");
        assert_eq!(show_value(&json!([8, 16])), "[8,16]");
    }
}
