//! The tile transforms of the Winograd convolution ([`super::winograd`]), a
//! band of tile rows of one channel at a time: the input's Bᵀ d B, the
//! output's Aᵀ M A and the output gradient's A e Aᵀ.
//!
//! A tile row is cut into blocks of as many tiles as a register holds (16
//! with AVX-512, 8 with AVX2, then single tiles), and each block is
//! transformed in registers: the image rows under it are read straight into
//! vectors of "column 2c + k of every tile c" (two loads and an even/odd
//! split), so nothing makes a round trip through memory between reading the
//! image and writing the transformed tiles. Only additions, subtractions and
//! negations, lane by lane in the same order at every width (plus, where
//! asked, a scale applied as values are read and the residual update x + h·y
//! as they are written): the result is the same bits on every path (the
//! tests check it).

use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Positions of a transformed 4×4 tile.
pub const XI: usize = 16;

/// Where the first tile row's transformed values lie: position ξ of tile c
/// of that row at `starts[ξ] + c`, and of the row k rows further on at
/// `starts[ξ] + k·tiles + c` (`tiles` = ⌈w/2⌉ tiles to a row).
pub type Starts = [usize; XI];

/// V_ξ = (Bᵀ d B)_ξ for the tiles of tile rows `tile_rows` of one channel
/// `plane` [h, w] (tile c of row r reads image rows 2r−1..2r+3, columns
/// 2c−1..2c+3, zero outside the image), written to `v` at `starts`. `wide`:
/// use AVX-512. One call takes a band's rows, so that the set-up of its
/// sixteen write streams is paid once. With `scale`, the plane's values are
/// multiplied by it as they are read (> 0, so that the zeros outside the
/// image stay +0: the bits of transforming the scaled plane).
///
/// # Safety
/// The CPU has AVX2 and FMA, and AVX-512F if `wide`.
pub unsafe fn input_rows(
    plane: &[f32],
    [h, w]: [usize; 2],
    tile_rows: Range<usize>,
    v: &mut [f32],
    starts: &Starts,
    (wide, scale): (bool, Option<f32>),
) {
    let tiles = w.div_ceil(2);
    let end = tile_rows.len() * tiles;
    assert!(plane.len() == h * w && starts.iter().all(|&s| s + end <= v.len()));
    assert!(tile_rows.end <= h.div_ceil(2));
    assert!(scale.is_none_or(|s| s > 0.0), "scale {scale:?}");
    let image = Image { plane, h, w, scale };
    let mut c = 0;
    if wide {
        c = avx512::input::<__m512>(image, tile_rows.clone(), v, starts, c..tiles);
    }
    if c < tiles {
        c = avx2::input::<__m256>(image, tile_rows.clone(), v, starts, c..tiles);
    }
    if c < tiles {
        avx2::input::<f32>(image, tile_rows, v, starts, c..tiles);
    }
}

/// Rows 2r, 2r + 1 of one channel `plane` [h, w] (those inside the image) =
/// Aᵀ M A for the tiles of every tile row r of `tile_rows`, from M_ξ in `m`
/// at `starts`: every element of those rows is written. With `residual` =
/// (x, h), the rows are x + h·(Aᵀ M A) instead, x the same channel's plane
/// [h, w] (the arithmetic of [`super::residual`]).
///
/// # Safety
/// As for [`input_rows`].
pub unsafe fn output_rows(
    m: &[f32],
    starts: &Starts,
    plane: &mut [MaybeUninit<f32>],
    [h, w]: [usize; 2],
    tile_rows: Range<usize>,
    (wide, residual): (bool, Option<(&[f32], f32)>),
) {
    let tiles = w.div_ceil(2);
    let end = tile_rows.len() * tiles;
    assert!(plane.len() == h * w && starts.iter().all(|&s| s + end <= m.len()));
    assert!(tile_rows.end <= h.div_ceil(2));
    assert!(residual.is_none_or(|(x, _)| x.len() == h * w));
    let rows = (tile_rows, residual);
    let mut c = 0;
    if wide {
        c = avx512::output::<__m512>(m, starts, plane, [h, w], rows.clone(), c..tiles);
    }
    if c < tiles {
        c = avx2::output::<__m256>(m, starts, plane, [h, w], rows.clone(), c..tiles);
    }
    if c < tiles {
        avx2::output::<f32>(m, starts, plane, [h, w], rows, c..tiles);
    }
}

