//! `imex-run check`: the numerics of a device, verified from the release
//! binary alone (the GPU machine has no Rust toolchain and no test suite).
//!
//! Two comparisons, both on the chosen device:
//!
//! 1. **Peer fixtures.** The network, loss and gradients against the float64
//!    truth of the independent peer reference (`tests/fixtures/peer_*.safetensors`,
//!    written by `tests/fixtures/make_fixtures.py`; embedded in the binary).
//!    `tests/numerics.rs` runs the same comparison on the CPU.
//! 2. **One training step against the CPU.** Projection, forward, weighted
//!    cross-entropy and backward of a randomly initialised network (the
//!    authors' initialisation, drawn on the host, so both devices hold the
//!    same weights) on the same host-generated input, on the device and on
//!    Flex; logits, loss and every gradient compared.
//!
//! Errors are `max |a − b| / max |b|` over a tensor (the loss: `|a − b|`,
//! its value is O(1)). Tolerances:
//!
//! - **float32** (every CPU comparison, and a GPU that multiplies in float32):
//!   a dot product of n terms carries a relative error of about √n·6e-8
//!   (2⁻²⁴ per operation) typically and n·6e-8 at worst; the transforms and
//!   convolutions here sum at most a few thousand terms per output, so 1e-4 on
//!   features and logits leaves an order of magnitude to spare. Gradients pass
//!   through every layer twice and through the solve's division; the peer
//!   measured float32 against float64 at the paper geometry to about 3e-4 of
//!   the largest value, so 1e-3 (fixtures), and 2e-3 between two float32
//!   devices that each err by up to 3e-4 (6e-4, with a factor 3 to spare).
//! - **TF32** (CUDA only): cubek-matmul 0.2 (`src/definition/blueprint.rs`)
//!   stages float32 operands of its tensor-core matrix products as TF32 on
//!   chips that support it (Ampere and later, the H200 too): 10 mantissa bits,
//!   a rounding error of 2⁻¹¹ ≈ 4.9e-4 per operand, accumulation in float32.
//!   One rounded product per operand gives ~1e-3 relative per layer, a dozen
//!   layers (forward, then backward) a few 1e-3 to 1e-2: 2e-2 on features and
//!   logits, 2e-3 on the loss, 5e-2 on gradients. A comparison that passes
//!   only there is reported as `pass (tf32)`: numerically sound, but not
//!   float32 agreement. An implementation error shows as an O(1) error.

use crate::config::{Arch, Config, ModelSection};
use crate::device::{Accelerator, BackendTask, CpuBackend};
use crate::error::Failure;
use crate::model::checkpoint::{parse_safetensors, HostTensor, NamedTensors};
use crate::model::Network;
use crate::train::weighted_nll;
use anyhow::Result;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;

/// The peer fixtures, so that the check needs nothing beside the binary.
const PEER_IMEX: &[u8] = include_bytes!("../tests/fixtures/peer_imex.safetensors");
const PEER_RESNET: &[u8] = include_bytes!("../tests/fixtures/peer_resnet.safetensors");

/// The Q-tips class weights of the authors' code (background, three classes).
pub const QTIPS_CLASS_WEIGHTS: [f32; 4] = [0.06, 0.98, 0.98, 0.98];

/// A bound on an error: float32's, and TF32's where the device may use it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    pub f32: f64,
    pub tf32: f64,
}

/// Features and logits (relative).
pub const ACTIVATIONS: Tolerance = Tolerance {
    f32: 1e-4,
    tf32: 2e-2,
};
/// The loss (absolute; it is O(1)).
pub const LOSS: Tolerance = Tolerance {
    f32: 1e-5,
    tf32: 2e-3,
};
/// Gradients against the float64 peer (relative).
pub const GRADIENTS_VS_PEER: Tolerance = Tolerance {
    f32: 1e-3,
    tf32: 5e-2,
};
/// Gradients between two float32 devices (relative).
pub const GRADIENTS_VS_CPU: Tolerance = Tolerance {
    f32: 2e-3,
    tf32: 5e-2,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Outside the float32 tolerance, inside the TF32 one (a GPU only).
    PassTf32,
    Fail,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::PassTf32 => "pass (tf32)",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One line of the check: the worst error over `tensors` tensors of a kind.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub check: String,
    pub quantity: String,
    pub tensors: usize,
    pub error: f64,
    pub tolerance: f64,
    /// Only where the device may multiply in TF32.
    pub tf32_tolerance: Option<f64>,
    pub verdict: Verdict,
}

