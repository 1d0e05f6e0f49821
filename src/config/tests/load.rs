//! Reading experiment files and overrides, and where their messages point.

use super::*;
use crate::config::schema::schema;

#[test]
fn full_file_round_trips() {
    let cfg = Config::load(&fixture("full.toml"), &[]).unwrap();
    assert_eq!(cfg.experiment.name, "qtips_imex_small");
    assert_eq!(cfg.experiment.device, Device::Auto);
    assert_eq!(cfg.model.arch, Arch::Resnet);
    assert_eq!(cfg.model.widths, vec![8, 16, 32]);
    assert_eq!(cfg.model.operator, Operator::Laplacian);
    assert_eq!(cfg.model.form, Form::Split);
    assert_eq!(cfg.model.batchnorm, BatchNormMode::Standard);
    assert_eq!(cfg.model.kernel_init_scale, 2.5e-3);
    assert_eq!(cfg.data.train_limit, 100);
    assert_eq!(cfg.training.optimizer, OptimizerKind::Adam);
    assert_eq!(
        cfg.training.class_weights,
        ClassWeights::Explicit(vec![0.5, 1.0, 2.0, 0.0])
    );
    assert_eq!(cfg.training.checkpoint, CheckpointRule::LowestTrainLoss);
    assert_eq!(cfg.training.lr_schedule, LrSchedule::Step);
    assert_eq!(
        (
            cfg.training.lr_min,
            cfg.training.lr_step_epochs,
            cfg.training.lr_gamma
        ),
        (1e-5, 5, 0.5)
    );

    let text = cfg.to_toml();
    assert_eq!(Config::parse(&text, "resolved.toml", &[]).unwrap(), cfg);
}

#[test]
fn defaults_fill_in_and_are_written_explicitly() {
    let cfg = Config::load(&fixture("minimal.toml"), &[]).unwrap();
    assert_eq!(cfg.experiment.seed, 0);
    assert_eq!(cfg.experiment.output_dir, PathBuf::from("results"));
    assert_eq!(cfg.experiment.device, Device::Cpu);
    assert_eq!(cfg.model.widths, vec![64, 128, 256]);
    assert_eq!(cfg.model.depths, vec![4, 4, 4]);
    assert_eq!((cfg.model.h, cfg.model.alpha), (1.0, 1.0));
    assert_eq!(cfg.model.operator, Operator::Learned);
    assert_eq!(cfg.model.form, Form::Damped);
    assert_eq!(cfg.model.batchnorm, BatchNormMode::Paper);
    assert_eq!((cfg.model.in_channels, cfg.model.n_classes), (1, 4));
    assert_eq!(cfg.model.kernel_init_scale, 1e-3);
    assert_eq!(cfg.model.operator_init_scale, 1.0);
    assert_eq!(cfg.model.classifier_init_scale, 1e-3);
    assert_eq!(cfg.data, DataSection::default());
    assert_eq!(cfg.training, TrainingSection::default());
    assert_eq!(cfg.run_dir(), Path::new("results").join("qtips_imex_small"));

    let text = cfg.to_toml();
    for key in [
        "seed = 0",
        "device = \"cpu\"",
        "[data]",
        "train_limit = 0",
        "[training]",
    ] {
        assert!(text.contains(key), "to_toml lacks {key}:\n{text}");
    }
    assert!(text.contains("class_weights = \"auto\""), "{text}");
    assert!(text.contains("checkpoint = \"best_val_loss\""), "{text}");
    assert_eq!(Config::parse(&text, "resolved.toml", &[]).unwrap(), cfg);
}

#[test]
fn schema_lists_every_key() {
    let schema = schema();
    let keys: Vec<usize> = ["experiment", "model", "data", "training"]
        .iter()
        .map(|s| schema[*s].as_table().unwrap().len())
        .collect();
    assert_eq!(keys, vec![4, 14, 15, 16]);
}

#[test]
fn unknown_key_suggests_nearest() {
    let text = format!("{MINIMAL}[training]\nlearning_rat = 0.1\n");
    let msg = parse_error(&text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:6:",
            "unknown key `training.learning_rat`",
            "did you mean `training.learning_rate`?",
        ],
    );
}

#[test]
fn unknown_key_far_from_any_lists_valid_keys() {
    let text = format!("{MINIMAL}zzz = 1\n");
    let msg = parse_error(&text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:5:",
            "unknown key `model.zzz`",
            "valid:",
            "`model.h`",
            "`model.arch`",
        ],
    );
}

#[test]
fn unknown_section_suggests_nearest() {
    let text = format!("{MINIMAL}[trainig]\nepochs = 3\n");
    let msg = parse_error(&text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:5:",
            "unknown section `[trainig]`",
            "did you mean `training`?",
        ],
    );
}

