//! The 3×3 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin
//! and Gray 2016): each 2×2 block of outputs from the 4×4 block of inputs
//! under it, with 16 multiplications per (output, input) channel pair instead
//! of 36, so the matrix products that are most of a training step shrink
//! 2.25×.
//!
//! For a 4×4 input tile d of channel i, the 3×3 kernel g = K[o, i] and the
//! 2×2 output tile y of channel o:
//!
//! ```text
//!     y = Aᵀ [ Σ_i (G g Gᵀ) ⊙ (Bᵀ d B) ] A                      forward
//!   ∂(G g Gᵀ) = Σ_tiles (A ∂y Aᵀ) ⊙ (Bᵀ d B),  ∂g = Gᵀ ∂(G g Gᵀ) G   kernel gradient
//! ```
//!
//! with Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½;
//! ½ −½ ½; 0 0 1] and Aᵀ = [1 1 1 0; 0 1 −1 −1]. For each of the 16 positions
//! ξ of the 4×4 transformed tile the channel sum is a matrix product:
//! M_ξ [O, T] = U_ξ [O, I] · V_ξ [I, T] over the T tiles of a band of image
//! rows, and the kernel gradient is ∂U_ξ [O, I] = Σ W_ξ [O, T] · V_ξ [I, T]ᵀ.
//! The input gradient is the forward with the adjoint kernel, as for im2col.
//!
//! Rounding: the kernel's transform is formed in float64 and rounded once;
//! the input's takes at most 3 float32 additions per value, the output's 8,
//! so an output is within (I + 13)·2⁻²⁴·9·Σ_i ‖K[o, i]‖₁ ‖d_i‖₁ of the exact
//! sum (d_i its 4×4 input tile; the tests check this bound).
//!
//! This module cuts images into bands of tile rows and runs, per band, the
//! tile transforms ([`super::transforms`]) and the products
//! ([`super::products`]), both written for AVX2 and FMA (x86-64 since 2013)
//! with AVX-512 forms that give the same bits; [`applies`] says when they
//! run, and the im2col kernels of [`super::conv`] take every other case.
//! Results are the same at any thread count: each image is one task and the
//! kernel gradient adds the images' sums in image order.
//!
//! For the residual layer's update x + h·(K̃ ⋆ z), the output transform can
//! write x + h·y directly ([`correlate_residual`]) and the backward's
//! transforms can read h·∂y as they load ∂y ([`backward`]), with the
//! arithmetic of the separate kernels, so that neither is stored.

use super::host::{sum_in_order, with_scratch, written};
use super::products::{self, IN_BLOCK, OUT_BLOCK, TILE_BLOCK};
use super::transforms::{self, Starts, XI};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Whether [`correlate`] and [`kernel_grad`] take a convolution between
/// `c_in` and `c_out` channels, in either direction (the input gradient
/// swaps them): on a CPU with AVX2 and FMA, with channels in whole blocks of
/// the products ([`OUT_BLOCK`], [`IN_BLOCK`]).
pub fn applies(c_in: usize, c_out: usize) -> bool {
    let blocks = |c: usize| c.is_multiple_of(OUT_BLOCK) && c.is_multiple_of(IN_BLOCK);
    blocks(c_in)
        && blocks(c_out)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
}

/// `kernel` [c_out, c_in, 3, 3] correlated with every image of `images`
/// [N, c_in, h, w] (zero padding 1), in parallel over images: [N, c_out, h, w].
/// Panics unless [`applies`]`(c_in, c_out)`.
pub fn correlate(
    images: &[f32],
    c_in: usize,
    h: usize,
    w: usize,
    kernel: &[f32],
    c_out: usize,
) -> Vec<f32> {
    correlate_then(images, [c_in, c_out], [h, w], kernel, None)
}

