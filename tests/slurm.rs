//! A tiny sweep through a real Slurm: `--submit` writes the batch script and
//! hands it to `sbatch`, the array tasks train every point, `--status` and the
//! run folders show them done, and submitting again skips them all.
//!
//! Needs a cluster that answers (`scripts/slurm-local.sh start` makes a
//! one-node one on this machine; `.ci/run` does that). Where `sbatch` is not
//! installed the test says SKIPPED and checks nothing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{imex_run, skipped, stderr, tiny_experiment};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn found(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_sweep_submitted_to_slurm_trains_every_point() {
    const TEST: &str = "slurm::a_sweep_submitted_to_slurm_trains_every_point";
    if !found("sbatch") {
        skipped(
            TEST,
            "sbatch is not installed (apt-get install slurm-wlm munge, then scripts/slurm-local.sh start)",
        );
        return;
    }
    let answers = Command::new("sinfo")
        .arg("-h")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        answers,
        "sbatch is installed but no Slurm controller answers: start one with scripts/slurm-local.sh start"
    );

    let dir = tempfile::tempdir().unwrap();
    let root: &Path = dir.path();
    tiny_experiment(root, "imex");
    std::fs::write(
        root.join("sweep.toml"),
        r#"[sweep]
name = "slurmtiny"
base = "tiny_imex.toml"
[sweep.set]
"training.epochs" = 1
[sweep.grid]
"model.h" = [0.5, 1.0]
"experiment.seed" = [0, 1]
[sweep.slurm]
cpus_per_task = 1
time = "0:10:00"
max_parallel = 2
"#,
    )
    .unwrap();
    let out = imex_run(&["sweep", "sweep.toml", "--submit"], root);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("(array 0-3%2)"), "{said}");
    let sweep_dir = root.join("results/slurmtiny");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep_dir.join("slurm.json")).unwrap())
            .unwrap();
    let job = record["submissions"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(job.parse::<u64>().is_ok(), "job id {job:?}");
    assert!(said.contains(&format!("submitted job {job}")), "{said}");

    let started = Instant::now();
    let status = loop {
        let out = imex_run(&["sweep", "sweep.toml", "--status"], root);
        let text = stdout(&out);
        if text.contains("slurmtiny: 4 done") {
            break text;
        }
        if text.contains("failed") || started.elapsed() > Duration::from_secs(300) {
            let logs: Vec<String> = std::fs::read_dir(sweep_dir.join("logs"))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| {
                            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                            format!("--- {}\n{text}", e.path().display())
                        })
                        .collect()
                })
                .unwrap_or_default();
            panic!("the array did not finish:\n{text}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for name in [
        "slurmtiny_h0.5_seed0",
        "slurmtiny_h0.5_seed1",
        "slurmtiny_h1_seed0",
        "slurmtiny_h1_seed1",
    ] {
        let run = sweep_dir.join(name);
        let provenance: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(provenance["status"], "finished", "{name}\n{status}");
        assert_eq!(provenance["epochs_completed"], 1);
        assert!(run.join("checkpoints/best.safetensors").is_file());
    }
    // One Slurm log per task, under the sweep folder.
    for task in 0..4 {
        let log = sweep_dir.join(format!("logs/slurm-{job}_{task}.out"));
        let text =
            std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(text.contains("run folder: results/slurmtiny/"), "{text}");
    }
    // Everything is done: nothing is submitted again.
    let out = imex_run(&["sweep", "sweep.toml", "--submit"], root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nothing to submit"),
        "{}",
        stdout(&out)
    );
}
