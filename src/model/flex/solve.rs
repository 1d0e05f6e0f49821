//! The implicit solve (I + hαL)⁻¹ B on the CPU, one [H, W] slice at a time
//! with everything in cache, and a backward pass that is the same solve.
//!
//! With Ĥ the 2-D Hartley transform of [`crate::model::implicit`] (Ĥ Ĥ =
//! HW·I) and d_c = 1 / (HW (1 + hα λ_c)) for channel c:
//!
//! ```text
//!      Y = Ĥ(d_c ⊙ Ĥ X)                              forward
//!     ∂X = Ĥ(d_c ⊙ Ĥ ∂Y)                             Ĥ and d are symmetric
//!   ∂λ_c = −hα HW d_c² ⊙ Σ_n (Ĥ X_n) ⊙ (Ĥ ∂Y_n)        with Ĥ X_n kept from the forward
//! ```
//!
//! Composed from Burn's operations the solve is eight batched matrix products
//! of 64×64 blocks and their autodiff. Here Ĥ X of a slice is two products,
//! the separable transform T = Cas_H X Cas_W (Cas the 1-D Hartley matrix,
//! cas = cos + sin), then an unfolding that is exact in real arithmetic:
//!
//! ```text
//!   (Ĥ X)[k, l] = ½ (T[k, l] + T[−k, l] + T[k, −l] − T[−k, −l])      indices mod H, W
//! ```
//!
//! (cas(a + b) = ½ (cas a cas b + cas(−a) cas b + cas a cas(−b) − cas(−a) cas(−b))),
//! half the products of the cos/sin form C_H X (C_W + S_W) + S_H X (C_W − S_W).

use super::dispatch::run_kernel;
use super::host::{flex_tensor, matmul, written, Matrix, View};
use burn::backend::autodiff::{
    checkpoint::base::Checkpointer,
    grads::Gradients,
    ops::{Backward, Ops},
};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{backend::Backend, Tensor};
use rayon::prelude::*;
use std::cell::RefCell;
use std::f64::consts::PI;
use std::mem::MaybeUninit;
use std::sync::Arc;

/// Y = (I + hα L)⁻¹ `rhs` [N, C, H, W] for L's symbol `lambda` [C or 1, H, W],
/// on a backend for which [`supports`](super::dispatch::supports) holds.
pub fn solve<B: Backend>(rhs: Tensor<B, 4>, lambda: Tensor<B, 3>, h_alpha: f64) -> Tensor<B, 4> {
    let lambda = lambda.unsqueeze_dim::<4>(1);
    run_kernel("solve", [rhs, lambda], SolveBackward, |[rhs, lambda]| {
        let solve = Solve::new(&lambda, h_alpha);
        let (y, spectrum) = solve.forward(&rhs);
        (y, (Arc::new(solve), spectrum))
    })
}

#[derive(Debug)]
struct SolveBackward;

impl Backward<Flex, 2> for SolveBackward {
    /// The solve, and Ĥ X of every slice of the forward's right-hand side.
    type State = (Arc<Solve>, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_rhs, node_lambda] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (solve, spectrum) = ops.state;
        let (d_rhs, d_lambda) = solve.backward(&grad, &spectrum, node_lambda.is_some());
        if let Some(node) = node_rhs {
            grads.register::<Flex>(node.id, d_rhs);
        }
        if let (Some(node), Some(d_lambda)) = (node_lambda, d_lambda) {
            grads.register::<Flex>(node.id, d_lambda);
        }
    }
}

/// One solve: the Hartley tables and d per channel.
#[derive(Debug)]
struct Solve {
    tables: Arc<Tables>,
    /// d_c = 1 / (HW (1 + hα λ_c)), [C or 1, H·W].
    scale: Vec<f32>,
    lambda_dims: [usize; 4],
    h_alpha: f64,
}

impl Solve {
    fn new(lambda: &FlexTensor, h_alpha: f64) -> Self {
        let lambda = View::new(lambda);
        let [_, _, h, w] = lambda.dims;
        let hw = (h * w) as f64;
        let scale = (lambda.data().iter())
            .map(|&l| (1.0 / (hw + hw * h_alpha * l as f64)) as f32)
            .collect();
        Self {
            tables: Tables::for_size(h, w),
            scale,
            lambda_dims: lambda.dims,
            h_alpha,
        }
    }

