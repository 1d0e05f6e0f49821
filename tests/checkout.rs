//! A new user's runs leave the checkout clean: every experiment file writes
//! its run folder where git ignores it, and no committed reference run under
//! `results/reference/` lies where a run, `predict` or `probe` writes.

use imex_run::config::Config;
use std::path::Path;
use std::process::Command;

mod common;

fn git(args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success() || o.status.code() == Some(1))
}

/// Whether git ignores `path` (relative to the checkout); None outside a checkout.
fn ignored(path: &str) -> Option<bool> {
    git(&["check-ignore", "-q", "--no-index", path]).map(|o| o.status.success())
}

fn tracked_under(path: &str) -> Vec<String> {
    let out = git(&["ls-files", "--", path]).expect("git ls-files");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_first_run_leaves_the_checkout_clean() {
    if git(&["rev-parse", "--is-inside-work-tree"]).is_none_or(|o| !o.status.success()) {
        common::skipped(
            "a_first_run_leaves_the_checkout_clean",
            "not a git checkout",
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut experiments: Vec<_> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    experiments.sort();
    assert!(experiments.len() >= 4, "{experiments:?}");
    for file in &experiments {
        let cfg = Config::load(file, &[]).unwrap();
        // The Makefile's seeds are named NAME_seedS in the same folder.
        for name in [
            cfg.experiment.name.clone(),
            format!("{}_seed0", cfg.experiment.name),
        ] {
            let run = cfg.experiment.output_dir.join(&name);
            let run = run.to_str().unwrap();
            assert!(
                tracked_under(run).is_empty(),
                "{}: a run writes into the committed {run}",
                file.display()
            );
            for written in [
                "metrics.csv",
                "run.json",
                "config.toml",
                "checkpoints/last.safetensors",
            ] {
                let path = format!("{run}/{written}");
                assert_eq!(ignored(&path), Some(true), "{path} is not ignored by git");
            }
        }
    }
    // Committed reference runs: what later commands write inside them is ignored.
    let reference = tracked_under("results/reference");
    assert!(!reference.is_empty(), "no committed reference runs");
    assert!(
        tracked_under("results")
            .iter()
            .all(|p| p.starts_with("results/reference/")),
        "committed runs outside results/reference/"
    );
    for run in ["qtips_imex_small_seed0", "qtips_imex_cpu_seed0"] {
        for written in [
            "predict-best-val/metrics.json",
            // The probes of the best checkpoint on the validation split are
            // committed with the reference (the report draws them); what a
            // probe writes elsewhere is not.
            "probe-last-train/noise.csv",
            "probe-last-train/receptive_field.npy",
            "checkpoints/last.safetensors",
            ".lock",
        ] {
            let path = format!("results/reference/{run}/{written}");
            assert_eq!(ignored(&path), Some(true), "{path} is not ignored by git");
        }
        for kept in [
            "noise.csv",
            "probe.json",
            "receptive_field.npy",
            "adversarial_example.safetensors",
        ] {
            let path = format!("results/reference/{run}/probe-best-val/{kept}");
            assert_eq!(ignored(&path), Some(false), "{path} is ignored by git");
        }
    }
}
