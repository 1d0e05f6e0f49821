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
//! matrices) is four dense matrix products per channel. Written that way the
//! solve runs on every backend, for any H and W, and is differentiable in both
//! B and the kernel through ordinary autodiff.

use super::flex;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::f64::consts::PI;

/// Cosine and sine tables for one image size, shared by every layer of a
/// forward pass (they depend only on H and W).
#[derive(Clone, Debug)]
pub struct FourierBasis<B: Backend> {
    height: usize,
    width: usize,
    /// C_W + S_W and C_W − S_W, [W, W]: applied on the right.
    right_plus: Tensor<B, 2>,
    right_minus: Tensor<B, 2>,
    /// C_H and S_H, [1, H, H]: applied on the left (broadcast over images).
    left_cos: Tensor<B, 3>,
    left_sin: Tensor<B, 3>,
    /// cos φ and sin φ of every 3×3 tap, shape [9, H·W], where
    /// φ = 2π (k₁ (a−1)/H + k₂ (b−1)/W) for tap (a, b) and frequency (k₁, k₂).
    tap_cos: Tensor<B, 2>,
    tap_sin: Tensor<B, 2>,
}

impl<B: Backend> FourierBasis<B> {
    pub fn new(height: usize, width: usize, device: &B::Device) -> Self {
        let angle = |k: usize, n: usize, len: usize| 2.0 * PI * ((k * n) % len) as f64 / len as f64;
        let table = |len: usize, entry: &dyn Fn(f64, f64) -> f64| -> Vec<f32> {
            (0..len * len)
                .map(|i| {
                    let (s, c) = angle(i / len, i % len, len).sin_cos();
                    entry(c, s) as f32
                })
                .collect()
        };
        let square2 =
            |v: Vec<f32>, n: usize| Tensor::<B, 2>::from_data(TensorData::new(v, [n, n]), device);
        let square3 = |v: Vec<f32>, n: usize| {
            Tensor::<B, 3>::from_data(TensorData::new(v, [1, n, n]), device)
        };
        let hw = height * width;
        let (mut tap_cos, mut tap_sin) = (vec![0f32; 9 * hw], vec![0f32; 9 * hw]);
        for tap in 0..9 {
            let (da, db) = ((tap / 3) as f64 - 1.0, (tap % 3) as f64 - 1.0);
            for k1 in 0..height {
                for k2 in 0..width {
                    let phi =
                        2.0 * PI * (k1 as f64 * da / height as f64 + k2 as f64 * db / width as f64);
                    tap_cos[tap * hw + k1 * width + k2] = phi.cos() as f32;
                    tap_sin[tap * hw + k1 * width + k2] = phi.sin() as f32;
                }
            }
        }
        Self {
            height,
            width,
            right_plus: square2(table(width, &|c, s| c + s), width),
            right_minus: square2(table(width, &|c, s| c - s), width),
            left_cos: square3(table(height, &|c, _| c), height),
            left_sin: square3(table(height, &|_, s| s), height),
            tap_cos: Tensor::from_data(TensorData::new(tap_cos, [9, hw]), device),
            tap_sin: Tensor::from_data(TensorData::new(tap_sin, [9, hw]), device),
        }
    }

