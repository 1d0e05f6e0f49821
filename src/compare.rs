//! `imex-run compare A B …`: final and best validation metrics of several
//! runs side by side, with differences from the first.

use crate::error::Failure;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Columns compared, as (CSV column, label).
const COLUMNS: [(&str, &str); 4] = [
    ("val_loss", "val loss"),
    ("val_mean_iou", "val mIoU"),
    ("val_paper_iou", "val paper IoU"),
    ("val_pixel_accuracy", "val accuracy"),
];

/// One run's per-epoch values of [`COLUMNS`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    pub name: String,
    pub epochs: Vec<usize>,
    /// values[c][e]: column c of [`COLUMNS`] at epoch index e.
    pub values: Vec<Vec<f64>>,
}

impl RunMetrics {
    /// Reads a run folder or its `metrics.csv`; malformed files are data
    /// errors naming the file, the line and the column.
    pub fn read(path: &Path) -> Result<Self> {
        let file: PathBuf = if path.is_dir() {
            path.join("metrics.csv")
        } else {
            path.to_path_buf()
        };
        let fail = |msg: String| -> anyhow::Error {
            Failure::Data(format!("{}: {msg}", file.display())).into()
        };
        let mut reader = csv::Reader::from_path(&file).map_err(|e| fail(e.to_string()))?;
        let header = reader.headers().map_err(|e| fail(e.to_string()))?.clone();
        let index = |column: &str| {
            header
                .iter()
                .position(|h| h == column)
                .ok_or_else(|| fail(format!("no column `{column}`")))
        };
        let epoch_index = index("epoch")?;
        let indices = COLUMNS
            .iter()
            .map(|(c, _)| index(c))
            .collect::<Result<Vec<_>>>()?;
        let (mut epochs, mut values) = (Vec::new(), vec![Vec::new(); COLUMNS.len()]);
        for (row, record) in reader.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(|e| fail(format!("line {line}: {e}")))?;
            let number = |i: usize, column: &str| -> Result<f64> {
                let text = record.get(i).unwrap_or("");
                text.parse().map_err(|_| {
                    fail(format!(
                        "line {line}, column `{column}`: expected a number, found {text:?}"
                    ))
                })
            };
            epochs.push(number(epoch_index, "epoch")? as usize);
            for ((column, _), (&i, v)) in COLUMNS.iter().zip(indices.iter().zip(values.iter_mut()))
            {
                v.push(number(i, column)?);
            }
        }
        if epochs.is_empty() {
            return Err(fail("no epochs recorded".into()));
        }
        let name = match path.is_dir() {
            true => path,
            false => path.parent().unwrap_or(path),
        };
        let name = name.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            name,
            epochs,
            values,
        })
    }

    fn last(&self, column: usize) -> f64 {
        *self.values[column].last().expect("at least one epoch")
    }

    /// (epoch, value) of the best epoch: lowest for the loss, highest otherwise.
    fn best(&self, column: usize) -> (usize, f64) {
        let lower_is_better = column == 0;
        self.epochs
            .iter()
            .zip(&self.values[column])
            .map(|(&e, &v)| (e, v))
            .reduce(|a, b| {
                if (b.1 < a.1) == lower_is_better && b.1 != a.1 {
                    b
                } else {
                    a
                }
            })
            .expect("at least one epoch")
    }
}

/// A Markdown table: per run, epochs, final and best of each metric, and the
/// difference of the final values from the first run's.
pub fn comparison_table(runs: &[RunMetrics]) -> String {
    let mut header = vec!["run".to_string(), "epochs".to_string()];
    for (_, label) in COLUMNS {
        header.extend([
            format!("final {label}"),
            format!("Δ final {label}"),
            format!("best {label} (epoch)"),
        ]);
    }
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for run in runs {
        let mut cells = vec![run.name.clone(), run.epochs.len().to_string()];
        for c in 0..COLUMNS.len() {
            let (epoch, best) = run.best(c);
            cells.push(format!("{:.4}", run.last(c)));
            cells.push(format!("{:+.4}", run.last(c) - runs[0].last(c)));
            cells.push(format!("{best:.4} ({epoch})"));
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let run = dir.join(name);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("metrics.csv"), text).unwrap();
        run
    }

    const HEADER: &str = "epoch,val_loss,val_mean_iou,val_paper_iou,val_pixel_accuracy\n";

    #[test]
    fn table_holds_finals_bests_and_differences() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a",
            &format!("{HEADER}1,0.9,0.40,0.5,0.95\n2,0.8,0.45,0.6,0.96\n"),
        );
        let b = write(
            dir.path(),
            "b",
            &format!("{HEADER}1,0.7,0.60,0.7,0.97\n2,0.75,0.55,0.65,0.975\n"),
        );
        let runs = [
            RunMetrics::read(&a).unwrap(),
            RunMetrics::read(&b.join("metrics.csv")).unwrap(),
        ];
        let table = comparison_table(&runs);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        // b: final loss 0.75 (Δ −0.05 against a's 0.8), best loss 0.7 at epoch 1,
        // final mIoU 0.55 (Δ +0.10), best mIoU 0.60 at epoch 1.
        assert!(
            lines[3].starts_with(
                "| b | 2 | 0.7500 | -0.0500 | 0.7000 (1) | 0.5500 | +0.1000 | 0.6000 (1) |"
            ),
            "{}",
            lines[3]
        );
        assert!(
            lines[2].starts_with("| a | 2 | 0.8000 | +0.0000 | 0.8000 (2) |"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn malformed_files_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "missing_column",
                "epoch,val_loss\n1,0.5\n",
                "no column `val_mean_iou`",
            ),
            (
                "not_a_number",
                &format!("{HEADER}1,0.9,abc,0.5,0.95\n") as &str,
                "line 2, column `val_mean_iou`",
            ),
            ("empty", HEADER, "no epochs recorded"),
        ];
        for (name, text, expected) in cases {
            let run = write(dir.path(), name, text);
            let err = RunMetrics::read(&run).unwrap_err();
            let message = format!("{err:#}");
            assert!(
                message.contains(expected) && message.contains(name),
                "{message}"
            );
            assert_eq!(crate::error::exit_code(&err), 3);
        }
        let err = RunMetrics::read(&dir.path().join("nowhere")).unwrap_err();
        assert!(format!("{err:#}").contains("nowhere"));
    }
}
