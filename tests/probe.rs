//! `imex-run probe` against independent truths on tiny networks: the power
//! iteration against the dense Jacobian's largest singular value, FGSM
//! against a finite-difference gradient, PGD's ball, the receptive fields of
//! a convolution, a ResNet and an IMEX layer, and noise σ = 0 against the
//! run's own recorded metrics.

mod common;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData};
use common::{imex_run, read_csv, stderr, tiny_depth_experiment, tiny_experiment};
use imex_run::check::{peer_fixture, peer_spec, values, StepInput};
use imex_run::config::{Arch, Config, ModelSection};
use imex_run::model::explicit::conv3x3;
use imex_run::model::Network;
use imex_run::probe::adversarial::{fgsm, loss_gradient, pgd};
use imex_run::probe::perturbation::largest_singular_value;
use imex_run::probe::receptive_field::{mass_profile, sensitivity};
use imex_run::train::weighted_nll;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

type AD = Autodiff<Flex>;

/// The peer fixture's IMEX network (kernels of size 0.3, so every layer
/// matters) and its batch: 3 images of 12×10.
fn peer_network() -> (Network<AD>, StepInput) {
    let fixture = peer_fixture(Arch::Imex).unwrap();
    let net =
        Network::<AD>::from_named_tensors(&peer_spec(Arch::Imex), &fixture, &Default::default())
            .unwrap()
            .project_kernels();
    (net, StepInput::from_fixture(&fixture).unwrap())
}

/// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (float64).
fn symmetric_eigenvalues(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    for _sweep in 0..50 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (row_p, row_q) = (a[p].clone(), a[q].clone());
                for (k, (apk, aqk)) in row_p.into_iter().zip(row_q).enumerate() {
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| a[i][i]).collect()
}

/// The power iteration's σ_max of ∂Y_j/∂x equals the largest singular value
/// of the Jacobian assembled row by row (one vector-Jacobian product per
/// output entry), from the eigenvalues of JᵀJ in float64. Tolerance 1%: the
/// central difference moves x by 10⁻³‖x‖ and may switch a few ReLUs, and 40
/// iterations converge like (σ₂/σ₁)⁸⁰.
#[test]
fn power_iteration_finds_the_largest_singular_value_of_the_dense_jacobian() {
    let (net, input) = peer_network();
    let device = Default::default();
    let x: Tensor<AD, 4> = input.x.to_tensor(&device);
    let layer = 1; // the first IMEX step (width 4)
    let y = net.state_after(x.clone(), layer);
    let outputs = y.dims().iter().product::<usize>();
    let inputs = x.dims().iter().product::<usize>();
    let mut jacobian = Vec::with_capacity(outputs);
    for k in 0..outputs {
        let probe = x.clone().detach().require_grad();
        let mut unit = vec![0f32; outputs];
        unit[k] = 1.0;
        let selector = Tensor::<AD, 4>::from_data(TensorData::new(unit, y.dims()), &device);
        let grads = (net.state_after(probe.clone(), layer) * selector)
            .sum()
            .backward();
        jacobian.push(values(probe.grad(&grads).unwrap()));
    }
    let gram: Vec<Vec<f64>> = (0..inputs)
        .map(|i| {
            (0..inputs)
                .map(|j| jacobian.iter().map(|row| row[i] * row[j]).sum())
                .collect()
        })
        .collect();
    let truth = symmetric_eigenvalues(gram)
        .into_iter()
        .fold(0.0, f64::max)
        .sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let sigma = largest_singular_value(|t| net.state_after(t, layer), x, 40, &mut rng);
    assert!(
        (sigma - truth).abs() < 1e-2 * truth,
        "power iteration {sigma}, dense {truth}"
    );
}

fn batch(input: &StepInput) -> (Tensor<AD, 4>, Tensor<AD, 3, Int>, Tensor<AD, 1>) {
    let device = Default::default();
    let labels = Tensor::from_data(
        TensorData::new(input.labels.clone(), input.label_shape),
        &device,
    );
    let weights = input.class_weights.clone();
    let class_weights =
        Tensor::from_data(TensorData::new(weights.clone(), [weights.len()]), &device);
    (input.x.to_tensor(&device), labels, class_weights)
}

