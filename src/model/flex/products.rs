//! The two matrix products of the Winograd convolution, for its shapes: few
//! channels (8 to a few hundred) against many tiles, one product per
//! position ξ of the transformed tile.
//!
//! Both keep a block of results in registers for a whole sum, so that each
//! value loaded feeds several fused multiply-adds and nothing is packed: the
//! forward holds 4 output channels × 16 tiles and runs down the input
//! channels (a broadcast weight per row, the tile vectors shared by the
//! four); the kernel gradient holds 4 × 2 channel pairs × 8 lanes and runs
//! along the tiles, folding the lanes once at the end. On the narrow
//! network's widest shape ([32, 32] · [32, 256], in cache, one Zen 3 core of
//! 95.6 GFLOP/s peak) the forward product runs at 82 GFLOP/s, the `gemm`
//! crate's general product at 70.
//!
//! Each has an AVX2 form and, for CPUs that have it, an AVX-512 form that
//! does the same operations in the same order on wider registers, so that
//! both give the same bits (the tests check it): which CPU trains a network
//! does not change its numbers.

use std::arch::x86_64::*;

/// Tiles per block of the products: rows of transformed tiles are padded with
/// zeros to a multiple of this.
pub const TILE_BLOCK: usize = 16;
/// Output channels per block of the forward product, and of the kernel
/// gradient's; input channels per block of the kernel gradient's.
pub const OUT_BLOCK: usize = 4;
pub const IN_BLOCK: usize = 2;

/// m [c_out, stride] = u [c_out, c_in] · v [c_in, stride], row-major; `c_out`
/// a multiple of [`OUT_BLOCK`], `stride` of [`TILE_BLOCK`]. Each entry is a
/// chain of fused multiply-adds from zero down the input channels.
///
/// # Safety
/// The CPU has AVX2 and FMA.
pub unsafe fn forward(m: &mut [f32], u: &[f32], v: &[f32], dims: [usize; 3]) {
    let [c_out, c_in, stride] = dims;
    assert!(c_out.is_multiple_of(OUT_BLOCK) && stride.is_multiple_of(TILE_BLOCK));
    assert!(m.len() >= c_out * stride && v.len() >= c_in * stride && u.len() >= c_out * c_in);
    if has_avx512() {
        forward_avx512(m, u, v, dims)
    } else {
        forward_avx2(m, u, v, dims)
    }
}

/// Whether this CPU runs the AVX-512 forms.
pub fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[target_feature(enable = "avx2,fma")]
unsafe fn forward_avx2(m: &mut [f32], u: &[f32], v: &[f32], [c_out, c_in, stride]: [usize; 3]) {
    let (mp, up, vp) = (m.as_mut_ptr(), u.as_ptr(), v.as_ptr());
    for o0 in (0..c_out).step_by(OUT_BLOCK) {
        for t0 in (0..stride).step_by(TILE_BLOCK) {
            let mut acc = [[_mm256_setzero_ps(); 2]; OUT_BLOCK];
            for i in 0..c_in {
                let row = vp.add(i * stride + t0);
                let x = [_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8))];
                for (r, acc) in acc.iter_mut().enumerate() {
                    let w = _mm256_broadcast_ss(&*up.add((o0 + r) * c_in + i));
                    acc[0] = _mm256_fmadd_ps(w, x[0], acc[0]);
                    acc[1] = _mm256_fmadd_ps(w, x[1], acc[1]);
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let out = mp.add((o0 + r) * stride + t0);
                _mm256_storeu_ps(out, acc[0]);
                _mm256_storeu_ps(out.add(8), acc[1]);
            }
        }
    }
}