/// x + step·([`correlate`]) for `x` [N, c_out, h, w]: the residual update
/// written by the correlation's output transform, with the arithmetic of
/// [`super::residual`] (the product rounded, then the sum), so that the
/// update is never stored. Panics unless [`applies`]`(c_in, c_out)` and
/// step > 0.
pub fn correlate_residual(
    images: &[f32],
    [c_in, c_out]: [usize; 2],
    [h, w]: [usize; 2],
    kernel: &[f32],
    (x, step): (&[f32], f32),
) -> Vec<f32> {
    assert!(step > 0.0, "residual step {step}");
    correlate_then(images, [c_in, c_out], [h, w], kernel, Some((x, step)))
}

/// [`correlate`], each output written as y or as x + h·y with `residual` =
/// (x, h).
fn correlate_then(
    images: &[f32],
    [c_in, c_out]: [usize; 2],
    [h, w]: [usize; 2],
    kernel: &[f32],
    residual: Option<(&[f32], f32)>,
) -> Vec<f32> {
    let forward = Correlation::new(kernel, [c_in, c_out], [h, w]);
    let (plane_in, plane_out) = (c_in * h * w, forward.plane_out());
    let len = images.len() / plane_in * plane_out;
    assert!(residual.is_none_or(|(x, _)| x.len() == len));
    // SAFETY: `Correlation::image` writes every element of its image.
    unsafe {
        written(len, |out| {
            (out.par_chunks_mut(plane_out).enumerate())
                .zip(images.par_chunks(plane_in))
                .for_each(|((n, y), image)| {
                    let residual =
                        residual.map(|(x, step)| (&x[n * plane_out..][..plane_out], step));
                    forward.image(image, y, (None, residual))
                })
        })
    }
}

/// ∂K [c_out, c_in, 3, 3] = Σ_n ∂(correlate)/∂K for `images` [N, c_in, h, w]
/// and `grads` [N, c_out, h, w]: one sum per image in parallel, added in
/// image order so that the result is the same at any thread count. Panics
/// unless [`applies`]`(c_in, c_out)`.
pub fn kernel_grad(
    images: &[f32],
    grads: &[f32],
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let kernel = KernelGradient::new([c_in, c_out], [h, w]);
    let per_image: Vec<Vec<f32>> = images
        .par_chunks(c_in * h * w)
        .zip(grads.par_chunks(c_out * h * w))
        .map(|(image, dy)| kernel.image(image, dy, None))
        .collect();
    kernel.total(per_image)
}

/// The input gradient ∂x = K̃ ⋆ ∂y ([`correlate`] with the adjoint kernel
/// `adjoint` [c_in, c_out, 3, 3]), plus `plus` [N, c_in, h, w] if given, and
/// the kernel gradient ([`kernel_grad`]) of a convolution at once, the same
/// numbers: one task per image does both, so that its ∂y is read from
/// memory once, ∂x is added to `plus` by the output transform that makes
/// it, and the thread pool is called once. With `scale` (> 0), ∂y is `grads` times it, as the
/// transforms read it (the residual update's h·∂y, never stored). Panics
/// unless [`applies`]`(c_in, c_out)`.
pub fn backward(
    images: &[f32],
    grads: &[f32],
    adjoint: &[f32],
    [c_in, c_out]: [usize; 2],
    [h, w]: [usize; 2],
    (plus, scale): (Option<&[f32]>, Option<f32>),
) -> (Vec<f32>, Vec<f32>) {
    let input = Correlation::new(adjoint, [c_out, c_in], [h, w]);
    let kernel = KernelGradient::new([c_in, c_out], [h, w]);
    let (plane_in, plane_out) = (c_in * h * w, c_out * h * w);
    assert!(plus.is_none_or(|plus| plus.len() == images.len()));
    let mut per_image = Vec::new();
    // SAFETY: `Correlation::image` writes every element of its image.
    let dx = unsafe {
        written(images.len(), |dx| {
            per_image = (dx.par_chunks_mut(plane_in).enumerate())
                .zip(images.par_chunks(plane_in).zip(grads.par_chunks(plane_out)))
                .map(|((n, dx), (image, dy))| {
                    // plus + 1·∂x = ∂x + plus, as Burn's `float_add(∂x, plus)`,
                    // written by the output transform.
                    let plus = plus.map(|plus| (&plus[n * plane_in..][..plane_in], 1.0));
                    input.image(dy, dx, (scale, plus));
                    kernel.image(image, dy, scale)
                })
                .collect();
        })
    };
    (dx, kernel.total(per_image))
}

