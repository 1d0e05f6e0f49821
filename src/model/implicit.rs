//! The implicit step: an exact solve of (I + hαL) Y = B with periodic boundaries.
//!
//! L = CᵀC with C a depthwise 3×3 convolution (one kernel per channel), or a
//! fixed stencil, or the identity. Every such L is diagonalised by the 2-D
//! Fourier transform, with symbol λ(ω) = |ĉ(ω)|² (or ŝ(ω) for a symmetric
//! stencil), so
//!
//! ```text
//!     Y = F⁻¹ [ F(B) / (1 + hα λ(ω)) ]
//! ```
//!
//! couples every pixel of a channel at the cost of a few transforms.
//!
//! The symbol is real and even (λ(ω) = λ(−ω)), so the operator is real and
//! symmetric and the real **Hartley** transform diagonalises it just as well:
//! `Ĥ(x)(k) = Σ x(n) cas(2π k·n / N)`, `cas = cos + sin`, with `Ĥ⁻¹ = Ĥ / (HW)`.
//! The 2-D Hartley transform is not separable, but
//! `Ĥ X = C_H X (C_W + S_W) + S_H X (C_W − S_W)` (C, S: cosine and sine
//! matrices) is two dense matrix products per channel. Written that way the
//! solve runs on every backend, for any H and W, and is differentiable in both
//! B and the kernel through ordinary autodiff.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::f64::consts::PI;

/// Cosine and sine tables for one image size, shared by every layer of a
/// forward pass (they depend only on H and W).
#[derive(Clone, Debug)]
pub struct FourierBasis<B: Backend> {
    height: usize,
    width: usize,
    /// `[C_W + S_W | C_W − S_W]`, shape [W, 2W]: applied on the right.
    right: Tensor<B, 2>,
    /// `[C_H | S_H]`, shape [1, H, 2H]: applied on the left (broadcast over images).
    left: Tensor<B, 3>,
    /// cos φ and sin φ of every 3×3 tap, shape [9, H·W], where
    /// φ = 2π (k₁ (a−1)/H + k₂ (b−1)/W) for tap (a, b) and frequency (k₁, k₂).
    tap_cos: Tensor<B, 2>,
    tap_sin: Tensor<B, 2>,
}

impl<B: Backend> FourierBasis<B> {
    pub fn new(height: usize, width: usize, device: &B::Device) -> Self {
        let angle = |k: usize, n: usize, len: usize| 2.0 * PI * ((k * n) % len) as f64 / len as f64;
        let mut right = vec![0f32; width * 2 * width];
        for j in 0..width {
            for k in 0..width {
                let (s, c) = angle(j, k, width).sin_cos();
                right[j * 2 * width + k] = (c + s) as f32;
                right[j * 2 * width + width + k] = (c - s) as f32;
            }
        }
        let mut left = vec![0f32; height * 2 * height];
        for j in 0..height {
            for k in 0..height {
                let (s, c) = angle(j, k, height).sin_cos();
                left[j * 2 * height + k] = c as f32;
                left[j * 2 * height + height + k] = s as f32;
            }
        }
        let hw = height * width;
        let (mut tap_cos, mut tap_sin) = (vec![0f32; 9 * hw], vec![0f32; 9 * hw]);
        for tap in 0..9 {
            let (da, db) = ((tap / 3) as f64 - 1.0, (tap % 3) as f64 - 1.0);
            for k1 in 0..height {
                for k2 in 0..width {
                    let phi = 2.0 * PI * (k1 as f64 * da / height as f64 + k2 as f64 * db / width as f64);
                    tap_cos[tap * hw + k1 * width + k2] = phi.cos() as f32;
                    tap_sin[tap * hw + k1 * width + k2] = phi.sin() as f32;
                }
            }
        }
        Self {
            height,
            width,
            right: Tensor::from_data(TensorData::new(right, [width, 2 * width]), device),
            left: Tensor::from_data(TensorData::new(left, [1, height, 2 * height]), device),
            tap_cos: Tensor::from_data(TensorData::new(tap_cos, [9, hw]), device),
            tap_sin: Tensor::from_data(TensorData::new(tap_sin, [9, hw]), device),
        }
    }

    /// Unnormalised 2-D Hartley transform of every [H, W] slice of `x` [N, C, H, W].
    pub fn hartley(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        assert_eq!((h, w), (self.height, self.width), "basis built for another size");
        // U = X (C_W + S_W), V = X (C_W − S_W), side by side: [N·C·H, 2W].
        let uv = x.reshape([n * c * h, w]).matmul(self.right.clone());
        // Stack them vertically, [N·C, 2H, W], and apply [C_H | S_H] on the left.
        let uv = uv.reshape([n * c, h, 2, w]).swap_dims(1, 2).reshape([n * c, 2 * h, w]);
        self.left.clone().matmul(uv).reshape([n, c, h, w])
    }

    /// |ĉ(ω)|² of depthwise kernels `kernel` [C, 1, 3, 3], shape [C, H, W]:
    /// the symbol of CᵀC with periodic boundaries (centre tap at the origin).
    pub fn symbol_of_normal_operator(&self, kernel: Tensor<B, 4>) -> Tensor<B, 3> {
        let c = kernel.dims()[0];
        let taps = kernel.reshape([c, 9]);
        let re = taps.clone().matmul(self.tap_cos.clone());
        let im = taps.matmul(self.tap_sin.clone());
        (re.powi_scalar(2) + im.powi_scalar(2)).reshape([c, self.height, self.width])
    }

    /// ŝ(ω) of one symmetric stencil `stencil` [3, 3] used directly as L
    /// (real because the stencil is point-symmetric), shape [1, H, W].
    pub fn symbol_of_stencil(&self, stencil: Tensor<B, 2>) -> Tensor<B, 3> {
        stencil
            .reshape([1, 9])
            .matmul(self.tap_cos.clone())
            .reshape([1, self.height, self.width])
    }

    /// Solves (I + hα L) Y = B for `rhs` [N, C, H, W] given L's symbol
    /// `lambda` [C or 1, H, W] and the product `h_alpha` = hα.
    pub fn solve(&self, rhs: Tensor<B, 4>, lambda: Tensor<B, 3>, h_alpha: f64) -> Tensor<B, 4> {
        let scale = 1.0 / (self.height * self.width) as f64;
        let denominator = lambda.mul_scalar(h_alpha).add_scalar(1.0).unsqueeze::<4>();
        self.hartley(self.hartley(rhs).div(denominator)).mul_scalar(scale)
    }
}