fn loss(
    net: &Network<AD>,
    x: Tensor<AD, 4>,
    labels: &Tensor<AD, 3, Int>,
    w: &Tensor<AD, 1>,
) -> f64 {
    let (num, den) = weighted_nll(net.forward(x), labels.clone(), w.clone());
    values(num / den)[0]
}

/// The probes differentiate a network whose weights do not require
/// gradients (the backward pass skips the kernels' gradients): the input
/// gradient is the one of the full backward pass.
#[test]
fn input_gradients_do_not_need_the_weights_gradients() {
    use burn::module::Module;
    let (net, input) = peer_network();
    let (x, labels, w) = batch(&input);
    let full = values(loss_gradient(&net, x.clone(), &labels, &w));
    let input_only = values(loss_gradient(&net.no_grad(), x, &labels, &w));
    assert!(full.iter().any(|g| *g != 0.0));
    assert_eq!(full, input_only);
}

/// x' − x = ε·sign(g) with g a central finite difference of the loss (in
/// float64 arithmetic on float32 losses, step 10⁻², where |g| stands clear of
/// the difference's error: entries below 1% of the largest are skipped).
#[test]
fn fgsm_steps_along_the_sign_of_a_finite_difference_gradient() {
    let (net, input) = peer_network();
    let (x, labels, w) = batch(&input);
    let epsilon = 0.05;
    let step = values(
        fgsm(
            loss_gradient(&net, x.clone(), &labels, &w),
            x.clone(),
            epsilon,
        ) - x.clone(),
    );
    let base = values(x.clone());
    let dims = x.dims();
    let h = 1e-2;
    let mut differences = Vec::new();
    for k in 0..base.len() {
        let shifted = |d: f64| {
            let mut v: Vec<f32> = base.iter().map(|&b| b as f32).collect();
            v[k] += d as f32;
            loss(
                &net,
                Tensor::from_data(TensorData::new(v, dims), &Default::default()),
                &labels,
                &w,
            )
        };
        differences.push((shifted(h) - shifted(-h)) / (2.0 * h));
    }
    let largest = differences.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let mut checked = 0;
    for (g, s) in differences.iter().zip(&step) {
        if g.abs() > 1e-2 * largest {
            assert!(
                (s - epsilon * g.signum()).abs() < 1e-6,
                "step {s}, gradient {g}"
            );
            checked += 1;
        }
    }
    assert!(checked > base.len() / 2, "only {checked} entries checked");
}

/// PGD stays in the ε ball and does at least as much damage as FGSM.
#[test]
fn pgd_stays_in_the_ball_and_beats_fgsm() {
    let (net, input) = peer_network();
    let (x, labels, w) = batch(&input);
    for epsilon in [0.02, 0.1, 0.5] {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let gradient = |a: Tensor<AD, 4>| loss_gradient(&net, a, &labels, &w);
        let attacked = pgd(gradient, x.clone(), epsilon, 10, &mut rng);
        let furthest = values(attacked.clone() - x.clone())
            .iter()
            .fold(0.0f64, |m, d| m.max(d.abs()));
        // |x ± ε| in float32 rounds by ≤ 2⁻²⁴·(|x| + ε) ≲ 1e-6.
        assert!(
            furthest <= epsilon + 1e-6,
            "PGD left the ball: {furthest} > {epsilon}"
        );
        let fgsm_loss = loss(
            &net,
            fgsm(gradient(x.clone()), x.clone(), epsilon),
            &labels,
            &w,
        );
        let pgd_loss = loss(&net, attacked, &labels, &w);
        assert!(
            pgd_loss >= fgsm_loss,
            "ε = {epsilon}: PGD {pgd_loss} < FGSM {fgsm_loss}"
        );
    }
}

fn spec(arch: &str, extra: &str) -> ModelSection {
    let text = format!(
        "[experiment]\nname = \"rf\"\n[model]\narch = \"{arch}\"\nwidths = [2]\ndepths = [3]\n{extra}"
    );
    Config::parse(&text, "rf", &[]).unwrap().model
}

/// Chebyshev distance of pixel q (row-major, width w) from p.
fn chebyshev(q: usize, w: usize, p: (usize, usize)) -> usize {
    (q / w).abs_diff(p.0).max((q % w).abs_diff(p.1))
}

