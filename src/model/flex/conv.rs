//! The 3×3 convolution on the CPU (Flex), written out: im2col and one matrix
//! product per image (per tile of image rows that keeps col in cache),
//! images in parallel, and a backward pass that is two more products.
//!
//! Burn 0.21's Flex computes a convolution's kernel gradient as a convolution
//! with an H×W "kernel" and its input gradient as a transposed convolution,
//! 3–10× slower than PyTorch (BENCHMARKS.md); the convolutions were most of a
//! training step. With `col(x)` the [9I, HW] matrix of the nine zero-padded
//! shifts of an image x [I, H, W] (im2col) and K [O, I, 3, 3] read as [O, 9I]:
//!
//! ```text
//!     y_n = K · col(x_n)                    forward
//!    ∂x_n = K̃ · col(∂y_n)                   K̃[i, 9o + t] = K[o, i, 8 − t]: the adjoint
//!      ∂K = Σ_n ∂y_n · col(x_n)ᵀ
//! ```
//!
//! (K̃ swaps K's channel axes and flips its taps: the transpose of a padded
//! stride-1 correlation is the correlation with K̃, the same kernel code.)
//!
//! Where [`winograd::applies`] (AVX2 and FMA, channels in blocks of 4: every
//! layer of the networks but the opening one) the same three products run as
//! Winograd's F(2×2, 3×3), 2.25× fewer multiplications; im2col takes the rest.

use super::dispatch::{run_kernel, take_gradient};
use super::host::{add_assign, flex_tensor, matmul, sum_in_order, with_scratch, Matrix, View};
use super::residual::{scaled, update};
use super::winograd;
use burn::backend::autodiff::{
    checkpoint::base::Checkpointer,
    grads::Gradients,
    ops::{Backward, Ops},
    NodeId,
};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{backend::Backend, Tensor};
use rayon::prelude::*;
use std::ops::Range;

/// `out[n,o,y,x] = Σ_{i,a,b} K[o,i,a,b] · in[n,i,y+a−1,x+b−1]` (zero padding 1),
/// on a backend for which [`supports`](super::dispatch::supports) holds.
pub fn conv3x3<B: Backend>(x: Tensor<B, 4>, kernel: Tensor<B, 4>) -> Tensor<B, 4> {
    run_kernel("conv3x3", [x, kernel], Conv3x3Backward, |[x, kernel]| {
        (forward(&x, &kernel), (x, kernel))
    })
}

#[derive(Debug)]
struct Conv3x3Backward;

/// x + h·(K ⋆ z): [`conv3x3`] of `z` [N, c_in, H, W] and the residual update
/// after it, with the bits of Burn's `x + conv3x3(z, K).mul_scalar(h)`. Where
/// Winograd applies (and h > 0) the update u = K ⋆ z is never stored: the
/// correlation's output transform writes x + h·u, and the backward's
/// transforms read h·∂y as they load ∂y (two passes over memory fewer each
/// way); elsewhere it is the two kernels one after the other.
pub fn conv3x3_residual<B: Backend>(
    x: Tensor<B, 4>,
    z: Tensor<B, 4>,
    kernel: Tensor<B, 4>,
    h: f64,
) -> Tensor<B, 4> {
    let step = h as f32;
    let backward = ResidualConv3x3Backward { step };
    run_kernel(
        "conv3x3_residual",
        [x, z, kernel],
        backward,
        |[x, z, kernel]| {
            let (x_view, z_view, k_view) = (View::new(&x), View::new(&z), View::new(&kernel));
            let ([n, c_in, h, w], c_out) = (z_view.dims, k_view.dims[0]);
            assert_eq!(x_view.dims, [n, c_out, h, w], "residual of two shapes");
            let (xs, zs, ks) = (x_view.data(), z_view.data(), k_view.data());
            let y = if winograd::applies(c_in, c_out) && step > 0.0 {
                winograd::correlate_residual(zs, [c_in, c_out], [h, w], ks, (xs, step))
            } else {
                update(xs, &convolve(zs, c_in, h, w, ks, c_out), step)
            };
            (flex_tensor(y, x_view.dims), (z, kernel))
        },
    )
}