/// The correlation of images [c_in, h, w] with one kernel, image by image.
struct Correlation {
    /// The kernel's transform U_ξ [c_out, c_in].
    u: Vec<f32>,
    bands: Bands,
    channels: [usize; 2],
    size: [usize; 2],
}

impl Correlation {
    fn new(kernel: &[f32], [c_in, c_out]: [usize; 2], [h, w]: [usize; 2]) -> Self {
        assert!(
            applies(c_in, c_out),
            "Winograd for {c_in} → {c_out} channels"
        );
        Self {
            u: transform_kernel(kernel, c_out, c_in),
            bands: Bands::new(c_in + c_out, h, w, FORWARD_BAND),
            channels: [c_in, c_out],
            size: [h, w],
        }
    }

    fn plane_out(&self) -> usize {
        self.channels[1] * self.size[0] * self.size[1]
    }

    /// y [c_out, h, w] of one image [c_in, h, w] (times `scale` as read),
    /// or x + h·y with `residual` = (x, h): every element written.
    fn image(
        &self,
        image: &[f32],
        y: &mut [MaybeUninit<f32>],
        (scale, residual): (Option<f32>, Option<(&[f32], f32)>),
    ) {
        let ([c_in, c_out], (bands, u)) = (self.channels, (&self.bands, &self.u));
        with_scratch(bands.scratch(c_in, c_out), |scratch| {
            for band in bands.iter() {
                let (v, m) = scratch.split_at_mut(band.len(c_in));
                // SAFETY (this block): AVX2 and FMA, asserted through
                // `applies`; channels in whole blocks, tiles padded.
                unsafe {
                    transform_input(image, c_in, self.size, &band, v, scale);
                    for xi in 0..XI {
                        products::forward(
                            &mut m[band.at(xi, c_out)..][..c_out * band.stride],
                            &u[xi * c_out * c_in..][..c_out * c_in],
                            &v[band.at(xi, c_in)..][..c_in * band.stride],
                            [c_out, c_in, band.stride],
                        );
                    }
                    // The bands cover every tile row, and `transform_output`
                    // writes every image row under them.
                    transform_output(m, c_out, self.size, &band, y, residual);
                }
            }
        })
    }
}

/// The kernel gradient of a correlation, image by image.
struct KernelGradient {
    bands: Bands,
    channels: [usize; 2],
    size: [usize; 2],
}

impl KernelGradient {
    fn new([c_in, c_out]: [usize; 2], [h, w]: [usize; 2]) -> Self {
        assert!(
            applies(c_in, c_out),
            "Winograd for {c_in} → {c_out} channels"
        );
        Self {
            bands: Bands::new(c_in + c_out, h, w, KERNEL_GRAD_BAND),
            channels: [c_in, c_out],
            size: [h, w],
        }
    }

    /// ∂U_ξ [c_out, c_in] of one image [c_in, h, w] and its ∂y [c_out, h, w]
    /// (times `scale` as read).
    fn image(&self, image: &[f32], dy: &[f32], scale: Option<f32>) -> Vec<f32> {
        let ([c_in, c_out], bands) = (self.channels, &self.bands);
        with_scratch(bands.scratch(c_in, c_out), |scratch| {
            let mut du = vec![0f32; XI * c_out * c_in];
            for band in bands.iter() {
                let (v, wg) = scratch.split_at_mut(band.len(c_in));
                // SAFETY (this block): as in `Correlation::image`.
                unsafe {
                    transform_input(image, c_in, self.size, &band, v, None);
                    transform_grad(dy, c_out, self.size, &band, wg, scale);
                    for xi in 0..XI {
                        products::kernel(
                            &mut du[xi * c_out * c_in..][..c_out * c_in],
                            &wg[band.at(xi, c_out)..][..c_out * band.stride],
                            &v[band.at(xi, c_in)..][..c_in * band.stride],
                            [c_out, c_in, band.stride],
                        );
                    }
                }
            }
            du
        })
    }

