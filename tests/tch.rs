//! The LibTorch backend (a build with `--features tch`), on LibTorch's CPU
//! device: the numerics check against the peer's float64 fixtures and
//! against Flex, a short training run, and a resume after `kill -9`.

#![cfg(feature = "tch")]

mod common;
use common::{imex_run, read_csv, stderr, tiny_experiment};

#[test]
fn check_passes_on_libtorch() {
    let dir = tempfile::tempdir().unwrap();
    let out = imex_run(
        &[
            "check",
            "--device",
            "tch",
            "--geometry",
            "narrow",
            "--json",
            "check.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("check.json")).unwrap())
            .unwrap();
    assert_eq!(report["device"], "cpu (burn-tch, LibTorch)");
    let rows = report["rows"].as_array().unwrap();
    for kind in ["peer", "step vs cpu"] {
        assert!(
            rows.iter()
                .any(|r| r["check"].as_str().unwrap().starts_with(kind)),
            "no {kind} rows: {report:#}"
        );
    }
    // LibTorch's CPU multiplies in float32: every row within float32's bound.
    for row in rows {
        assert_eq!(row["verdict"], "pass", "{row:#}");
    }
}

#[test]
fn a_run_on_libtorch_learns_and_says_where_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_experiment(dir.path(), "imex");
    let out = imex_run(&[config.to_str().unwrap(), "--device", "tch"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let run = dir.path().join("results/tiny_imex");
    let (header, rows) = read_csv(&run.join("metrics.csv"));
    let loss = header.iter().position(|h| h == "train_loss").unwrap();
    assert!(rows[3][loss] < rows[0][loss], "{rows:?}");
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(provenance["device"], "cpu (burn-tch, LibTorch)");
    assert_eq!(provenance["status"], "finished");
}

#[test]
fn killed_run_on_libtorch_resumes_bit_identical() {
    common::assert_killed_run_resumes_bit_identical(&["--device", "tch"]);
}