#[derive(Debug)]
struct ResidualConv3x3Backward {
    step: f32,
}

impl Backward<Flex, 3> for ResidualConv3x3Backward {
    /// The convolution's input and kernel (shared buffers, not copies).
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        // ∂x = ∂y; the convolution's ∂y is h·∂y.
        let grad = grads.consume::<Flex>(&ops.node);
        let plus = take_gradient(grads, &ops, 1, &grad);
        let [x, z, kernel] = ops.parents.map(|node| node.map(|node| node.id));
        let (z_value, kernel_value) = ops.state;
        let values = [&z_value, &kernel_value];
        register_gradients(grads, [z, kernel], values, &grad, (plus, Some(self.step)));
        if let Some(x) = x {
            grads.register::<Flex>(x, grad);
        }
    }
}

impl Backward<Flex, 2> for Conv3x3Backward {
    /// The forward's input and kernel (shared buffers, not copies).
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        // x's other consumer (the residual update) registered its gradient
        // first: ∂x is added to it where it is made.
        let plus = take_gradient(grads, &ops, 0, &grad);
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        let (x, kernel) = ops.state;
        register_gradients(grads, parents, [&x, &kernel], &grad, (plus, None));
    }
}

/// Registers ∂x + `plus` and ∂K of a convolution of x with `kernel` whose
/// output gradient is `grad` times `scale` (if given), for the parents
/// `[x, kernel]` that want them.
fn register_gradients(
    grads: &mut Gradients,
    [node_x, node_kernel]: [Option<NodeId>; 2],
    [x, kernel]: [&FlexTensor; 2],
    grad: &FlexTensor,
    (plus, scale): (Option<FlexTensor>, Option<f32>),
) {
    let plus = plus.as_ref().map(View::new);
    let plus = plus.as_ref().map(View::data);
    if let (Some(node_x), Some(node_kernel)) = (&node_x, &node_kernel) {
        let (dx, dk) = gradients(x, kernel, grad, (plus, scale));
        grads.register::<Flex>(*node_x, dx);
        grads.register::<Flex>(*node_kernel, dk);
        return;
    }
    let grad = scaled_grad(grad, scale);
    if let Some(node) = node_x {
        grads.register::<Flex>(node, input_grad(&grad, kernel, plus));
    }
    if let Some(node) = node_kernel {
        grads.register::<Flex>(node, kernel_grad(x, &grad));
    }
}

/// `grad` times `scale` (if given), formed as the residual update's backward
/// forms it.
fn scaled_grad(grad: &FlexTensor, scale: Option<f32>) -> FlexTensor {
    match scale {
        Some(scale) => {
            let view = View::new(grad);
            flex_tensor(scaled(view.data(), scale), view.dims)
        }
        None => grad.clone(),
    }
}

/// (∂x + `plus`, ∂K) for the output gradient `grad` times `scale`:
/// Winograd's both at once where it applies ([`winograd::backward`], which
/// scales ∂y as it reads it), otherwise [`input_grad`] and [`kernel_grad`].
fn gradients(
    x: &FlexTensor,
    kernel: &FlexTensor,
    grad: &FlexTensor,
    (plus, scale): (Option<&[f32]>, Option<f32>),
) -> (FlexTensor, FlexTensor) {
    let (x_view, k_view) = (View::new(x), View::new(kernel));
    let ([n, c_in, h, w], c_out) = (x_view.dims, k_view.dims[0]);
    if !winograd::applies(c_in, c_out) || scale.is_some_and(|s| s <= 0.0) {
        let grad = scaled_grad(grad, scale);
        return (input_grad(&grad, kernel, plus), kernel_grad(x, &grad));
    }
    let adjoint = adjoint(k_view.data(), c_out, c_in);
    let grad = View::new(grad);
    let (dx, dk) = winograd::backward(
        x_view.data(),
        grad.data(),
        &adjoint,
        [c_in, c_out],
        [h, w],
        (plus, scale),
    );
    (
        flex_tensor(dx, [n, c_in, h, w]),
        flex_tensor(dk, [c_out, c_in, 3, 3]),
    )
}