    /// ∂K [c_out, c_in, 3, 3] from the images' ∂U, added in image order.
    fn total(&self, per_image: Vec<Vec<f32>>) -> Vec<f32> {
        let [c_in, c_out] = self.channels;
        let du = sum_in_order(per_image, XI * c_out * c_in);
        untransform_kernel_grad(&du, c_out, c_in)
    }
}

/// Floats of transformed input and output per band in the forward: 512 KiB,
/// so that they stay in cache between the transforms and the products.
const FORWARD_BAND: usize = 1 << 17;
/// The same for the kernel gradient, whose products sum over the band's
/// tiles: longer sums pay more than the cache (measured on the narrow
/// network's 32-channel layers: 2¹⁹ is 10% faster than 2¹⁷).
const KERNEL_GRAD_BAND: usize = 1 << 19;

/// An image cut into bands of tile rows, each of about `elements` floats of
/// transformed input and output ([16, c_in + c_out, tiles]).
struct Bands {
    tiles_h: usize,
    tiles_w: usize,
    rows: usize,
}

impl Bands {
    fn new(channels: usize, h: usize, w: usize, elements: usize) -> Self {
        let (tiles_h, tiles_w) = (h.div_ceil(2), w.div_ceil(2));
        let rows = (elements / (XI * channels * tiles_w)).clamp(1, tiles_h);
        Self {
            tiles_h,
            tiles_w,
            rows,
        }
    }

    fn iter(&self) -> impl Iterator<Item = Band> + '_ {
        (0..self.tiles_h)
            .step_by(self.rows)
            .map(|first| Band::new(first..(first + self.rows).min(self.tiles_h), self.tiles_w))
    }

    /// Scratch for the largest band's transformed input and output.
    fn scratch(&self, c_in: usize, c_out: usize) -> usize {
        let band = Band::new(0..self.rows, self.tiles_w);
        band.len(c_in) + band.len(c_out)
    }
}

/// One band of tile rows, and where its transformed tiles lie: position ξ of
/// channel c at `at(ξ, C) + c·stride`, `tiles` values then zeros up to
/// `stride` (the products take whole blocks of tiles).
struct Band {
    rows: Range<usize>,
    tiles: usize,
    stride: usize,
}

impl Band {
    fn new(rows: Range<usize>, tiles_w: usize) -> Self {
        let tiles = rows.len() * tiles_w;
        Self {
            rows,
            tiles,
            stride: tiles.next_multiple_of(TILE_BLOCK),
        }
    }

    /// Start of position ξ for `channels` channels. The positions are one
    /// cache line more than a multiple of `stride` apart: a power-of-two
    /// distance would put the 16 rows a transform writes at once in the same
    /// cache set.
    fn at(&self, xi: usize, channels: usize) -> usize {
        xi * (channels * self.stride + 16)
    }

    /// Where the band's first tile row of channel `c` (of `channels`)
    /// starts in each position ξ (the next rows follow, `tiles_w` apart).
    fn starts(&self, channels: usize, c: usize) -> Starts {
        std::array::from_fn(|xi| self.at(xi, channels) + c * self.stride)
    }

    fn len(&self, channels: usize) -> usize {
        self.at(XI, channels)
    }

    /// Zeros the padding after the tiles in every row of `v`.
    fn clear_padding(&self, v: &mut [f32], channels: usize) {
        for xi in 0..XI {
            for c in 0..channels {
                let row = self.at(xi, channels) + c * self.stride;
                v[row + self.tiles..row + self.stride].fill(0.0);
            }
        }
    }
}

