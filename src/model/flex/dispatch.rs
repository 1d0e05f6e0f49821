//! Which backends the kernels run on, and the one dispatch every kernel goes
//! through. Burn has no specialisation, so the backend is told apart by its
//! type and the tensors are cast to it.

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::{Backend, BackendTypes};
use burn::tensor::{Tensor, TensorPrimitive};
use std::any::{Any, TypeId};
use std::sync::Arc;

/// The training backend.
pub(super) type Training = Autodiff<Flex>;

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

/// `kernel` on the Flex tensors of `inputs`, on a backend for which
/// [`supports`] holds: on `Flex` as it is; on `Autodiff<Flex>` also recording
/// `backward`, with the state the kernel returns, where a gradient is wanted.
/// `name` is the kernel's, for the panic on any other backend.
pub(super) fn run_kernel<B: Backend, K: Backward<Flex, N>, const N: usize>(
    name: &str,
    inputs: [Tensor<B, 4>; N],
    backward: K,
    kernel: impl FnOnce([FlexTensor; N]) -> (FlexTensor, K::State),
) -> Tensor<B, 4> {
    if is::<B, Flex>() {
        let inputs = inputs.map(|x| cast::<_, Tensor<Flex, 4>>(x).into_primitive().tensor());
        let (y, _) = kernel(inputs);
        cast(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y)))
    } else if is::<B, Training>() {
        let inputs = inputs.map(|x| cast::<_, Tensor<Training, 4>>(x).into_primitive().tensor());
        let nodes = inputs.each_ref().map(|x| x.node.clone());
        let primitives = inputs.each_ref().map(|x| x.primitive.clone());
        let y = match backward
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, state) = kernel(primitives);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(kernel(primitives).0),
        };
        cast(Tensor::<Training, 4>::from_primitive(
            TensorPrimitive::Float(y),
        ))
    } else {
        panic!("flex::{name} called on a backend it does not support")
    }
}

/// The gradient registered so far for parent `parent` of `ops` (if it wants
/// one), taken out of `grads`, so that a backward adds its own to it in the
/// pass that makes it and registers the sum: Burn's `register` would add the
/// two in one more pass over memory, on one thread. `like`: any tensor, for
/// the key.
pub(super) fn take_gradient<S, const N: usize>(
    grads: &mut Gradients,
    ops: &Ops<S, N>,
    parent: usize,
    like: &FlexTensor,
) -> Option<FlexTensor> {
    let node = ops.parents[parent].as_ref()?;
    // `Gradients` looks gradients up by tensor; this one carries only the node.
    type Key = <Training as BackendTypes>::FloatTensorPrimitive;
    let key = Key {
        primitive: like.clone(),
        node: node.clone(),
        rc: Arc::new(node.id),
    };
    grads.remove::<Flex>(&key)
}
