//! Every model and optimiser option a user can set, against PyTorch float64
//! (`tests/fixtures/options/*.safetensors`, written by
//! `tests/fixtures/make_fixtures.py` from the formulas, independently of this
//! code): the split form, α ≠ 1, the Laplacian and identity operators,
//! standard BatchNorm (trained γ, β, running statistics, evaluation mode), and
//! three optimiser steps of SGD (momentum, weight decay, per-tensor gradient
//! clipping) and Adam (weight decay) compared weight by weight with
//! `torch.optim`. Each fixture's metadata holds the TOML that configures it.
//!
//! Tolerances as in `tests/numerics.rs` and `src/check.rs`: activations and
//! weights relative 1e-4 (float32 sums of ≤ 2·72 terms, 2⁻²⁴ each, with an
//! order of magnitude to spare), the O(1) loss absolute 1e-5, gradients
//! relative 1e-3 (they pass through every layer's backward).

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use imex_run::check::{
    check_table, compare_with_fixture, failures, rel_err, values, StepInput, ACTIVATIONS, LOSS,
};
use imex_run::config::{BatchNormMode, Config};
use imex_run::model::checkpoint::{read_safetensors, HostTensor, NamedTensors};
use imex_run::model::Network;
use imex_run::train::{weighted_nll, Optim};
use std::path::Path;

type AD = Autodiff<Flex>;

/// The fixture's tensors and the experiment its metadata describes.
fn fixture(name: &str) -> (NamedTensors, Config) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/options/{name}.safetensors"));
    let (tensors, meta) = read_safetensors(&path).unwrap();
    let text = format!(
        "[experiment]\nname = \"{name}\"\n[model]\n{}[training]\n{}",
        meta["model"], meta["training"]
    );
    (tensors, Config::parse(&text, name, &[]).unwrap())
}

fn reference(tensors: &NamedTensors, name: &str) -> Vec<f64> {
    let t = tensors
        .get(name)
        .unwrap_or_else(|| panic!("fixture lacks {name}"));
    t.values.iter().map(|&v| v as f64).collect()
}

/// One training step (states, logits, loss, every gradient including γ and
/// β) with `imex-run check`'s comparison; for standard BN also the running
/// statistics the step leaves and the evaluation-mode logits.
fn check_option(name: &str) {
    let (tensors, cfg) = fixture(name);
    let device = Default::default();
    let rows = compare_with_fixture::<AD>(name, &cfg.model, &tensors, &device, false).unwrap();
    assert_eq!(failures(&rows), 0, "{name}\n{}", check_table(&rows));
    let standard = cfg.model.batchnorm == BatchNormMode::Standard;
    let tensors_named = |q: &str| {
        rows.iter()
            .find(|r| r.quantity == q)
            .map_or(0, |r| r.tensors)
    };
    assert_eq!(tensors_named("layer states"), 4, "{name}");
    // γ and β are trained (and their gradients checked) in standard mode only.
    assert_eq!(tensors_named("grad γ"), if standard { 4 } else { 0 });
    assert_eq!(tensors_named("grad β"), if standard { 4 } else { 0 });
    if !standard {
        return;
    }
    // The same step again, to read the running statistics it leaves.
    let net = Network::<AD>::from_named_tensors(&cfg.model, &tensors, &device)
        .unwrap()
        .project_kernels();
    let input = StepInput::from_fixture(&tensors).unwrap();
    net.forward(input.x.to_tensor::<AD, 4>(&device));
    let ours = net.to_named_tensors();
    for (key, ours) in &ours {
        if key.contains("running") {
            let error = rel_err(&to_f64(ours), &reference(&tensors, &format!("after_{key}")));
            assert!(error < ACTIVATIONS.f32, "{name}: {key} off by {error:e}");
        }
    }
    let eval_logits = values(net.valid().forward(input.x.to_tensor(&device)));
    let error = rel_err(&eval_logits, &reference(&tensors, "eval_logits"));
    assert!(
        error < ACTIVATIONS.f32,
        "{name}: evaluation logits off by {error:e}"
    );
}

