//! Reading finished work back: a run's `metrics.csv` as numbers, and whole
//! run folders (config, provenance, checkpoints) found under a results tree.
//! `compare`, `report` and `predict` all start here.

use crate::config::{CheckpointRule, Config};
use crate::error::Failure;
use crate::provenance::Provenance;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Every column of a `metrics.csv`, as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsTable {
    /// The run's name: its folder's name.
    pub name: String,
    pub file: PathBuf,
    pub columns: Vec<String>,
    /// `rows[e][c]`: column c at the e-th recorded epoch.
    pub rows: Vec<Vec<f64>>,
}

impl MetricsTable {
    /// Reads a run folder's or a path's `metrics.csv`; malformed files are
    /// data errors naming the file, the line and the column.
    pub fn read(path: &Path) -> Result<Self> {
        let file = match path.is_dir() {
            true => path.join("metrics.csv"),
            false => path.to_path_buf(),
        };
        let fail = |msg: String| -> anyhow::Error {
            Failure::Data(format!("{}: {msg}", file.display())).into()
        };
        let mut reader = csv::Reader::from_path(&file).map_err(|e| fail(e.to_string()))?;
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| fail(e.to_string()))?
            .iter()
            .map(str::to_string)
            .collect();
        if columns.first().map(String::as_str) != Some("epoch") {
            return Err(fail("the first column is not `epoch`".into()));
        }
        let mut rows = Vec::new();
        for (row, record) in reader.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(|e| fail(format!("line {line}: {e}")))?;
            let values = record
                .iter()
                .zip(&columns)
                .map(|(text, column)| {
                    text.parse::<f64>().map_err(|_| {
                        fail(format!(
                            "line {line}, column `{column}`: expected a number, found {text:?}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            rows.push(values);
        }
        if rows.is_empty() {
            return Err(fail("no epochs recorded".into()));
        }
        let named = if path.is_dir() {
            path
        } else {
            path.parent().unwrap_or(path)
        };
        let name = named.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            name,
            file,
            columns,
            rows,
        })
    }

    pub fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// One column over the epochs; an error naming the file if it is absent.
    pub fn column(&self, column: &str) -> Result<Vec<f64>> {
        let i = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| {
                Failure::Data(format!("{}: no column `{column}`", self.file.display()))
            })?;
        Ok(self.rows.iter().map(|r| r[i]).collect())
    }

    pub fn epochs(&self) -> Vec<usize> {
        self.rows.iter().map(|r| r[0] as usize).collect()
    }

    /// Index of the row the checkpoint rule keeps: the lowest validation or
    /// training loss (the first such epoch on ties, as training keeps it).
    pub fn checkpoint_row(&self, rule: CheckpointRule) -> Result<usize> {
        let column = match rule {
            CheckpointRule::BestValLoss => "val_loss",
            CheckpointRule::LowestTrainLoss => "train_loss",
        };
        let values = self.column(column)?;
        Ok((0..values.len()).fold(0, |best, i| if values[i] < values[best] { i } else { best }))
    }
}

/// A run folder: its resolved config, its metrics and its provenance.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub dir: PathBuf,
    pub config: Config,
    pub metrics: MetricsTable,
    /// `run.json`, where it is there and readable.
    pub provenance: Option<Provenance>,
}

impl RunRecord {
    /// Reads `dir/{config.toml,metrics.csv,run.json}`.
    pub fn read(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.toml");
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            Failure::Data(format!(
                "{}: {e} (is {} a run folder?)",
                config_path.display(),
                dir.display()
            ))
        })?;
        let config = Config::parse(&text, &config_path.display().to_string(), &[])?;
        let metrics = MetricsTable::read(dir)?;
        let provenance = Provenance::read(dir);
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            metrics,
            provenance,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.experiment.name
    }

    /// `checkpoints/{which}.safetensors`, if it was kept.
    pub fn checkpoint(&self, which: &str) -> Option<PathBuf> {
        let path = self
            .dir
            .join("checkpoints")
            .join(format!("{which}.safetensors"));
        path.exists().then_some(path)
    }
}

/// Every run folder under `root` (a folder holding `metrics.csv` and
/// `config.toml`), sorted by path. Runs with no finished epoch yet are
/// skipped with a warning; malformed ones are errors.
pub fn discover(root: &Path) -> Result<Vec<RunRecord>> {
    if !root.is_dir() {
        return Err(Failure::Data(format!("{} is not a folder of runs", root.display())).into());
    }
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name() == "metrics.csv")
        .filter_map(|entry| entry.path().parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("config.toml").exists())
        .collect();
    dirs.sort();
    let mut runs = Vec::new();
    for dir in dirs {
        match RunRecord::read(&dir) {
            Ok(run) => runs.push(run),
            Err(err) if format!("{err:#}").contains("no epochs recorded") => {
                tracing::warn!("skipping {}: no epoch finished yet", dir.display());
            }
            Err(err) => return Err(err),
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_row_follows_the_rule() {
        let table = MetricsTable {
            name: "r".into(),
            file: "r/metrics.csv".into(),
            columns: vec!["epoch".into(), "train_loss".into(), "val_loss".into()],
            rows: vec![
                vec![1.0, 0.9, 0.5],
                vec![2.0, 0.7, 0.4],
                vec![3.0, 0.6, 0.4],
            ],
        };
        assert_eq!(
            table.checkpoint_row(CheckpointRule::BestValLoss).unwrap(),
            1
        );
        assert_eq!(
            table
                .checkpoint_row(CheckpointRule::LowestTrainLoss)
                .unwrap(),
            2
        );
        let err = table.column("val_rmse").unwrap_err();
        assert!(format!("{err}").contains("r/metrics.csv: no column `val_rmse`"));
    }
}