fn forward(x: &FlexTensor, kernel: &FlexTensor) -> FlexTensor {
    let (x, kernel) = (View::new(x), View::new(kernel));
    let [n, c_in, h, w] = x.dims;
    let c_out = kernel.dims[0];
    assert_eq!(
        kernel.dims,
        [c_out, c_in, 3, 3],
        "kernel shape for {:?}",
        x.dims
    );
    let y = convolve(x.data(), c_in, h, w, kernel.data(), c_out);
    flex_tensor(y, [n, c_out, h, w])
}

/// ∂x = K̃ · col(∂y) per image, plus `plus` if given.
fn input_grad(grad: &FlexTensor, kernel: &FlexTensor, plus: Option<&[f32]>) -> FlexTensor {
    let (grad, kernel) = (View::new(grad), View::new(kernel));
    let [n, c_out, h, w] = grad.dims;
    let c_in = kernel.dims[1];
    let adjoint = adjoint(kernel.data(), c_out, c_in);
    let mut dx = convolve(grad.data(), c_out, h, w, &adjoint, c_in);
    if let Some(plus) = plus {
        add_assign(&mut dx, plus);
    }
    flex_tensor(dx, [n, c_in, h, w])
}

/// K̃ [c_in, c_out, 3, 3] of K [c_out, c_in, 3, 3]: K̃[i, o, t] = K[o, i, 8 − t].
fn adjoint(kernel: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let mut adjoint = vec![0f32; c_in * c_out * 9];
    for o in 0..c_out {
        for i in 0..c_in {
            for t in 0..9 {
                adjoint[(i * c_out + o) * 9 + t] = kernel[(o * c_in + i) * 9 + 8 - t];
            }
        }
    }
    adjoint
}

/// [`winograd::correlate`] where it applies, im2col's [`correlate`] elsewhere.
fn convolve(
    images: &[f32],
    c_in: usize,
    h: usize,
    w: usize,
    kernel: &[f32],
    c_out: usize,
) -> Vec<f32> {
    if winograd::applies(c_in, c_out) {
        winograd::correlate(images, c_in, h, w, kernel, c_out)
    } else {
        correlate(images, c_in, h, w, kernel, c_out)
    }
}

/// ∂K = Σ_n ∂y_n · col(x_n)ᵀ (or Winograd's where it applies): one product
/// per image in parallel, summed in
/// image order so that training stays bit-reproducible at any thread count.
///
/// ∂K is formed column-major ([9I, O] in memory): the matrix kernel then
/// reads col(x_n) in place and repacks only ∂y_n, 9I/O times less data.
fn kernel_grad(x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (x, grad) = (View::new(x), View::new(grad));
    let [_, c_in, h, w] = x.dims;
    let c_out = grad.dims[1];
    if winograd::applies(c_in, c_out) {
        let dk = winograd::kernel_grad(x.data(), grad.data(), c_in, c_out, h, w);
        return flex_tensor(dk, [c_out, c_in, 3, 3]);
    }
    let (plane_in, plane_out, taps) = (c_in * h * w, c_out * h * w, 9 * c_in);
    let tile = tile_rows(c_in, h, w);
    let per_image: Vec<Vec<f32>> = x
        .data()
        .par_chunks(plane_in)
        .zip(grad.data().par_chunks(plane_out))
        .map(|(image, dy)| {
            with_scratch(taps * tile * w, |col| {
                let mut dk = vec![0f32; taps * c_out];
                for first in (0..h).step_by(tile) {
                    let rows = first..(first + tile).min(h);
                    let pixels = rows.len() * w;
                    im2col(image, c_in, h, w, rows, col);
                    // Columns first·W.. of every channel of ∂y.
                    let lhs = Matrix {
                        data: &dy[first * w..],
                        row_stride: h * w,
                        col_stride: 1,
                    };
                    let (dst, rhs) = (
                        Matrix::col_major(&mut dk[..], c_out),
                        Matrix::col_major(&col[..], pixels),
                    );
                    matmul(dst, lhs, rhs, [c_out, taps, pixels], true);
                }
                dk
            })
        })
        .collect();
    let transposed = sum_in_order(per_image, taps * c_out);
    let dk = (0..c_out * taps)
        .map(|j| transposed[(j % taps) * c_out + j / taps])
        .collect();
    flex_tensor(dk, [c_out, c_in, 3, 3])
}

