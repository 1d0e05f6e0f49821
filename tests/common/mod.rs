//! Helpers shared by the integration tests: the binary, a tiny experiment.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn imex_run(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imex-run"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A tiny but real experiment: 32 generated Q-tips of 32×32, two blocks.
pub fn tiny_experiment(dir: &Path, arch: &str) -> PathBuf {
    let path = dir.join(format!("tiny_{arch}.toml"));
    let text = format!(
        r#"[experiment]
name = "tiny_{arch}"
seed = 3
output_dir = "results"

[model]
arch = "{arch}"
widths = [4, 8]
depths = [2, 2]

[data]
path = "data/qtips_tiny"
train_size = 32
val_size = 8
image_size = 32

[training]
optimizer = "adam"
learning_rate = 1e-2
batch_size = 8
epochs = 4
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .map(|v| v.parse::<f64>().unwrap())
                .collect()
        })
        .collect();
    (header, rows)
}

/// metrics.csv without its wall-clock columns, as text.
pub fn metrics_without_timings(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let timing = |h: &str| h.ends_with("_seconds") || h.ends_with("_per_second");
    reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .zip(&header)
                .filter(|(_, h)| !timing(h))
                .map(|(v, _)| v.to_string())
                .collect()
        })
        .collect()
}

/// A tiny depth experiment: 32 rendered rooms of 24×32, two blocks.
pub fn tiny_depth_experiment(dir: &Path, arch: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("depth_{arch}.toml"));
    let text = format!(
        r#"[experiment]
name = "depth_{arch}"
seed = 1
output_dir = "results"

[model]
arch = "{arch}"
task = "depth"
in_channels = 3
widths = [4, 8]
depths = [2, 2]

[data]
dataset = "synthetic_rgbd"
train_size = 32
val_size = 8
height = 24
width = 32
flip = true

[training]
optimizer = "adam"
learning_rate = 1e-2
batch_size = 8
epochs = 4
{extra}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Reports that a test did not run its check, and why: written to the real
/// stderr, past the test harness's capture, so that a skip reads as one in
/// `cargo test`'s output instead of passing silently.
pub fn skipped(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// The value of `column` at the row of lowest validation loss (the tiny
/// experiment's checkpoint rule).
pub fn at_best_epoch(run: &Path, column: &str) -> f64 {
    let (header, rows) = read_csv(&run.join("metrics.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let best = (0..rows.len()).fold(0, |b, i| {
        if rows[i][col("val_loss")] < rows[b][col("val_loss")] {
            i
        } else {
            b
        }
    });
    rows[best][col(column)]
}