    /// d for slice `index` of an [N, C, H, W] tensor.
    fn scale_of(&self, index: usize, channels: usize) -> &[f32] {
        let hw = self.tables.h * self.tables.w;
        let channel = if self.lambda_dims[0] == 1 {
            0
        } else {
            index % channels
        };
        &self.scale[channel * hw..][..hw]
    }

    /// out = Ĥ(d ⊙ Ĥ x) for slice `index` of a tensor with `channels`
    /// channels: the solve of one slice, forward and backward alike. Ĥ x goes
    /// to `spectrum` and is returned; both outputs are written whole.
    fn solve_slice<'s>(
        &self,
        [index, channels]: [usize; 2],
        x: &[f32],
        spectrum: &'s mut [MaybeUninit<f32>],
        out: &mut [MaybeUninit<f32>],
        scratch: &mut Scratch,
    ) -> &'s [f32] {
        let spectrum = self.tables.transform(x, &mut scratch.block, spectrum);
        let d = self.scale_of(index, channels);
        for ((t, &s), &d) in scratch.product.iter_mut().zip(&*spectrum).zip(d) {
            *t = s * d;
        }
        self.tables
            .transform(&scratch.product, &mut scratch.block, out);
        spectrum
    }

    /// (Y, Ĥ X of every slice).
    fn forward(&self, rhs: &FlexTensor) -> (FlexTensor, Vec<f32>) {
        let rhs = View::new(rhs);
        let channels = rhs.dims[1];
        let hw = self.tables.h * self.tables.w;
        let len = rhs.data().len();
        let mut spectrum = vec![];
        // SAFETY: `solve_slice` writes each slice of y and of the spectrum
        // whole.
        let y = unsafe {
            written(len, |y| {
                spectrum = written(len, |spectrum| {
                    (y.par_chunks_mut(hw).zip(spectrum.par_chunks_mut(hw)))
                        .zip(rhs.data().par_chunks(hw))
                        .enumerate()
                        .for_each_init(
                            || Scratch::new(hw),
                            |scratch, (index, ((y, s), x))| {
                                self.solve_slice([index, channels], x, s, y, scratch);
                            },
                        )
                })
            })
        };
        (flex_tensor(y, rhs.dims), spectrum)
    }

    /// (∂X, and ∂λ when `lambda_grad`) from ∂Y and the forward's spectra.
    fn backward(
        &self,
        grad: &FlexTensor,
        spectrum: &[f32],
        lambda_grad: bool,
    ) -> (FlexTensor, Option<FlexTensor>) {
        let grad = View::new(grad);
        let [n, channels, _, _] = grad.dims;
        let hw = self.tables.h * self.tables.w;
        let len = grad.data().len();
        // (Ĥ X) ⊙ (Ĥ ∂Y) per slice, summed over images below in a fixed order.
        let mut products = vec![];
        // SAFETY: `solve_slice` writes each slice of ∂X whole, and each slice
        // of the products is written whole below.
        let d_rhs = unsafe {
            written(len, |d_rhs| {
                products = written(len, |products| {
                    (d_rhs.par_chunks_mut(hw).zip(products.par_chunks_mut(hw)))
                        .zip(grad.data().par_chunks(hw))
                        .enumerate()
                        .for_each_init(
                            || (Scratch::new(hw), vec![MaybeUninit::uninit(); hw]),
                            |(scratch, gs), (index, ((dx, product), g))| {
                                let gs = self.solve_slice([index, channels], g, gs, dx, scratch);
                                let s = &spectrum[index * hw..][..hw];
                                for ((p, &s), &g) in product.iter_mut().zip(s).zip(gs) {
                                    p.write(s * g);
                                }
                            },
                        )
                })
            })
        };
        let d_lambda = lambda_grad.then(|| {
            let per_channel: Vec<Vec<f64>> = (0..channels)
                .into_par_iter()
                .map(|c| {
                    let mut sum = vec![0f64; hw];
                    for i in 0..n {
                        let product = &products[(i * channels + c) * hw..][..hw];
                        sum.iter_mut()
                            .zip(product)
                            .for_each(|(s, &p)| *s += p as f64);
                    }
                    sum
                })
                .collect();
            let lambda_channels = self.lambda_dims[0];
            let mut d_lambda = vec![0f64; lambda_channels * hw];
            for (c, sum) in per_channel.iter().enumerate() {
                let target = &mut d_lambda[(c % lambda_channels) * hw..][..hw];
                target.iter_mut().zip(sum).for_each(|(t, &s)| *t += s);
            }
            // ∂d/∂λ = −hα HW d².
            let factor = -self.h_alpha * hw as f64;
            let d_lambda = (d_lambda.iter().zip(&self.scale))
                .map(|(&s, &d)| (factor * d as f64 * d as f64 * s) as f32)
                .collect();
            flex_tensor(d_lambda, self.lambda_dims)
        });
        (flex_tensor(d_rhs, grad.dims), d_lambda)
    }
}

