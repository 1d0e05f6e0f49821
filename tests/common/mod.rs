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

/// Trains the tiny IMEX run whole, then again killed (SIGKILL) three times
/// and resumed, with `extra` arguments (e.g. a device) on every command: the
/// resumed run's metrics and checkpoints must equal the whole run's bit for
/// bit.
pub fn assert_killed_run_resumes_bit_identical(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "imex");
    let config = config.to_str().unwrap();
    // Enough epochs that the kills below land inside the run, and a
    // learning-rate schedule, so that resuming must pick it up mid-way.
    let epochs = "training.epochs=12";
    let schedule = "training.lr_schedule=cosine";
    // The uninterrupted run, under another name.
    let with_extra = |args: &[&str]| -> Vec<String> {
        args.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let run_to_end = |args: &[&str]| {
        let args = with_extra(args);
        imex_run(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            dir.path(),
        )
    };
    let out = run_to_end(&[
        config,
        "--set",
        epochs,
        "--set",
        schedule,
        "--set",
        "experiment.name=whole",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let whole = dir.path().join("results/whole");
    // Killed (SIGKILL) at several points: as soon as the CSV has a row, then
    // after a delay that lands in other phases of the epoch; resumed each time.
    let run = dir.path().join("results/tiny_imex");
    for (attempt, delay_ms) in [0u64, 150, 40].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imex-run"))
            .args(with_extra(&[config, "--set", epochs, "--set", schedule]))
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let rows_before = std::fs::read_to_string(run.join("metrics.csv"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        let started = std::time::Instant::now();
        while std::fs::read_to_string(run.join("metrics.csv"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
            <= rows_before.max(1)
            && started.elapsed().as_secs() < 60
        {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        // The kill must hit a run in progress, or this test would compare two
        // complete runs and prove nothing about resuming.
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "attempt {attempt}: the run ended ({status}) before the kill"
        );
        let provenance: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(
            provenance["status"], "running",
            "attempt {attempt}: killed after the run ended"
        );
        if attempt == 1 {
            // A torn last line, as a crash in the middle of a write leaves it.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(run.join("metrics.csv"))
                .unwrap();
            std::io::Write::write_all(&mut f, b"3,1e-3,0.12").unwrap();
        }
    }
    let out = run_to_end(&[config, "--set", epochs, "--set", schedule]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The schedule as written: 1e-2·(1 + cos(π(e−1)/12))/2 for epoch e.
    let (header, rows) = read_csv(&whole.join("metrics.csv"));
    let lr = header.iter().position(|h| h == "learning_rate").unwrap();
    for (e, row) in rows.iter().enumerate() {
        let expected = 1e-2 * (1.0 + (std::f64::consts::PI * e as f64 / 12.0).cos()) / 2.0;
        assert!(
            (row[lr] - expected).abs() < 1e-15,
            "epoch {}: {}",
            e + 1,
            row[lr]
        );
    }
    let resumed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(resumed["status"], "finished");
    assert_eq!(
        metrics_without_timings(&run.join("metrics.csv")),
        metrics_without_timings(&whole.join("metrics.csv"))
    );
    for file in ["last.safetensors", "best.safetensors"] {
        let (a, _) =
            imex_run::model::checkpoint::read_safetensors(&run.join("checkpoints").join(file))
                .unwrap();
        let (b, _) =
            imex_run::model::checkpoint::read_safetensors(&whole.join("checkpoints").join(file))
                .unwrap();
        assert!(a == b, "{file} differs from the uninterrupted run");
    }
}