#[test]
fn every_unknown_key_is_reported() {
    let text = "[experiment]\nname = \"t\"\nsead = 1\n[model]\narch = \"imex\"\nwidth = [8]\n";
    let msg = parse_error(text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:3: unknown key `experiment.sead`",
            "exp.toml:6: unknown key `model.width`",
        ],
    );
}

#[test]
fn wrong_type_names_line_and_key() {
    let text = format!("{MINIMAL}h = \"big\"\n");
    let msg = parse_error(&text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:5:",
            "key `model.h`",
            "expected a number",
            "found string \"big\"",
        ],
    );

    let text =
        "[experiment]\nname = \"t\"\n\n[model]\narch = \"imex\"\n[training]\nbatch_size = -1\n";
    let msg = parse_error(text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:7:",
            "key `training.batch_size`",
            "expected a non-negative integer",
        ],
    );

    let text = format!("{MINIMAL}widths = [8, \"a\"]\n");
    assert_has(
        &parse_error(&text, &[]),
        &["exp.toml:5:", "key `model.widths`"],
    );
}

#[test]
fn unknown_enum_string_suggests_variant() {
    let text = "[experiment]\nname = \"t\"\n[model]\narch = \"resnett\"\n";
    let msg = parse_error(text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:4:",
            "key `model.arch`",
            "expected \"imex\" or \"resnet\"",
            "did you mean \"resnet\"?",
        ],
    );

    let text = "[experiment]\nname = \"t\"\n[model]\narch = 1\n";
    assert_has(
        &parse_error(text, &[]),
        &["exp.toml:4:", "key `model.arch`", "expected a string"],
    );
}

#[test]
fn devices_are_named_as_on_the_command_line() {
    for (text, device) in [
        ("cpu", Device::Cpu),
        ("cuda", Device::Cuda),
        ("auto", Device::Auto),
        ("tch", Device::Tch),
        ("tch-cuda", Device::TchCuda(0)),
        ("tch-cuda:3", Device::TchCuda(3)),
    ] {
        let cfg = Config::parse(
            &format!("[experiment]\nname = \"t\"\ndevice = \"{text}\"\n[model]\narch = \"imex\"\n"),
            ORIGIN,
            &[],
        )
        .unwrap();
        assert_eq!(cfg.experiment.device, device, "{text}");
        assert_eq!(Config::parse(&cfg.to_toml(), ORIGIN, &[]).unwrap(), cfg);
    }
    for bad in ["tch-cuda:", "tch-cuda:x", "tch-cpu", "gpu"] {
        let text =
            format!("[experiment]\nname = \"t\"\ndevice = \"{bad}\"\n[model]\narch = \"imex\"\n");
        assert_has(
            &parse_error(&text, &[]),
            &[
                "exp.toml:3:",
                "key `experiment.device`",
                "\"tch-cuda:N\"",
                bad,
            ],
        );
    }
    assert_has(
        &parse_error(MINIMAL, &["experiment.device=tch-cudaa"]),
        &["experiment.device", "did you mean \"tch-cuda\"?"],
    );
}

#[test]
fn section_that_is_not_a_table() {
    let msg = parse_error("model = 3\n[experiment]\nname = \"t\"\n", &[]);
    assert_has(&msg, &["exp.toml:1:", "key `model`", "expected a table"]);
}

#[test]
fn missing_required_keys_and_sections() {
    let msg = parse_error("[experiment]\nname = \"t\"\n\n[model]\nh = 0.5\n", &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:4:",
            "missing required key `model.arch`",
            "\"imex\" or \"resnet\"",
        ],
    );

    let msg = parse_error("[model]\narch = \"imex\"\n", &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:",
            "missing required section [experiment]",
            "`experiment.name`",
        ],
    );
}

#[test]
fn malformed_toml_names_line() {
    let msg = parse_error("[experiment]\nname = \"t\"\n[model]\narch = \n", &[]);
    assert_has(
        &msg,
        &["exp.toml:4:", "malformed TOML: invalid string; expected"],
    );

    let msg = parse_error("[experiment]\nname = \"t\"\nname = \"u\"\n", &[]);
    assert_has(&msg, &["exp.toml:3:", "malformed TOML", "duplicate key"]);
}

#[test]
fn missing_file_is_a_config_error() {
    let path = fixture("does_not_exist.toml");
    let msg = config_error(Config::load(&path, &[]));
    assert_has(
        &msg,
        &["cannot read experiment file", "does_not_exist.toml"],
    );
}