/// U_ξ [c_out, c_in] = (G K[o, i] Gᵀ)_ξ for every ξ, in float64 rounded once.
fn transform_kernel(kernel: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let mut u = vec![0f32; XI * c_out * c_in];
    for (pair, g) in kernel.chunks_exact(9).enumerate() {
        let g: [f64; 9] = std::array::from_fn(|j| g[j] as f64);
        // G g: 4×3, then (G g) Gᵀ: 4×4.
        let gg: [[f64; 3]; 4] = std::array::from_fn(|r| {
            std::array::from_fn(|c| {
                let col = [g[c], g[3 + c], g[6 + c]];
                apply_g(col)[r]
            })
        });
        for (r, row) in gg.iter().enumerate() {
            for (c, value) in apply_g(*row).into_iter().enumerate() {
                u[(4 * r + c) * c_out * c_in + pair] = value as f32;
            }
        }
    }
    u
}

/// G x for a 3-vector x.
fn apply_g([x0, x1, x2]: [f64; 3]) -> [f64; 4] {
    [x0, 0.5 * (x0 + x1 + x2), 0.5 * (x0 - x1 + x2), x2]
}

/// Gᵀ x for a 4-vector x.
fn apply_gt([x0, x1, x2, x3]: [f64; 4]) -> [f64; 3] {
    [x0 + 0.5 * (x1 + x2), 0.5 * (x1 - x2), 0.5 * (x1 + x2) + x3]
}

/// ∂K [c_out, c_in, 3, 3] = Gᵀ ∂U G per channel pair, from ∂U_ξ [c_out, c_in].
fn untransform_kernel_grad(du: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let pairs = c_out * c_in;
    let mut dk = vec![0f32; 9 * pairs];
    for (pair, dk) in dk.chunks_exact_mut(9).enumerate() {
        let du: [[f64; 4]; 4] =
            std::array::from_fn(|r| std::array::from_fn(|c| du[(4 * r + c) * pairs + pair] as f64));
        // Gᵀ ∂U: 3×4, then (Gᵀ ∂U) G: 3×3.
        let left: [[f64; 4]; 3] = std::array::from_fn(|r| {
            std::array::from_fn(|c| apply_gt([du[0][c], du[1][c], du[2][c], du[3][c]])[r])
        });
        for (r, row) in left.iter().enumerate() {
            for (c, value) in apply_gt(*row).into_iter().enumerate() {
                dk[3 * r + c] = value as f32;
            }
        }
    }
    dk
}

/// V_ξ [c_in, tiles] = (Bᵀ d B)_ξ for every 4×4 input tile of the band (of
/// the image times `scale`).
///
/// # Safety
/// The CPU has AVX2 and FMA.
unsafe fn transform_input(
    image: &[f32],
    channels: usize,
    [h, w]: [usize; 2],
    band: &Band,
    v: &mut [f32],
    scale: Option<f32>,
) {
    let read = (products::has_avx512(), scale);
    for (i, plane) in image.chunks_exact(h * w).take(channels).enumerate() {
        let starts = band.starts(channels, i);
        transforms::input_rows(plane, [h, w], band.rows.clone(), v, &starts, read);
    }
    band.clear_padding(v, channels);
}

/// y [c_out, h, w] over the band's tile rows = Aᵀ M A per tile, from M_ξ
/// [c_out, tiles], or x + h·(Aᵀ M A) with `residual` = (x [c_out, h, w], h):
/// every element of the image rows under the band.
///
/// # Safety
/// As for [`transform_input`].
unsafe fn transform_output(
    m: &[f32],
    channels: usize,
    [h, w]: [usize; 2],
    band: &Band,
    y: &mut [MaybeUninit<f32>],
    residual: Option<(&[f32], f32)>,
) {
    let wide = products::has_avx512();
    for (o, plane) in y.chunks_exact_mut(h * w).take(channels).enumerate() {
        let residual = residual.map(|(x, step)| (&x[o * h * w..][..h * w], step));
        let starts = band.starts(channels, o);
        transforms::output_rows(
            m,
            &starts,
            plane,
            [h, w],
            band.rows.clone(),
            (wide, residual),
        );
    }
}

