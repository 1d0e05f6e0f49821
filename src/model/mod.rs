//! The networks: explicit step, implicit solve, BatchNorm, the network itself
//! and its checkpoint format.

pub mod batchnorm;
pub mod checkpoint;
pub mod explicit;
mod flex;
pub mod implicit;
pub mod network;
mod param;

pub use network::{layer_table, log_probabilities, Network, ParamCounts};
