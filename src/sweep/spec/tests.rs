//! The sweep file's grammar, expansion and names, on files written beside a
//! valid base experiment.

use super::points::labels;
use super::*;
use std::io::Write;
use std::path::Path;

const BASE: &str = "[experiment]\nname = \"base\"\noutput_dir = \"out\"\n[model]\narch = \"imex\"\nwidths = [4, 8]\ndepths = [2, 2]\n";

/// A sweep file `text` beside a valid base experiment, in a temporary folder.
fn sweep(text: &str) -> (tempfile::TempDir, Result<Sweep, String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.toml"), BASE).unwrap();
    let path = dir.path().join("s.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let result = Sweep::parse(text, &path);
    (dir, result)
}

fn ok(text: &str) -> Sweep {
    let (_dir, s) = sweep(text);
    s.unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    let (_dir, s) = sweep(text);
    match s {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

const HEAD: &str = "[sweep]\nname = \"hs\"\nbase = \"base.toml\"\n";

#[test]
fn grid_is_the_cartesian_product_first_key_slowest() {
    let s = ok(&format!(
        "{HEAD}[sweep.grid]\n\"model.h\" = [0.5, 1.0, 2]\n\"model.alpha\" = [0, 4.5]\n"
    ));
    let got: Vec<(f64, f64)> = s
        .points
        .iter()
        .map(|p| (p.config.model.h, p.config.model.alpha))
        .collect();
    assert_eq!(
        got,
        vec![
            (0.5, 0.0),
            (0.5, 4.5),
            (1.0, 0.0),
            (1.0, 4.5),
            (2.0, 0.0),
            (2.0, 4.5)
        ]
    );
    assert_eq!(s.keys, vec!["model.h", "model.alpha"]);
    assert_eq!(
        s.points.iter().map(|p| p.index).collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    assert_eq!(s.points[1].name, "hs_h0.5_alpha4.5");
    assert_eq!(s.points[4].name, "hs_h2_alpha0");
    // Ordinary run folders under OUTPUT_DIR/NAME/, the base's output_dir.
    assert_eq!(s.dir, Path::new("out/hs"));
    assert_eq!(s.points[1].dir(), Path::new("out/hs/hs_h0.5_alpha4.5"));
    assert_eq!(s.points[1].config.experiment.name, "hs_h0.5_alpha4.5");
}

#[test]
fn zip_varies_together_and_multiplies_the_grid() {
    let s = ok(&format!(
        "{HEAD}[sweep.grid]\n\"experiment.seed\" = [0, 1]\n\
             [sweep.zip]\n\"model.h\" = [0.5, 2.0]\n\"model.alpha\" = [2.0, 0.5]\n"
    ));
    let got: Vec<(u64, f64, f64)> = s
        .points
        .iter()
        .map(|p| {
            let c = &p.config;
            (c.experiment.seed, c.model.h, c.model.alpha)
        })
        .collect();
    assert_eq!(
        got,
        vec![(0, 0.5, 2.0), (0, 2.0, 0.5), (1, 0.5, 2.0), (1, 2.0, 0.5)]
    );
    assert_eq!(s.points[0].name, "hs_seed0_h0.5_alpha2");
}

#[test]
fn set_applies_everywhere_and_extras_add_named_points() {
    let s = ok(&format!(
        "{HEAD}[sweep.set]\n\"training.epochs\" = 3\n\
             [sweep.grid]\n\"model.h\" = [0.5, 1]\n\
             [[sweep.extra]]\nlabel = \"ResNet\"\nset = {{ \"model.arch\" = \"resnet\" }}\n\
             grid = {{ \"model.h\" = [0.5, 1] }}\n"
    ));
    assert_eq!(s.points.len(), 4);
    assert!(s.points.iter().all(|p| p.config.training.epochs == 3));
    let names: Vec<&str> = s.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "hs_h0.5",
            "hs_h1",
            "hs_arch-resnet_h0.5",
            "hs_arch-resnet_h1"
        ]
    );
    assert_eq!(s.points[3].config.model.arch, crate::config::Arch::Resnet);
    assert_eq!(s.points[3].label.as_deref(), Some("ResNet"));
    assert_eq!((s.points[0].block, s.points[3].block), (0, 1));
    assert_eq!(s.keys, ["model.h", "model.arch"]);
}

#[test]
fn names_are_stable_safe_and_unique() {
    let text = format!(
        "{HEAD}[sweep.grid]\nmodel.widths = [[4, 8], [2, 6]]\n\
             \"model.operator\" = [\"identity\", \"laplacian\"]\n\"data.image_size\" = [16]\n\
             \"training.learning_rate\" = [1e-3]\n"
    );
    let s = ok(&text);
    assert_eq!(
        s.points[0].name,
        "hs_widths-4-8_operator-identity_image_size16_learning_rate0.001"
    );
    // Stable: a point's name does not depend on its neighbours.
    let more = ok(&text.replace("[[4, 8], [2, 6]]", "[[1, 2], [4, 8], [2, 6]]"));
    let names: Vec<&String> = more.points.iter().map(|p| &p.name).collect();
    for p in &s.points {
        assert!(names.contains(&&p.name), "{} renamed", p.name);
    }
    for p in &more.points {
        assert!(p
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    }
    // A shared last part is qualified by its section.
    assert_eq!(
        labels(&["data.width".into(), "model.width".into(), "model.h".into()]),
        ["data_width", "model_width", "h"]
    );
    assert_eq!(
        name_part("arch", &toml::Value::String("a b/c".into())),
        "arch-a-b-c"
    );
    // Values that look alike in a file name are refused, naming both points.
    let e = err(&format!("{HEAD}[sweep.grid]\n\"model.h\" = [1, 1.0]\n"));
    assert!(
        e.contains("points 0 and 1 would both be the run hs_h1"),
        "{e}"
    );
}

#[test]
fn bad_sweep_files_name_file_line_key_and_point() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("{HEAD}[sweep.grid]\n\"model.hh\" = [1.0]\n"),
            vec!["s.toml:5: key `model.hh`", "point 0", "unknown key `model.hh`", "did you mean `model.h`"],
        ),
        (
            format!("{HEAD}[sweep.grid]\n\"model.h\" = [0.5, \"big\"]\n"),
            vec!["s.toml:5: key `model.h`", "point 1", "hs_h-big", "expected a number"],
        ),
        (
            format!("{HEAD}[sweep.grid]\n\"model.h\" = [0.5, -1]\n"),
            vec!["s.toml:5: key `model.h`", "point 1 (model.h=-1, run hs_h-1)", "> 0"],
        ),
        (
            format!("{HEAD}[sweep.grid]\n\"model.h\" = []\n"),
            vec!["s.toml:5: key `model.h`", "empty list"],
        ),
        (
            format!("{HEAD}[sweep.grid]\n\"model.h\" = 0.5\n"),
            vec!["s.toml:5: key `model.h`", "expected a list of values", "[0.5]"],
        ),
        (
            format!("{HEAD}[sweep.zip]\n\"model.h\" = [1, 2]\n\"model.alpha\" = [1, 2, 3]\n"),
            vec!["s.toml:6: key `model.alpha`", "3 values", "`model.h` (line 5) has 2"],
        ),
        (
            format!("{HEAD}[sweep.grid]\n\"experiment.name\" = [\"a\"]\n"),
            vec!["s.toml:5: key `experiment.name`", "set by the sweep"],
        ),
        (
            format!("{HEAD}gird = 1\n[sweep.grid]\n\"model.h\" = [1]\n"),
            vec!["s.toml:4: unknown key `sweep.gird`", "did you mean `sweep.grid`"],
        ),
        (
            "[sweep]\nname = \"a b\"\nbase = \"base.toml\"\n[sweep.grid]\n\"model.h\" = [1]\n".into(),
            vec!["s.toml:2: key `sweep.name`", "[A-Za-z0-9_.-]+"],
        ),
        (
            "[sweep]\nname = \"x\"\nbase = \"nope.toml\"\n[sweep.grid]\n\"model.h\" = [1]\n".into(),
            vec!["s.toml:3: key `sweep.base`", "cannot read the base experiment", "nope.toml"],
        ),
        (
            HEAD.to_string(),
            vec!["[sweep] varies nothing"],
        ),
        (
            format!("{HEAD}[sweep.grid]\n\"model.h\" = [1]\n[sweep.slurm]\ncpus_per_task = 0\nqueue = \"x\"\n"),
            vec!["s.toml:7: key `sweep.slurm.cpus_per_task`", "integer >= 1", "s.toml:8: unknown key `sweep.slurm.queue`"],
        ),
        (
            format!("{HEAD}[sweep.grid]\n\"model.h\" = [1 2]\n"),
            vec!["s.toml:5", "malformed TOML"],
        ),
    ];
    for (text, expected) in cases {
        let e = err(&text);
        for part in expected {
            assert!(e.contains(part), "{part:?} not in:\n{e}\n--- for:\n{text}");
        }
    }
}

#[test]
fn a_cross_field_refusal_names_the_point_and_counts_the_others() {
    // depths must match widths: the widths override is blamed.
    let e = err(&format!(
        "{HEAD}[sweep.grid]\n\"model.widths\" = [[4, 8], [4, 8, 16], [2, 2, 2]]\n"
    ));
    assert!(e.contains("point 1 (model.widths=[4, 8, 16]"), "{e}");
    assert!(e.contains("key `model.depths`"), "{e}");
    assert!(
        e.contains("(2 of 3 points are refused; this is the first)"),
        "{e}"
    );
}

#[test]
fn index_is_bounds_checked() {
    let s = ok(&format!("{HEAD}[sweep.grid]\n\"model.h\" = [1, 2]\n"));
    assert_eq!(s.point(1).unwrap().name, "hs_h2");
    let e = s.point(2).unwrap_err();
    assert_eq!(crate::error::exit_code(&e), 2);
    assert!(format!("{e}").contains("--index 2 is out of range: the sweep has 2 points, 0 to 1"));
}
