//! Batch normalisation with batch statistics and no affine part (the paper's
//! mode: γ = 1 and β = 0 are never trained), as one pass for the statistics and
//! one for the output, forward and backward. Per channel c, over its M = N·H·W
//! values, with μ and the biased σ² of the batch:
//!
//! ```text
//!     x̂ = (x − μ) / √(σ² + ε)
//!    ∂x = (∂x̂ − mean(∂x̂) − x̂ · mean(∂x̂ · x̂)) / √(σ² + ε)
//! ```
//!
//! Composed from Burn's operations the same layer takes about ten passes over
//! the tensor each way, and its 4-D broadcasts take Flex's slow strided path.

use super::dispatch::run_kernel;
use super::host::{flex_tensor, written, View};
use burn::backend::autodiff::{
    checkpoint::base::Checkpointer,
    grads::Gradients,
    ops::{Backward, Ops},
};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{backend::Backend, Tensor};
use rayon::prelude::*;

/// x̂ per channel of `x` [N, C, H, W], on a backend for which
/// [`supports`](super::dispatch::supports) holds.
pub fn normalize<B: Backend>(x: Tensor<B, 4>, epsilon: f64) -> Tensor<B, 4> {
    run_kernel("normalize", [x], NormalizeBackward, |[x]| {
        let (y, inv_std) = forward(&x, epsilon);
        (y.clone(), (y, inv_std))
    })
}

#[derive(Debug)]
struct NormalizeBackward;

impl Backward<Flex, 1> for NormalizeBackward {
    /// x̂ and 1/√(σ² + ε) per channel.
    type State = (FlexTensor, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_x {
            let (y, inv_std) = ops.state;
            grads.register::<Flex>(node.id, input_grad(&grad, &y, &inv_std));
        }
    }
}

/// (x̂, 1/√(σ² + ε) per channel).
fn forward(x: &FlexTensor, epsilon: f64) -> (FlexTensor, Vec<f32>) {
    let view = View::new(x);
    let [n, c, h, w] = view.dims;
    let (x, hw, count) = (view.data(), h * w, (n * h * w) as f64);
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let images = || (0..n).map(|i| plane(x, i * c + ch, hw));
            let mean = (images().map(|p| lane_sum(p, p, |v, _| v)).sum::<f64>() / count) as f32;
            let var = images()
                .map(|p| lane_sum(p, p, |v, _| (v - mean) * (v - mean)))
                .sum::<f64>()
                / count;
            (mean, (1.0 / (var + epsilon).sqrt()) as f32)
        })
        .collect();
    // SAFETY: the planes of y and x pair up, and every y is written.
    let y = unsafe {
        written(x.len(), |y| {
            y.par_chunks_mut(hw)
                .zip(x.par_chunks(hw))
                .enumerate()
                .for_each(|(p, (y, x))| {
                    let (mean, inv_std) = stats[p % c];
                    for (y, &x) in y.iter_mut().zip(x) {
                        y.write((x - mean) * inv_std);
                    }
                })
        })
    };
    let inv_std = stats.into_iter().map(|(_, s)| s).collect();
    (flex_tensor(y, view.dims), inv_std)
}

fn input_grad(grad: &FlexTensor, y: &FlexTensor, inv_std: &[f32]) -> FlexTensor {
    let (g_view, y_view) = (View::new(grad), View::new(y));
    let [n, c, h, w] = g_view.dims;
    let (g, y, hw, count) = (g_view.data(), y_view.data(), h * w, (n * h * w) as f64);
    let means: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sum_g, mut sum_gy) = (0.0, 0.0);
            for i in 0..n {
                let (g, y) = (plane(g, i * c + ch, hw), plane(y, i * c + ch, hw));
                sum_g += lane_sum(g, g, |g, _| g);
                sum_gy += lane_sum(g, y, |g, y| g * y);
            }
            ((sum_g / count) as f32, (sum_gy / count) as f32)
        })
        .collect();
    // SAFETY: as in `forward`.
    let dx = unsafe {
        written(g.len(), |dx| {
            dx.par_chunks_mut(hw)
                .zip(g.par_chunks(hw).zip(y.par_chunks(hw)))
                .enumerate()
                .for_each(|(p, (dx, (g, y)))| {
                    let ((mean_g, mean_gy), s) = (means[p % c], inv_std[p % c]);
                    for ((dx, &g), &y) in dx.iter_mut().zip(g).zip(y) {
                        dx.write((g - mean_g - y * mean_gy) * s);
                    }
                })
        })
    };
    flex_tensor(dx, g_view.dims)
}