/// W_ξ [c_out, tiles] = (A ∂y Aᵀ)_ξ for every 2×2 tile of ∂y [c_out, h, w]
/// (times `scale`) in the band's tile rows (zero outside the image).
///
/// # Safety
/// As for [`transform_input`].
unsafe fn transform_grad(
    dy: &[f32],
    channels: usize,
    [h, w]: [usize; 2],
    band: &Band,
    wg: &mut [f32],
    scale: Option<f32>,
) {
    let read = (products::has_avx512(), scale);
    for (o, plane) in dy.chunks_exact(h * w).take(channels).enumerate() {
        let starts = band.starts(channels, o);
        transforms::grad_rows(plane, [h, w], band.rows.clone(), wg, &starts, read);
    }
    band.clear_padding(wg, channels);
}

#[cfg(test)]
mod tests {
    //! Against the exact (float64) correlation and kernel gradient, within
    //! the rounding bounds of the module's arithmetic. With ε = 2⁻²⁴, d a
    //! 4×4 input tile and e a 2×2 tile of ∂y (zero outside the image), every
    //! transformed value satisfies |(Bᵀ d B)_ξ| ≤ ‖d‖₁, |(G g Gᵀ)_ξ| ≤ ‖g‖₁
    //! and |(A e Aᵀ)_ξ| ≤ ‖e‖₁ (the transforms' entries are at most 1), and
    //! carries the error of its ≤ 2 additions. Then
    //! - an output sums ≤ 9 transformed products (Aᵀ's entries, 3 per row)
    //!   over I channels with I + 7 roundings in a row:
    //!   |error| ≤ (I + 13)·ε·9·Σ_i ‖K[o, i]‖₁ ‖d_i‖₁;
    //! - ∂K[o, i] sums over the N·T tiles of the batch, with Σ_ξ |G_ξa| ≤ 2 on
    //!   each side: |error| ≤ (N·T + 10)·ε·4·Σ_tiles ‖e_o‖₁ ‖d_i‖₁ + ε|∂K|,
    //!   tight enough to catch any wrong transform only for small N·T, so
    //!   those shapes are small.
    //!
    //! Both margins carry a factor 1.01 for the second-order terms.
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const EPS: f64 = 1.0 / (1u64 << 24) as f64;

