//! `imex-run compare A B …`: final and best validation metrics of several
//! runs side by side, with differences from the first.

use crate::error::Failure;
use crate::report::curves::{Curve, CurveGrid, CurvePanel};
use crate::report::figure::{save, PALETTE};
use crate::results::MetricsTable;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A metric worth comparing: CSV column, label, and whether lower is better.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headline {
    pub column: &'static str,
    pub label: &'static str,
    pub lower_is_better: bool,
}

/// The validation metrics `compare` looks for, in the order shown.
pub const HEADLINES: [Headline; 7] = [
    Headline {
        column: "val_loss",
        label: "val loss",
        lower_is_better: true,
    },
    Headline {
        column: "val_mean_iou",
        label: "val mIoU",
        lower_is_better: false,
    },
    Headline {
        column: "val_paper_iou",
        label: "val paper IoU",
        lower_is_better: false,
    },
    Headline {
        column: "val_pixel_accuracy",
        label: "val accuracy",
        lower_is_better: false,
    },
    Headline {
        column: "val_rmse",
        label: "val RMSE",
        lower_is_better: true,
    },
    Headline {
        column: "val_abs_rel",
        label: "val abs rel",
        lower_is_better: true,
    },
    Headline {
        column: "val_delta1",
        label: "val δ<1.25",
        lower_is_better: false,
    },
];

/// Runs side by side on the headline metrics the first run has.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub headlines: Vec<Headline>,
    pub runs: Vec<RunSeries>,
}

/// One run's epochs and its values of the compared metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSeries {
    pub name: String,
    pub epochs: Vec<usize>,
    /// `values[m][e]`: metric m at the e-th epoch.
    pub values: Vec<Vec<f64>>,
}

impl Comparison {
    /// Reads run folders or `metrics.csv` files; every run must have the
    /// headline columns of the first (a clear error names the file otherwise).
    pub fn read(paths: &[PathBuf]) -> Result<Self> {
        let tables = paths
            .iter()
            .map(|p| MetricsTable::read(p))
            .collect::<Result<Vec<_>>>()?;
        let first = tables
            .first()
            .ok_or_else(|| Failure::Data("no runs to compare".into()))?;
        let headlines: Vec<Headline> = HEADLINES
            .into_iter()
            .filter(|h| first.has(h.column))
            .collect();
        if headlines.is_empty() {
            return Err(Failure::Data(format!(
                "{}: none of the columns {} (is it a metrics.csv of imex-run?)",
                first.file.display(),
                HEADLINES.map(|h| h.column).join(", ")
            ))
            .into());
        }
        let runs = tables
            .iter()
            .map(|t| {
                let values = headlines
                    .iter()
                    .map(|h| {
                        t.column(h.column).map_err(|e| {
                            e.context(format!("it is compared with {}", first.file.display()))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(RunSeries {
                    name: t.name.clone(),
                    epochs: t.epochs(),
                    values,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { headlines, runs })
    }

    /// The overlay plot of every compared metric, one panel each, written as
    /// `stem.png` and `stem.svg`.
    pub fn plot(&self, stem: &Path) -> Result<Vec<PathBuf>> {
        let panels = self
            .headlines
            .iter()
            .enumerate()
            .map(|(m, h)| CurvePanel {
                x_label: "epoch".into(),
                title: h.label.to_string(),
                y_label: h.label.to_string(),
                y_range: None,
                curves: self
                    .runs
                    .iter()
                    .enumerate()
                    .map(|(r, run)| Curve {
                        label: run.name.clone(),
                        colour: PALETTE[r % PALETTE.len()],
                        dashed: false,
                        points: run
                            .epochs
                            .iter()
                            .zip(&run.values[m])
                            .map(|(&e, &v)| (e as f64, v))
                            .collect(),
                        band: None,
                    })
                    .collect(),
            })
            .collect();
        save(&CurveGrid::new("Validation metrics by epoch", panels), stem)
    }
}

impl RunSeries {
    fn last(&self, metric: usize) -> f64 {
        *self.values[metric].last().expect("at least one epoch")
    }

    /// (epoch, value) of the best epoch (the first, on ties).
    fn best(&self, metric: usize, lower_is_better: bool) -> (usize, f64) {
        self.epochs
            .iter()
            .zip(&self.values[metric])
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
pub fn comparison_table(comparison: &Comparison) -> String {
    let runs = &comparison.runs;
    let mut header = vec!["run".to_string(), "epochs".to_string()];
    for h in &comparison.headlines {
        header.extend([
            format!("final {}", h.label),
            format!("Δ final {}", h.label),
            format!("best {} (epoch)", h.label),
        ]);
    }
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for run in runs {
        let mut cells = vec![run.name.clone(), run.epochs.len().to_string()];
        for (m, h) in comparison.headlines.iter().enumerate() {
            let (epoch, best) = run.best(m, h.lower_is_better);
            cells.push(format!("{:.4}", run.last(m)));
            cells.push(format!("{:+.4}", run.last(m) - runs[0].last(m)));
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
        let comparison = Comparison::read(&[a, b.join("metrics.csv")]).unwrap();
        let table = comparison_table(&comparison);
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
    fn malformed_or_mismatched_files_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good", &format!("{HEADER}1,0.9,0.4,0.5,0.95\n"));
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
            (
                "no_epoch",
                "val_loss\n0.5\n",
                "the first column is not `epoch`",
            ),
        ];
        for (name, text, expected) in cases {
            let run = write(dir.path(), name, text);
            let err = Comparison::read(&[good.clone(), run]).unwrap_err();
            let message = format!("{err:#}");
            assert!(
                message.contains(expected) && message.contains(name),
                "{message}"
            );
            assert_eq!(crate::error::exit_code(&err), 3);
        }
        let unknown = write(dir.path(), "unknown", "epoch,speed\n1,3\n");
        let err = Comparison::read(&[unknown]).unwrap_err();
        assert!(format!("{err:#}").contains("none of the columns"));
        let err = Comparison::read(&[dir.path().join("nowhere")]).unwrap_err();
        assert!(format!("{err:#}").contains("nowhere"));
    }

    #[test]
    fn the_overlay_plot_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a",
            &format!("{HEADER}1,0.9,0.4,0.5,0.95\n2,0.8,0.5,0.6,0.96\n"),
        );
        let files = Comparison::read(&[a.clone(), a])
            .unwrap()
            .plot(&dir.path().join("overlay"))
            .unwrap();
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| f.metadata().unwrap().len() > 1000));
    }
}