/// One thread's working memory for a slice.
struct Scratch {
    /// X Cas_W, then T = Cas_H X Cas_W: [2, H, W].
    block: Vec<f32>,
    /// d ⊙ Ĥ X.
    product: Vec<f32>,
}

impl Scratch {
    fn new(hw: usize) -> Self {
        Self {
            block: vec![0f32; 2 * hw],
            product: vec![0f32; hw],
        }
    }
}

/// The Hartley matrices for one image size.
#[derive(Debug)]
struct Tables {
    h: usize,
    w: usize,
    /// Cas_H [H, H] and Cas_W [W, W]: cas(2π k n / len).
    cas_h: Vec<f32>,
    cas_w: Vec<f32>,
}

thread_local! {
    static TABLES: RefCell<Option<Arc<Tables>>> = const { RefCell::new(None) };
}

impl Tables {
    /// The tables for H×W, built once per size and thread.
    fn for_size(h: usize, w: usize) -> Arc<Self> {
        TABLES.with_borrow_mut(|cached| match cached {
            Some(tables) if (tables.h, tables.w) == (h, w) => tables.clone(),
            _ => cached.insert(Arc::new(Self::new(h, w))).clone(),
        })
    }

    fn new(h: usize, w: usize) -> Self {
        // cas(2π k n / len), with k n reduced mod len first (exact), in float64.
        let cas = |len: usize| -> Vec<f32> {
            (0..len * len)
                .map(|i| {
                    let angle = 2.0 * PI * ((i / len) * (i % len) % len) as f64 / len as f64;
                    (angle.cos() + angle.sin()) as f32
                })
                .collect()
        };
        Self {
            h,
            w,
            cas_h: cas(h),
            cas_w: cas(w),
        }
    }

    /// `out` = Ĥ `x` for one [H, W] slice: T = Cas_H (X Cas_W), then the
    /// unfolding of the module's doc. Writes every element of `out` (which
    /// need not be initialised) and returns it initialised.
    fn transform<'a>(
        &self,
        x: &[f32],
        block: &mut [f32],
        out: &'a mut [MaybeUninit<f32>],
    ) -> &'a mut [f32] {
        let (h, w) = (self.h, self.w);
        assert_eq!(out.len(), h * w, "one {h}×{w} slice");
        let (rows, t) = block.split_at_mut(h * w);
        matmul(
            Matrix::row_major(&mut rows[..], w),
            Matrix::row_major(x, w),
            Matrix::row_major(&self.cas_w[..], w),
            [h, w, w],
            false,
        );
        matmul(
            Matrix::row_major(&mut t[..], w),
            Matrix::row_major(&self.cas_h[..], h),
            Matrix::row_major(&rows[..], w),
            [h, w, h],
            false,
        );
        // Row k with row −k: sums s = T[k] + T[−k] and differences d = T[k] − T[−k],
        // then (Ĥ X)[k, l] = ½ (s[l] + d[−l]), −l read as a reversed row.
        let (mut sum, mut difference) = (vec![0f32; w], vec![0f32; w]);
        for k in 0..h {
            let (row, mirror) = (&t[k * w..][..w], &t[(h - k) % h * w..][..w]);
            for (((s, d), &a), &b) in sum.iter_mut().zip(&mut difference).zip(row).zip(mirror) {
                *s = a + b;
                *d = a - b;
            }
            let out = &mut out[k * w..][..w];
            out[0].write(0.5 * (sum[0] + difference[0]));
            for ((out, &s), &d) in out[1..]
                .iter_mut()
                .zip(&sum[1..])
                .zip(difference[1..].iter().rev())
            {
                out.write(0.5 * (s + d));
            }
        }
        // SAFETY: rows 0..h of `out`, w values each, were written above.
        unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
    }
}
