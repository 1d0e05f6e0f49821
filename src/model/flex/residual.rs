//! The residual update of an explicit layer, y = x + h·u, as one pass over
//! the tensors forward and one backward, on every core:
//!
//! ```text
//!     y = x + h·u,    ∂x = ∂y,    ∂u = h·∂y
//! ```
//!
//! Burn's `mul_scalar` then `add` take two passes forward and one more
//! backward, each on one thread (a tenth of a narrow ResNet step). The
//! arithmetic is theirs, h rounded to float32 once and no fused multiply-add,
//! so the bits are the same.

use super::dispatch::run_kernel;
use super::host::{flex_tensor, written, View};
use burn::backend::autodiff::{
    checkpoint::base::Checkpointer,
    grads::Gradients,
    ops::{Backward, Ops},
};
use burn::backend::Flex;
use burn::tensor::{backend::Backend, Tensor};
use rayon::prelude::*;

/// x + h·u for `x` and `u` of one shape, on a backend for which
/// [`supports`](super::dispatch::supports) holds.
pub fn residual<B: Backend>(x: Tensor<B, 4>, u: Tensor<B, 4>, h: f64) -> Tensor<B, 4> {
    let h = h as f32;
    run_kernel("residual", [x, u], ResidualBackward { h }, |[x, u]| {
        let (x, u) = (View::new(&x), View::new(&u));
        assert_eq!(x.dims, u.dims, "residual of two shapes");
        (flex_tensor(update(x.data(), u.data(), h), x.dims), ())
    })
}

#[derive(Debug)]
struct ResidualBackward {
    h: f32,
}

impl Backward<Flex, 2> for ResidualBackward {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_update] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_update {
            let g = View::new(&grad);
            grads.register::<Flex>(node.id, flex_tensor(scaled(g.data(), self.h), g.dims));
        }
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, grad);
        }
    }
}

/// x + h·u elementwise: Burn's `mul_scalar` then `add`, the same bits.
pub(super) fn update(x: &[f32], u: &[f32], h: f32) -> Vec<f32> {
    map(x, u, move |x, u| x + h * u)
}

/// h·g elementwise: Burn's `mul_scalar`.
pub(super) fn scaled(g: &[f32], h: f32) -> Vec<f32> {
    map(g, g, move |g, _| g * h)
}

/// f(aᵢ, bᵢ) for every i, in parallel over chunks (`f` should own what it
/// captures: a reference it reads could alias the output, and the loop would
/// not vectorise).
fn map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    /// Elements per task: 64 KiB of output, enough to pay for a task.
    const CHUNK: usize = 1 << 14;
    assert_eq!(a.len(), b.len());
    // SAFETY: the chunks of the output pair up with those of a and b, and
    // every element is written.
    unsafe {
        written(a.len(), |out| {
            out.par_chunks_mut(CHUNK)
                .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
                .for_each(|(out, (a, b))| {
                    for ((out, &a), &b) in out.iter_mut().zip(a).zip(b) {
                        out.write(f(a, b));
                    }
                })
        })
    }
}

#[cfg(test)]
mod tests {
    //! Against Burn's `x + u.mul_scalar(h)`, value and both gradients, to the
    //! bit: the kernel promises their arithmetic.
    use super::*;
    use crate::model::flex::dispatch::Training;
    use crate::model::flex::testing::{bits, random};

    /// y and (∂x, ∂u) of Σ g ⊙ layer(x, u).
    fn value_and_grads(
        layer: impl Fn(Tensor<Training, 4>, Tensor<Training, 4>) -> Tensor<Training, 4>,
        [x, u, g]: [&Tensor<Flex, 4>; 3],
    ) -> [Vec<u32>; 3] {
        let track =
            |t: &Tensor<Flex, 4>| Tensor::<Training, 4>::from_inner(t.clone()).require_grad();
        let (x, u) = (track(x), track(u));
        let y = layer(x.clone(), u.clone());
        let value = bits(y.clone().inner());
        let grads = (y * Tensor::from_inner(g.clone())).sum().backward();
        [
            value,
            bits(x.grad(&grads).unwrap()),
            bits(u.grad(&grads).unwrap()),
        ]
    }

    const SPREAD: [f64; 2] = [0.5, 2.0];

    #[test]
    fn gives_the_bits_of_burns_operations() {
        // One chunk and several, the last one partial.
        for (seed, shape) in [[2, 3, 7, 9], [3, 5, 64, 65]].into_iter().enumerate() {
            let seed = 3 * seed as u64;
            let (x, u, g) = (
                random(shape, seed, SPREAD),
                random(shape, seed + 1, SPREAD),
                random(shape, seed + 2, SPREAD),
            );
            let h = 0.1;
            let ours = value_and_grads(|x, u| residual(x, u, h), [&x, &u, &g]);
            let burns = value_and_grads(|x, u| x + u.mul_scalar(h), [&x, &u, &g]);
            for (what, (ours, burns)) in ["y", "∂x", "∂u"].iter().zip(ours.iter().zip(&burns)) {
                assert!(ours == burns, "{shape:?}: {what} differs from Burn's");
            }
            let plain = bits(residual(x.clone(), u.clone(), h));
            assert!(plain == burns[0], "{shape:?}: y on Flex differs");
        }
    }
}
