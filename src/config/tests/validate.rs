//! Values out of range and rules across keys, each message naming its key.

use super::*;

#[test]
fn out_of_range_values_name_key_and_line() {
    // (section, assignment, dotted key, expected phrase); the assignment is on line 6.
    let cases = [
        ("model", "h = 0.0", "model.h", "> 0"),
        ("model", "h = -1", "model.h", "> 0"),
        ("model", "h = nan", "model.h", "finite"),
        ("model", "alpha = -0.5", "model.alpha", ">= 0"),
        ("model", "widths = []", "model.widths", "non-empty"),
        (
            "model",
            "widths = [8, 0, 32]",
            "model.widths",
            "every width >= 1",
        ),
        (
            "model",
            "depths = [1, 0, 1]",
            "model.depths",
            "every depth >= 1",
        ),
        ("model", "in_channels = 0", "model.in_channels", ">= 1"),
        ("model", "n_classes = 1", "model.n_classes", ">= 2"),
        (
            "model",
            "kernel_init_scale = 0.0",
            "model.kernel_init_scale",
            "> 0",
        ),
        (
            "model",
            "operator_init_scale = -1.0",
            "model.operator_init_scale",
            "> 0",
        ),
        (
            "model",
            "classifier_init_scale = inf",
            "model.classifier_init_scale",
            "finite",
        ),
        ("data", "train_size = 0", "data.train_size", ">= 1"),
        ("data", "val_size = 0", "data.val_size", ">= 1"),
        ("data", "image_size = 4", "data.image_size", ">= 8"),
        ("data", "path = \"\"", "data.path", "non-empty path"),
        (
            "training",
            "learning_rate = 0",
            "training.learning_rate",
            "> 0",
        ),
        (
            "training",
            "lr_min = -1e-4",
            "training.lr_min",
            "[0, training.learning_rate)",
        ),
        (
            "training",
            "lr_min = 1.0",
            "training.lr_min",
            "[0, training.learning_rate)",
        ),
        (
            "training",
            "lr_step_epochs = 0",
            "training.lr_step_epochs",
            ">= 1",
        ),
        ("training", "lr_gamma = 0", "training.lr_gamma", "(0, 1]"),
        ("training", "lr_gamma = 1.5", "training.lr_gamma", "(0, 1]"),
        (
            "training",
            "lr_schedule = \"linear\"",
            "training.lr_schedule",
            "cosine",
        ),
        ("training", "momentum = 1.0", "training.momentum", "[0, 1)"),
        ("training", "momentum = -0.1", "training.momentum", "[0, 1)"),
        (
            "training",
            "weight_decay = -1e-4",
            "training.weight_decay",
            ">= 0",
        ),
        ("training", "batch_size = 0", "training.batch_size", ">= 1"),
        ("training", "epochs = 0", "training.epochs", ">= 1"),
        (
            "training",
            "eval_batch_size = 0",
            "training.eval_batch_size",
            ">= 1",
        ),
        (
            "training",
            "grad_clip_norm = -1",
            "training.grad_clip_norm",
            ">= 0",
        ),
        (
            "training",
            "class_weights = [0, 0, 0, 0]",
            "training.class_weights",
            "not all zero",
        ),
        (
            "training",
            "class_weights = [1, -1, 1, 1]",
            "training.class_weights",
            ">= 0",
        ),
    ];
    for (section, line, key, expected) in cases {
        let text = match section {
            "model" => {
                format!("[experiment]\nname = \"t\"\n\n[model]\narch = \"imex\"\n{line}\n")
            }
            _ => format!("{MINIMAL}[{section}]\n{line}\n"),
        };
        let msg = parse_error(&text, &[]);
        assert_has(&msg, &["exp.toml:6:", &format!("key `{key}`"), expected]);
    }
}

#[test]
fn learning_rate_schedules_give_hand_computed_rates() {
    let rates = |schedule: &str| {
        let text = format!(
            "{MINIMAL}[training]\nlearning_rate = 0.1\nepochs = 4\n\
                 lr_min = 0.02\nlr_step_epochs = 3\nlr_gamma = 0.5\n{schedule}"
        );
        let t = Config::parse(&text, ORIGIN, &[]).unwrap().training;
        (1..=5).map(|e| t.learning_rate_at(e)).collect::<Vec<_>>()
    };
    // The default changes nothing for files written before the key existed.
    assert_eq!(rates(""), vec![0.1; 5]);
    assert_eq!(rates("lr_schedule = \"constant\"\n"), vec![0.1; 5]);
    // cos(π·k/4) for k = 0..4: 1, √½, 0, −√½, −1.
    let half = std::f64::consts::FRAC_1_SQRT_2;
    let cosine = [
        0.1,
        0.02 + 0.08 * (1.0 + half) / 2.0,
        0.06,
        0.02 + 0.08 * (1.0 - half) / 2.0,
        0.02,
    ];
    for (got, want) in rates("lr_schedule = \"cosine\"\n").iter().zip(cosine) {
        assert!((got - want).abs() < 1e-15, "{got} != {want}");
    }
    assert_eq!(
        rates("lr_schedule = \"step\"\n"),
        vec![0.1, 0.1, 0.1, 0.05, 0.05]
    );
}

