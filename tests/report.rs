//! `report`, `predict` and `compare` on real (tiny) runs: every file is
//! written, and every number in the table and in `predict`'s metrics is the
//! one the run recorded.

mod common;
use common::{
    at_best_epoch, imex_run, metrics_without_timings, stderr, tiny_depth_experiment,
    tiny_experiment,
};
use std::path::Path;

/// Tiny IMEX runs with seeds 3 and 4, and a tiny ResNet run, under `dir/results`.
fn tiny_study(dir: &Path) {
    let runs = [
        ("imex", vec!["--set", "experiment.name=tiny_imex_seed3"]),
        (
            "imex",
            vec![
                "--set",
                "experiment.seed=4",
                "--set",
                "experiment.name=tiny_imex_seed4",
            ],
        ),
        ("resnet", vec![]),
    ];
    for (arch, extra) in runs {
        let config = tiny_experiment(dir, arch);
        let mut args = vec![config.to_str().unwrap()];
        args.extend(extra);
        let out = imex_run(&args, dir);
        assert!(out.status.success(), "{arch}: {}", stderr(&out));
    }
}

#[test]
fn report_predict_and_compare_on_tiny_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tiny_study(root);

    let out = imex_run(
        &["report", "results", "--out", "figs", "--images", "1,5"],
        root,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let figs = root.join("figs");
    let mut expected: Vec<String> = [
        "loss",
        "mean_iou",
        "pixel_accuracy",
        "predictions",
        "probabilities",
    ]
    .iter()
    .map(|f| format!("tiny_{f}"))
    .chain(["stability_regions", "propagation"].map(String::from))
    .flat_map(|stem| [format!("{stem}.png"), format!("{stem}.svg")])
    .collect();
    expected.extend(["md", "tex", "csv"].map(|e| format!("qtips_table.{e}")));
    for file in &expected {
        let path = figs.join(file);
        assert!(path.is_file(), "missing {file}");
        if file.ends_with(".png") {
            let png = image::open(&path).unwrap();
            assert!(
                png.width() >= 600 && png.height() >= 300,
                "{file} is too small"
            );
        }
    }

    // Every table number is the run's own, at its kept (best validation loss) epoch.
    let (header, rows) = {
        let mut reader = csv::Reader::from_path(figs.join("qtips_table.csv")).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    };
    let cell = |row: &[String], name: &str| -> f64 {
        row[header.iter().position(|h| h == name).unwrap()]
            .parse()
            .unwrap()
    };
    assert_eq!(rows.len(), 2);
    let (imex, resnet) = (&rows[0], &rows[1]);
    assert_eq!(imex[2], "IMEXnet");
    assert_eq!(imex[3], "3 4");
    let seeds = ["tiny_imex_seed3", "tiny_imex_seed4"].map(|r| root.join("results").join(r));
    for (table_column, csv_column) in [
        ("paper_iou_mean", "val_paper_iou"),
        ("mean_iou_mean", "val_mean_iou"),
        ("loss_mean", "val_loss"),
        ("accuracy_mean", "val_pixel_accuracy"),
    ] {
        let mean = seeds
            .iter()
            .map(|r| at_best_epoch(r, csv_column))
            .sum::<f64>()
            / 2.0;
        assert!(
            (cell(imex, table_column) - mean).abs() < 1e-12,
            "{table_column}"
        );
        let single = at_best_epoch(&root.join("results/tiny_resnet"), csv_column);
        assert!(
            (cell(resnet, table_column) - single).abs() < 1e-12,
            "{table_column}"
        );
    }
    let a = seeds.each_ref().map(|r| at_best_epoch(r, "val_loss"));
    let std = (a[0] - a[1]).abs() / 2f64.sqrt();
    assert!((cell(imex, "loss_std") - std).abs() < 1e-12);
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(seeds[0].join("run.json")).unwrap()).unwrap();
    assert_eq!(
        cell(imex, "params_true"),
        provenance["parameters"]["total"].as_f64().unwrap()
    );
    let markdown = std::fs::read_to_string(figs.join("qtips_table.md")).unwrap();
    assert!(markdown.contains("lowest validation loss") && markdown.contains("| 0.926 |"));

    // predict: the best checkpoint on the validation split scores what the
    // run recorded for that epoch (same weights, same batches).
    let run = root.join("results/tiny_resnet");
    let out = imex_run(&["predict", run.to_str().unwrap(), "--images", "0,7"], root);
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = run.join("predict-best-val");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("metrics.json")).unwrap())
            .unwrap();
    for (key, column) in [
        ("loss", "val_loss"),
        ("pixel_accuracy", "val_pixel_accuracy"),
        ("mean_iou", "val_mean_iou"),
        ("paper_iou", "val_paper_iou"),
    ] {
        let recorded = at_best_epoch(&run, column);
        let measured = metrics[key].as_f64().unwrap();
        // The CSV keeps 6 decimals.
        assert!(
            (measured - recorded).abs() < 1e-6,
            "{key}: {measured} vs {recorded}"
        );
    }
    let bytes = std::fs::read(folder.join("probabilities.npy")).unwrap();
    let probabilities = npyz::NpyFile::new(bytes.as_slice()).unwrap();
    assert_eq!(probabilities.shape(), &[2, 4, 32, 32]);
    let p: Vec<f32> = probabilities.into_vec().unwrap();
    for pixel in 0..32 * 32 {
        let total: f32 = (0..4).map(|c| p[c * 1024 + pixel]).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
    for file in [
        "predictions.png",
        "probabilities.svg",
        "labels.npy",
        "images.npy",
    ] {
        assert!(folder.join(file).is_file(), "missing {file}");
    }
    let out = imex_run(&["predict", run.to_str().unwrap(), "--images", "8"], root);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("image 8 does not exist"),
        "{}",
        stderr(&out)
    );

    // compare: a table on stdout and the overlay plot.
    let out = imex_run(
        &[
            "compare",
            "results/tiny_imex_seed3",
            "results/tiny_resnet/metrics.csv",
            "--plot",
            "cmp/overlay",
        ],
        root,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| tiny_resnet | 4 |"), "{table}");
    assert!(root.join("cmp/overlay.png").is_file() && root.join("cmp/overlay.svg").is_file());
    std::fs::write(root.join("bad.csv"), "epoch,val_loss\n1,zero\n").unwrap();
    let out = imex_run(&["compare", "results/tiny_resnet", "bad.csv"], root);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("bad.csv"), "{}", stderr(&out));

    // A committed run keeps its metrics but not its checkpoints: running it
    // again trains it (so that predictions can be drawn), to the same metrics.
    let before = metrics_without_timings(&run.join("metrics.csv"));
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    let config = tiny_experiment(root, "resnet");
    let out = imex_run(&[config.to_str().unwrap()], root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(run.join("checkpoints/best.safetensors").is_file());
    assert_eq!(metrics_without_timings(&run.join("metrics.csv")), before);
}

