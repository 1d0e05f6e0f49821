//! log-softmax over the channels of [N, C, H, W] (the class scores of the
//! segmentation head), forward and backward as one pass each over the pixels,
//! images in parallel. Per pixel, with x_c its scores and ∂y_c the gradient:
//!
//! ```text
//!     s_c = x_c − max x,   E_c = exp(s_c),   S = Σ_c E_c,   y_c = s_c − ln S
//!    ∂x_c = ∂y_c + ((Σ_c −∂y_c) · (1/S)) · E_c
//! ```
//!
//! Burn's `log_softmax` is this composition of eight tensor operations, and
//! its autodiff another nine, each a pass on one thread over a tensor whose
//! channel axis is strided (a twentieth of a narrow ResNet step). The
//! arithmetic here is theirs operation for operation (the sums in channel
//! order from +0, ln's derivative as a reciprocal, `exp` and `ln` of the
//! same library): the same bits.

use super::dispatch::run_kernel;
use super::host::{flex_tensor, View};
use burn::backend::autodiff::{
    checkpoint::base::Checkpointer,
    grads::Gradients,
    ops::{Backward, Ops},
};
use burn::backend::Flex;
use burn::tensor::{backend::Backend, Tensor};
use rayon::prelude::*;

/// y = log softmax(x) over axis 1 of `x` [N, C, H, W], on a backend for
/// which [`supports`](super::dispatch::supports) holds.
pub fn log_softmax<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    run_kernel("log_softmax", [x], LogSoftmaxBackward, |[x]| {
        let x = View::new(&x);
        let [n, c, h, w] = x.dims;
        let pixels = h * w;
        let mut exps = vec![0f32; x.data().len()];
        let mut sums = vec![0f32; n * pixels];
        let mut y = vec![0f32; x.data().len()];
        (y.par_chunks_mut(c * pixels))
            .zip(exps.par_chunks_mut(c * pixels))
            .zip(sums.par_chunks_mut(pixels))
            .zip(x.data().par_chunks(c * pixels))
            .for_each(|(((y, exps), sums), x)| {
                for (p, sum) in sums.iter_mut().enumerate() {
                    let at = |k: usize| k * pixels + p;
                    let max = (0..c).map(|k| x[at(k)]).fold(f32::NEG_INFINITY, f32::max);
                    *sum = 0.0;
                    for k in 0..c {
                        exps[at(k)] = (x[at(k)] - max).exp();
                        *sum += exps[at(k)];
                    }
                    let log_sum = sum.ln();
                    for k in 0..c {
                        y[at(k)] = (x[at(k)] - max) - log_sum;
                    }
                }
            });
        (flex_tensor(y, x.dims), (exps, sums))
    })
}

#[derive(Debug)]
struct LogSoftmaxBackward;

impl Backward<Flex, 1> for LogSoftmaxBackward {
    /// E_c and S of every pixel, [N, C, H, W] and [N, H, W].
    type State = (Vec<f32>, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(node) = node_x else { return };
        let (exps, sums) = ops.state;
        let g = View::new(&grad);
        let [_, c, h, w] = g.dims;
        let pixels = h * w;
        let mut dx = vec![0f32; exps.len()];
        (dx.par_chunks_mut(c * pixels))
            .zip(g.data().par_chunks(c * pixels))
            .zip(exps.par_chunks(c * pixels).zip(sums.par_chunks(pixels)))
            .for_each(|((dx, g), (exps, sums))| {
                for (p, &sum) in sums.iter().enumerate() {
                    let at = |k: usize| k * pixels + p;
                    let mut minus_total = 0f32;
                    for k in 0..c {
                        minus_total += -g[at(k)];
                    }
                    let d_sum = minus_total * (1.0 / sum);
                    for k in 0..c {
                        dx[at(k)] = g[at(k)] + d_sum * exps[at(k)];
                    }
                }
            });
        grads.register::<Flex>(node.id, flex_tensor(dx, g.dims));
    }
}

#[cfg(test)]
mod tests {
    //! Against Burn's `log_softmax(x, 1)`, value and gradient for a dense
    //! ∂y (every channel), to the bit: the kernel promises its arithmetic.
    use super::*;
    use crate::model::flex::dispatch::Training;
    use crate::model::flex::testing::{bits, random};
    use burn::tensor::activation;

    fn value_and_grad(
        layer: fn(Tensor<Training, 4>) -> Tensor<Training, 4>,
        x: &Tensor<Flex, 4>,
        g: &Tensor<Flex, 4>,
    ) -> [Vec<u32>; 2] {
        let x = Tensor::<Training, 4>::from_inner(x.clone()).require_grad();
        let y = layer(x.clone());
        let value = bits(y.clone().inner());
        let grads = (y * Tensor::from_inner(g.clone())).sum().backward();
        [value, bits(x.grad(&grads).unwrap())]
    }

    #[test]
    fn gives_the_bits_of_burns_log_softmax() {
        // Four classes as the Q-tips head, and odd shapes; scores up to ±30.
        for (seed, shape) in [[2, 4, 5, 7], [3, 3, 1, 9], [1, 6, 8, 8]]
            .into_iter()
            .enumerate()
        {
            let seed = 2 * seed as u64;
            let (x, g) = (
                random(shape, seed, [0.0, 10.0]),
                random(shape, seed + 1, [0.0, 1.0]),
            );
            let ours = value_and_grad(log_softmax, &x, &g);
            let burns = value_and_grad(|x| activation::log_softmax(x, 1), &x, &g);
            assert!(ours[0] == burns[0], "{shape:?}: value differs from Burn's");
            assert!(
                ours[1] == burns[1],
                "{shape:?}: gradient differs from Burn's"
            );
            let plain = bits(log_softmax(x.clone()));
            assert!(plain == burns[0], "{shape:?}: value on Flex differs");
        }
    }
}