/// du [c_out, c_in] += wg [c_out, stride] · v [c_in, stride]ᵀ; `c_out` a
/// multiple of [`OUT_BLOCK`], `c_in` of [`IN_BLOCK`], `stride` of
/// [`TILE_BLOCK`]. Each entry is summed in a fixed order: tile t into lane
/// t mod 8 by fused multiply-adds in the order of t, then the lanes pairwise
/// ([`lane_sums`]).
///
/// # Safety
/// The CPU has AVX2 and FMA.
pub unsafe fn kernel(du: &mut [f32], wg: &[f32], v: &[f32], dims: [usize; 3]) {
    let [c_out, c_in, stride] = dims;
    assert!(
        c_out.is_multiple_of(OUT_BLOCK)
            && c_in.is_multiple_of(IN_BLOCK)
            && stride.is_multiple_of(TILE_BLOCK)
    );
    assert!(du.len() >= c_out * c_in && wg.len() >= c_out * stride && v.len() >= c_in * stride);
    if has_avx512() {
        kernel_avx512(du, wg, v, dims)
    } else {
        kernel_avx2(du, wg, v, dims)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2(du: &mut [f32], wg: &[f32], v: &[f32], [c_out, c_in, stride]: [usize; 3]) {
    let (wp, vp) = (wg.as_ptr(), v.as_ptr());
    for o0 in (0..c_out).step_by(OUT_BLOCK) {
        for i0 in (0..c_in).step_by(IN_BLOCK) {
            let mut acc = [[_mm256_setzero_ps(); IN_BLOCK]; OUT_BLOCK];
            for t in (0..stride).step_by(8) {
                let b = [
                    _mm256_loadu_ps(vp.add(i0 * stride + t)),
                    _mm256_loadu_ps(vp.add((i0 + 1) * stride + t)),
                ];
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = _mm256_loadu_ps(wp.add((o0 + r) * stride + t));
                    acc[0] = _mm256_fmadd_ps(a, b[0], acc[0]);
                    acc[1] = _mm256_fmadd_ps(a, b[1], acc[1]);
                }
            }
            add_block(du, lane_sums(acc), o0 * c_in + i0, c_in);
        }
    }
}

/// Adds a block's eight sums (row-major, [`OUT_BLOCK`] × [`IN_BLOCK`]) into
/// du [.., c_in] at `corner`.
#[target_feature(enable = "avx2")]
unsafe fn add_block(du: &mut [f32], sums: __m256, corner: usize, c_in: usize) {
    let mut block = [0f32; OUT_BLOCK * IN_BLOCK];
    _mm256_storeu_ps(block.as_mut_ptr(), sums);
    for (r, pair) in block.chunks_exact(IN_BLOCK).enumerate() {
        let du = &mut du[corner + r * c_in..][..IN_BLOCK];
        du[0] += pair[0];
        du[1] += pair[1];
    }
}

/// [`forward_avx2`] on 512-bit registers: 8 output channels × 32 tiles at a
/// time (4 channels at the end of an odd block, 16 tiles at the end of an odd
/// row), each entry the same chain.
#[target_feature(enable = "avx512f")]
unsafe fn forward_avx512(m: &mut [f32], u: &[f32], v: &[f32], [c_out, c_in, stride]: [usize; 3]) {
    let (mp, up, vp) = (m.as_mut_ptr(), u.as_ptr(), v.as_ptr());
    let mut o0 = 0;
    while o0 < c_out {
        let rows = if o0 + 2 * OUT_BLOCK <= c_out {
            2 * OUT_BLOCK
        } else {
            OUT_BLOCK
        };
        let mut t0 = 0;
        while t0 < stride {
            let corners = [mp.add(o0 * stride + t0), up.add(o0 * c_in), vp.add(t0)];
            match (rows == OUT_BLOCK, t0 + 2 * TILE_BLOCK <= stride) {
                (false, true) => {
                    forward_block_avx512::<{ 2 * OUT_BLOCK }, 2>(corners, c_in, stride)
                }
                (false, false) => {
                    forward_block_avx512::<{ 2 * OUT_BLOCK }, 1>(corners, c_in, stride)
                }
                (true, true) => forward_block_avx512::<OUT_BLOCK, 2>(corners, c_in, stride),
                (true, false) => forward_block_avx512::<OUT_BLOCK, 1>(corners, c_in, stride),
            }
            t0 += if t0 + 2 * TILE_BLOCK <= stride {
                2 * TILE_BLOCK
            } else {
                TILE_BLOCK
            };
        }
        o0 += rows;
    }
}

/// One block of [`forward_avx512`]: `ROWS` rows of `VECTORS` × 16 tiles at
/// m, from the rows of u and the columns of v at the given corners.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn forward_block_avx512<const ROWS: usize, const VECTORS: usize>(
    [m, u, v]: [*const f32; 3],
    c_in: usize,
    stride: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); VECTORS]; ROWS];
    let mut x = [_mm512_setzero_ps(); VECTORS];
    for i in 0..c_in {
        for (k, x) in x.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(v.add(i * stride + 16 * k));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let w = _mm512_set1_ps(*u.add(r * c_in + i));
            for (acc, &x) in acc.iter_mut().zip(&x) {
                *acc = _mm512_fmadd_ps(w, x, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (k, &acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(m.add(r * stride + 16 * k).cast_mut(), acc);
        }
    }
}

/// [`kernel_avx2`] on 512-bit registers: a block's two input channels side
/// by side in one register ([v_i0 | v_i1], 8 tiles each) against an output
/// channel's 8 tiles in both halves, so that every lane runs the AVX2 form's
/// chain at half the instructions; 8 output channels × 2 such blocks of
/// input channels at a time where the channels allow (16 accumulators of
/// the 32 registers), so that each input row loaded feeds 8 output
/// channels' multiply-adds, not 4 (on the Xeon of BENCHMARKS.md: [32, 32] ·
/// [32, 512]ᵀ in cache at 112 GFLOP/s against 99 with 4, and the kernel
/// gradient of 32-channel 64×64 images 9% faster).
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512(du: &mut [f32], wg: &[f32], v: &[f32], [c_out, c_in, stride]: [usize; 3]) {
    let mut o0 = 0;
    while o0 < c_out {
        let wide = o0 + 2 * OUT_BLOCK <= c_out;
        let mut i0 = 0;
        while i0 < c_in {
            let pairs = if i0 + 2 * IN_BLOCK <= c_in { 2 } else { 1 };
            match (wide, pairs) {
                (true, 2) => {
                    kernel_block_avx512::<{ 2 * OUT_BLOCK }, 2>(du, wg, v, [o0, i0], [c_in, stride])
                }
                (true, _) => {
                    kernel_block_avx512::<{ 2 * OUT_BLOCK }, 1>(du, wg, v, [o0, i0], [c_in, stride])
                }
                (false, 2) => {
                    kernel_block_avx512::<OUT_BLOCK, 2>(du, wg, v, [o0, i0], [c_in, stride])
                }
                (false, _) => {
                    kernel_block_avx512::<OUT_BLOCK, 1>(du, wg, v, [o0, i0], [c_in, stride])
                }
            }
            i0 += pairs * IN_BLOCK;
        }
        o0 += if wide { 2 * OUT_BLOCK } else { OUT_BLOCK };
    }
}

/// `ROWS` × `BLOCKS`·[`IN_BLOCK`] sums of [`kernel_avx512`], from
/// output channel o0 and input channel i0.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn kernel_block_avx512<const ROWS: usize, const BLOCKS: usize>(
    du: &mut [f32],
    wg: &[f32],
    v: &[f32],
    [o0, i0]: [usize; 2],
    [c_in, stride]: [usize; 2],
) {
    let (wp, vp) = (wg.as_ptr(), v.as_ptr());
    let halves = |x: __m256| _mm256_castps_pd(x);
    let mut acc = [[_mm512_setzero_ps(); BLOCKS]; ROWS];
    for t in (0..stride).step_by(8) {
        let b: [__m512; BLOCKS] = std::array::from_fn(|k| {
            let i = i0 + k * IN_BLOCK;
            let low = _mm512_castpd256_pd512(halves(_mm256_loadu_ps(vp.add(i * stride + t))));
            let high = halves(_mm256_loadu_ps(vp.add((i + 1) * stride + t)));
            _mm512_castpd_ps(_mm512_insertf64x4::<1>(low, high))
        });
        for (r, acc) in acc.iter_mut().enumerate() {
            let a = halves(_mm256_loadu_ps(wp.add((o0 + r) * stride + t)));
            let a = _mm512_castpd_ps(_mm512_broadcast_f64x4(a));
            for (acc, &b) in acc.iter_mut().zip(&b) {
                *acc = _mm512_fmadd_ps(a, b, *acc);
            }
        }
    }
    for half in 0..ROWS / OUT_BLOCK {
        for k in 0..BLOCKS {
            let mut split = [[_mm256_setzero_ps(); IN_BLOCK]; OUT_BLOCK];
            for (split, acc) in split.iter_mut().zip(&acc[half * OUT_BLOCK..]) {
                let acc = _mm512_castps_pd(acc[k]);
                split[0] = _mm256_castpd_ps(_mm512_castpd512_pd256(acc));
                split[1] = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(acc));
            }
            let corner = (o0 + half * OUT_BLOCK) * c_in + i0 + k * IN_BLOCK;
            add_block(du, lane_sums(split), corner, c_in);
        }
    }
}