/// `kernel` [c_out, 9·c_in] times col(image) for every image of `images`
/// [N, c_in, h, w], in parallel over images: [N, c_out, h, w].
fn correlate(
    images: &[f32],
    c_in: usize,
    h: usize,
    w: usize,
    kernel: &[f32],
    c_out: usize,
) -> Vec<f32> {
    let (plane_in, plane_out, taps) = (c_in * h * w, c_out * h * w, 9 * c_in);
    let tile = tile_rows(c_in, h, w);
    let mut out = vec![0f32; images.len() / plane_in * plane_out];
    out.par_chunks_mut(plane_out)
        .zip(images.par_chunks(plane_in))
        .for_each(|(y, image)| {
            with_scratch(taps * tile * w, |col| {
                for first in (0..h).step_by(tile) {
                    let rows = first..(first + tile).min(h);
                    let pixels = rows.len() * w;
                    im2col(image, c_in, h, w, rows, col);
                    // Columns first·W.. of every output channel.
                    let dst = Matrix {
                        data: &mut y[first * w..],
                        row_stride: h * w,
                        col_stride: 1,
                    };
                    let (lhs, rhs) = (
                        Matrix::row_major(kernel, taps),
                        Matrix::row_major(&col[..], pixels),
                    );
                    matmul(dst, lhs, rhs, [c_out, pixels, taps], false);
                }
            })
        });
    out
}

/// Image rows per im2col tile, so that a tile of col ([9C, rows·W], at most
/// 1 MiB) is still in cache when the matrix product reads it.
fn tile_rows(channels: usize, h: usize, w: usize) -> usize {
    const TILE_ELEMENTS: usize = 1 << 18;
    (TILE_ELEMENTS / (9 * channels * w)).clamp(1, h)
}