impl CheckRow {
    fn new(check: &str, quantity: &str, errors: &[f64], tolerance: Tolerance, tf32: bool) -> Self {
        // NaN must fail: fold with a NaN-propagating max.
        let error = errors.iter().fold(0.0f64, |m, &e| {
            if e.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(e)
            }
        });
        let verdict = if error <= tolerance.f32 {
            Verdict::Pass
        } else if tf32 && error <= tolerance.tf32 {
            Verdict::PassTf32
        } else {
            Verdict::Fail
        };
        Self {
            check: check.into(),
            quantity: quantity.into(),
            tensors: errors.len(),
            error,
            tolerance: tolerance.f32,
            tf32_tolerance: tf32.then_some(tolerance.tf32),
            verdict,
        }
    }
}

/// The values of a tensor, as f64.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec::<f64>().unwrap()
}

pub fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// max |a − b| / max |b|; NaN anywhere in `a` gives NaN; shapes must agree.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in size");
    if a.iter().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / max_abs(b).max(1e-30)
}

/// A batch: images, labels and class weights, on the host.
#[derive(Debug, Clone)]
pub struct StepInput {
    pub x: HostTensor,
    pub labels: Vec<i64>,
    /// [N, H, W]
    pub label_shape: [usize; 3],
    pub class_weights: Vec<f32>,
}

impl StepInput {
    /// Unit-variance uniform images and uniform labels in 0..4, from `seed`.
    pub fn random(batch: usize, size: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s3 = 3f64.sqrt();
        let x = (0..batch * size * size)
            .map(|_| ((rng.gen::<f64>() * 2.0 - 1.0) * s3) as f32)
            .collect();
        let labels = (0..batch * size * size)
            .map(|_| rng.gen_range(0..4))
            .collect();
        Self {
            x: HostTensor {
                shape: vec![batch, 1, size, size],
                values: x,
            },
            labels,
            label_shape: [batch, size, size],
            class_weights: QTIPS_CLASS_WEIGHTS.to_vec(),
        }
    }

    /// The batch stored in a fixture: `x`, `labels`, `class_weights`.
    pub fn from_fixture(t: &NamedTensors) -> Result<Self> {
        let get = |name: &str| {
            t.get(name)
                .ok_or_else(|| Failure::Data(format!("the peer fixture lacks {name}")))
        };
        let labels = get("labels")?;
        let label_shape: [usize; 3] =
            labels.shape.clone().try_into().map_err(|_| {
                Failure::Data(format!("fixture labels have shape {:?}", labels.shape))
            })?;
        Ok(Self {
            x: get("x")?.clone(),
            labels: labels.values.iter().map(|&v| v as i64).collect(),
            label_shape,
            class_weights: get("class_weights")?.values.clone(),
        })
    }
}

/// What one training step computes, on the host.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The state after each layer; the last is the features.
    pub states: Vec<Vec<f64>>,
    pub features: Vec<f64>,
    pub logits: Vec<f64>,
    pub loss: f64,
    /// (peer name without `grad_`: `K{j}`, `L{j}`, `bn{j}_weight` (γ),
    /// `bn{j}_bias` (β), `W`, `x`; values)
    pub gradients: Vec<(String, Vec<f64>)>,
}

/// Projection, forward, weighted cross-entropy and backward, as `train`
/// does per batch (without the optimiser update).
pub fn training_step<B: AutodiffBackend>(
    net: Network<B>,
    input: &StepInput,
    device: &B::Device,
) -> StepResult {
    let net = net.project_kernels();
    let x: Tensor<B, 4> = input.x.to_tensor::<B, 4>(device).require_grad();
    let labels = Tensor::<B, 3, Int>::from_data(
        TensorData::new(input.labels.clone(), input.label_shape),
        device,
    );
    let class_weights = Tensor::<B, 1>::from_data(
        TensorData::new(input.class_weights.clone(), [input.class_weights.len()]),
        device,
    );
    let states = net.states(x.clone());
    let features = states.last().expect("a network has layers").clone();
    let logits = net.classify(features.clone());
    let (num, den) = weighted_nll(logits.clone(), labels, class_weights);
    let loss = num / den;
    let grads = loss.backward();
    let mut gradients = Vec::new();
    let grad = |p: Tensor<B, 4>| p.grad(&grads).map(values);
    let grad_1d = |p: Tensor<B, 1>| p.grad(&grads).map(values);
    for (j, layer) in net.layers.iter().enumerate() {
        if let Some(g) = grad(layer.kernel.val()) {
            gradients.push((format!("K{j}"), g));
        }
        if let Some(g) = layer.operator_kernel.as_ref().and_then(|c| grad(c.val())) {
            gradients.push((format!("L{j}"), g));
        }
        // Trained only under `batchnorm = "standard"`.
        if let Some(g) = grad_1d(layer.bn.gamma.val()) {
            gradients.push((format!("bn{j}_weight"), g));
        }
        if let Some(g) = grad_1d(layer.bn.beta.val()) {
            gradients.push((format!("bn{j}_bias"), g));
        }
    }
    if let Some(g) = net.classifier.val().grad(&grads).map(values) {
        gradients.push(("W".into(), g));
    }
    if let Some(g) = grad(x) {
        gradients.push(("x".into(), g));
    }
    StepResult {
        states: states.into_iter().map(values).collect(),
        features: values(features),
        logits: values(logits),
        loss: values(loss)[0],
        gradients,
    }
}