/// The sums of the lanes of the eight accumulators, in one vector (row-major
/// order), each as ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)).
#[target_feature(enable = "avx2,fma")]
unsafe fn lane_sums(acc: [[__m256; IN_BLOCK]; OUT_BLOCK]) -> __m256 {
    let [[a0, a1], [a2, a3], [a4, a5], [a6, a7]] = acc;
    // Pairs, then quadruples of lanes, within each 128-bit half.
    let (t0, t1) = (_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    let (t2, t3) = (_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    let (u0, u1) = (_mm256_hadd_ps(t0, t1), _mm256_hadd_ps(t2, t3));
    // u0 = [a0..a3 low quads | a0..a3 high quads], u1 the same for a4..a7.
    let low = _mm256_permute2f128_ps::<0x20>(u0, u1);
    let high = _mm256_permute2f128_ps::<0x31>(u0, u1);
    _mm256_add_ps(low, high)
}

#[cfg(test)]
mod tests {
    //! The products' sums against float64 are checked through the Winograd
    //! convolution's tests (`super::super::winograd`), on whichever form this
    //! CPU runs; here, that the two forms give the same bits.
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn uniform(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// Shapes with one and several blocks of each kind, and rows of tiles
    /// that end in a half block of the AVX-512 forward.
    const SHAPES: [[usize; 3]; 4] = [[4, 2, 16], [8, 6, 48], [12, 4, 32], [4, 10, 80]];

    #[test]
    fn avx512_forms_give_the_avx2_bits() {
        if !(has_avx512() && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: this CPU lacks AVX-512 (or AVX2 and FMA)");
            return;
        }
        for (seed, dims) in SHAPES.into_iter().enumerate() {
            let [c_out, c_in, stride] = dims;
            let seed = 10 * seed as u64;
            let u = uniform(c_out * c_in, seed);
            let v = uniform(c_in * stride, seed + 1);
            let wg = uniform(c_out * stride, seed + 2);
            let start = uniform(c_out * c_in, seed + 3);
            // SAFETY: the CPU has AVX2, FMA and AVX-512F (checked above).
            unsafe {
                let (mut m2, mut m5) = (vec![0f32; c_out * stride], vec![1f32; c_out * stride]);
                forward_avx2(&mut m2, &u, &v, dims);
                forward_avx512(&mut m5, &u, &v, dims);
                assert_eq!(m2, m5, "forward {dims:?}");
                let (mut k2, mut k5) = (start.clone(), start.clone());
                kernel_avx2(&mut k2, &wg, &v, dims);
                kernel_avx512(&mut k5, &wg, &v, dims);
                assert_eq!(k2, k5, "kernel {dims:?}");
                assert_ne!(k2, start, "kernel {dims:?} added nothing");
            }
        }
    }
}
