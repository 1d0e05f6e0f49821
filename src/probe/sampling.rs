//! The probes' random draws, each from a stream of its own, and the tensors
//! they are made into and measured by.

use super::settings::Study;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The random stream of one (seed, study, level, batch): independent of the
/// order in which studies and levels run.
pub fn stream(seed: u64, study: Study, level: usize, batch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let study = Study::ALL.iter().position(|&s| s == study).unwrap_or(0) as u64;
    rng.set_stream((study << 48) | ((level as u64) << 24) | batch as u64);
    rng
}

/// Standard normal samples (Box–Muller), `n` of them.
pub fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1]
        let u2: f64 = rng.gen();
        let r = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        out.push((r * angle.cos()) as f32);
        out.push((r * angle.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// A tensor of `shape` from host values.
pub fn tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// ‖t_i‖₂ of every image i of t [N, …].
pub fn image_norms<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    let n = t.dims()[0];
    let per_image: usize = t.dims()[1..].iter().product();
    t.reshape([n, per_image])
        .powi_scalar(2)
        .sum_dim(1)
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float norms")
        .into_iter()
        .map(f64::sqrt)
        .collect()
}
