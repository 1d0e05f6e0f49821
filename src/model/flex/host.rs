//! Flex tensors as host slices and back, and the matrix product the kernels
//! are made of.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// A Flex float32 tensor as a contiguous slice, with its shape.
pub(super) struct View {
    tensor: FlexTensor,
    pub(super) dims: [usize; 4],
}

impl View {
    pub(super) fn new(tensor: &FlexTensor) -> Self {
        assert_eq!(tensor.dtype(), DType::F32, "the CPU kernels are float32");
        let dims = tensor.layout().shape().dims::<4>();
        Self {
            tensor: tensor.to_contiguous(),
            dims,
        }
    }

    pub(super) fn data(&self) -> &[f32] {
        self.tensor
            .as_slice()
            .expect("contiguous after to_contiguous")
    }
}

pub(super) fn flex_tensor(values: Vec<f32>, dims: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims))
}

/// A matrix stored in a slice: element (r, c) at `r·row_stride + c·col_stride`.
pub(super) struct Matrix<S> {
    pub(super) data: S,
    pub(super) row_stride: usize,
    pub(super) col_stride: usize,
}

impl<S> Matrix<S> {
    /// Rows of `cols` contiguous elements.
    pub(super) fn row_major(data: S, cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Columns of `rows` contiguous elements.
    pub(super) fn col_major(data: S, rows: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: rows,
        }
    }

    /// One past the last element of an r×c matrix.
    fn extent(&self, rows: usize, cols: usize) -> usize {
        (rows - 1) * self.row_stride + (cols - 1) * self.col_stride + 1
    }
}

/// `dst [m, n] = lhs [m, k] · rhs [k, n]`, or `dst += …` when `accumulate`.
pub(super) fn matmul(
    dst: Matrix<&mut [f32]>,
    lhs: Matrix<&[f32]>,
    rhs: Matrix<&[f32]>,
    [m, n, k]: [usize; 3],
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.data.fill(0.0);
        }
        return;
    }
    assert!(
        dst.data.len() >= dst.extent(m, n)
            && lhs.data.len() >= lhs.extent(m, k)
            && rhs.data.len() >= rhs.extent(k, n)
    );
    let stride = |s: usize| s as isize;
    // SAFETY: every element addressed through these shapes and strides lies
    // inside its slice (asserted above), and `dst` is an exclusive borrow that
    // aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            stride(dst.col_stride),
            stride(dst.row_stride),
            accumulate,
            lhs.data.as_ptr(),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.data.as_ptr(),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

thread_local! {
    /// This thread's working buffer (im2col's columns, Winograd's transformed
    /// tiles), kept between calls: every element is overwritten before it is
    /// read.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Cache line, in floats.
const LINE: usize = 16;

/// Runs `f` on this thread's working buffer, `len` long and starting on a
/// cache line: the allocator promises 16 bytes, and a 64-byte vector load or
/// store across two lines costs two (aligned, the Winograd forward and
/// kernel gradient of 32-channel 64×64 images take 22% less time). `f` must
/// not call `with_scratch` again (it would find the buffer borrowed).
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with_borrow_mut(|buffer| {
        if buffer.len() < len + LINE {
            buffer.resize(len + LINE, 0.0);
        }
        let start = buffer.as_ptr().align_offset(LINE * size_of::<f32>());
        f(&mut buffer[start..start + len])
    })
}

/// `len` floats written in place by `fill`, without the pass over memory
/// that zeroing them first would cost (5% of a single-threaded narrow step:
/// convolution outputs and batch normalisation).
///
/// # Safety
/// `fill` writes every element of the slice it is given.
pub(super) unsafe fn written(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    fill(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: all `len` elements are initialised (the caller's promise).
    unsafe { values.set_len(len) };
    values
}

/// `sum[i] += part[i]` for every i, in parallel: the arithmetic of Burn's
/// `float_add(sum, part)`, the same bits.
pub(super) fn add_assign(sum: &mut [f32], part: &[f32]) {
    /// Elements per task: 64 KiB of each.
    const CHUNK: usize = 1 << 14;
    assert_eq!(sum.len(), part.len(), "add_assign of two lengths");
    (sum.par_chunks_mut(CHUNK).zip(part.par_chunks(CHUNK)))
        .for_each(|(sum, part)| sum.iter_mut().zip(part).for_each(|(s, &p)| *s += p));
}

/// The elementwise sum of `parts` (each `len` long), added in their order so
/// that the result does not depend on how they were computed in parallel.
pub(super) fn sum_in_order(parts: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    parts
        .into_iter()
        .reduce(|mut sum, part| {
            sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
            sum
        })
        .unwrap_or_else(|| vec![0f32; len])
}
