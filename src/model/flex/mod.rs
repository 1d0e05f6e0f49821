//! Hand-written CPU kernels for the two operations that dominate a training
//! step on Burn 0.21's Flex backend: the 3×3 convolution ([`conv3x3`]) and
//! batch normalisation ([`normalize`]), each with its backward.
//!
//! Burn has no specialisation, so these functions take any backend and pick
//! the kernels by type: `Flex` (evaluation) and `Autodiff<Flex>` (training).
//! [`supports`] says when; callers use Burn's own operations otherwise.

mod batchnorm;
mod conv;

pub use batchnorm::normalize;
pub use conv::conv3x3;

use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{backend::Backend, DType, TensorData};
use std::any::{Any, TypeId};

type Training = Autodiff<Flex>;

/// Whether these kernels run on backend `B`.
pub fn supports<B: Backend>() -> bool {
    is::<B, Flex>() || is::<B, Training>()
}

fn is<A: 'static, B: 'static>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

/// `value` as the type it is known to be (checked with [`is`] beforehand).
fn cast<T: 'static, U: 'static>(value: T) -> U {
    *(Box::new(value) as Box<dyn Any>)
        .downcast::<U>()
        .expect("cast between distinct types")
}

/// A Flex float32 tensor as a contiguous slice, with its shape.
struct View {
    tensor: FlexTensor,
    dims: [usize; 4],
}

impl View {
    fn new(tensor: &FlexTensor) -> Self {
        assert_eq!(tensor.dtype(), DType::F32, "the CPU kernels are float32");
        let dims = tensor.layout().shape().dims::<4>();
        Self {
            tensor: tensor.to_contiguous(),
            dims,
        }
    }

    fn data(&self) -> &[f32] {
        self.tensor
            .as_slice()
            .expect("contiguous after to_contiguous")
    }
}

fn flex_tensor(values: Vec<f32>, dims: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims))
}