#[test]
fn receptive_field_of_one_convolution_is_its_footprint() {
    let device = Default::default();
    let kernel = Tensor::<AD, 4>::from_data(
        TensorData::new(
            (1..=18).map(|v| v as f32 / 10.0).collect::<Vec<_>>(),
            [2, 1, 3, 3],
        ),
        &device,
    );
    let x = Tensor::<AD, 4>::from_data(
        TensorData::new(
            (0..2 * 81)
                .map(|v| (v % 7) as f32 - 3.0)
                .collect::<Vec<_>>(),
            [2, 1, 9, 9],
        ),
        &device,
    );
    let p = (4, 4);
    let map = sensitivity(|t| conv3x3(t, kernel.clone()), x, p);
    for (q, v) in map.iter().enumerate() {
        assert_eq!(*v > 0.0, chebyshev(q, 9, p) <= 1, "pixel {q}: {v}");
    }
    let (_, radii) = mass_profile(&map, 9, 9, p, &[1.0]);
    assert!((radii[0] - 2f64.sqrt()).abs() < 1e-12);
}

/// A ResNet (opening layer: radius 1; each residual layer K then Kᵀ: 2 more)
/// sees nothing beyond 1 + 2·2 = 5 pixels (with BN an affine map, as in
/// standard-BN evaluation; the paper's batch statistics couple every pixel),
/// and reaches that radius; one IMEX layer couples every pixel.
#[test]
fn receptive_fields_of_resnet_and_imex_layers() {
    let device = Default::default();
    let x = Tensor::<AD, 4>::from_data(
        TensorData::new(
            (0..2 * 256)
                .map(|v| ((v * 37 % 11) as f32 - 5.0) / 3.0)
                .collect::<Vec<_>>(),
            [2, 1, 16, 16],
        ),
        &device,
    );
    let p = (8, 8);
    let resnet = Network::<AD>::new(&spec("resnet", "batchnorm = \"standard\"\n"), 3, &device)
        .project_kernels()
        .evaluating();
    let map = sensitivity(|t| resnet.forward(t), x.clone(), p);
    let reach = map
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > 0.0)
        .map(|(q, _)| chebyshev(q, 16, p))
        .max();
    assert_eq!(reach, Some(5));
    let imex = Network::<AD>::new(&spec("imex", ""), 3, &device).project_kernels();
    let map = sensitivity(|t| imex.forward(t), x, p);
    assert!(
        map.iter().all(|v| *v > 0.0),
        "an IMEX network couples every pixel"
    );
}