#[test]
fn report_without_runs_is_a_data_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = imex_run(&["report", "empty"], dir.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("no run folders"), "{}", stderr(&out));
    let out = imex_run(&["report", "nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn depth_report_and_predict_on_tiny_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for arch in ["imex", "resnet"] {
        let config = tiny_depth_experiment(root, arch, "");
        let out = imex_run(&[config.to_str().unwrap()], root);
        assert!(out.status.success(), "{arch}: {}", stderr(&out));
    }
    let out = imex_run(
        &["report", "results", "--out", "figs", "--images", "0,3"],
        root,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for file in [
        "depth_table.md",
        "depth_table.tex",
        "depth_table.csv",
        "depth_depth.png",
        "depth_rmse.svg",
        "depth_delta1.png",
    ] {
        assert!(root.join("figs").join(file).is_file(), "missing {file}");
    }
    let mut reader = csv::Reader::from_path(root.join("figs/depth_table.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let imex = rows.iter().find(|r| &r[1] == "IMEXnet").unwrap();
    let run = root.join("results/depth_imex");
    for column in ["val_rmse", "val_delta1", "val_abs_rel"] {
        let i = header
            .iter()
            .position(|h| h == &format!("{column}_mean"))
            .unwrap();
        let table: f64 = imex[i].parse().unwrap();
        assert!(
            (table - at_best_epoch(&run, column)).abs() < 1e-12,
            "{column}"
        );
    }
    let out = imex_run(&["predict", run.to_str().unwrap(), "--images", "2"], root);
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("predict-best-val/metrics.json")).unwrap(),
    )
    .unwrap();
    let recorded = at_best_epoch(&run, "val_rmse");
    let measured = metrics["rmse"].as_f64().unwrap();
    assert!(
        (measured - recorded).abs() < 1e-6,
        "{measured} vs {recorded}"
    );
    for file in ["depth.png", "predicted_depth.npy", "rgb.npy"] {
        assert!(
            run.join("predict-best-val").join(file).is_file(),
            "missing {file}"
        );
    }
}