#[test]
fn bad_overrides_are_rejected() {
    let msg = parse_error(MINIMAL, &["model.hh=1"]);
    assert_has(
        &msg,
        &["exp.toml: --set model.hh=1: unknown key `model.hh`, did you mean `model.h`?"],
    );

    let msg = parse_error(MINIMAL, &["modle.h=1"]);
    assert_has(
        &msg,
        &["--set modle.h=1: unknown section `modle`, did you mean `model`?"],
    );

    let msg = parse_error(MINIMAL, &["model.h"]);
    assert_has(
        &msg,
        &["exp.toml: --set model.h: malformed override", "no `=`"],
    );

    let msg = parse_error(MINIMAL, &["h=1"]);
    assert_has(
        &msg,
        &["--set h=1: malformed override", "section.key=value"],
    );

    let msg = parse_error(MINIMAL, &["model.h.x=1"]);
    assert_has(&msg, &["--set model.h.x=1: malformed override"]);
}

#[test]
fn override_values_are_located_by_the_override() {
    let msg = parse_error(MINIMAL, &["model.h=-1"]);
    assert_has(
        &msg,
        &["exp.toml: --set model.h=-1: key `model.h`", "> 0", "-1.0"],
    );

    let msg = parse_error(MINIMAL, &["model.h=big"]);
    assert_has(
        &msg,
        &[
            "--set model.h=big: key `model.h`",
            "expected a number, found string \"big\"",
        ],
    );

    // An override replacing a file value takes the blame, not the file's line.
    let text = format!("{MINIMAL}h = 0.5\n");
    let msg = parse_error(&text, &["model.h=0"]);
    assert_has(&msg, &["--set model.h=0: key `model.h`"]);
    assert!(!msg.contains("exp.toml:5"), "{msg}");
}

#[test]
fn overrides_are_applied() {
    let text = format!("{MINIMAL}h = 0.5\n");
    let overrides = [
        "model.h=0.25",
        "model.widths=[8,16,32]",
        "model.arch=resnet",
        "model.operator=\"identity\"",
        "experiment.name=2024",
        "experiment.seed = 7",
        "training.class_weights=[1,1,2,2]",
    ];
    let cfg = Config::parse(&text, ORIGIN, &sets(&overrides)).unwrap();
    assert_eq!(cfg.model.h, 0.25);
    assert_eq!(cfg.model.widths, vec![8, 16, 32]);
    assert_eq!(cfg.model.arch, Arch::Resnet);
    assert_eq!(cfg.model.operator, Operator::Identity);
    assert_eq!(cfg.experiment.name, "2024");
    assert_eq!(cfg.experiment.seed, 7);
    assert_eq!(
        cfg.training.class_weights,
        ClassWeights::Explicit(vec![1.0, 1.0, 2.0, 2.0])
    );
    // Later overrides of the same key win.
    let cfg = Config::parse(MINIMAL, ORIGIN, &sets(&["model.h=2", "model.h=3"])).unwrap();
    assert_eq!(cfg.model.h, 3.0);
}

#[test]
fn override_creates_missing_section() {
    assert!(!MINIMAL.contains("[training]"));
    let cfg = Config::parse(
        MINIMAL,
        ORIGIN,
        &sets(&["training.epochs=3", "data.generate=false"]),
    )
    .unwrap();
    assert_eq!(cfg.training.epochs, 3);
    assert_eq!(cfg.training.batch_size, 8);
    assert!(!cfg.data.generate);

    // Even a required section can come from overrides alone.
    let text = "[experiment]\nname = \"t\"\n";
    let cfg = Config::parse(text, ORIGIN, &sets(&["model.arch=imex"])).unwrap();
    assert_eq!(cfg.model.arch, Arch::Imex);
}

#[test]
fn depth_keys_parse_and_round_trip() {
    let text = format!("{DEPTH}flip = true\n[training]\nloss = \"silog\"\nsilog_lambda = 0.85\n");
    let cfg = Config::parse(&text, ORIGIN, &[]).unwrap();
    assert_eq!(cfg.model.task, Task::Depth);
    assert_eq!(cfg.model.head_width(), 1);
    assert_eq!(cfg.data.dataset, Dataset::SyntheticRgbd);
    assert_eq!(
        (cfg.data.height, cfg.data.width, cfg.data.flip),
        (24, 32, true)
    );
    assert_eq!(cfg.training.loss, Loss::Silog);
    assert_eq!(cfg.training.silog_lambda, 0.85);
    assert_eq!(Config::parse(&cfg.to_toml(), "r.toml", &[]).unwrap(), cfg);
    // auto resolves per task.
    let cfg = Config::parse(DEPTH, ORIGIN, &[]).unwrap();
    assert_eq!(cfg.training.loss.resolve(cfg.model.task), Loss::L1);
    assert_eq!(Loss::Auto.resolve(Task::Segmentation), Loss::CrossEntropy);
    assert_eq!(
        Config::parse(MINIMAL, ORIGIN, &[])
            .unwrap()
            .model
            .head_width(),
        4
    );
}

#[test]
fn load_names_the_real_path() {
    let path = fixture("bad_h.toml");
    let msg = config_error(Config::load(&path, &[]));
    assert_has(&msg, &["bad_h.toml:6:", "key `model.h`", "> 0"]);
}
