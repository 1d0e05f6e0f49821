//! The tile transforms of the Winograd convolution ([`super::winograd`]), one
//! tile row at a time: the input's Bᵀ d B, the output's Aᵀ M A and the output
//! gradient's A e Aᵀ.
//!
//! A tile row is cut into blocks of as many tiles as a register holds (16
//! with AVX-512, 8 with AVX2, then single tiles), and each block is
//! transformed in registers: the image rows under it are read straight into
//! vectors of "column 2c + k of every tile c" (two loads and an even/odd
//! split), so nothing makes a round trip through memory between reading the
//! image and writing the transformed tiles. Only additions, subtractions and
//! negations, lane by lane in the same order at every width: the result is
//! the same bits on every path (the tests check it).

use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Positions of a transformed 4×4 tile.
pub const XI: usize = 16;

/// Where one tile row's transformed values lie: position ξ of tile c at
/// `starts[ξ] + c`.
pub type Starts = [usize; XI];

/// V_ξ = (Bᵀ d B)_ξ for the tiles of tile row `r` of one channel `plane`
/// [h, w] (tile c reads image rows 2r−1..2r+3, columns 2c−1..2c+3, zero
/// outside the image), written to `v` at `starts`. `wide`: use AVX-512.
///
/// # Safety
/// The CPU has AVX2 and FMA, and AVX-512F if `wide`.
pub unsafe fn input_row(
    plane: &[f32],
    [h, w]: [usize; 2],
    r: usize,
    v: &mut [f32],
    starts: &Starts,
    wide: bool,
) {
    let tiles = w.div_ceil(2);
    assert!(plane.len() == h * w && starts.iter().all(|&s| s + tiles <= v.len()));
    let rows: [Option<&[f32]>; 4] = std::array::from_fn(|a| {
        let y = (2 * r + a).checked_sub(1).filter(|&y| y < h)?;
        Some(&plane[y * w..][..w])
    });
    let mut c = 0;
    if wide {
        c = avx512::input::<__m512>(rows, v, starts, c..tiles);
    }
    c = avx2::input::<__m256>(rows, v, starts, c..tiles);
    avx2::input::<f32>(rows, v, starts, c..tiles);
}

/// Rows 2r, 2r + 1 of one channel `plane` [h, w] (those inside the image) =
/// Aᵀ M A for the tiles of tile row `r`, from M_ξ in `m` at `starts`: every
/// element of those rows is written.
///
/// # Safety
/// As for [`input_row`].
pub unsafe fn output_row(
    m: &[f32],
    starts: &Starts,
    plane: &mut [MaybeUninit<f32>],
    [h, w]: [usize; 2],
    r: usize,
    wide: bool,
) {
    let tiles = w.div_ceil(2);
    assert!(plane.len() == h * w && starts.iter().all(|&s| s + tiles <= m.len()));
    let rows = &mut plane[2 * r * w..][..2.min(h - 2 * r) * w];
    let mut c = 0;
    if wide {
        c = avx512::output::<__m512>(m, starts, rows, w, c..tiles);
    }
    c = avx2::output::<__m256>(m, starts, rows, w, c..tiles);
    avx2::output::<f32>(m, starts, rows, w, c..tiles);
}

/// W_ξ = (A e Aᵀ)_ξ for the 2×2 tiles e of tile row `r` of one channel of ∂y
/// (`plane` [h, w], zero outside the image), written to `wg` at `starts`.
///
/// # Safety
/// As for [`input_row`].
pub unsafe fn grad_row(
    plane: &[f32],
    [h, w]: [usize; 2],
    r: usize,
    wg: &mut [f32],
    starts: &Starts,
    wide: bool,
) {
    let tiles = w.div_ceil(2);
    assert!(plane.len() == h * w && starts.iter().all(|&s| s + tiles <= wg.len()));
    let rows: [Option<&[f32]>; 2] = std::array::from_fn(|a| {
        Some(2 * r + a)
            .filter(|&y| y < h)
            .map(|y| &plane[y * w..][..w])
    });
    let mut c = 0;
    if wide {
        c = avx512::grad::<__m512>(rows, wg, starts, c..tiles);
    }
    c = avx2::grad::<__m256>(rows, wg, starts, c..tiles);
    avx2::grad::<f32>(rows, wg, starts, c..tiles);
}

