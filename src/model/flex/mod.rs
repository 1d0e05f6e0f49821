//! Hand-written CPU kernels for the operations that dominate a training step
//! on Burn 0.21's Flex backend: the 3×3 convolution ([`conv3x3`]: Winograd's
//! F(2×2, 3×3) on x86-64 with AVX2 and FMA, im2col otherwise), batch
//! normalisation ([`normalize`], also with the ReLU after it), the residual
//! update (written by the convolution before it: [`conv3x3_residual`]), the head's log-softmax ([`log_softmax`]) and the
//! implicit solve ([`solve`]), each with its backward.
//!
//! Burn has no specialisation, so these functions take any backend and pick
//! the kernels by type: `Flex` (evaluation) and `Autodiff<Flex>` (training).
//! [`supports`] says when; callers use Burn's own operations otherwise.

mod batchnorm;
mod conv;
mod dispatch;
mod host;
#[cfg(target_arch = "x86_64")]
mod products;
mod residual;
mod softmax;
mod solve;
#[cfg(target_arch = "x86_64")]
mod transforms;
#[cfg(target_arch = "x86_64")]
mod winograd;

/// Winograd's kernels need x86-64; elsewhere they never apply and the im2col
/// kernels take every convolution.
#[cfg(not(target_arch = "x86_64"))]
mod winograd {
    pub fn applies(_: usize, _: usize) -> bool {
        false
    }

    pub fn correlate(_: &[f32], _: usize, _: usize, _: usize, _: &[f32], _: usize) -> Vec<f32> {
        unreachable!("winograd::applies is false off x86-64")
    }

    pub fn kernel_grad(_: &[f32], _: &[f32], _: usize, _: usize, _: usize, _: usize) -> Vec<f32> {
        unreachable!("winograd::applies is false off x86-64")
    }

    pub fn backward(
        _: &[f32],
        _: &[f32],
        _: &[f32],
        _: [usize; 2],
        _: [usize; 2],
        _: (Option<&[f32]>, Option<f32>),
    ) -> (Vec<f32>, Vec<f32>) {
        unreachable!("winograd::applies is false off x86-64")
    }

    pub fn correlate_residual(
        _: &[f32],
        _: [usize; 2],
        _: [usize; 2],
        _: &[f32],
        _: (&[f32], f32),
    ) -> Vec<f32> {
        unreachable!("winograd::applies is false off x86-64")
    }
}

pub use batchnorm::{normalize, normalize_relu};
pub use conv::{conv3x3, conv3x3_residual};
pub use dispatch::supports;
pub use softmax::log_softmax;
pub use solve::solve;

#[cfg(test)]
mod testing {
    //! What the kernels' tests share: random Flex tensors and their bits.
    use burn::backend::Flex;
    use burn::tensor::{backend::Backend, Distribution, Tensor};

    /// [`Tensor::random`] ~ N(mean, std²) after seeding Flex with `seed`.
    pub fn random(shape: [usize; 4], seed: u64, [mean, std]: [f64; 2]) -> Tensor<Flex, 4> {
        Flex::seed(&Default::default(), seed);
        Tensor::random(shape, Distribution::Normal(mean, std), &Default::default())
    }

    /// The bit patterns of every value, for comparisons to the bit.
    pub fn bits(t: Tensor<Flex, 4>) -> Vec<u32> {
        let values = t.into_data().to_vec::<f32>().unwrap();
        values.into_iter().map(f32::to_bits).collect()
    }
}
