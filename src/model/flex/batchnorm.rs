//! Batch normalisation with batch statistics and no affine part (the paper's
//! mode: γ = 1 and β = 0 are never trained), as one pass for the statistics and
//! one for the output, forward and backward, optionally followed by the ReLU
//! in the same pass. Per channel c, over its M = N·H·W values, with μ and the
//! biased σ² of the batch:
//!
//! ```text
//!     x̂ = (x − μ) / √(σ² + ε),        y = x̂  or  y = max(x̂, 0)
//!    ∂x̂ = ∂y                     or  ∂x̂ = ∂y · [x̂ > 0]
//!    ∂x = (∂x̂ − mean(∂x̂) − x̂ · mean(∂x̂ · x̂)) / √(σ² + ε)
//! ```
//!
//! Composed from Burn's operations the same layer takes about ten passes over
//! the tensor each way, and its 4-D broadcasts take Flex's slow strided path;
//! Burn's ReLU is two more passes, on one thread. The backward recomputes x̂
//! from the input with the forward's arithmetic (the same bits), so that the
//! layer keeps one tensor for its backward, not two.

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
    normalize_then(x, epsilon, false)
}

/// max(x̂, 0): [`normalize`] and the ReLU in one pass, with the bits of
/// Burn's `relu` applied to it, forward and backward.
pub fn normalize_relu<B: Backend>(x: Tensor<B, 4>, epsilon: f64) -> Tensor<B, 4> {
    normalize_then(x, epsilon, true)
}

fn normalize_then<B: Backend>(x: Tensor<B, 4>, epsilon: f64, relu: bool) -> Tensor<B, 4> {
    run_kernel("normalize", [x], NormalizeBackward { relu }, |[x]| {
        let (y, stats) = match relu {
            true => forward::<true>(&x, epsilon),
            false => forward::<false>(&x, epsilon),
        };
        (y, (x, stats))
    })
}

#[derive(Debug)]
struct NormalizeBackward {
    relu: bool,
}

impl Backward<Flex, 1> for NormalizeBackward {
    /// The input (a shared buffer, not a copy) and its channels' statistics.
    type State = (FlexTensor, Vec<Statistics>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_x {
            let (x, stats) = ops.state;
            let dx = match self.relu {
                true => input_grad::<true>(&grad, &x, &stats),
                false => input_grad::<false>(&grad, &x, &stats),
            };
            grads.register::<Flex>(node.id, dx);
        }
    }
}

/// μ and 1/√(σ² + ε) of one channel.
#[derive(Debug, Clone, Copy)]
struct Statistics {
    mean: f32,
    inv_std: f32,
}

impl Statistics {
    /// x̂ = (x − μ) / √(σ² + ε), the same arithmetic forward and backward.
    fn normalized(self, x: f32) -> f32 {
        (x - self.mean) * self.inv_std
    }
}

/// ∂x̂ from ∂y: with the ReLU, Burn's `relu_backward` (∂y where max(x̂, 0) >
/// 0, else +0), as a bit mask so that the loops vectorise.
#[inline(always)]
fn grad_x_hat<const RELU: bool>(g: f32, x_hat: f32) -> f32 {
    if !RELU {
        return g;
    }
    let keep = if x_hat > 0.0 { u32::MAX } else { 0 };
    f32::from_bits(g.to_bits() & keep)
}