    fn uniform(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|x| x.to_bits()).collect()
    }

    /// [N, C, H, W] values, zero outside the image.
    struct Planes<'a> {
        data: &'a [f32],
        channels: usize,
        h: usize,
        w: usize,
    }

    impl Planes<'_> {
        fn at(&self, n: usize, c: usize, r: isize, q: isize) -> f64 {
            let (h, w) = (self.h as isize, self.w as isize);
            if r < 0 || q < 0 || r >= h || q >= w {
                return 0.0;
            }
            self.data[((n * self.channels + c) * self.h + r as usize) * self.w + q as usize] as f64
        }

        /// ‖·‖₁ of the `size`×`size` tile of channel c whose corner is (r, q).
        fn tile_norm(&self, n: usize, c: usize, (r, q): (isize, isize), size: isize) -> f64 {
            let mut norm = 0.0;
            for a in 0..size {
                for b in 0..size {
                    norm += self.at(n, c, r + a, q + b).abs();
                }
            }
            norm
        }
    }

    /// Whether this CPU runs the kernels; the tests say so when it does not.
    fn runs_here() -> bool {
        let runs = applies(4, 4);
        if !runs {
            eprintln!("skipped: this CPU lacks AVX2 or FMA, the im2col kernels run instead");
        }
        runs
    }

    #[test]
    fn forward_is_within_its_rounding_bound_of_the_exact_correlation() {
        if !runs_here() {
            return;
        }
        // [N, c_in, c_out, H, W]: odd sizes, single pixels, rows wider than
        // a vector, and the CPU study's widest layer.
        let shapes = [
            [2, 4, 4, 5, 7],
            [1, 4, 4, 1, 1],
            [3, 8, 4, 4, 9],
            [2, 4, 12, 1, 6],
            [1, 4, 8, 8, 1],
            [2, 4, 8, 17, 35],
            [1, 8, 4, 33, 3],
            [1, 32, 32, 64, 64],
        ];
        for (seed, [n, c_in, c_out, h, w]) in shapes.into_iter().enumerate() {
            let x = uniform(n * c_in * h * w, 2 * seed as u64);
            let k = uniform(c_out * c_in * 9, 2 * seed as u64 + 1);
            let ours = correlate(&x, c_in, h, w, &k, c_out);
            let image = Planes {
                data: &x,
                channels: c_in,
                h,
                w,
            };
            for (index, &value) in ours.iter().enumerate() {
                let (q, p) = (index % w, index / w % h);
                let (o, m) = (index / (w * h) % c_out, index / (w * h * c_out));
                let corner = ((p / 2 * 2) as isize - 1, (q / 2 * 2) as isize - 1);
                let (mut exact, mut magnitude) = (0.0, 0.0);
                for i in 0..c_in {
                    let g = &k[(o * c_in + i) * 9..][..9];
                    for (t, &kt) in g.iter().enumerate() {
                        let (a, b) = ((t / 3) as isize - 1, (t % 3) as isize - 1);
                        exact += kt as f64 * image.at(m, i, p as isize + a, q as isize + b);
                    }
                    let norm: f64 = g.iter().map(|v| v.abs() as f64).sum();
                    magnitude += norm * image.tile_norm(m, i, corner, 4);
                }
                let bound = 1.01 * (c_in + 13) as f64 * EPS * 9.0 * magnitude;
                assert!(
                    (value as f64 - exact).abs() <= bound,
                    "{:?}, output {index}: {value} vs exact {exact} (bound {bound:e})",
                    [n, c_in, c_out, h, w]
                );
            }
        }
    }

    #[test]
    fn kernel_gradient_is_within_its_rounding_bound_of_the_exact_sum() {
        if !runs_here() {
            return;
        }
        let shapes = [
            [2, 4, 8, 5, 7],
            [1, 4, 4, 1, 1],
            [3, 8, 4, 4, 9],
            [2, 4, 12, 1, 6],
            [1, 8, 4, 8, 1],
            [1, 4, 8, 6, 37],
        ];
        for (seed, [n, c_in, c_out, h, w]) in shapes.into_iter().enumerate() {
            let x = uniform(n * c_in * h * w, 2 * seed as u64 + 100);
            let dy = uniform(n * c_out * h * w, 2 * seed as u64 + 101);
            let ours = kernel_grad(&x, &dy, c_in, c_out, h, w);
            let image = Planes {
                data: &x,
                channels: c_in,
                h,
                w,
            };
            let grad = Planes {
                data: &dy,
                channels: c_out,
                h,
                w,
            };
            let tiles = n * h.div_ceil(2) * w.div_ceil(2);
            for (index, &value) in ours.iter().enumerate() {
                let (t, i, o) = (index % 9, index / 9 % c_in, index / (9 * c_in));
                let (a, b) = ((t / 3) as isize - 1, (t % 3) as isize - 1);
                let mut exact = 0.0;
                for m in 0..n {
                    for p in 0..h as isize {
                        for q in 0..w as isize {
                            exact += grad.at(m, o, p, q) * image.at(m, i, p + a, q + b);
                        }
                    }
                }
                let mut magnitude = 0.0;
                for m in 0..n {
                    for r in (0..h as isize).step_by(2) {
                        for q in (0..w as isize).step_by(2) {
                            magnitude += grad.tile_norm(m, o, (r, q), 2)
                                * image.tile_norm(m, i, (r - 1, q - 1), 4);
                        }
                    }
                }
                let bound =
                    1.01 * ((tiles + 10) as f64 * EPS * 4.0 * magnitude + EPS * exact.abs());
                assert!(
                    (value as f64 - exact).abs() <= bound,
                    "{:?}, ∂K[{index}]: {value} vs exact {exact} (bound {bound:e})",
                    [n, c_in, c_out, h, w]
                );
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !runs_here() {
            return;
        }
        let [n, c_in, c_out, h, w] = [5, 8, 12, 13, 20];
        let x = uniform(n * c_in * h * w, 7);
        let k = uniform(c_out * c_in * 9, 8);
        let dy = uniform(n * c_out * h * w, 9);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                (
                    correlate(&x, c_in, h, w, &k, c_out),
                    kernel_grad(&x, &dy, c_in, c_out, h, w),
                )
            })
        };
        let one = run(1);
        assert!(run(3) == one, "results differ between 1 and 3 threads");
    }

    #[test]
    fn backward_gives_the_bits_of_its_two_parts() {
        if !runs_here() {
            return;
        }
        let [n, c_in, c_out, h, w] = [3, 8, 12, 13, 20];
        let x = uniform(n * c_in * h * w, 11);
        let dy = uniform(n * c_out * h * w, 12);
        let adjoint = uniform(c_in * c_out * 9, 13);
        let (dx, dk) = backward(&x, &dy, &adjoint, [c_in, c_out], [h, w], (None, None));
        let input = correlate(&dy, c_out, h, w, &adjoint, c_in);
        assert!(bits(&dx) == bits(&input), "∂x differs from correlate's");
        let kernel = kernel_grad(&x, &dy, c_in, c_out, h, w);
        assert!(bits(&dk) == bits(&kernel), "∂K differs from kernel_grad's");
        // With an earlier gradient: ∂x + plus, as Burn adds them.
        let plus = uniform(n * c_in * h * w, 14);
        let (dx_plus, _) = backward(
            &x,
            &dy,
            &adjoint,
            [c_in, c_out],
            [h, w],
            (Some(&plus), None),
        );
        let sum: Vec<f32> = dx.iter().zip(&plus).map(|(d, p)| d + p).collect();
        assert!(
            bits(&dx_plus) == bits(&sum),
            "∂x + plus differs from the sum"
        );
    }

    /// The residual update written by the output transform, and ∂y scaled
    /// as the transforms read it, give the bits of the update and of the
    /// scaled ∂y formed apart (`x + h·u` and `h·∂y`, as `super::residual` forms them).
    #[test]
    fn fused_residual_gives_the_bits_of_its_parts() {
        if !runs_here() {
            return;
        }
        let [n, c_in, c_out, h, w] = [3, 8, 12, 13, 20];
        let step = 0.1f32;
        let z = uniform(n * c_in * h * w, 21);
        let k = uniform(c_out * c_in * 9, 22);
        let x = uniform(n * c_out * h * w, 23);
        let fused = correlate_residual(&z, [c_in, c_out], [h, w], &k, (&x, step));
        let u = correlate(&z, c_in, h, w, &k, c_out);
        let apart: Vec<f32> = x.iter().zip(&u).map(|(x, u)| x + step * u).collect();
        assert!(bits(&fused) == bits(&apart), "x + h·(K ⋆ z) differs");
        let dy = uniform(n * c_out * h * w, 24);
        let adjoint = uniform(c_in * c_out * 9, 25);
        let scaled: Vec<f32> = dy.iter().map(|g| step * g).collect();
        let fused = backward(&z, &dy, &adjoint, [c_in, c_out], [h, w], (None, Some(step)));
        let apart = backward(&z, &scaled, &adjoint, [c_in, c_out], [h, w], (None, None));
        assert!(bits(&fused.0) == bits(&apart.0), "∂z of h·∂y differs");
        assert!(bits(&fused.1) == bits(&apart.1), "∂K of h·∂y differs");
    }

    #[test]
    fn applies_to_whole_blocks_of_channels_only() {
        if !runs_here() {
            return;
        }
        assert!(applies(8, 32) && applies(4, 4));
        assert!(!applies(3, 8) && !applies(8, 6) && !applies(2, 4));
    }
}