    /// Unnormalised 2-D Hartley transform of every [H, W] slice of `x` [N, C, H, W].
    fn hartley(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        assert_eq!(
            (h, w),
            (self.height, self.width),
            "basis built for another size"
        );
        // U = X (C_W + S_W) and V = X (C_W − S_W), then C_H U + S_H V. Four
        // products and no transposition: layout changes cost more than flops here.
        let rows = x.reshape([n * c * h, w]);
        let u = rows
            .clone()
            .matmul(self.right_plus.clone())
            .reshape([n * c, h, w]);
        let v = rows.matmul(self.right_minus.clone()).reshape([n * c, h, w]);
        (self.left_cos.clone().matmul(u) + self.left_sin.clone().matmul(v)).reshape([n, c, h, w])
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
    /// `lambda` [C or 1, H, W] and the product `h_alpha` = hα. On the CPU
    /// through `flex::solve`, elsewhere from Burn's operations.
    pub fn solve(&self, rhs: Tensor<B, 4>, lambda: Tensor<B, 3>, h_alpha: f64) -> Tensor<B, 4> {
        if flex::supports::<B>() {
            return flex::solve(rhs, lambda, h_alpha);
        }
        self.solve_composed(rhs, lambda, h_alpha)
    }

    /// [`Self::solve`] from Burn's operations: every backend, autodiff for free.
    fn solve_composed(
        &self,
        rhs: Tensor<B, 4>,
        lambda: Tensor<B, 3>,
        h_alpha: f64,
    ) -> Tensor<B, 4> {
        let [n, c, h, w] = rhs.dims();
        // 1 / (HW (1 + hαλ)): the inverse transform's scale folded in.
        let scale = (self.height * self.width) as f64;
        let denominator = lambda.mul_scalar(h_alpha * scale).add_scalar(scale);
        let channels = denominator.dims()[0];
        let denominator = denominator.reshape([1, channels * h * w]);
        // Broadcast over images on 2-D tensors (the fast path of CPU backends).
        let spectrum = self.hartley(rhs).reshape([n, c * h * w]);
        let spectrum = if channels == c {
            spectrum.div(denominator)
        } else {
            spectrum.reshape([n * c, h * w]).div(denominator)
        };
        self.hartley(spectrum.reshape([n, c, h, w]))
    }
}

#[cfg(test)]
mod tests {
    //! The CPU kernel of [`flex::solve`] against the composed solve, value and
    //! gradients (rhs and the operator kernel through the symbol), on a
    //! non-square image so that a transposed table would show. Both sum
    //! ≤ 2·max(H, W) terms per product, twice per transform: float32 keeps a
    //! relative 1e-4 with room to spare.
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type Ad = Autodiff<Flex>;

    fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Ad, D> {
        Ad::seed(&Default::default(), seed);
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn assert_close<const D: usize>(a: Tensor<Ad, D>, b: Tensor<Ad, D>, what: &str) {
        let scale = b.clone().abs().max().into_scalar().max(1.0);
        let worst = (a - b).abs().max().into_scalar();
        assert!(worst <= 1e-4 * scale, "{what}: {worst} (scale {scale})");
    }

    #[test]
    fn cpu_solve_matches_the_composed_solve_with_gradients() {
        let (h, w, h_alpha) = (6, 10, 0.7);
        let basis = FourierBasis::<Ad>::new(h, w, &Default::default());
        let stencil = Tensor::<Ad, 2>::from_data(
            TensorData::new(crate::model::network::LAPLACIAN_STENCIL.to_vec(), [3, 3]),
            &Default::default(),
        );
        for learned in [true, false] {
            let rhs = random([2, 3, h, w], 1).require_grad();
            let kernel = random([3, 1, 3, 3], 2).require_grad();
            let g = random([2, 3, h, w], 3);
            let lambda = || match learned {
                true => basis.symbol_of_normal_operator(kernel.clone()),
                false => basis.symbol_of_stencil(stencil.clone()).mul_scalar(50.0),
            };
            let ours = basis.solve(rhs.clone(), lambda(), h_alpha);
            let truth = basis.solve_composed(rhs.clone(), lambda(), h_alpha);
            assert_close(ours.clone(), truth.clone(), "Y");
            let ours = (ours * g.clone()).sum().backward();
            let truth = (truth * g).sum().backward();
            let grad =
                |t: &Tensor<Ad, 4>, grads| Tensor::<Ad, 4>::from_inner(t.grad(grads).unwrap());
            assert_close(grad(&rhs, &ours), grad(&rhs, &truth), "∂rhs");
            if learned {
                assert_close(grad(&kernel, &ours), grad(&kernel, &truth), "∂kernel");
            }
        }
    }
}
