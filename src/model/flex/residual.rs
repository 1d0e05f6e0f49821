//! The residual update of an explicit layer and its backward, elementwise,
//! on every core:
//!
//! ```text
//!     y = x + h·u,    ∂x = ∂y,    ∂u = h·∂y
//! ```
//!
//! with Burn's arithmetic (`mul_scalar` then `add`: h rounded to float32
//! once, no fused multiply-add), so the bits are the same. The convolution
//! that produces u writes the update itself ([`super::conv3x3_residual`]);
//! these are its path where Winograd does not apply.

use super::host::written;
use rayon::prelude::*;

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
    //! Against Burn's `x + u.mul_scalar(h)` and `g.mul_scalar(h)`, to the
    //! bit: the functions promise their arithmetic.
    use super::*;
    use crate::model::flex::testing::{bits, random};
    use burn::backend::Flex;
    use burn::tensor::{Tensor, TensorData};

    const SPREAD: [f64; 2] = [0.5, 2.0];

    #[test]
    fn gives_the_bits_of_burns_operations() {
        // One chunk and several, the last one partial.
        for (seed, shape) in [[2, 3, 7, 9], [3, 5, 64, 65]].into_iter().enumerate() {
            let seed = 3 * seed as u64;
            let (x, u) = (random(shape, seed, SPREAD), random(shape, seed + 1, SPREAD));
            let h = 0.1;
            let host = |t: &Tensor<Flex, 4>| t.to_data().to_vec::<f32>().unwrap();
            let ours = |values: Vec<f32>| {
                let tensor =
                    Tensor::<Flex, 4>::from_data(TensorData::new(values, shape), &x.device());
                bits(tensor)
            };
            let y = ours(update(&host(&x), &host(&u), h as f32));
            assert!(
                y == bits(x.clone() + u.clone().mul_scalar(h)),
                "{shape:?}: y differs"
            );
            let du = ours(scaled(&host(&u), h as f32));
            assert!(du == bits(u.mul_scalar(h)), "{shape:?}: h·∂y differs");
        }
    }
}
