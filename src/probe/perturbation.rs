//! Perturbation growth through depth.
//!
//! For image x and a random δ (Gaussian direction, ‖δ‖ = ε‖x‖ per image), the
//! amplification after layer j is
//!
//! ```text
//! A_j = (‖Y_j(x+δ) − Y_j(x)‖ / ‖Y_j(x)‖) / (‖δ‖ / ‖x‖)
//! ```
//!
//! (1 = the relative change passes through unchanged; a stable network keeps
//! it O(1) with depth). Every image of an evaluation batch gets its own δ at
//! once, as the batch-statistics BN couples the batch.
//!
//! The worst direction: the largest singular value σ of the Jacobian
//! J_j = ∂Y_j/∂x of the whole evaluation batch, by power iteration on JᵀJ with
//! Jv from a **central finite difference** and Jᵀu from **autodiff** (a
//! vector-Jacobian product); reported also as the relative gain
//! σ‖x‖/‖Y_j(x)‖, comparable with A_j.

use super::rows::csv_bytes;
use super::sampling::{gaussian, image_norms, stream, tensor};
use super::settings::{Settings, Study};
use super::subject::{Subject, AD};
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use rand_chacha::ChaCha8Rng;

/// Jv ≈ (f(x + t v) − f(x − t v)) / 2t with t = FD_STEP·‖x‖ for a unit v:
/// small enough that few ReLUs switch, large enough that float32 rounding
/// (≈ 2⁻²⁴‖f‖/t) stays far below the difference.
const FD_STEP: f64 = 1e-3;

/// The random-stream level of the power iterations' starting vectors, apart
/// from the random perturbations' levels (size × draws + draw).
const POWER_ITERATION_LEVEL: usize = 1 << 20;

