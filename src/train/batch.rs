//! One batch through the network for either task: the loss (with its graph),
//! the batch counted into the epoch's [`Tally`].

use super::loss::{depth_from_head, depth_loss, weighted_nll};
use super::resident::Batches;
use super::tally::Tally;
use crate::config::{Config, Task};
use crate::data::Prepared;
use crate::model::Network;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// The class weights, on the device once per pass over a split.
pub(super) fn class_weights<B: Backend>(
    data: &Prepared,
    task: Task,
    device: &B::Device,
) -> Option<Tensor<B, 1>> {
    (task == Task::Segmentation).then(|| data.class_weights_tensor(device))
}

/// Forward pass of the images `chunk` of `source` for the model's task:
/// the loss numerator (with its graph) and denominator, the batch counted
/// into `tally` (detached).
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_batch<B: Backend>(
    cfg: &Config,
    net: &Network<B>,
    data: &Prepared,
    source: &impl Batches<B>,
    chunk: &[usize],
    flips: &[bool],
    class_weights: Option<&Tensor<B, 1>>,
    tally: &mut Tally<B>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let device = net.classifier.val().device();
    match net.spec.task {
        Task::Segmentation => {
            let weights = class_weights.expect("segmentation has class weights");
            let (x, labels) = source.classes(chunk, &device);
            let logits = net.forward(x);
            let (numerator, denominator) =
                weighted_nll(logits.clone(), labels.clone(), weights.clone());
            tally.add_classes(
                logits.detach(),
                labels,
                numerator.clone().detach(),
                denominator.clone().detach(),
            );
            (numerator, denominator)
        }
        Task::Depth => {
            let stats = data.depth.as_ref().expect("depth data has its statistics");
            let (x, truth) = source.depths(chunk, flips, &device);
            let predicted = depth_from_head(net.forward(x), stats);
            let loss = cfg.training.loss.resolve(Task::Depth);
            let (numerator, pixels) = depth_loss(
                predicted.clone(),
                truth.clone(),
                loss,
                cfg.training.silog_lambda,
            );
            let denominator = Tensor::from_data(TensorData::new(vec![pixels as f32], [1]), &device);
            tally.add_depths(
                predicted.detach(),
                truth,
                numerator.clone().detach(),
                denominator.clone(),
            );
            (numerator, denominator)
        }
    }
}