/// (y, the statistics per channel).
fn forward<const RELU: bool>(x: &FlexTensor, epsilon: f64) -> (FlexTensor, Vec<Statistics>) {
    let view = View::new(x);
    let [n, c, h, w] = view.dims;
    let (x, hw, count) = (view.data(), h * w, (n * h * w) as f64);
    let stats: Vec<Statistics> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let images = || (0..n).map(|i| plane(x, i * c + ch, hw));
            let mean = (images().map(|p| lane_sum(p, p, |v, _| v)).sum::<f64>() / count) as f32;
            let var = images()
                .map(|p| lane_sum(p, p, |v, _| (v - mean) * (v - mean)))
                .sum::<f64>()
                / count;
            let inv_std = (1.0 / (var + epsilon).sqrt()) as f32;
            Statistics { mean, inv_std }
        })
        .collect();
    // SAFETY: the planes of y and x pair up, and every y is written.
    let y = unsafe {
        written(x.len(), |y| {
            y.par_chunks_mut(hw)
                .zip(x.par_chunks(hw))
                .enumerate()
                .for_each(|(p, (y, x))| {
                    let stats = stats[p % c];
                    for (y, &x) in y.iter_mut().zip(x) {
                        let x_hat = stats.normalized(x);
                        // Burn's `relu`, to the bits.
                        y.write(if RELU { x_hat.max(0.0) } else { x_hat });
                    }
                })
        })
    };
    (flex_tensor(y, view.dims), stats)
}

fn input_grad<const RELU: bool>(
    grad: &FlexTensor,
    x: &FlexTensor,
    stats: &[Statistics],
) -> FlexTensor {
    let (g_view, x_view) = (View::new(grad), View::new(x));
    let [n, c, h, w] = g_view.dims;
    let (g, x, hw, count) = (g_view.data(), x_view.data(), h * w, (n * h * w) as f64);
    let means: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let s = stats[ch];
            let (mut sum_g, mut sum_gy) = (0.0, 0.0);
            for i in 0..n {
                let (g, x) = (plane(g, i * c + ch, hw), plane(x, i * c + ch, hw));
                sum_g += lane_sum(g, x, |g, x| grad_x_hat::<RELU>(g, s.normalized(x)));
                sum_gy += lane_sum(g, x, |g, x| {
                    let x_hat = s.normalized(x);
                    grad_x_hat::<RELU>(g, x_hat) * x_hat
                });
            }
            ((sum_g / count) as f32, (sum_gy / count) as f32)
        })
        .collect();
    // SAFETY: as in `forward`.
    let dx = unsafe {
        written(g.len(), |dx| {
            dx.par_chunks_mut(hw)
                .zip(g.par_chunks(hw).zip(x.par_chunks(hw)))
                .enumerate()
                .for_each(|(p, (dx, (g, x)))| {
                    let ((mean_g, mean_gy), s) = (means[p % c], stats[p % c]);
                    for ((dx, &g), &x) in dx.iter_mut().zip(g).zip(x) {
                        let x_hat = s.normalized(x);
                        let g = grad_x_hat::<RELU>(g, x_hat);
                        dx.write((g - mean_g - x_hat * mean_gy) * s.inv_std);
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
    use crate::model::flex::testing::{bits, random};

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
    fn with_relu_gives_the_bits_of_burns_relu_after_it() {
        for (seed, shape) in [[2, 3, 7, 9], [4, 2, 4, 4]].into_iter().enumerate() {
            let x = random(shape, 10 + 2 * seed as u64, [0.5, 2.0]);
            let g = random(shape, 11 + 2 * seed as u64, [0.5, 2.0]);
            let fused = |x| normalize_relu(x, EPSILON);
            let composed = |x| burn::tensor::activation::relu(normalize(x, EPSILON));
            let forward = bits(normalize_relu(x.clone(), EPSILON));
            let relu_after = burn::tensor::activation::relu(normalize(x.clone(), EPSILON));
            assert!(forward == bits(relu_after), "{shape:?}: forward");
            let (ours, burns) = (
                input_gradient(fused, &x, &g),
                input_gradient(composed, &x, &g),
            );
            assert!(bits(ours) == bits(burns), "{shape:?}: ∂x");
            assert!(
                forward.iter().any(|&v| f32::from_bits(v) == 0.0),
                "no value clipped"
            );
        }
    }

    #[test]
    fn matches_the_composed_layer_forward_and_backward() {
        for (seed, shape) in [[2, 3, 7, 9], [1, 1, 1, 5], [4, 2, 4, 4]]
            .into_iter()
            .enumerate()
        {
            let x = random(shape, 2 * seed as u64, [0.5, 2.0]);
            let g = random(shape, 2 * seed as u64 + 1, [0.5, 2.0]);
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
