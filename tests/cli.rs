//! The `imex-run` binary as a user meets it: a tiny end-to-end run, the run
//! folder it writes, and the answers to bad input (message, exit code, and
//! nothing written).

use std::path::Path;
use std::process::Command;

mod common;
use common::{
    imex_run, metrics_without_timings, read_csv, stderr, tiny_depth_experiment, tiny_experiment,
};

#[test]
fn tiny_run_learns_and_writes_the_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    for arch in ["imex", "resnet"] {
        let config = tiny_experiment(dir.path(), arch);
        let out = imex_run(&[config.to_str().unwrap()], dir.path());
        assert!(out.status.success(), "{arch}: {}", stderr(&out));
        let run = dir.path().join(format!("results/tiny_{arch}"));
        for file in [
            "config.toml",
            "run.json",
            "metrics.csv",
            "checkpoints/last.safetensors",
            "checkpoints/best.safetensors",
        ] {
            assert!(run.join(file).is_file(), "{arch}: missing {file}");
        }
        let (header, rows) = read_csv(&run.join("metrics.csv"));
        assert_eq!(header, imex_run::run::csv_header(4));
        assert_eq!(rows.len(), 4);
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let losses: Vec<f64> = rows.iter().map(|r| r[col("train_loss")]).collect();
        assert!(
            losses[3] < losses[0],
            "{arch}: train loss did not go down: {losses:?}"
        );
        for row in &rows {
            for name in ["val_pixel_accuracy", "val_mean_iou", "val_paper_iou"] {
                assert!(
                    (0.0..=1.0).contains(&row[col(name)]),
                    "{name} = {}",
                    row[col(name)]
                );
            }
        }
        let provenance: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(provenance["status"], "finished");
        assert_eq!(provenance["epochs_completed"], 4);
        assert_eq!(provenance["burn_version"], "0.21.0");
        // The resolved config reloads to the same experiment.
        let resolved = imex_run::config::Config::load(&run.join("config.toml"), &[]).unwrap();
        assert_eq!(resolved.model.widths, vec![4, 8]);
        // The same experiment again: already finished, nothing retrained.
        let csv = std::fs::read(run.join("metrics.csv")).unwrap();
        let again = imex_run(&[config.to_str().unwrap()], dir.path());
        assert!(again.status.success(), "{}", stderr(&again));
        assert_eq!(std::fs::read(run.join("metrics.csv")).unwrap(), csv);
        // Another configuration into the same folder is refused, the way out named.
        let other = imex_run(
            &[config.to_str().unwrap(), "--set", "training.epochs=5"],
            dir.path(),
        );
        assert_eq!(other.status.code(), Some(5));
        assert!(stderr(&other).contains("--restart"), "{}", stderr(&other));
        // ... unless asked to resume it anyway: two more epochs on top.
        let more = imex_run(
            &[
                config.to_str().unwrap(),
                "--set",
                "training.epochs=6",
                "--resume",
            ],
            dir.path(),
        );
        assert!(more.status.success(), "{}", stderr(&more));
        assert_eq!(read_csv(&run.join("metrics.csv")).1.len(), 6);
        // A different network cannot be resumed, and nothing changes.
        let config_before = std::fs::read(run.join("config.toml")).unwrap();
        let other = imex_run(
            &[
                config.to_str().unwrap(),
                "--set",
                "model.widths=[4,16]",
                "--resume",
            ],
            dir.path(),
        );
        assert_eq!(other.status.code(), Some(5), "{}", stderr(&other));
        assert_eq!(
            std::fs::read(run.join("config.toml")).unwrap(),
            config_before
        );
    }
}

#[test]
fn burn_version_constant_matches_the_pin() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(manifest.contains(&format!(
        "burn = {{ version = \"={}\"",
        imex_run::run::BURN_VERSION
    )));
}