/// The kind of a gradient's parameter: K, L, W, x, γ (`bn{j}_weight`) or β.
fn gradient_kind(name: &str) -> &str {
    match name {
        n if n.starts_with("bn") && n.ends_with("_weight") => "γ",
        n if n.starts_with("bn") && n.ends_with("_bias") => "β",
        n => n.trim_end_matches(|c: char| c.is_ascii_digit()),
    }
}

/// Rows for the gradients, one per kind (K, L, γ, β, W, x): the worst error of each.
fn gradient_rows(
    check: &str,
    errors: &[(String, f64)],
    tolerance: Tolerance,
    tf32: bool,
) -> Vec<CheckRow> {
    ["K", "L", "γ", "β", "W", "x"]
        .into_iter()
        .filter_map(|kind| {
            let of_kind: Vec<f64> = errors
                .iter()
                .filter(|(name, _)| gradient_kind(name) == kind)
                .map(|(_, e)| *e)
                .collect();
            (!of_kind.is_empty())
                .then(|| CheckRow::new(check, &format!("grad {kind}"), &of_kind, tolerance, tf32))
        })
        .collect()
}

fn model_spec(arch: Arch, widths: &[usize], depths: &[usize], h: f64) -> ModelSection {
    let text = format!(
        "[experiment]\nname = \"check\"\n[model]\narch = \"{}\"\nwidths = {widths:?}\ndepths = {depths:?}\nh = {h:?}\n",
        arch.config_name(),
    );
    Config::parse(&text, "check", &[])
        .expect("a valid check config")
        .model
}

/// The geometry of the peer fixtures: widths 4, 8, depths 2, 2, h = 0.5.
pub fn peer_spec(arch: Arch) -> ModelSection {
    model_spec(arch, &[4, 8], &[2, 2], 0.5)
}

/// The embedded peer fixture of `arch`.
pub fn peer_fixture(arch: Arch) -> Result<NamedTensors> {
    let (bytes, name) = match arch {
        Arch::Imex => (PEER_IMEX, "peer_imex.safetensors"),
        Arch::Resnet => (PEER_RESNET, "peer_resnet.safetensors"),
    };
    Ok(parse_safetensors(bytes, name)?.0)
}

/// The network, loss and gradients on `device` against the peer's float64
/// values in `fixture` (weights, input and expected outputs).
pub fn compare_with_peer<B: AutodiffBackend>(
    arch: Arch,
    fixture: &NamedTensors,
    device: &B::Device,
    tf32: bool,
) -> Result<Vec<CheckRow>> {
    let check = format!("peer fixture {}", arch.config_name());
    compare_with_fixture::<B>(&check, &peer_spec(arch), fixture, device, tf32)
}