/// `perturbation.csv` (epsilon, layer, median, q1, q3, samples) and
/// `jacobian.csv` (batch, layer, sigma_max, relative_gain).
pub fn run(subject: &Subject, settings: &Settings) -> Result<Vec<(String, Vec<u8>)>> {
    let inference = &subject.inference;
    let device = Default::default();
    let batches = subject.batches(settings.images);
    let layers = subject.net.layers.len();
    // samples[size][layer]
    let mut samples = vec![vec![Vec::new(); layers]; settings.perturbation_sizes.len()];
    let clock = std::time::Instant::now();
    for (b, chunk) in batches.iter().enumerate() {
        let x = subject.images::<burn::backend::Flex>(chunk, &device);
        let x_norms = image_norms(x.clone());
        let clean = inference.states(x.clone());
        let clean_norms: Vec<Vec<f64>> = clean.iter().map(|y| image_norms(y.clone())).collect();
        for (s, &epsilon) in settings.perturbation_sizes.iter().enumerate() {
            for draw in 0..settings.draws {
                let level = s * settings.draws + draw;
                let mut rng = stream(settings.seed, Study::Perturbation, level, b);
                let delta = direction(&mut rng, x.dims(), &x_norms, epsilon, &device);
                let moved = inference.states(x.clone() + delta);
                for (j, (y, y_moved)) in clean.iter().zip(moved).enumerate() {
                    let change = image_norms(y_moved - y.clone());
                    for (i, c) in change.iter().enumerate() {
                        samples[s][j].push(c / clean_norms[j][i] / epsilon);
                    }
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (s, &epsilon) in settings.perturbation_sizes.iter().enumerate() {
        for (j, values) in samples[s].iter_mut().enumerate() {
            let [q1, median, q3] = quartiles(values);
            rows.push(vec![
                epsilon.to_string(),
                j.to_string(),
                format!("{median:.6e}"),
                format!("{q1:.6e}"),
                format!("{q3:.6e}"),
                values.len().to_string(),
            ]);
        }
    }
    let growth = csv_bytes(
        &["epsilon", "layer", "median", "q1", "q3", "samples"],
        &rows,
    )?;
    tracing::debug!(
        "perturbation: random perturbations in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    let clock = std::time::Instant::now();
    // The worst direction, on the first evaluation batch.
    let mut jacobian_rows = Vec::new();
    if let Some(chunk) = batches.first() {
        let x = subject.images::<AD>(chunk, &device);
        let x_norm = norm(x.clone());
        for j in 0..layers {
            let mut rng = stream(settings.seed, Study::Perturbation, POWER_ITERATION_LEVEL, j);
            let layer_map = |input: Tensor<AD, 4>| subject.net.state_after(input, j);
            let sigma =
                largest_singular_value(layer_map, x.clone(), settings.power_iterations, &mut rng);
            let y_norm = norm(inference.state_after(x.clone().inner(), j));
            jacobian_rows.push(vec![
                "0".into(),
                j.to_string(),
                format!("{sigma:.6e}"),
                format!("{:.6e}", sigma * x_norm / y_norm),
            ]);
        }
    }
    tracing::debug!(
        "perturbation: power iterations in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    let jacobian = csv_bytes(
        &["batch", "layer", "sigma_max", "relative_gain"],
        &jacobian_rows,
    )?;
    Ok(vec![
        ("perturbation.csv".into(), growth),
        ("jacobian.csv".into(), jacobian),
    ])
}

/// δ of shape `dims` with ‖δ_i‖ = ε‖x_i‖ for each image i, Gaussian direction.
fn direction<B: burn::tensor::backend::Backend>(
    rng: &mut ChaCha8Rng,
    dims: [usize; 4],
    x_norms: &[f64],
    epsilon: f64,
    device: &B::Device,
) -> Tensor<B, 4> {
    let per_image = dims[1] * dims[2] * dims[3];
    let mut values = gaussian(rng, dims[0] * per_image);
    for (i, image) in values.chunks_mut(per_image).enumerate() {
        let length = image
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let scale = (epsilon * x_norms[i] / length) as f32;
        image.iter_mut().for_each(|v| *v *= scale);
    }
    tensor(values, dims, device)
}

/// ‖t‖₂ over all entries.
pub fn norm<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> f64 {
    t.powi_scalar(2).sum().into_scalar().elem::<f64>().sqrt()
}

/// The first, second and third quartiles (linear interpolation, as numpy's
/// default); NaN when empty.
pub fn quartiles(values: &mut [f64]) -> [f64; 3] {
    if values.is_empty() {
        return [f64::NAN; 3];
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        let position = q * (values.len() - 1) as f64;
        let (low, high) = (position.floor() as usize, position.ceil() as usize);
        values[low] + (values[high] - values[low]) * (position - low as f64)
    };
    [at(0.25), at(0.5), at(0.75)]
}

/// σ_max of J = ∂f/∂x at `x`, by `iterations` power iterations on JᵀJ from a
/// random start: Jv by a central difference, Jᵀu by autodiff.
pub fn largest_singular_value<B: AutodiffBackend>(
    f: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    x: Tensor<B, 4>,
    iterations: usize,
    rng: &mut ChaCha8Rng,
) -> f64 {
    let x = x.detach();
    let dims = x.dims();
    let device = x.device();
    let start: Tensor<B, 4> = tensor(gaussian(rng, dims.iter().product()), dims, &device);
    let mut v = start.clone().div_scalar(norm(start));
    let step = FD_STEP * norm(x.clone()).max(1.0);
    let mut sigma = 0.0;
    for _ in 0..iterations {
        let ahead = f(x.clone() + v.clone().mul_scalar(step)).detach();
        let behind = f(x.clone() - v.clone().mul_scalar(step)).detach();
        let jv = (ahead - behind).div_scalar(2.0 * step);
        let input = x.clone().require_grad();
        let grads = (f(input.clone()) * jv).sum().backward();
        let jtjv = Tensor::<B, 4>::from_inner(input.grad(&grads).expect("x is differentiated"));
        let length = norm(jtjv.clone());
        if length == 0.0 {
            return 0.0;
        }
        sigma = length.sqrt();
        v = jtjv.div_scalar(length);
    }
    sigma
}