/// Runs a bad experiment and checks the answer; nothing may be written.
fn refuse(text: &str, extra: &[&str], code: i32, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let mut args = vec![path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = imex_run(&args, dir.path());
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{message}");
    for e in expected {
        assert!(message.contains(e), "expected {e:?} in: {message}");
    }
    assert!(
        !dir.path().join("results").exists(),
        "a refused run wrote results/"
    );
}

const GOOD: &str = "[experiment]\nname = \"x\"\n[model]\narch = \"imex\"\n";

#[test]
fn bad_input_is_refused_with_file_line_and_key() {
    refuse(
        &format!("{GOOD}hh = 1.0\n"),
        &[],
        2,
        &["bad.toml:5", "model.hh", "did you mean `model.h`"],
    );
    refuse(
        &format!("{GOOD}h = \"big\"\n"),
        &[],
        2,
        &["bad.toml:5", "model.h", "expected a number"],
    );
    refuse(
        &format!("{GOOD}h = -1.0\n"),
        &[],
        2,
        &["bad.toml:5", "model.h"],
    );
    refuse(&format!("{GOOD}widths = []\n"), &[], 2, &["model.widths"]);
    refuse(
        &format!("{GOOD}[training]\nbatch_size = 0\n"),
        &[],
        2,
        &["bad.toml:6", "training.batch_size"],
    );
    refuse("[experiment\nname = 1\n", &[], 2, &["bad.toml:1"]);
    refuse(
        GOOD,
        &["--set", "model.alpha=-2"],
        2,
        &["--set model.alpha=-2", "model.alpha"],
    );
    refuse(
        &format!("{GOOD}[data]\npath = \"nowhere\"\ngenerate = false\n"),
        &[],
        3,
        &["nowhere", "does not exist"],
    );
}

#[test]
fn bench_refuses_counts_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--steps", "--batch", "--size"] {
        let out = imex_run(&["bench", flag, "0"], dir.path());
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        let msg = stderr(&out);
        assert!(msg.contains(flag) && msg.contains(">= 1"), "{msg}");
    }
}

#[test]
fn missing_experiment_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = imex_run(&["no_such.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no_such.toml"));
}

#[test]
fn cuda_on_a_machine_without_it_is_a_device_error() {
    if imex_run::device::cuda_available() {
        common::skipped(
            "cuda_on_a_machine_without_it_is_a_device_error",
            "this machine has a GPU, so there is nothing to refuse",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.toml"), GOOD).unwrap();
    let out = imex_run(&["x.toml", "--device", "cuda"], dir.path());
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("CUDA"));
    assert!(!dir.path().join("results").exists());
}

#[test]
fn data_command_writes_the_authors_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = imex_run(
        &["data", "qtips", "--out", "q", "--train", "4", "--val", "2"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let names = std::fs::read_to_string(dir.path().join("q/train/filenames.txt")).unwrap();
    assert_eq!(names.lines().count(), 4);
    assert!(dir.path().join("q/val/labels/000001.png").is_file());
}

/// The CSV without its timing columns, which no two runs share.

#[test]
fn killed_run_resumes_bit_identical() {
    common::assert_killed_run_resumes_bit_identical(&[]);
}

/// The CPU kernels reduce over images and pixels in a fixed order, so a run
/// is the same bit for bit on one thread and on three.
#[test]
fn training_is_bit_identical_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "imex");
    let config = config.to_str().unwrap();
    let train = |threads: &str| {
        let name = format!("experiment.name=threads{threads}");
        let out = Command::new(env!("CARGO_BIN_EXE_imex-run"))
            .args([config, "--set", &name])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let run = dir.path().join(format!("results/threads{threads}"));
        let (weights, _) = imex_run::model::checkpoint::read_safetensors(
            &run.join("checkpoints/last.safetensors"),
        )
        .unwrap();
        (metrics_without_timings(&run.join("metrics.csv")), weights)
    };
    let (one, three) = (train("1"), train("3"));
    assert_eq!(one.0, three.0, "metrics differ");
    assert!(one.1 == three.1, "weights differ");
}

#[test]
fn numerical_blow_up_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "imex");
    let out = imex_run(
        &[
            config.to_str().unwrap(),
            "--set",
            "training.class_weights=[1e38,1e38,1e38,1e38]",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("epoch 1, batch 1 of 4"),
        "{}",
        stderr(&out)
    );
    let provenance =
        std::fs::read_to_string(dir.path().join("results/tiny_imex/run.json")).unwrap();
    assert!(provenance.contains("\"status\": \"failed\""));
    assert!(!dir
        .path()
        .join("results/tiny_imex/checkpoints/last.safetensors")
        .exists());
}

