//! `imex-run sweep` as a user meets it: listing, refusing bad sweep files
//! before anything runs, running the points N at a time, skipping the
//! finished ones, resuming an interrupted one, the Slurm batch script
//! (a golden file), and the report's heat map and table.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{at_best_epoch, imex_run, read_csv, stderr, tiny_experiment};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tiny experiment as a base, and a sweep file over it.
fn tiny_sweep(dir: &Path, body: &str) -> PathBuf {
    tiny_experiment(dir, "imex");
    let path = dir.join("sweep.toml");
    let text = format!("[sweep]\nname = \"tiny\"\nbase = \"tiny_imex.toml\"\n{body}");
    std::fs::write(&path, text).unwrap();
    path
}

/// h × α × two seeds, and the ResNet at each h: 10 points of 2 epochs.
const GRID: &str = r#"[sweep.set]
"training.epochs" = 2
[sweep.grid]
"model.h" = [0.5, 1.0]
"model.alpha" = [0.0, 1.0]
"experiment.seed" = [0, 1]
[[sweep.extra]]
label = "ResNet"
set = { "model.arch" = "resnet" }
grid = { "model.h" = [0.5, 1.0] }
"#;

#[test]
fn dry_run_lists_points_and_their_folders_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    tiny_sweep(dir.path(), GRID);
    let out = imex_run(&["sweep", "sweep.toml", "--dry-run"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("sweep tiny: 10 points (2 of them from [[sweep.extra]])"),
        "{text}"
    );
    for line in [
        "    0  results/tiny/tiny_h0.5_alpha0_seed0  model.h=0.5, model.alpha=0.0, experiment.seed=0",
        "    7  results/tiny/tiny_h1_alpha1_seed1",
        "    9  results/tiny/tiny_arch-resnet_h1  model.arch=\"resnet\", model.h=1.0",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    assert!(!dir.path().join("results").exists());
}

/// Runs `sweep BAD` (or with `args`) and checks the refusal: exit 2, the
/// message's parts, nothing written.
fn refuse(body: &str, args: &[&str], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    tiny_sweep(dir.path(), body);
    let mut all = vec!["sweep", "sweep.toml"];
    all.extend_from_slice(args);
    let out = imex_run(&all, dir.path());
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    for part in expected {
        assert!(message.contains(part), "{part:?} not in:\n{message}");
    }
    assert!(
        !dir.path().join("results").exists() && !dir.path().join("data").exists(),
        "a refused sweep wrote something"
    );
}

#[test]
fn bad_sweep_files_are_refused_before_anything_runs() {
    // Line 5 is the first key of [sweep.grid] / [sweep.zip].
    refuse(
        "[sweep.grid]\n\"model.hh\" = [1.0]\n",
        &[],
        &[
            "sweep.toml:5: key `model.hh`: point 0",
            "unknown key `model.hh`, did you mean `model.h`?",
        ],
    );
    refuse(
        "[sweep.grid]\n\"model.h\" = [0.5, true]\n",
        &[],
        &[
            "sweep.toml:5: key `model.h`: point 1 (model.h=true, run tiny_h-true)",
            "expected a number",
        ],
    );
    refuse(
        "[sweep.grid]\n\"model.h\" = []\n",
        &["--dry-run"],
        &["sweep.toml:5: key `model.h`: an empty list"],
    );
    refuse(
        "[sweep.zip]\n\"model.h\" = [1, 2]\n\"model.alpha\" = [1]\n",
        &[],
        &[
            "sweep.toml:6: key `model.alpha`: 1 values",
            "`model.h` (line 5) has 2",
        ],
    );
    refuse(
        "[sweep.grid]\n\"model.h\" = [1.0, 0.0]\n",
        &["--slurm"],
        &[
            "sweep.toml:5: key `model.h`: point 1 (model.h=0.0, run tiny_h0)",
            "a finite number > 0",
        ],
    );
    refuse(
        "[sweep.grid]\n\"model.h\" = [1.0]\n",
        &["--index", "1"],
        &["--index 1 is out of range: the sweep has 1 points, 0 to 0"],
    );
}

#[test]
fn slurm_script_matches_the_golden_file() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep");
    let dir = tempfile::tempdir().unwrap();
    for file in ["golden.toml", "base.toml"] {
        std::fs::copy(fixtures.join(file), dir.path().join(file)).unwrap();
    }
    let out = imex_run(&["sweep", "golden.toml", "--slurm"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let script = std::fs::read_to_string(dir.path().join("results/golden/golden.sbatch")).unwrap();
    let workdir = std::fs::canonicalize(dir.path()).unwrap();
    let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_imex-run")).unwrap();
    let script = script
        .replace(&binary.display().to_string(), "{BIN}")
        .replace(&workdir.display().to_string(), "{WORKDIR}");
    let golden = fixtures.join("golden.sbatch");
    if std::env::var_os("IMEX_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &script).unwrap();
    }
    assert_eq!(script, std::fs::read_to_string(&golden).unwrap());
    // The logs' folder exists before a task needs it (Slurm does not create it).
    assert!(dir.path().join("results/golden/logs").is_dir());
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("results/golden/sweep.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["points"].as_array().unwrap().len(), 9);
    assert_eq!(manifest["points"][8]["name"], "golden_arch-resnet_h2");
}

#[test]
fn a_sweep_runs_every_point_skips_finished_ones_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tiny_sweep(root, GRID);
    let out = imex_run(&["sweep", "sweep.toml", "--jobs", "2"], root);
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(
        text.contains("10 to run, 2 at once with 1 thread(s) each"),
        "{text}"
    );
    assert!(text.contains("sweep tiny: all 10 points done"), "{text}");
    assert!(text.contains("epoch 2/2"), "no per-point progress:\n{text}");
    assert!(
        text.contains("sweep tiny: 10/10 done"),
        "no overall progress:\n{text}"
    );
    let sweep_dir = root.join("results/tiny");
    let names = [
        "tiny_h0.5_alpha0_seed0",
        "tiny_h0.5_alpha0_seed1",
        "tiny_h0.5_alpha1_seed0",
        "tiny_h0.5_alpha1_seed1",
        "tiny_h1_alpha0_seed0",
        "tiny_h1_alpha0_seed1",
        "tiny_h1_alpha1_seed0",
        "tiny_h1_alpha1_seed1",
        "tiny_arch-resnet_h0.5",
        "tiny_arch-resnet_h1",
    ];
    for name in names {
        let run = sweep_dir.join(name);
        let config = imex_run::config::Config::load(&run.join("config.toml"), &[]).unwrap();
        assert_eq!(config.experiment.name, name);
        assert_eq!(config.training.epochs, 2);
        let provenance: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(provenance["status"], "finished", "{name}");
        assert!(sweep_dir.join("logs").join(format!("{name}.log")).is_file());
    }
    let resnet =
        imex_run::config::Config::load(&sweep_dir.join("tiny_arch-resnet_h1/config.toml"), &[])
            .unwrap();
    assert_eq!(resnet.model.arch, imex_run::config::Arch::Resnet);
    assert_eq!(resnet.model.h, 1.0);

    // Again: nothing to do, nothing retrained.
    let csv = std::fs::read(sweep_dir.join(names[3]).join("metrics.csv")).unwrap();
    let again = imex_run(&["sweep", "sweep.toml"], root);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("10 done, 0 to run"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        std::fs::read(sweep_dir.join(names[3]).join("metrics.csv")).unwrap(),
        csv
    );
    let status = imex_run(&["sweep", "sweep.toml", "--status"], root);
    assert!(
        stdout(&status).contains("sweep tiny: 10 done"),
        "{}",
        stdout(&status)
    );

    // The report: the sweep's heat map, lines and table, not ordinary studies.
    let out = imex_run(&["report", "results", "--out", "figs"], root);
    assert!(out.status.success(), "{}", stderr(&out));
    let figs = root.join("figs");
    for file in [
        "tiny_heatmap.png",
        "tiny_heatmap.svg",
        "tiny_lines.png",
        "tiny_lines.svg",
        "tiny_table.md",
        "tiny_table.tex",
        "tiny_table.csv",
    ] {
        assert!(figs.join(file).is_file(), "missing {file}");
    }
    assert!(
        !figs.join("qtips_table.md").exists(),
        "sweep runs joined the studies"
    );
    // The first cell (h = 0.5, α = 0) is painted with the colour scale.
    let png = image::open(figs.join("tiny_heatmap.png"))
        .unwrap()
        .to_rgb8();
    let pixel = png.get_pixel(180, 90).0;
    assert!(
        pixel != [255, 255, 255] && pixel != [235, 235, 235],
        "{pixel:?}"
    );
    // Every point's number is its run's value at the kept checkpoint.
    let mut reader = csv::Reader::from_path(figs.join("tiny_table.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 10);
    for row in &rows {
        let run = sweep_dir.join(&row[col("run")]);
        let value: f64 = row[col("val_paper_iou")].parse().unwrap();
        assert!((value - at_best_epoch(&run, "val_paper_iou")).abs() < 1e-6);
        assert_eq!(&row[col("status")], "finished");
    }
    assert_eq!(&rows[9][col("block")], "ResNet");
    assert_eq!(&rows[9][col("model.h")], "1");
    // The summary pools the seeds: mean of the two seeds of (h 1, α 1).
    let mean = (at_best_epoch(&sweep_dir.join(names[6]), "val_paper_iou")
        + at_best_epoch(&sweep_dir.join(names[7]), "val_paper_iou"))
        / 2.0;
    let md = std::fs::read_to_string(figs.join("tiny_table.md")).unwrap();
    let cell = format!("| grid | 1 | 1 |  | 2/2 | {mean:.4} |");
    assert!(md.contains(&cell), "{cell:?} not in:\n{md}");
    // Another metric, by its column name; an unknown one is a data error.
    let out = imex_run(
        &[
            "report",
            "results",
            "--out",
            "figs2",
            "--sweep-metric",
            "val_loss",
        ],
        root,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(root.join("figs2/tiny_table.md"))
        .unwrap()
        .contains("val_loss at each run's kept checkpoint"));
    let out = imex_run(
        &[
            "report",
            "results",
            "--out",
            "figs3",
            "--sweep-metric",
            "val_nope",
        ],
        root,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no column `val_nope`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_interrupted_sweep_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tiny_sweep(
        root,
        "[sweep.set]\n\"training.epochs\" = 40\n[sweep.grid]\n\"model.h\" = [1.0]\n",
    );
    let run = root.join("results/tiny/tiny_h1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_imex-run"))
        .args(["sweep", "sweep.toml", "--jobs", "1"])
        .current_dir(root)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::fs::read_to_string(run.join("metrics.csv"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 3
    {
        assert!(started.elapsed().as_secs() < 120, "no epoch finished");
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Ctrl-C, as a terminal sends it to the sweep's process: passed on to the point.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(provenance["status"], "interrupted");
    let stopped_at = provenance["epochs_completed"].as_u64().unwrap();
    assert!((2..40).contains(&stopped_at), "{stopped_at}");
    let out = imex_run(&["sweep", "sweep.toml", "--status"], root);
    assert!(
        stdout(&out).contains(&format!(
            "interrupted  results/tiny/tiny_h1  epoch {stopped_at}/40"
        )),
        "{}",
        stdout(&out)
    );

    let out = imex_run(&["sweep", "sweep.toml"], root);
    assert!(out.status.success(), "{}\n{}", stderr(&out), stdout(&out));
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(provenance["status"], "finished");
    assert_eq!(provenance["resumed"][0]["from_epoch"], stopped_at);
    assert_eq!(read_csv(&run.join("metrics.csv")).1.len(), 40);
}