/// W_ξ = (A e Aᵀ)_ξ for the 2×2 tiles e of tile rows `tile_rows` of one
/// channel of ∂y (`plane` [h, w], zero outside the image, times `scale` as
/// in [`input_rows`]), written to `wg` at `starts`.
///
/// # Safety
/// As for [`input_rows`].
pub unsafe fn grad_rows(
    plane: &[f32],
    [h, w]: [usize; 2],
    tile_rows: Range<usize>,
    wg: &mut [f32],
    starts: &Starts,
    (wide, scale): (bool, Option<f32>),
) {
    let tiles = w.div_ceil(2);
    let end = tile_rows.len() * tiles;
    assert!(plane.len() == h * w && starts.iter().all(|&s| s + end <= wg.len()));
    assert!(tile_rows.end <= h.div_ceil(2));
    assert!(scale.is_none_or(|s| s > 0.0), "scale {scale:?}");
    let image = Image { plane, h, w, scale };
    let mut c = 0;
    if wide {
        c = avx512::grad::<__m512>(image, tile_rows.clone(), wg, starts, c..tiles);
    }
    if c < tiles {
        c = avx2::grad::<__m256>(image, tile_rows.clone(), wg, starts, c..tiles);
    }
    if c < tiles {
        avx2::grad::<f32>(image, tile_rows, wg, starts, c..tiles);
    }
}

/// One channel's plane [h, w], read by image row, each value times `scale`
/// if given (rounded as a product of its own, before the transform).
#[derive(Clone, Copy)]
struct Image<'a> {
    plane: &'a [f32],
    h: usize,
    w: usize,
    scale: Option<f32>,
}

impl<'a> Image<'a> {
    /// Row `y`, or `None` outside the image.
    fn row(self, y: Option<usize>) -> Option<&'a [f32]> {
        let y = y.filter(|&y| y < self.h)?;
        Some(&self.plane[y * self.w..][..self.w])
    }
}