/// The lean loop's promise: during an epoch the device is read after the
/// first batch, at most once a second, and after the last; not per batch.
#[test]
fn training_reads_the_device_at_most_once_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "resnet");
    let out = Command::new(env!("CARGO_BIN_EXE_imex-run"))
        .args([
            config.to_str().unwrap(),
            "--set",
            "training.batch_size=1",
            "--set",
            "training.epochs=2",
        ])
        .current_dir(dir.path())
        .env("RUST_LOG", "imex_run=debug")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, rows) = read_csv(&dir.path().join("results/tiny_resnet/metrics.csv"));
    let seconds = header.iter().position(|h| h == "train_seconds").unwrap();
    let log = stderr(&out);
    let reads: Vec<(usize, usize)> = log
        .lines()
        .filter_map(|line| {
            let counts = line.split_once("epoch ")?.1.split_once(": ")?.1;
            let (batches, rest) = counts.split_once(" batches, ")?;
            let reads = rest.strip_suffix(" device read-backs during the epoch")?;
            Some((batches.parse().ok()?, reads.parse().ok()?))
        })
        .collect();
    assert_eq!(reads.len(), 2, "one count per epoch in:\n{log}");
    for ((batches, reads), row) in reads.into_iter().zip(&rows) {
        assert_eq!(batches, 32);
        let allowed = 2 + row[seconds].floor() as usize;
        assert!(
            (2..=allowed).contains(&reads),
            "{reads} reads in {batches} batches and {} s",
            row[seconds]
        );
    }
}

#[test]
fn interrupt_stops_cleanly_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "resnet");
    let config = config.to_str().unwrap();
    let run = dir.path().join("results/tiny_resnet");
    // Far more epochs than can finish before the signal.
    let child = Command::new(env!("CARGO_BIN_EXE_imex-run"))
        .args([config, "--set", "training.epochs=1000"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rows = || {
        std::fs::read_to_string(run.join("metrics.csv"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let started = std::time::Instant::now();
    while rows() < 3 && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("run the same command to resume"),
        "{}",
        stderr(&out)
    );
    let provenance = std::fs::read_to_string(run.join("run.json")).unwrap();
    assert!(
        provenance.contains("\"status\": \"interrupted\""),
        "{provenance}"
    );
    assert!(!run.join(".lock").exists(), "the lock outlived the run");
    // Resume, asking for one epoch more than were completed.
    let completed = read_csv(&run.join("metrics.csv")).1.len();
    let target = format!("training.epochs={}", completed + 1);
    let resumed = imex_run(&[config, "--set", &target, "--resume"], dir.path());
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(read_csv(&run.join("metrics.csv")).1.len(), completed + 1);
}

#[test]
fn a_live_lock_refuses_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "imex");
    let run = dir.path().join("results/tiny_imex");
    std::fs::create_dir_all(&run).unwrap();
    // This test's own process holds it: certainly alive.
    std::fs::write(run.join(".lock"), format!("{}\n", std::process::id())).unwrap();
    let out = imex_run(&[config.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("process {}", std::process::id())),
        "{}",
        stderr(&out)
    );
    assert!(!run.join("metrics.csv").exists());
}

/// Names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_folder_that_is_not_a_run_folder_is_never_written_or_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "imex");
    let config = config.to_str().unwrap();
    let mine = dir.path().join("results/tiny_imex");
    std::fs::create_dir_all(mine.join("figures")).unwrap();
    std::fs::write(mine.join("thesis.tex"), "\\documentclass{article}").unwrap();
    for extra in [&[][..], &["--restart"][..], &["--resume"][..]] {
        let out = imex_run(&[&[config][..], extra].concat(), dir.path());
        assert_eq!(out.status.code(), Some(5), "{extra:?}: {}", stderr(&out));
        let msg = stderr(&out);
        assert!(
            msg.contains("not a run folder") && msg.contains("thesis.tex"),
            "{msg}"
        );
        // Nothing removed, nothing written (not even a lock).
        assert_eq!(names_in(&mine), ["figures", "thesis.tex"], "{extra:?}");
        assert_eq!(
            std::fs::read_to_string(mine.join("thesis.tex")).unwrap(),
            "\\documentclass{article}"
        );
    }
}