#[test]
fn momentum_with_adam_is_rejected() {
    let text = format!("{MINIMAL}[training]\noptimizer = \"adam\"\nmomentum = 0.9\n");
    assert_has(
        &parse_error(&text, &[]),
        &["exp.toml:7:", "key `training.momentum`", "SGD only"],
    );
}

#[test]
fn depths_must_match_widths() {
    let text = format!("{MINIMAL}widths = [8, 16]\ndepths = [2, 2, 2]\n");
    let msg = parse_error(&text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:6:",
            "key `model.depths`",
            "2 entries",
            "[2, 2, 2]",
        ],
    );

    // Default depths against explicit widths: no line, but the key and "(default)".
    let text = format!("{MINIMAL}widths = [8, 16]\n");
    let msg = parse_error(&text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml: key `model.depths` (default)",
            "2 entries",
            "[4, 4, 4]",
        ],
    );
}

#[test]
fn class_weights_must_have_one_per_class() {
    let text = format!("{MINIMAL}n_classes = 3\n[training]\nclass_weights = [1.0, 2.0]\n");
    let msg = parse_error(&text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:7:",
            "key `training.class_weights`",
            "3 weights",
            "[1.0, 2.0]",
        ],
    );

    let text = format!("{MINIMAL}[training]\nclass_weights = \"balanced\"\n");
    let msg = parse_error(&text, &[]);
    assert_has(
        &msg,
        &[
            "exp.toml:6:",
            "key `training.class_weights`",
            "\"auto\", \"none\" or an array",
        ],
    );

    let text = format!("{MINIMAL}[training]\nclass_weights = \"none\"\n");
    let cfg = Config::parse(&text, ORIGIN, &[]).unwrap();
    assert_eq!(cfg.training.class_weights, ClassWeights::None);
}

#[test]
fn bad_name_is_rejected() {
    for name in ["my run", "", "a/b", "..", "é"] {
        let text = format!("[experiment]\nname = \"{name}\"\n[model]\narch = \"imex\"\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &["exp.toml:2:", "key `experiment.name`", "[A-Za-z0-9_.-]+"],
        );
    }
}

#[test]
fn depth_key_errors_name_line_and_key() {
    // Task and data set disagree.
    let text = format!("{MINIMAL}task = \"depth\"\n");
    assert_has(
        &parse_error(&text, &[]),
        &[
            "exp.toml:5:",
            "key `model.task`",
            "\"segmentation\" for data.dataset = \"qtips\"",
        ],
    );
    // RGB needs 3 input channels.
    let text = DEPTH.replace("in_channels = 3", "in_channels = 1");
    assert_has(
        &parse_error(&text, &[]),
        &[
            "exp.toml:6:",
            "key `model.in_channels`",
            "3 for data.dataset = \"synthetic_rgbd\"",
        ],
    );
    // A segmentation loss for depth, a depth loss for segmentation.
    let text = format!("{DEPTH}[training]\nloss = \"cross_entropy\"\n");
    assert_has(
        &parse_error(&text, &[]),
        &[
            "exp.toml:12:",
            "key `training.loss`",
            "\"l1\", \"l2\" or \"silog\"",
        ],
    );
    let text = format!("{MINIMAL}[training]\nloss = \"l2\"\n");
    assert_has(
        &parse_error(&text, &[]),
        &["exp.toml:6:", "key `training.loss`", "\"cross_entropy\""],
    );
    let text = format!("{DEPTH}[training]\nloss = \"silgo\"\n");
    assert_has(
        &parse_error(&text, &[]),
        &[
            "exp.toml:12:",
            "key `training.loss`",
            "did you mean \"silog\"?",
        ],
    );
    let text = format!("{DEPTH}[training]\nsilog_lambda = 1.5\n");
    assert_has(
        &parse_error(&text, &[]),
        &["exp.toml:12:", "key `training.silog_lambda`", "[0, 1]"],
    );
    let text = format!("{DEPTH}[training]\nclass_weights = [1.0, 1.0, 1.0, 1.0]\n");
    assert_has(
        &parse_error(&text, &[]),
        &[
            "exp.toml:12:",
            "key `training.class_weights`",
            "segmentation",
        ],
    );
    // Sizes: the synthetic set needs one; crops and sizes come in pairs.
    let text = DEPTH.replace("height = 24", "height = 0");
    assert_has(
        &parse_error(&text, &[]),
        &["exp.toml:9:", "key `data.height`", ">= 8"],
    );
    let text = format!("{DEPTH}crop_height = 8\n");
    assert_has(
        &parse_error(&text, &[]),
        &[
            "exp.toml: key `data.crop_width` (default)",
            "both or neither",
        ],
    );
    let text = DEPTH.replace("width = 32", "width = 0");
    assert_has(
        &parse_error(&text, &[]),
        &["exp.toml:10:", "key `data.width`"],
    );
    let text = DEPTH.replace("synthetic_rgbd", "nyu");
    assert_has(
        &parse_error(&text, &[]),
        &[
            "exp.toml:8:",
            "key `data.dataset`",
            "did you mean \"nyu_mat\"?",
        ],
    );
    // Real data needs its file; an override is blamed as such.
    let text = DEPTH.replace("synthetic_rgbd", "nyu_mat");
    assert_has(
        &parse_error(&text, &["data.path="]),
        &["--set data.path=: key `data.path`"],
    );
}
