//! The tools of the GPU verification, exercised on the CPU: `imex-run check`,
//! `imex-run bench --csv`, and `scripts/gpu-check.sh --quick` end to end.

mod common;
use common::imex_run;
use std::path::Path;
use std::process::Command;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_passes_on_the_cpu_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = imex_run(
        &[
            "check",
            "--device",
            "cpu",
            "--geometry",
            "narrow",
            "--batch",
            "1",
            "--size",
            "12",
            "--json",
            "check.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("| peer fixture imex | grad L | 2 |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("check: all 26 comparisons pass"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("check.json")).unwrap())
            .unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 26); // each peer fixture adds its layer-states row
    assert!(rows.iter().all(|r| r["verdict"] == "pass"));
}

#[test]
fn check_refuses_a_degenerate_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = imex_run(&["check", "--device", "cpu", "--batch", "0"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--batch"));
}

#[test]
fn bench_writes_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = imex_run(
        &[
            "bench",
            "--device",
            "cpu",
            "--geometry",
            "narrow",
            "--size",
            "8",
            "--batch",
            "2",
            "--warmup",
            "0",
            "--steps",
            "1",
            "--skip-ops",
            "--csv",
            "b.csv",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut reader = csv::Reader::from_path(dir.path().join("b.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["name", "median_ms", "min_ms", "max_ms", "images_per_second"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let names: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(
        names,
        [
            "train step  narrow imex",
            "forward (eval)  narrow imex",
            "train step  narrow resnet",
            "forward (eval)  narrow resnet"
        ]
    );
    for r in &rows {
        let median: f64 = r[1].parse().unwrap();
        let ips: f64 = r[4].parse().unwrap();
        assert!(median > 0.0 && ips > 0.0);
    }
}

/// The whole GPU script on the CPU in its quick mode: every stage runs (the
/// PyTorch one is skipped where torch is absent) and the summary prints.
#[test]
fn gpu_check_script_runs_on_the_cpu() {
    let have = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(have("bash") && have("python3") && have("timeout")) {
        common::skipped(
            "gpu_check_script_runs_on_the_cpu",
            "bash, python3 and timeout are needed",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, work) = (dir.path().join("out"), dir.path().join("work"));
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu-check.sh"))
        .args(["--quick", env!("CARGO_BIN_EXE_imex-run")])
        .env("DEVICE", "cpu")
        .env("OUT", &out_dir)
        .env("WORK", &work)
        .env("PYTHON", "python3")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for needle in [
        "# gpu-check summary (cpu, QUICK mode",
        "| check | ok",
        "| epochs_imex | ok",
        "| epochs_resnet | ok",
        "Numerical check on cpu (burn-flex): **PASS**",
        "| narrow | imex | ",
        "| whole study ≤ 10 min |",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in\n{stdout}");
    }
    for file in [
        "summary.md",
        "gpu-check.log",
        "check.json",
        "bench_rust.json",
        "metrics_imex.csv",
    ] {
        assert!(out_dir.join(file).is_file(), "{file} missing");
    }
    let files = std::fs::read_dir(&out_dir).unwrap().count();
    assert!(
        files <= 8,
        "{files} files in OUT: the device tool brings back 8"
    );
}