fn to_f64(t: &HostTensor) -> Vec<f64> {
    t.values.iter().map(|&v| v as f64).collect()
}

#[test]
fn split_form_matches_pytorch() {
    check_option("imex_split");
}

#[test]
fn alpha_other_than_one_matches_pytorch() {
    check_option("imex_alpha");
}

#[test]
fn laplacian_operator_matches_pytorch() {
    check_option("imex_laplacian");
}

#[test]
fn identity_operator_matches_pytorch() {
    check_option("imex_identity");
}

#[test]
fn standard_batchnorm_matches_pytorch_in_training_and_evaluation() {
    check_option("imex_standard_bn");
    check_option("resnet_standard_bn");
    check_option("split_laplacian_standard_bn");
}

/// Three steps of the training loop's order (project the kernels, forward,
/// weighted cross-entropy, backward, optimiser step at the configured rate)
/// on the fixture's batch, against `torch.optim` from the same weights: the
/// loss before each step and every tensor after the last (BN's running
/// statistics included).
fn check_trajectory(name: &str, weight_tolerance: f64) {
    let (tensors, cfg) = fixture(name);
    let device = Default::default();
    let input = StepInput::from_fixture(&tensors).unwrap();
    let labels = Tensor::<AD, 3, Int>::from_data(
        TensorData::new(input.labels.clone(), input.label_shape),
        &device,
    );
    let weights = input.class_weights.clone();
    let class_weights =
        Tensor::<AD, 1>::from_data(TensorData::new(weights.clone(), [weights.len()]), &device);
    let mut net = Network::<AD>::from_named_tensors(&cfg.model, &tensors, &device).unwrap();
    let mut optim = Optim::<AD>::new(&cfg.training);
    for step in 0..3 {
        net = net.project_kernels();
        let logits = net.forward(input.x.to_tensor(&device));
        let (num, den) = weighted_nll(logits, labels.clone(), class_weights.clone());
        let loss = num / den;
        let error =
            (values(loss.clone())[0] - reference(&tensors, &format!("loss{step}"))[0]).abs();
        assert!(
            error < LOSS.f32,
            "{name}: loss before step {step} off by {error:e}"
        );
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(cfg.training.learning_rate, net, grads);
    }
    let mut compared = 0;
    for (key, ours) in &net.to_named_tensors() {
        let Some(truth) = tensors.get(&format!("after_{key}")) else {
            continue;
        };
        let error = rel_err(&to_f64(ours), &to_f64(truth));
        assert!(
            error < weight_tolerance,
            "{name}: {key} after 3 steps off by {error:e}"
        );
        compared += 1;
    }
    // K ×4, L ×2, W; with standard BN also γ, β and both running statistics ×4.
    let standard = cfg.model.batchnorm == BatchNormMode::Standard;
    assert_eq!(compared, if standard { 23 } else { 7 }, "{name}");
}

/// SGD with momentum 0.9, weight decay and per-tensor clipping that binds on
/// some tensors only: each step moves a weight by lr·v with v a linear
/// combination of gradients, so the weights inherit the gradients' error
/// scaled by lr ≤ 0.05: relative 1e-4 holds.
#[test]
fn sgd_trajectory_matches_torch_optim() {
    check_trajectory("trajectory_sgd", 1e-4);
}

/// Adam divides by √v̂ + ε: where a gradient entry is near ε = 1e-5, a float32
/// error δg of about 2⁻²⁴·(max |g| ≈ 0.1) moves the update by up to δg/ε ≈
/// 6e-4 of lr = 0.01 per step; over 3 steps that is ≤ 2e-5 absolute on weights
/// of size ≈ 0.3, so relative 1e-4 holds here too.
#[test]
fn adam_trajectory_matches_torch_optim() {
    check_trajectory("trajectory_adam", 1e-4);
}
