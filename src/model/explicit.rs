//! The explicit half of a layer: f(Y) = Kᵀ σ(N(K Y)), with the same 3×3
//! kernel K and its exact adjoint (zero padding 1, no bias).
//!
//! On the CPU both run through `super::flex`; elsewhere through Burn's
//! `conv2d` and `conv_transpose2d`.

use super::flex;
use burn::tensor::{
    backend::Backend,
    module::{conv2d, conv_transpose2d},
    ops::{ConvOptions, ConvTransposeOptions},
    Tensor,
};

/// 3×3 cross-correlation with zero padding 1 (PyTorch's `conv2d(x, K, padding=1)`):
/// `out[n,o,y,x] = Σ_{i,a,b} K[o,i,a,b] · in[n,i,y+a−1,x+b−1]`.
pub fn conv3x3<B: Backend>(x: Tensor<B, 4>, kernel: Tensor<B, 4>) -> Tensor<B, 4> {
    if flex::supports::<B>() {
        return flex::conv3x3(x, kernel);
    }
    conv2d(x, kernel, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
}

/// The exact adjoint of [`conv3x3`] (PyTorch's `conv_transpose2d(z, K, padding=1)`):
/// ⟨conv3x3(x, K), z⟩ = ⟨x, conv3x3_adjoint(z, K)⟩ for all x, z.
pub fn conv3x3_adjoint<B: Backend>(z: Tensor<B, 4>, kernel: Tensor<B, 4>) -> Tensor<B, 4> {
    if flex::supports::<B>() {
        // Kᵀ is the correlation with K's channel axes swapped and its taps flipped.
        return flex::conv3x3(z, kernel.swap_dims(0, 1).flip([2, 3]));
    }
    conv_transpose2d(
        z,
        kernel,
        None,
        ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1),
    )
}

/// The residual update x + h·Kᵀz of an explicit layer: on the CPU one kernel
/// that never stores u = Kᵀz (`flex::conv3x3_residual`), elsewhere Burn's
/// operations on [`conv3x3_adjoint`], the same numbers.
pub fn adjoint_residual<B: Backend>(
    x: Tensor<B, 4>,
    z: Tensor<B, 4>,
    kernel: Tensor<B, 4>,
    h: f64,
) -> Tensor<B, 4> {
    if flex::supports::<B>() {
        return flex::conv3x3_residual(x, z, kernel.swap_dims(0, 1).flip([2, 3]), h);
    }
    x + conv3x3_adjoint(z, kernel).mul_scalar(h)
}

/// Projects every 3×3 kernel onto zero mean over its 9 taps: K ← K − mean(K).
///
/// The authors apply it to same-width kernels before each forward pass
/// (projected SGD), outside autodiff; callers detach accordingly.
pub fn project_zero_mean<B: Backend>(kernel: Tensor<B, 4>) -> Tensor<B, 4> {
    let [o, i, kh, kw] = kernel.dims();
    let flat = kernel.reshape([o * i, kh * kw]);
    let mean = flat.clone().mean_dim(1);
    (flat - mean).reshape([o, i, kh, kw])
}