/// What the transforms need of a register of `LANES` tiles. Each method is
/// compiled with the instruction set its type needs, so it inlines only into
/// code compiled with that set too: hence [`tile_loops`].
trait Tiles: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn add(self, other: Self) -> Self;
    unsafe fn sub(self, other: Self) -> Self;
    /// Flips the sign (scalar negation, also of zeros).
    unsafe fn neg(self) -> Self;
    unsafe fn load(at: *const f32) -> Self;
    unsafe fn store(self, at: *mut f32);
    /// Columns `start`.. of `row`, zero outside it.
    unsafe fn load_columns(row: &[f32], start: isize) -> Self;
    /// Writes the lanes that fall inside `row`, from column `start` on.
    unsafe fn store_columns(self, row: &mut [MaybeUninit<f32>], start: usize);
    /// The even and the odd elements of the 2·LANES values (a, b), in order.
    unsafe fn split(a: Self, b: Self) -> (Self, Self);
    /// The inverse of [`Tiles::split`].
    unsafe fn merge(even: Self, odd: Self) -> (Self, Self);
}

impl Tiles for f32 {
    const LANES: usize = 1;
    unsafe fn zero() -> Self {
        0.0
    }
    unsafe fn add(self, other: Self) -> Self {
        self + other
    }
    unsafe fn sub(self, other: Self) -> Self {
        self - other
    }
    unsafe fn neg(self) -> Self {
        -self
    }
    unsafe fn load(at: *const f32) -> Self {
        *at
    }
    unsafe fn store(self, at: *mut f32) {
        *at = self
    }
    unsafe fn load_columns(row: &[f32], start: isize) -> Self {
        usize::try_from(start)
            .ok()
            .and_then(|x| row.get(x))
            .map_or(0.0, |&x| x)
    }
    unsafe fn store_columns(self, row: &mut [MaybeUninit<f32>], start: usize) {
        if let Some(x) = row.get_mut(start) {
            x.write(self);
        }
    }
    unsafe fn split(a: Self, b: Self) -> (Self, Self) {
        (a, b)
    }
    unsafe fn merge(even: Self, odd: Self) -> (Self, Self) {
        (even, odd)
    }
}

/// Lanes k of a register of `lanes` from column `start` that lie in a row of
/// `len` columns, as a bit mask.
#[inline]
fn inside(start: isize, lanes: usize, len: usize) -> u32 {
    // Lanes first..last, with 0 ≤ first ≤ last ≤ lanes ≤ 16.
    let last = (len as isize - start).clamp(0, lanes as isize);
    let first = (-start).clamp(0, last);
    ((1u32 << last) - 1) & !((1u32 << first) - 1)
}

/// The masks of AVX2's masked loads and stores: lane k all ones where bit k
/// of `mask` is set.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn lane_mask(mask: u32) -> __m256i {
    let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(mask as i32), bits), bits)
}