#[test]
fn restart_clears_only_what_training_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "resnet");
    let args = [config.to_str().unwrap(), "--set", "training.epochs=2"];
    let first = imex_run(&args, dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    let run = dir.path().join("results/tiny_resnet");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    std::fs::write(run.join("notes.md"), "mine").unwrap();
    std::fs::write(run.join("checkpoints/plot.py"), "mine").unwrap();
    let again = imex_run(&[&args[..], &["--restart"]].concat(), dir.path());
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(run.join("notes.md")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("checkpoints/plot.py")).unwrap(),
        "mine"
    );
    // Trained again from the start: the same two epochs (wall clock aside).
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(provenance["status"], "finished");
    assert_eq!(provenance["resumed"], serde_json::json!([]));
    assert_eq!(metrics_without_timings(&run.join("metrics.csv")), {
        let copy = dir.path().join("first.csv");
        std::fs::write(&copy, metrics).unwrap();
        metrics_without_timings(&copy)
    });
    assert_eq!(
        names_in(&run),
        [
            "checkpoints",
            "config.toml",
            "metrics.csv",
            "notes.md",
            "run.json"
        ]
    );
}

/// A Q-tips folder written by `imex-run data qtips`, damaged by `damage`,
/// must be refused with exit code 3 and a message naming `culprit`.
fn refuse_damaged_data(damage: impl Fn(&Path), culprit: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = imex_run(
        &[
            "data", "qtips", "--out", "q", "--train", "8", "--val", "4", "--size", "32",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    damage(&dir.path().join("q"));
    std::fs::write(
        dir.path().join("x.toml"),
        format!("{GOOD}widths = [4, 8]\ndepths = [2, 2]\n[data]\npath = \"q\"\ngenerate = false\n"),
    )
    .unwrap();
    let out = imex_run(&["x.toml"], dir.path());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(culprit),
        "expected {culprit} in: {}",
        stderr(&out)
    );
    assert!(!dir.path().join("results").exists());
}

#[test]
fn damaged_data_is_refused_naming_the_file() {
    // A truncated PNG.
    refuse_damaged_data(
        |q| {
            let png = q.join("train/images/000003.png");
            let bytes = std::fs::read(&png).unwrap();
            std::fs::write(&png, &bytes[..bytes.len() / 2]).unwrap();
        },
        "000003.png",
    );
    // A label outside the classes.
    refuse_damaged_data(
        |q| {
            image::GrayImage::from_pixel(32, 32, image::Luma([9]))
                .save(q.join("train/labels/000002.png"))
                .unwrap()
        },
        "000002.png",
    );
    // An image of another size.
    refuse_damaged_data(
        |q| {
            image::GrayImage::from_pixel(20, 32, image::Luma([64]))
                .save(q.join("val/images/000001.png"))
                .unwrap()
        },
        "000001.png",
    );
    // A file listed but missing.
    refuse_damaged_data(
        |q| std::fs::remove_file(q.join("val/labels/000000.png")).unwrap(),
        "000000.png",
    );
}

#[test]
fn an_unwritable_output_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocker"), "a file, not a folder").unwrap();
    let config = tiny_experiment(dir.path(), "imex");
    let out = imex_run(
        &[
            config.to_str().unwrap(),
            "--set",
            "experiment.output_dir=\"blocker/results\"",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("blocker/results"), "{}", stderr(&out));
}

#[test]
fn depth_tiny_run_learns_and_writes_depth_metrics() {
    let dir = tempfile::tempdir().unwrap();
    for (arch, loss) in [("imex", "l1"), ("resnet", "silog")] {
        let config = tiny_depth_experiment(dir.path(), arch, &format!("loss = \"{loss}\""));
        let out = imex_run(&[config.to_str().unwrap()], dir.path());
        assert!(out.status.success(), "{arch}: {}", stderr(&out));
        let run = dir.path().join(format!("results/depth_{arch}"));
        let (header, rows) = read_csv(&run.join("metrics.csv"));
        let cfg = imex_run::config::Config::load(&run.join("config.toml"), &[]).unwrap();
        assert_eq!(header, imex_run::run::csv_columns(&cfg.model));
        for name in [
            "val_loss",
            "val_rmse",
            "val_abs_rel",
            "val_log10",
            "val_delta1",
            "val_delta2",
            "val_delta3",
        ] {
            assert!(header.contains(&name.to_string()), "{name} in {header:?}");
        }
        assert_eq!(rows.len(), 4);
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let losses: Vec<f64> = rows.iter().map(|r| r[col("train_loss")]).collect();
        assert!(
            losses[3] < losses[0],
            "{arch}: train loss did not go down: {losses:?}"
        );
        for row in &rows {
            assert!(row[col("val_rmse")] > 0.0 && row[col("val_rmse")].is_finite());
            for d in ["val_delta1", "val_delta2", "val_delta3"] {
                assert!((0.0..=1.0).contains(&row[col(d)]), "{d} = {}", row[col(d)]);
            }
            assert!(row[col("val_delta1")] <= row[col("val_delta2")]);
        }
        let provenance: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(provenance["status"], "finished");
        assert_eq!(provenance["task"], "depth");
        assert_eq!(provenance["loss"], loss);
        assert!(provenance["best"]["val_rmse"].as_f64().is_some());
        assert!(provenance["data"]["depth_normalisation"]["log_depth_std"]
            .as_f64()
            .is_some());
        // The head is one channel wide in the checkpoint.
        let (tensors, _) = imex_run::model::checkpoint::read_safetensors(
            &run.join("checkpoints/last.safetensors"),
        )
        .unwrap();
        assert_eq!(tensors["W"].shape, vec![1, 8]);
    }
}

#[test]
fn depth_run_on_the_nyu_fixture_with_its_split() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nyu");
    let extra = "";
    let config = tiny_depth_experiment(dir.path(), "imex", extra);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text
        .replace("dataset = \"synthetic_rgbd\"", "dataset = \"nyu_mat\"")
        .replace("height = 24", "height = 6")
        .replace("width = 32", "width = 8")
        .replace("epochs = 4", "epochs = 2")
        .replace(
            "flip = true",
            &format!(
                "flip = true\npath = \"{}\"\nsplit_file = \"{}\"",
                fixtures.join("nyu_tiny_chunked.mat").display(),
                fixtures.join("splits_v73.mat").display()
            ),
        );
    std::fs::write(&config, text).unwrap();
    let out = imex_run(&[config.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let run = dir.path().join("results/depth_imex");
    assert_eq!(read_csv(&run.join("metrics.csv")).1.len(), 2);
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(provenance["data"]["train_images"], 2);
    assert_eq!(provenance["data"]["val_images"], 2);
    assert_eq!(provenance["data"]["height"], 6);
}

#[test]
fn depth_bad_input_is_refused() {
    let depth =
        "[experiment]\nname = \"x\"\n[model]\narch = \"imex\"\ntask = \"depth\"\nin_channels = 3\n";
    // Config errors: file, line, key; exit 2.
    refuse(
        &format!(
            "{depth}[data]\ndataset = \"nyu_mat\"\npath = \"n.mat\"\n[training]\nloss = \"l3\"\n"
        ),
        &[],
        2,
        &["bad.toml:11", "training.loss", "\"l1\""],
    );
    refuse(
        &format!("{depth}[data]\ndataset = \"qtips\"\n"),
        &[],
        2,
        &["bad.toml:5", "model.task", "\"segmentation\""],
    );
    // A missing data file: exit 3, named.
    refuse(
        &format!("{depth}[data]\ndataset = \"nyu_mat\"\npath = \"nowhere/nyu.mat\"\n"),
        &[],
        3,
        &["nowhere/nyu.mat", "no such file"],
    );
    refuse(
        &format!("{depth}[data]\ndataset = \"rgbd_png\"\npath = \"pairs.csv\"\n"),
        &[],
        3,
        &["pairs.csv"],
    );
}

#[cfg(not(feature = "tch"))]
#[test]
fn libtorch_without_the_feature_names_the_build_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.toml"), GOOD).unwrap();
    for device in ["tch", "tch-cuda:1"] {
        let out = imex_run(&["x.toml", "--device", device], dir.path());
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        for part in [device, "--features tch", "LIBTORCH_USE_PYTORCH=1"] {
            assert!(stderr(&out).contains(part), "{part}: {}", stderr(&out));
        }
        assert!(!dir.path().join("results").exists());
    }
    let out = imex_run(&["x.toml", "--device", "tch-gpu"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("tch-cuda:N"), "{}", stderr(&out));
}