/// One training step of the network `spec` holding the fixture's weights (K,
/// L, W, and BN's γ, β and running statistics where present) on its batch:
/// every layer's state, the features, logits, loss and gradients against the
/// fixture's float64 `state{j}`, `features`, `logits`, `loss`, `grad_*`.
pub fn compare_with_fixture<B: AutodiffBackend>(
    check: &str,
    spec: &ModelSection,
    fixture: &NamedTensors,
    device: &B::Device,
    tf32: bool,
) -> Result<Vec<CheckRow>> {
    let net = Network::<B>::from_named_tensors(spec, fixture, device)?;
    let input = StepInput::from_fixture(fixture)?;
    let ours = training_step(net, &input, device);
    let reference = |name: &str| -> Result<Vec<f64>> {
        Ok(fixture
            .get(name)
            .ok_or_else(|| Failure::Data(format!("the peer fixture lacks {name}")))?
            .values
            .iter()
            .map(|&v| v as f64)
            .collect())
    };
    let state_errors = ours
        .states
        .iter()
        .enumerate()
        .map(|(j, state)| Ok(rel_err(state, &reference(&format!("state{j}"))?)))
        .collect::<Result<Vec<_>>>()?;
    let mut rows = vec![
        CheckRow::new(check, "layer states", &state_errors, ACTIVATIONS, tf32),
        CheckRow::new(
            check,
            "logits",
            &[rel_err(&ours.logits, &reference("logits")?)],
            ACTIVATIONS,
            tf32,
        ),
        CheckRow::new(
            check,
            "loss",
            &[(ours.loss - reference("loss")?[0]).abs()],
            LOSS,
            tf32,
        ),
    ];
    if fixture.contains_key("features") {
        let error = rel_err(&ours.features, &reference("features")?);
        rows.insert(
            1,
            CheckRow::new(check, "features", &[error], ACTIVATIONS, tf32),
        );
    }
    let errors = ours
        .gradients
        .iter()
        .map(|(name, g)| {
            Ok((
                name.clone(),
                rel_err(g, &reference(&format!("grad_{name}"))?),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    rows.extend(gradient_rows(check, &errors, GRADIENTS_VS_PEER, tf32));
    Ok(rows)
}

/// One training step of a fresh network (`widths`, 4 layers per block, the
/// authors' initialisation from `seed`) on `device` against the same step
/// on the CPU (Flex).
pub fn compare_step_with_cpu<B: AutodiffBackend>(
    arch: Arch,
    geometry: &str,
    widths: &[usize],
    input: &StepInput,
    seed: u64,
    device: &B::Device,
    tf32: bool,
) -> Vec<CheckRow> {
    let spec = model_spec(arch, widths, &vec![4; widths.len()], 1.0);
    // On the CPU itself this compares a backend with itself: it shows the step
    // is deterministic, not that it is right (the peer fixtures show that).
    let same_backend = std::any::type_name::<B>() == std::any::type_name::<CpuBackend>();
    let against = if same_backend {
        "step vs cpu (same backend: determinism only)"
    } else {
        "step vs cpu"
    };
    let check = format!("{against} {} {geometry}", arch.config_name());
    let cpu_device = Default::default();
    let cpu = training_step(
        Network::<CpuBackend>::new(&spec, seed, &cpu_device),
        input,
        &cpu_device,
    );
    let ours = training_step(Network::<B>::new(&spec, seed, device), input, device);
    let mut rows = vec![
        CheckRow::new(
            &check,
            "logits",
            &[rel_err(&ours.logits, &cpu.logits)],
            ACTIVATIONS,
            tf32,
        ),
        CheckRow::new(&check, "loss", &[(ours.loss - cpu.loss).abs()], LOSS, tf32),
    ];
    assert_eq!(ours.gradients.len(), cpu.gradients.len());
    let errors: Vec<(String, f64)> = ours
        .gradients
        .iter()
        .zip(&cpu.gradients)
        .map(|((name, g), (_, r))| (name.clone(), rel_err(g, r)))
        .collect();
    rows.extend(gradient_rows(&check, &errors, GRADIENTS_VS_CPU, tf32));
    rows
}

/// What `imex-run check` compares.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Name and widths of the network of the step comparison.
    pub geometry: String,
    pub widths: Vec<usize>,
    pub batch: usize,
    pub size: usize,
    pub seed: u64,
}

pub struct Check(pub CheckOptions);

impl BackendTask for Check {
    type Output = Vec<CheckRow>;

    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        accelerator: Accelerator,
    ) -> Result<Vec<CheckRow>> {
        let o = self.0;
        let tf32 = accelerator.may_use_tf32();
        let mut rows = Vec::new();
        for arch in [Arch::Imex, Arch::Resnet] {
            let started = std::time::Instant::now();
            rows.extend(compare_with_peer::<B>(
                arch,
                &peer_fixture(arch)?,
                &device,
                tf32,
            )?);
            tracing::info!(
                "peer fixture {} on {}: {:.1} s",
                arch.config_name(),
                accelerator.label(),
                started.elapsed().as_secs_f64()
            );
        }
        let input = StepInput::random(o.batch, o.size, o.seed);
        for arch in [Arch::Imex, Arch::Resnet] {
            let started = std::time::Instant::now();
            rows.extend(compare_step_with_cpu::<B>(
                arch,
                &o.geometry,
                &o.widths,
                &input,
                o.seed,
                &device,
                tf32,
            ));
            tracing::info!(
                "step {} {} (batch {}, {}×{}) on {} and cpu: {:.1} s",
                arch.config_name(),
                o.geometry,
                o.batch,
                o.size,
                o.size,
                accelerator.label(),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(rows)
    }
}

/// The rows as a Markdown table.
pub fn check_table(rows: &[CheckRow]) -> String {
    let mut out = String::from(
        "| check | quantity | tensors | error | f32 tolerance | tf32 tolerance | verdict |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2e} | {:.0e} | {} | {} |",
            r.check,
            r.quantity,
            r.tensors,
            r.error,
            r.tolerance,
            r.tf32_tolerance
                .map_or("-".to_string(), |t| format!("{t:.0e}")),
            r.verdict.label()
        );
    }
    out
}

/// Number of failed rows.
pub fn failures(rows: &[CheckRow]) -> usize {
    rows.iter().filter(|r| r.verdict == Verdict::Fail).count()
}
