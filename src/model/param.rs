//! Trainable parameters with ids that survive a restart.

use burn::module::{Param, ParamId};
use burn::tensor::{backend::Backend, Tensor};

/// A trainable parameter with a stable id: `id` derives from the layer and
/// the role, so optimiser state saved by one process applies in the next.
pub(crate) fn param<B: Backend, const D: usize>(
    id: u64,
    tensor: Tensor<B, D>,
) -> Param<Tensor<B, D>> {
    Param::initialized(ParamId::from(id), tensor.require_grad())
}
