//! Hand-written CPU kernels for the operations that dominate a training step
//! on Burn 0.21's Flex backend: the 3×3 convolution ([`conv3x3`]), batch
//! normalisation ([`normalize`]) and the implicit solve ([`solve`]), each
//! with its backward.
//!
//! Burn has no specialisation, so these functions take any backend and pick
//! the kernels by type: `Flex` (evaluation) and `Autodiff<Flex>` (training).
//! [`supports`] says when; callers use Burn's own operations otherwise.

mod batchnorm;
mod conv;
mod dispatch;
mod host;
mod solve;

pub use batchnorm::normalize;
pub use conv::conv3x3;
pub use dispatch::supports;
pub use solve::solve;