/// col of image rows `rows`: `col[9i + 3a + b, (y − y₀)W + x] =
/// image[i, y+a−1, x+b−1]` for y ∈ rows = y₀.., zero outside the image.
fn im2col(image: &[f32], channels: usize, h: usize, w: usize, rows: Range<usize>, col: &mut [f32]) {
    let pixels = rows.len() * w;
    for (row, shifted) in col[..9 * channels * pixels]
        .chunks_exact_mut(pixels)
        .enumerate()
    {
        let (plane, a, b) = (row / 9, row % 9 / 3, row % 3);
        let plane = &image[plane * h * w..][..h * w];
        for (y, line) in rows.clone().zip(shifted.chunks_exact_mut(w)) {
            let Some(source) = (y + a).checked_sub(1).filter(|&s| s < h) else {
                line.fill(0.0);
                continue;
            };
            let source = &plane[source * w..][..w];
            match b {
                0 => {
                    line[0] = 0.0;
                    line[1..].copy_from_slice(&source[..w - 1]);
                }
                1 => line.copy_from_slice(source),
                _ => {
                    line[..w - 1].copy_from_slice(&source[1..]);
                    line[w - 1] = 0.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against Burn's own `conv2d` and its autodiff backward on the same
    //! backend: an independent implementation (direct loops and transposed
    //! convolutions). A length-n float32 dot product is off by at most
    //! n·2⁻²⁴·Σ|aᵢbᵢ| in any summation order, so two of them differ by at most
    //! twice that; Σ|aᵢbᵢ| comes from the same reference with |a| and |b|.
    use super::*;
    use crate::model::flex::dispatch::Training;
    use crate::model::flex::testing::bits;
    use burn::tensor::{module::conv2d, ops::ConvOptions, Distribution};

    type Ad = Training;

    fn random(shape: [usize; 4], seed: u64) -> Tensor<Flex, 4> {
        Flex::seed(&Default::default(), seed);
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn reference<B: Backend>(x: Tensor<B, 4>, kernel: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(x, kernel, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
    }

    /// max |ours − truth| ≤ 2·n·2⁻²⁴·magnitude, elementwise.
    fn assert_within(
        ours: Tensor<Flex, 4>,
        truth: Tensor<Flex, 4>,
        magnitude: Tensor<Flex, 4>,
        n: usize,
        what: &str,
    ) {
        assert_eq!(ours.dims(), truth.dims(), "{what}: shape");
        let excess = (ours - truth).abs() - magnitude.mul_scalar(2.0 * n as f64 * 2f64.powi(-24));
        let worst = excess.max().into_scalar();
        assert!(
            worst <= 1e-7,
            "{what}: exceeds the float32 bound by {worst}"
        );
    }

    /// (∂/∂x, ∂/∂K) of Σ conv(x, K) ⊙ g.
    fn gradients(
        conv: fn(Tensor<Ad, 4>, Tensor<Ad, 4>) -> Tensor<Ad, 4>,
        [x, kernel, g]: [&Tensor<Flex, 4>; 3],
    ) -> [Tensor<Flex, 4>; 2] {
        let x = Tensor::<Ad, 4>::from_inner(x.clone()).require_grad();
        let kernel = Tensor::<Ad, 4>::from_inner(kernel.clone()).require_grad();
        let loss = (conv(x.clone(), kernel.clone()) * Tensor::from_inner(g.clone())).sum();
        let grads = loss.backward();
        [x.grad(&grads).unwrap(), kernel.grad(&grads).unwrap()]
    }

    const SHAPES: [([usize; 4], usize); 5] = [
        ([2, 3, 5, 7], 4),
        ([1, 1, 1, 1], 2),
        ([3, 6, 4, 9], 6),
        ([2, 2, 1, 6], 3),
        ([1, 4, 8, 1], 5),
    ];

    #[test]
    fn forward_matches_burn_conv2d_in_evaluation_and_training() {
        for (seed, &(shape, c_out)) in SHAPES.iter().enumerate() {
            let seed = 10 * seed as u64;
            let x = random(shape, seed);
            let kernel = random([c_out, shape[1], 3, 3], seed + 1);
            let truth = reference(x.clone(), kernel.clone());
            let magnitude = reference(x.clone().abs(), kernel.clone().abs());
            let n = 9 * shape[1];
            let ours = conv3x3(x.clone(), kernel.clone());
            assert_within(ours, truth.clone(), magnitude.clone(), n, "Flex forward");
            let tracked = conv3x3(Tensor::<Ad, 4>::from_inner(x), Tensor::from_inner(kernel));
            assert_within(
                tracked.inner(),
                truth,
                magnitude,
                n,
                "Autodiff<Flex> forward",
            );
        }
    }

    #[test]
    fn gradients_match_burn_autodiff() {
        for (seed, &(shape, c_out)) in SHAPES.iter().enumerate() {
            let seed = 10 * seed as u64;
            let [n, c_in, h, w] = shape;
            let x = random(shape, seed);
            let kernel = random([c_out, c_in, 3, 3], seed + 1);
            let g = random([n, c_out, h, w], seed + 2);
            let ours = gradients(conv3x3, [&x, &kernel, &g]);
            let truth = gradients(reference, [&x, &kernel, &g]);
            let magnitude = gradients(reference, [&x.abs(), &kernel.abs(), &g.abs()]);
            let [ours_x, ours_k] = ours;
            let [truth_x, truth_k] = truth;
            let [magnitude_x, magnitude_k] = magnitude;
            assert_within(ours_x, truth_x, magnitude_x, 9 * c_out, "∂x");
            assert_within(ours_k, truth_k, magnitude_k, n * h * w, "∂K");
        }
    }

    /// ∂x where x also feeds an operation that comes later (as in a residual
    /// layer, x + conv(x)): the convolution adds its ∂x to the gradient that
    /// operation registered, which must give the bits of Burn adding the
    /// two, ∂x_conv + ∂x_other, on both paths (im2col and Winograd).
    #[test]
    fn a_gradient_registered_earlier_is_added_with_burns_bits() {
        for (shape, c_out) in [([2, 3, 5, 7], 3), ([2, 8, 6, 10], 8)] {
            let x = random(shape, 7);
            let kernel = random([c_out, shape[1], 3, 3], 8);
            let g = random(shape, 9);
            let other = random(shape, 10);
            let tracked = |t: &Tensor<Flex, 4>| Tensor::<Ad, 4>::from_inner(t.clone());
            // Σ g ⊙ conv(x) + Σ other ⊙ x², whose second term is recorded
            // after the convolution, so its backward registers ∂x first.
            let fan_out = {
                let x = tracked(&x).require_grad();
                let conv = conv3x3(x.clone(), tracked(&kernel)) * tracked(&g);
                let square = x.clone() * x.clone() * tracked(&other);
                let grads = (conv.sum() + square.sum()).backward();
                x.grad(&grads).unwrap()
            };
            let apart = |term: &dyn Fn(Tensor<Ad, 4>) -> Tensor<Ad, 4>| {
                let x = tracked(&x).require_grad();
                x.grad(&term(x.clone()).sum().backward()).unwrap()
            };
            let conv_alone = apart(&|x| conv3x3(x, tracked(&kernel)) * tracked(&g));
            let square_alone = apart(&|x| x.clone() * x * tracked(&other));
            assert!(
                bits(fan_out) == bits(conv_alone + square_alone),
                "{shape:?} → {c_out}: ∂x differs from Burn's sum of the two"
            );
        }
    }

    /// The fused residual update gives the bits of Burn's update after the
    /// convolution, value and the three gradients, on both paths
    /// (im2col, and Winograd with its output transform and scaled loads).
    #[test]
    fn the_fused_residual_update_gives_the_bits_of_burns_operations() {
        for (shape, c_out) in [([2, 3, 5, 7], 3), ([2, 8, 6, 10], 12)] {
            let [n, _, h, w] = shape;
            let z = random(shape, 11);
            let kernel = random([c_out, shape[1], 3, 3], 12);
            let x = random([n, c_out, h, w], 13);
            let g = random([n, c_out, h, w], 14);
            let step = 0.1;
            let run = |layer: &dyn Fn([Tensor<Ad, 4>; 3]) -> Tensor<Ad, 4>| {
                let inputs = [&x, &z, &kernel]
                    .map(|t| Tensor::<Ad, 4>::from_inner(t.clone()).require_grad());
                let y = layer(inputs.clone());
                let value = y.clone().inner();
                let grads = (y * Tensor::from_inner(g.clone())).sum().backward();
                let [dx, dz, dk] = inputs.map(|t| t.grad(&grads).unwrap());
                [value, dx, dz, dk].map(bits)
            };
            let fused = run(&|[x, z, k]| conv3x3_residual(x, z, k, step));
            let apart = run(&|[x, z, k]| x + conv3x3(z, k).mul_scalar(step));
            for (what, (fused, apart)) in
                ["y", "∂x", "∂z", "∂K"].iter().zip(fused.iter().zip(&apart))
            {
                assert!(fused == apart, "{shape:?} → {c_out}: {what} differs");
            }
        }
    }

    /// Where Winograd applies, `conv3x3` and its backward are its kernels
    /// (tested against the exact convolution in `winograd`), on both backends.
    #[test]
    fn whole_blocks_of_channels_go_to_winograd() {
        let ([n, c_in, h, w], c_out) = ([2, 8, 6, 10], 12);
        if !winograd::applies(c_in, c_out) {
            eprintln!("skipped: Winograd does not run on this CPU");
            return;
        }
        let x = random([n, c_in, h, w], 4);
        let kernel = random([c_out, c_in, 3, 3], 5);
        let g = random([n, c_out, h, w], 6);
        let host = |t: &Tensor<Flex, 4>| t.to_data().to_vec::<f32>().unwrap();
        let (xs, ks, gs) = (host(&x), host(&kernel), host(&g));
        let expected_y = winograd::correlate(&xs, c_in, h, w, &ks, c_out);
        assert_eq!(
            host(&conv3x3(x.clone(), kernel.clone())),
            expected_y,
            "Flex forward"
        );
        let [dx, dk] = gradients(conv3x3, [&x, &kernel, &g]);
        let expected_dx = winograd::correlate(&gs, c_out, h, w, &adjoint(&ks, c_out, c_in), c_in);
        assert_eq!(host(&dx), expected_dx, "∂x");
        assert_eq!(
            host(&dk),
            winograd::kernel_grad(&xs, &gs, c_in, c_out, h, w),
            "∂K"
        );
    }

    /// ∂x of our backward (which convolves g with the swapped and flipped
    /// kernel) against the adjoint written out as loops in float64:
    /// (Kᵀg)[n,i,p,q] = Σ_o Σ_{a,b ∈ {−1,0,1}} K[o,i,a+1,b+1]·g[n,o,p−a,q−b],
    /// zero outside the image. Each value sums n = 9·C_out products, so float32
    /// keeps it within (n + 1)·2⁻²⁴·Σ|K·g| of the exact sum (the summation's
    /// bound and the rounding of the inputs' products to float32).
    #[test]
    fn the_input_gradient_is_the_direct_adjoint() {
        let ([n, c_in, h, w], c_out) = ([2, 3, 6, 5], 4);
        let x = random([n, c_in, h, w], 1);
        let kernel = random([c_out, c_in, 3, 3], 2);
        let g = random([n, c_out, h, w], 3);
        let [dx, _] = gradients(conv3x3, [&x, &kernel, &g]);
        let host = |t: Tensor<Flex, 4>| t.into_data().convert::<f64>().to_vec::<f64>().unwrap();
        let (dx, k, g) = (host(dx), host(kernel), host(g));
        for (index, &ours) in dx.iter().enumerate() {
            let (q, p) = (index % w, index / w % h);
            let (i, image) = (index / (w * h) % c_in, index / (w * h * c_in));
            let (mut exact, mut magnitude) = (0.0, 0.0);
            for o in 0..c_out {
                for a in 0..3 {
                    for b in 0..3 {
                        let (Some(row), Some(col)) =
                            ((p + 1).checked_sub(a), (q + 1).checked_sub(b))
                        else {
                            continue;
                        };
                        if row >= h || col >= w {
                            continue;
                        }
                        let term = k[((o * c_in + i) * 3 + a) * 3 + b]
                            * g[((image * c_out + o) * h + row) * w + col];
                        exact += term;
                        magnitude += term.abs();
                    }
                }
            }
            let bound = (9 * c_out + 1) as f64 * 2f64.powi(-24) * magnitude;
            assert!(
                (ours - exact).abs() <= bound,
                "∂x[{index}]: {ours} vs {exact}"
            );
        }
    }
}