/// What the transforms need of a register of `LANES` tiles. Each method is
/// compiled with the instruction set its type needs, so it inlines only into
/// code compiled with that set too: hence [`tile_loops`].
trait Tiles: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn add(self, other: Self) -> Self;
    unsafe fn sub(self, other: Self) -> Self;
    unsafe fn mul(self, other: Self) -> Self;
    /// `value` in every lane.
    unsafe fn splat(value: f32) -> Self;
    /// Flips the sign (scalar negation, also of zeros).
    unsafe fn neg(self) -> Self;
    unsafe fn load(at: *const f32) -> Self;
    unsafe fn store(self, at: *mut f32);
    /// Columns `start`.. of `row`, zero outside it; `inside` is
    /// [`inside`]`(start, LANES, row.len())`, worked out once per block of
    /// tiles and not per row.
    unsafe fn load_columns(row: &[f32], start: isize, inside: u32) -> Self;
    /// Writes the lanes that fall inside `row`, from column `start` on
    /// (`inside` as for [`Tiles::load_columns`]).
    unsafe fn store_columns(self, row: &mut [MaybeUninit<f32>], start: usize, inside: u32);
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
    unsafe fn mul(self, other: Self) -> Self {
        self * other
    }
    unsafe fn splat(value: f32) -> Self {
        value
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
    unsafe fn load_columns(row: &[f32], start: isize, inside: u32) -> Self {
        match inside {
            0 => 0.0,
            _ => *row.as_ptr().offset(start),
        }
    }
    unsafe fn store_columns(self, row: &mut [MaybeUninit<f32>], start: usize, inside: u32) {
        if inside != 0 {
            row.as_mut_ptr().add(start).write(MaybeUninit::new(self));
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
    unsafe fn mul(self, other: Self) -> Self {
        _mm256_mul_ps(self, other)
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn splat(value: f32) -> Self {
        _mm256_set1_ps(value)
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
    unsafe fn load_columns(row: &[f32], start: isize, inside: u32) -> Self {
        let first = row.as_ptr().wrapping_offset(start);
        if inside == 0xff {
            return _mm256_loadu_ps(first);
        }
        // Masked-out lanes are not read.
        _mm256_maskload_ps(first, lane_mask(inside))
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn store_columns(self, row: &mut [MaybeUninit<f32>], start: usize, inside: u32) {
        let first = row.as_mut_ptr().cast::<f32>().wrapping_add(start);
        if inside == 0xff {
            return _mm256_storeu_ps(first, self);
        }
        _mm256_maskstore_ps(first, lane_mask(inside), self)
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
    unsafe fn mul(self, other: Self) -> Self {
        _mm512_mul_ps(self, other)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn splat(value: f32) -> Self {
        _mm512_set1_ps(value)
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
    unsafe fn load_columns(row: &[f32], start: isize, inside: u32) -> Self {
        let first = row.as_ptr().wrapping_offset(start);
        if inside == 0xffff {
            return _mm512_loadu_ps(first);
        }
        // Masked-out lanes are not read.
        _mm512_maskz_loadu_ps(inside as u16, first)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store_columns(self, row: &mut [MaybeUninit<f32>], start: usize, inside: u32) {
        let first = row.as_mut_ptr().cast::<f32>().wrapping_add(start);
        if inside == 0xffff {
            return _mm512_storeu_ps(first, self);
        }
        _mm512_mask_storeu_ps(first, inside as u16, self)
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

/// Asks for the cache line after the one `at` lies in, which a transform
/// writing registers of `V` will write next: its sixteen streams of stores
/// are more than the hardware prefetches, and each new line would otherwise
/// stall the stores behind it while it comes in from the second-level cache
/// (the input transform of the narrow network's layers: 0.61 → 0.46 ns a
/// pixel on the Xeon of BENCHMARKS.md). A prefetch never faults, so the line
/// after a buffer's last may be asked for.
#[inline(always)]
unsafe fn prefetch_next_line<V: Tiles>(at: *const f32) {
    if V::LANES > 1 {
        _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(16).cast());
    }
}

/// The block loops and the transforms' arithmetic, compiled once per
/// instruction set (`$features`): a [`Tiles`] method inlines only into code
/// compiled with its set, and Rust has no generic target features.
macro_rules! tile_loops {
    ($isa:ident, $features:literal) => {
        mod $isa {
            use super::*;

            /// Blocks of `V::LANES` tiles of `tiles` for [`input_rows`], as far
            /// as whole blocks go; returns the first tile left.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn input<V: Tiles>(
                image: Image,
                tile_rows: Range<usize>,
                v: &mut [f32],
                starts: &Starts,
                tiles: Range<usize>,
            ) -> usize {
                let (w, row_pitch) = (image.w, image.w.div_ceil(2));
                let mut end = tiles.start;
                for (k, r) in tile_rows.enumerate() {
                    let rows = [
                        image.row((2 * r).checked_sub(1)),
                        image.row(Some(2 * r)),
                        image.row(Some(2 * r + 1)),
                        image.row(Some(2 * r + 2)),
                    ];
                    let out = v.as_mut_ptr().add(k * row_pitch);
                    let mut c = tiles.start;
                    while c + V::LANES <= tiles.end {
                        // Row a of the tiles: columns 2c − 1, 2c, 2c + 1, 2c + 2,
                        // read from these four columns on.
                        let first = 2 * c as isize - 1;
                        let lanes = V::LANES as isize;
                        let columns = [first, first + lanes, first + 2, first + lanes + 2];
                        let d = read_tiles::<V, 4, 4>(rows, columns, (w, image.scale));
                        for (&start, value) in starts.iter().zip(bt_tile(d)) {
                            value.store(out.add(start + c));
                            prefetch_next_line::<V>(out.add(start + c));
                        }
                        c += V::LANES;
                    }
                    end = c;
                }
                end
            }

            /// Blocks of `V::LANES` tiles for [`output_rows`]; returns the first
            /// tile left.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn output<V: Tiles>(
                m: &[f32],
                starts: &Starts,
                plane: &mut [MaybeUninit<f32>],
                [h, w]: [usize; 2],
                (tile_rows, residual): (Range<usize>, Option<(&[f32], f32)>),
                tiles: Range<usize>,
            ) -> usize {
                let row_pitch = w.div_ceil(2);
                let mut end = tiles.start;
                for (k, r) in tile_rows.enumerate() {
                    let rows = &mut plane[2 * r * w..][..2.min(h - 2 * r) * w];
                    let m = m.as_ptr().add(k * row_pitch);
                    let mut c = tiles.start;
                    while c + V::LANES <= tiles.end {
                        let mut tile = [V::zero(); XI];
                        for (tile, &start) in tile.iter_mut().zip(starts) {
                            *tile = V::load(m.add(start + c));
                        }
                        let columns = [2 * c, 2 * c + V::LANES];
                        let masks = [
                            inside(columns[0] as isize, V::LANES, w),
                            inside(columns[1] as isize, V::LANES, w),
                        ];
                        for (a, (row, [even, odd])) in
                            rows.chunks_exact_mut(w).zip(at_tile(tile)).enumerate()
                        {
                            let (mut low, mut high) = V::merge(even, odd);
                            if let Some((x, h)) = residual {
                                // x + h·y, as `residual`: the product rounded first.
                                let (x, h) = (&x[(2 * r + a) * w..][..w], V::splat(h));
                                let x0 = V::load_columns(x, columns[0] as isize, masks[0]);
                                let x1 = V::load_columns(x, columns[1] as isize, masks[1]);
                                (low, high) = (x0.add(h.mul(low)), x1.add(h.mul(high)));
                            }
                            low.store_columns(row, columns[0], masks[0]);
                            high.store_columns(row, columns[1], masks[1]);
                        }
                        c += V::LANES;
                    }
                    end = c;
                }
                end
            }

            /// Blocks of `V::LANES` tiles for [`grad_rows`]; returns the first
            /// tile left. (The block loop is [`input`]'s: one generic loop for
            /// both, taking the rows, columns and transform as closures, made
            /// the narrow training step 7% slower, so each is written out.)
            #[target_feature(enable = $features)]
            pub(super) unsafe fn grad<V: Tiles>(
                image: Image,
                tile_rows: Range<usize>,
                wg: &mut [f32],
                starts: &Starts,
                tiles: Range<usize>,
            ) -> usize {
                let (w, row_pitch) = (image.w, image.w.div_ceil(2));
                let mut end = tiles.start;
                for (k, r) in tile_rows.enumerate() {
                    let rows = [image.row(Some(2 * r)), image.row(Some(2 * r + 1))];
                    let out = wg.as_mut_ptr().add(k * row_pitch);
                    let mut c = tiles.start;
                    while c + V::LANES <= tiles.end {
                        // Row a of the tiles: columns 2c, 2c + 1.
                        let columns = [2 * c as isize, (2 * c + V::LANES) as isize];
                        let e = read_tiles::<V, 2, 2>(rows, columns, (w, image.scale));
                        for (&start, value) in starts.iter().zip(a_tile(e)) {
                            value.store(out.add(start + c));
                            prefetch_next_line::<V>(out.add(start + c));
                        }
                        c += V::LANES;
                    }
                    end = c;
                }
                end
            }

            /// A block's tiles as read from the image rows under them
            /// (zeros where `None`), [row][column] with column j of every tile
            /// in one register: the registers from `columns` of each row
            /// (zeros outside it, `w` columns), split pair by pair into even
            /// and odd columns.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn read_tiles<V: Tiles, const ROWS: usize, const N: usize>(
                rows: [Option<&[f32]>; ROWS],
                columns: [isize; N],
                (w, scale): (usize, Option<f32>),
            ) -> [[V; N]; ROWS] {
                // (Not `columns.map`: it is not inlined here, and costs a call a block.)
                let mut masks = [0; N];
                for (mask, &first) in masks.iter_mut().zip(&columns) {
                    *mask = inside(first, V::LANES, w);
                }
                let mut d = [[V::zero(); N]; ROWS];
                for (d, row) in d.iter_mut().zip(rows) {
                    let Some(row) = row else { continue };
                    for j in (0..N).step_by(2) {
                        let load = |k: usize| {
                            let x = V::load_columns(row, columns[k], masks[k]);
                            match scale {
                                Some(scale) => V::splat(scale).mul(x),
                                None => x,
                            }
                        };
                        (d[j], d[j + 1]) = V::split(load(j), load(j + 1));
                    }
                }
                d
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

    /// How a test calls a transform.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Path {
        /// Single tiles only, all rows in one call: the reference.
        SingleTiles,
        /// `wide` as given, all rows in one call.
        Rows { wide: bool },
        /// `wide` as given, one tile row per call.
        RowByRow { wide: bool },
    }

    /// The values `run(tile rows, out, path)` writes over the tile rows
    /// `range` (`len` values) by every path this CPU has, which must be the
    /// bits of single tiles.
    fn paths_agree(range: Range<usize>, len: usize, run: impl Fn(Range<usize>, &mut [f32], Path)) {
        let avx512 = is_x86_feature_detected!("avx512f");
        if !avx512 {
            eprintln!("AVX-512 paths skipped: this CPU lacks it");
        }
        let paths = [false, true]
            .into_iter()
            .filter(|&wide| avx512 || !wide)
            .flat_map(|wide| [Path::Rows { wide }, Path::RowByRow { wide }]);
        let mut results = vec![];
        for path in std::iter::once(Path::SingleTiles).chain(paths) {
            let mut out = vec![f32::NAN; len];
            match path {
                Path::RowByRow { .. } => range.clone().for_each(|r| run(r..r + 1, &mut out, path)),
                _ => run(range.clone(), &mut out, path),
            }
            results.push((path, out));
        }
        let (_, reference) = &results[0];
        for (path, result) in &results[1..] {
            let same = result
                .iter()
                .zip(reference)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{path:?} changed the bits of tile rows {range:?}");
        }
    }

    #[test]
    fn every_path_gives_the_bits_of_single_tiles() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: this CPU lacks AVX2 and FMA");
            return;
        }
        for (seed, [h, w]) in SIZES.into_iter().enumerate() {
            let plane = uniform(h * w, seed as u64);
            let image = Image {
                plane: &plane,
                h,
                w,
                scale: None,
            };
            let (tiles, tiles_h) = (w.div_ceil(2), h.div_ceil(2));
            // Each row alone, all rows, and all but the first.
            let ranges = (0..tiles_h)
                .map(|r| r..r + 1)
                .chain([0..tiles_h, 1.min(tiles_h)..tiles_h]);
            for range in ranges {
                // Position ξ of the range's values at ξ·(pitch) in V, W and
                // M, and where a call for `rows` starts in them.
                let pitch = range.len() * tiles + 3;
                let starts_of = |rows: &Range<usize>| -> Starts {
                    std::array::from_fn(|xi| xi * pitch + (rows.start - range.start) * tiles)
                };
                // SAFETY (all three): AVX2 and FMA checked above, AVX-512F
                // where a path is wide.
                paths_agree(range.clone(), XI * pitch, |rows, v, path| unsafe {
                    let starts = starts_of(&rows);
                    match path {
                        Path::SingleTiles => {
                            avx2::input::<f32>(image, rows, v, &starts, 0..tiles);
                        }
                        Path::Rows { wide } | Path::RowByRow { wide } => {
                            input_rows(&plane, [h, w], rows, v, &starts, (wide, None))
                        }
                    }
                });
                paths_agree(range.clone(), XI * pitch, |rows, wg, path| unsafe {
                    let starts = starts_of(&rows);
                    match path {
                        Path::SingleTiles => {
                            avx2::grad::<f32>(image, rows, wg, &starts, 0..tiles);
                        }
                        Path::Rows { wide } | Path::RowByRow { wide } => {
                            grad_rows(&plane, [h, w], rows, wg, &starts, (wide, None))
                        }
                    }
                });
                let m = uniform(XI * pitch, 100 + seed as u64);
                paths_agree(range.clone(), h * w, |rows, y, path| unsafe {
                    // Initialised values (NaN where not written), as MaybeUninit.
                    let y = &mut *(y as *mut [f32] as *mut [MaybeUninit<f32>]);
                    let starts = starts_of(&rows);
                    match path {
                        Path::SingleTiles => {
                            avx2::output::<f32>(&m, &starts, y, [h, w], (rows, None), 0..tiles);
                        }
                        Path::Rows { wide } | Path::RowByRow { wide } => {
                            output_rows(&m, &starts, y, [h, w], rows, (wide, None))
                        }
                    }
                });
            }
        }
    }
}