/// Trains the tiny experiment `config` in `dir`; its run folder.
fn trained(dir: &Path, config: &Path) -> PathBuf {
    let out = imex_run(&[config.to_str().unwrap()], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let name = config.file_stem().unwrap().to_str().unwrap();
    dir.join("results").join(name)
}

/// The σ = 0 row of `probe/noise.csv` against the run's recorded validation
/// metrics of its last epoch (the last checkpoint's), each within
/// `tolerance`; noise.csv's header and rows.
fn noise_free_row_is_recorded(
    probe: &Path,
    run: &Path,
    tolerance: f64,
) -> (Vec<String>, Vec<Vec<f64>>) {
    let (header, rows) = read_csv(&probe.join("noise.csv"));
    let (columns, metrics) = read_csv(&run.join("metrics.csv"));
    let last = metrics.last().unwrap();
    for (k, name) in header.iter().enumerate().skip(1) {
        let column = columns
            .iter()
            .position(|c| *c == format!("val_{name}"))
            .unwrap();
        assert!(
            (rows[0][k] - last[column]).abs() <= tolerance,
            "{name} at σ = 0: {} vs {}",
            rows[0][k],
            last[column]
        );
    }
    (header, rows)
}

/// Noise σ = 0 is the clean evaluation: the run's recorded validation
/// metrics at the checkpoint's epoch, to metrics.csv's six decimals.
#[test]
fn probe_at_zero_noise_reproduces_the_recorded_metrics_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), &tiny_experiment(dir.path(), "imex"));
    let run_arg = run.to_str().unwrap();
    let out = imex_run(
        &[
            "probe",
            run_arg,
            "--study",
            "noise,receptive-field",
            "--checkpoint",
            "last",
            "--sigmas",
            "0,0.5",
            "--images",
            "8",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let probe = run.join("probe-last-val");
    let (header, rows) = noise_free_row_is_recorded(&probe, &run, 0.0);
    assert_eq!(
        header,
        ["sigma", "loss", "pixel_accuracy", "mean_iou", "paper_iou"]
    );
    assert!(rows[1][4] != rows[0][4], "σ = 0.5 changes the paper IoU");
    assert!(probe.join("receptive_field.csv").exists() && probe.join("probe.json").exists());

    // Bad input: an unknown study (clap), an empty or negative level list, a
    // folder without checkpoints; nothing written.
    let fresh = dir.path().join("fresh");
    for (args, code, says) in [
        (vec!["--study", "tides"], 2, "tides"),
        (vec!["--sigmas=-0.1"], 2, "--sigmas"),
        (vec!["--epsilons", ""], 2, "--epsilons"),
    ] {
        let mut all = vec!["probe", run_arg, "--out", fresh.to_str().unwrap()];
        all.extend(args);
        let out = imex_run(&all, dir.path());
        assert_eq!(out.status.code(), Some(code), "{all:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{all:?}: {}", stderr(&out));
        assert!(!fresh.exists(), "{all:?} wrote output");
    }
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    std::fs::create_dir(run.join("checkpoints")).unwrap();
    let out = imex_run(
        &["probe", run_arg, "--out", fresh.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("train it with: "), "{}", stderr(&out));
    assert!(!fresh.exists());
}

/// The paper IoU of one image, written out as the authors' code has it:
/// (Σ p AND l + 10⁻⁶)/(Σ p OR l + 10⁻⁶) over the pixels' class numbers
/// (bitwise, summed as numbers).
fn paper_iou_by_hand(prediction: &[u8], label: &[u8]) -> f64 {
    let (mut both, mut either) = (0u64, 0u64);
    for (p, l) in prediction.iter().zip(label) {
        both += u64::from(p & l);
        either += u64::from(p | l);
    }
    (both as f64 + 1e-6) / (either as f64 + 1e-6)
}

fn npy<T: npyz::Deserialize>(path: &std::path::Path) -> Vec<T> {
    let bytes = std::fs::read(path).unwrap();
    npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap()
}

/// The attack example against `imex-run predict` (the clean image, its label
/// and the clean class map of the same checkpoint), the PGD ball, and the
/// paper IoUs it records; then the report draws it and the receptive-field
/// maps from the probe folder alone.
#[test]
fn attack_example_matches_predict_and_the_report_draws_the_probe_images() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), &tiny_experiment(dir.path(), "imex"));
    let run_arg = run.to_str().unwrap();
    let probe_args = [
        "probe",
        run_arg,
        "--study",
        "adversarial,receptive-field",
        "--images",
        "8",
        "--epsilons",
        "0.02,0.2",
        "--pgd-steps",
        "3",
        "--example-image",
        "5",
    ];
    let out = imex_run(&probe_args, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let probe = run.join("probe-best-val");
    let (tensors, metadata) = imex_run::model::checkpoint::read_safetensors(
        &probe.join("adversarial_example.safetensors"),
    )
    .unwrap();
    let number = |key: &str| metadata[key].parse::<f64>().unwrap();
    // 0.2 is nearer 0.1 than 0.02 is, on a log scale.
    assert_eq!((number("epsilon"), number("image_index")), (0.2, 5.0));
    let plane = |name: &str| tensors[name].values.clone();
    let classes = |name: &str| plane(name).iter().map(|&c| c as u8).collect::<Vec<u8>>();
    assert_eq!(tensors["image"].shape, [32, 32]);
    let (image, attacked) = (plane("image"), plane("attacked"));
    let furthest = image
        .iter()
        .zip(&attacked)
        .fold(0f32, |m, (x, a)| m.max((a - x).abs()));
    assert!(furthest <= 0.2 + 1e-6 && furthest > 0.1, "{furthest}");
    let label = classes("label");
    for (name, key) in [
        ("clean_prediction", "clean_paper_iou"),
        ("attacked_prediction", "attacked_paper_iou"),
    ] {
        let by_hand = paper_iou_by_hand(&classes(name), &label);
        assert!((number(key) - by_hand).abs() < 1e-12, "{key}");
    }
    let out = imex_run(&["predict", run_arg, "--images", "5"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let predicted = run.join("predict-best-val");
    assert_eq!(
        npy::<u8>(&predicted.join("predictions.npy")),
        classes("clean_prediction")
    );
    assert_eq!(npy::<u8>(&predicted.join("labels.npy")), label);
    let (mean, std) = (number("mean") as f32, number("std") as f32);
    for (x, intensity) in image.iter().zip(npy::<f32>(&predicted.join("images.npy"))) {
        assert!((x * std + mean - intensity).abs() < 1e-5);
    }

    let out = imex_run(
        &["report", "results", "--out", "figs", "--images", "0,3"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for figure in ["attack_example", "receptive_field_maps"] {
        for extension in ["png", "svg"] {
            let path = dir
                .path()
                .join(format!("figs/tiny_probe_{figure}.{extension}"));
            assert!(path.is_file(), "missing {}", path.display());
        }
    }

    // The example must be one of the probed images.
    let fresh = dir.path().join("fresh");
    let out = imex_run(
        &[
            "probe",
            run_arg,
            "--images",
            "4",
            "--example-image",
            "5",
            "--out",
            fresh.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--example-image"), "{}", stderr(&out));
    assert!(!fresh.exists());
}

/// A depth run gets every study but the adversarial one, with the depth
/// metrics: noise σ = 0 reproduces the run's recorded validation metrics;
/// asking for the adversarial study is refused before anything is written;
/// the report draws the depth probes.
#[test]
fn probe_on_a_depth_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), &tiny_depth_experiment(dir.path(), "imex", ""));
    let run_arg = run.to_str().unwrap();
    let out = imex_run(
        &[
            "probe",
            run_arg,
            "--checkpoint",
            "last",
            "--images",
            "8",
            "--sigmas",
            "0,0.5",
            "--sizes",
            "1e-2",
            "--draws",
            "1",
            "--power-iterations",
            "2",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let probe = run.join("probe-last-val");
    // Both rounded to six decimals.
    let (header, rows) = noise_free_row_is_recorded(&probe, &run, 1.5e-6);
    let metrics = [
        "loss", "rmse", "abs_rel", "log10", "delta1", "delta2", "delta3",
    ];
    assert_eq!(header[0], "sigma");
    assert_eq!(header[1..], metrics);
    assert!(rows[1][2] > rows[0][2], "σ = 0.5 raises the RMSE");
    for file in ["perturbation.csv", "jacobian.csv", "receptive_field.csv"] {
        assert!(probe.join(file).is_file(), "missing {file}");
    }
    assert!(!probe.join("adversarial.csv").exists());
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(probe.join("probe.json")).unwrap()).unwrap();
    assert_eq!(
        record["settings"]["studies"],
        serde_json::json!(["perturbation", "noise", "receptive-field"])
    );
    let (_, field) = read_csv(&probe.join("receptive_field.csv"));
    // Positions of a 24×32 image: the centre, a quarter in, near the border.
    let pixels: Vec<(f64, f64)> = field.iter().map(|r| (r[1], r[2])).collect();
    assert_eq!(pixels, [(12.0, 16.0), (6.0, 8.0), (12.0, 4.0)]);

    let fresh = dir.path().join("fresh");
    for studies in ["adversarial", "noise,adversarial"] {
        let out = imex_run(
            &[
                "probe",
                run_arg,
                "--study",
                studies,
                "--out",
                fresh.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{studies}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("segmentation networks only"),
            "{}",
            stderr(&out)
        );
        assert!(!fresh.exists(), "{studies} wrote output");
    }

    // The report reads the best checkpoint's probes.
    let out = imex_run(
        &["probe", run_arg, "--images", "8", "--sigmas", "0,0.2"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = imex_run(
        &["report", "results", "--out", "figs", "--images", "0,3"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let figs = dir.path().join("figs");
    for file in [
        "depth_probe_noise.png",
        "depth_probe_amplification.png",
        "depth_probe_receptive_field_maps.png",
    ] {
        assert!(figs.join(file).is_file(), "missing {file}");
    }
    assert!(!figs.join("depth_probe_adversarial.png").exists());
    assert!(!figs.join("depth_probe_attack_example.png").exists());
    let table = std::fs::read_to_string(figs.join("depth_probe_table.md")).unwrap();
    assert!(table.contains("δ < 1.25 at noise σ = 0.2"), "{table}");
}