/// The `index`-th [H, W] plane of an [N, C, H, W] tensor.
fn plane(data: &[f32], index: usize, hw: usize) -> &[f32] {
    &data[index * hw..][..hw]
}

/// Σ term(aᵢ, bᵢ) in 16 float32 lanes (vectorised) folded into float64, in
/// the same order on every run and thread count.
fn lane_sum(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f64 {
    const LANES: usize = 16;
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = (a_chunks.remainder().iter())
        .zip(b_chunks.remainder())
        .map(|(&a, &b)| term(a, b) as f64)
        .sum();
    let mut lanes = [0f32; LANES];
    for (a, b) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            lanes[lane] += term(a[lane], b[lane]);
        }
    }
    lanes.iter().map(|&v| v as f64).sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    //! Against the layer composed from Burn's operations (mean, variance,
    //! division, and their autodiff), forward and ∂x. Both form μ and σ² from
    //! M ≤ 2·7·9 = 126 values of size O(1): float32 sums carry a relative error
    //! below M·2⁻²⁴ ≈ 8e-6, and x̂ is O(3), so 1e-4 leaves room to spare.
    use super::*;
    use crate::model::flex::dispatch::Training;
    use burn::tensor::Distribution;

    const EPSILON: f64 = 1e-5;

    fn composed<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mean = x.clone().mean_dim(0).mean_dim(2).mean_dim(3);
        let centred = x - mean;
        let var = centred
            .clone()
            .powi_scalar(2)
            .mean_dim(0)
            .mean_dim(2)
            .mean_dim(3);
        centred / var.add_scalar(EPSILON).sqrt()
    }

    fn random(shape: [usize; 4], seed: u64) -> Tensor<Flex, 4> {
        Flex::seed(&Default::default(), seed);
        Tensor::random(shape, Distribution::Normal(0.5, 2.0), &Default::default())
    }

    fn assert_close(a: Tensor<Flex, 4>, b: Tensor<Flex, 4>, what: &str) {
        let worst = (a - b).abs().max().into_scalar();
        assert!(worst < 1e-4, "{what}: {worst}");
    }

    fn input_gradient(
        layer: fn(Tensor<Training, 4>) -> Tensor<Training, 4>,
        x: &Tensor<Flex, 4>,
        g: &Tensor<Flex, 4>,
    ) -> Tensor<Flex, 4> {
        let x = Tensor::<Training, 4>::from_inner(x.clone()).require_grad();
        let grads = (layer(x.clone()) * Tensor::from_inner(g.clone()))
            .sum()
            .backward();
        x.grad(&grads).unwrap()
    }

    #[test]
    fn matches_the_composed_layer_forward_and_backward() {
        for (seed, shape) in [[2, 3, 7, 9], [1, 1, 1, 5], [4, 2, 4, 4]]
            .into_iter()
            .enumerate()
        {
            let x = random(shape, 2 * seed as u64);
            let g = random(shape, 2 * seed as u64 + 1);
            assert_close(
                normalize(x.clone(), EPSILON),
                composed(x.clone()),
                "Flex forward",
            );
            let tracked = normalize(Tensor::<Training, 4>::from_inner(x.clone()), EPSILON);
            assert_close(
                tracked.inner(),
                composed(x.clone()),
                "Autodiff<Flex> forward",
            );
            let ours = input_gradient(|x| normalize(x, EPSILON), &x, &g);
            assert_close(ours, input_gradient(composed, &x, &g), "∂x");
        }
    }
}