impl Tiles for __m256 {
    const LANES: usize = 8;
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn zero() -> Self {
        _mm256_setzero_ps()
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn add(self, other: Self) -> Self {
        _mm256_add_ps(self, other)
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn sub(self, other: Self) -> Self {
        _mm256_sub_ps(self, other)
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn neg(self) -> Self {
        _mm256_xor_ps(self, _mm256_set1_ps(-0.0))
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load(at: *const f32) -> Self {
        _mm256_loadu_ps(at)
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn store(self, at: *mut f32) {
        _mm256_storeu_ps(at, self)
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load_columns(row: &[f32], start: isize) -> Self {
        let first = row.as_ptr().wrapping_offset(start);
        if start >= 0 && start as usize + 8 <= row.len() {
            return _mm256_loadu_ps(first);
        }
        // Masked-out lanes are not read.
        _mm256_maskload_ps(first, lane_mask(inside(start, 8, row.len())))
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn store_columns(self, row: &mut [MaybeUninit<f32>], start: usize) {
        let first = row.as_mut_ptr().cast::<f32>().wrapping_add(start);
        if start + 8 <= row.len() {
            return _mm256_storeu_ps(first, self);
        }
        _mm256_maskstore_ps(first, lane_mask(inside(start as isize, 8, row.len())), self)
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn split(a: Self, b: Self) -> (Self, Self) {
        // Lanes a0 a2 b0 b2 | a4 a6 b4 b6, then the middle quarters swapped.
        let evens = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        let odds = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        let order = |x: __m256| {
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(x)))
        };
        (order(evens), order(odds))
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn merge(even: Self, odd: Self) -> (Self, Self) {
        // e0 o0 e1 o1 | e4 o4 e5 o5 and e2 o2 e3 o3 | e6 o6 e7 o7.
        let (low, high) = (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd));
        (
            _mm256_permute2f128_ps::<0x20>(low, high),
            _mm256_permute2f128_ps::<0x31>(low, high),
        )
    }
}

impl Tiles for __m512 {
    const LANES: usize = 16;
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn zero() -> Self {
        _mm512_setzero_ps()
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn add(self, other: Self) -> Self {
        _mm512_add_ps(self, other)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sub(self, other: Self) -> Self {
        _mm512_sub_ps(self, other)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn neg(self) -> Self {
        let sign = _mm512_set1_epi32(i32::MIN);
        _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(self), sign))
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load(at: *const f32) -> Self {
        _mm512_loadu_ps(at)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store(self, at: *mut f32) {
        _mm512_storeu_ps(at, self)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load_columns(row: &[f32], start: isize) -> Self {
        let first = row.as_ptr().wrapping_offset(start);
        if start >= 0 && start as usize + 16 <= row.len() {
            return _mm512_loadu_ps(first);
        }
        // Masked-out lanes are not read.
        _mm512_maskz_loadu_ps(inside(start, 16, row.len()) as u16, first)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store_columns(self, row: &mut [MaybeUninit<f32>], start: usize) {
        let first = row.as_mut_ptr().cast::<f32>().wrapping_add(start);
        if start + 16 <= row.len() {
            return _mm512_storeu_ps(first, self);
        }
        _mm512_mask_storeu_ps(first, inside(start as isize, 16, row.len()) as u16, self)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn split(a: Self, b: Self) -> (Self, Self) {
        let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        (
            _mm512_permutex2var_ps(a, evens, b),
            _mm512_permutex2var_ps(a, odds, b),
        )
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn merge(even: Self, odd: Self) -> (Self, Self) {
        let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        (
            _mm512_permutex2var_ps(even, low, odd),
            _mm512_permutex2var_ps(even, high, odd),
        )
    }
}

/// The block loops and the transforms' arithmetic, compiled once per
/// instruction set (`$features`): a [`Tiles`] method inlines only into code
/// compiled with its set, and Rust has no generic target features.
macro_rules! tile_loops {
    ($isa:ident, $features:literal) => {
        mod $isa {
            use super::*;

            /// Blocks of `V::LANES` tiles of `tiles` for [`input_row`], as far as
            /// whole blocks go; returns the first tile left.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn input<V: Tiles>(
                rows: [Option<&[f32]>; 4],
                v: &mut [f32],
                starts: &Starts,
                tiles: Range<usize>,
            ) -> usize {
                let mut c = tiles.start;
                while c + V::LANES <= tiles.end {
                    // Row a of the tiles: columns 2c − 1, 2c, 2c + 1, 2c + 2.
                    let row = |a: usize| match rows[a] {
                        Some(row) => {
                            let at = |x: usize| V::load_columns(row, (2 * c + x) as isize - 1);
                            let (x0, x1) = V::split(at(0), at(V::LANES));
                            let (x2, x3) = V::split(at(2), at(V::LANES + 2));
                            [x0, x1, x2, x3]
                        }
                        None => [V::zero(); 4],
                    };
                    let d = [row(0), row(1), row(2), row(3)];
                    for (&start, value) in starts.iter().zip(bt_tile(d)) {
                        value.store(v.as_mut_ptr().add(start + c));
                    }
                    c += V::LANES;
                }
                c
            }

            /// Blocks of `V::LANES` tiles for [`output_row`]; returns the first
            /// tile left.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn output<V: Tiles>(
                m: &[f32],
                starts: &Starts,
                rows: &mut [MaybeUninit<f32>],
                w: usize,
                tiles: Range<usize>,
            ) -> usize {
                let mut c = tiles.start;
                while c + V::LANES <= tiles.end {
                    let mut tile = [V::zero(); XI];
                    for (tile, &start) in tile.iter_mut().zip(starts) {
                        *tile = V::load(m.as_ptr().add(start + c));
                    }
                    for (row, [even, odd]) in rows.chunks_exact_mut(w).zip(at_tile(tile)) {
                        let (low, high) = V::merge(even, odd);
                        low.store_columns(row, 2 * c);
                        high.store_columns(row, 2 * c + V::LANES);
                    }
                    c += V::LANES;
                }
                c
            }

            /// Blocks of `V::LANES` tiles for [`grad_row`]; returns the first
            /// tile left.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn grad<V: Tiles>(
                rows: [Option<&[f32]>; 2],
                wg: &mut [f32],
                starts: &Starts,
                tiles: Range<usize>,
            ) -> usize {
                let mut c = tiles.start;
                while c + V::LANES <= tiles.end {
                    // Row a of the tiles: columns 2c, 2c + 1.
                    let row = |a: usize| match rows[a] {
                        Some(row) => {
                            let at = |x: usize| V::load_columns(row, (2 * c + x) as isize);
                            let (even, odd) = V::split(at(0), at(V::LANES));
                            [even, odd]
                        }
                        None => [V::zero(); 2],
                    };
                    for (&start, value) in starts.iter().zip(a_tile([row(0), row(1)])) {
                        value.store(wg.as_mut_ptr().add(start + c));
                    }
                    c += V::LANES;
                }
                c
            }

            /// Bᵀ d B for a 4×4 tile d ([row][column]), row-major: Bᵀ's rows
            /// (1 0 −1 0), (0 1 1 0), (0 −1 1 0), (0 1 0 −1) down, then along.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn bt_tile<V: Tiles>(d: [[V; 4]; 4]) -> [V; XI] {
                let bt =
                    |[x0, x1, x2, x3]: [V; 4]| [x0.sub(x2), x1.add(x2), x2.sub(x1), x1.sub(x3)];
                let mut down = d;
                for b in 0..4 {
                    let column = bt([d[0][b], d[1][b], d[2][b], d[3][b]]);
                    for (row, value) in down.iter_mut().zip(column) {
                        row[b] = value;
                    }
                }
                let mut out = [V::zero(); XI];
                for (out, row) in out.chunks_exact_mut(4).zip(down) {
                    out.copy_from_slice(&bt(row));
                }
                out
            }

            /// Aᵀ M A for a 4×4 transformed tile M (row-major): Aᵀ's rows
            /// (1 1 1 0) and (0 1 −1 −1) down, then along; the 2×2 output as
            /// [row][even, odd column].
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn at_tile<V: Tiles>(m: [V; XI]) -> [[V; 2]; 2] {
                let at = |[x0, x1, x2, x3]: [V; 4]| [x0.add(x1).add(x2), x1.sub(x2).sub(x3)];
                let (mut top, mut bottom) = ([V::zero(); 4], [V::zero(); 4]);
                for b in 0..4 {
                    [top[b], bottom[b]] = at([m[b], m[4 + b], m[8 + b], m[12 + b]]);
                }
                [at(top), at(bottom)]
            }

            /// A e Aᵀ for a 2×2 tile e of ∂y ([row][even, odd column]),
            /// row-major: A's columns x₀, x₀ + x₁, x₀ − x₁, −x₁ down, then along.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn a_tile<V: Tiles>(e: [[V; 2]; 2]) -> [V; XI] {
                let a = |[x0, x1]: [V; 2]| [x0, x0.add(x1), x0.sub(x1), x1.neg()];
                let (even, odd) = (a([e[0][0], e[1][0]]), a([e[0][1], e[1][1]]));
                let mut out = [V::zero(); XI];
                for (q, out) in out.chunks_exact_mut(4).enumerate() {
                    out.copy_from_slice(&a([even[q], odd[q]]));
                }
                out
            }
        }
    };
}

tile_loops!(avx2, "avx2,fma");
tile_loops!(avx512, "avx2,fma,avx512f");

#[cfg(test)]
mod tests {
    //! The transforms' formulas are checked against float64 through the
    //! Winograd convolution's tests (`super::super::winograd`); here, that
    //! every width gives the bits of single tiles, at every kind of edge.
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn uniform(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// Image sizes [h, w] with odd and even sides, rows of tiles shorter
    /// than a register and with partial registers at the end.
    const SIZES: [[usize; 2]; 6] = [[1, 1], [3, 5], [4, 16], [5, 33], [6, 64], [7, 70]];

    /// Per tile row: the values of `row` (writing `len` values at `starts`)
    /// through single tiles only, then through the AVX2 path, then through
    /// the AVX-512 one where the CPU has it.
    fn widths_agree(len: usize, row: impl Fn(&mut [f32], &Starts, Option<bool>)) {
        let starts: Starts = std::array::from_fn(|xi| xi * (len + 3));
        let mut results = vec![];
        for wide in [None, Some(false), Some(true)] {
            if wide == Some(true) && !is_x86_feature_detected!("avx512f") {
                eprintln!("AVX-512 path skipped: this CPU lacks it");
                continue;
            }
            let mut out = vec![f32::NAN; XI * (len + 3)];
            row(&mut out, &starts, wide);
            results.push(out);
        }
        for result in &results[1..] {
            let same = result
                .iter()
                .zip(&results[0])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "a wider path changed the bits");
        }
    }

    #[test]
    fn every_width_gives_the_bits_of_single_tiles() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: this CPU lacks AVX2 and FMA");
            return;
        }
        for (seed, [h, w]) in SIZES.into_iter().enumerate() {
            let plane = uniform(h * w, seed as u64);
            let tiles = w.div_ceil(2);
            // SAFETY (all three): AVX2 and FMA checked above, AVX-512F where `wide`.
            for r in 0..h.div_ceil(2) {
                widths_agree(tiles, |v, starts, wide| unsafe {
                    match wide {
                        Some(wide) => input_row(&plane, [h, w], r, v, starts, wide),
                        None => {
                            let rows: [Option<&[f32]>; 4] = std::array::from_fn(|a| {
                                let y = (2 * r + a).checked_sub(1).filter(|&y| y < h)?;
                                Some(&plane[y * w..][..w])
                            });
                            avx2::input::<f32>(rows, v, starts, 0..tiles);
                        }
                    }
                });
                widths_agree(tiles, |wg, starts, wide| unsafe {
                    match wide {
                        Some(wide) => grad_row(&plane, [h, w], r, wg, starts, wide),
                        None => {
                            let rows: [Option<&[f32]>; 2] = std::array::from_fn(|a| {
                                Some(2 * r + a)
                                    .filter(|&y| y < h)
                                    .map(|y| &plane[y * w..][..w])
                            });
                            avx2::grad::<f32>(rows, wg, starts, 0..tiles);
                        }
                    }
                });
            }
            let m = uniform(XI * (tiles + 3), 100 + seed as u64);
            let starts: Starts = std::array::from_fn(|xi| xi * (tiles + 3));
            for r in 0..h.div_ceil(2) {
                widths_agree(h * w, |y, _, wide| unsafe {
                    // Initialised values (NaN where not written), as MaybeUninit.
                    let y = &mut *(&mut y[..h * w] as *mut [f32] as *mut [MaybeUninit<f32>]);
                    match wide {
                        Some(wide) => output_row(&m, &starts, y, [h, w], r, wide),
                        None => {
                            let rows = &mut y[2 * r * w..][..2.min(h - 2 * r) * w];
                            avx2::output::<f32>(&m, &starts, rows, w, 0..tiles);
                        }
                    }
                });
            }
        }
    }
}
