//! One batch through the network for either task: the loss (with its graph)
//! and what the epoch's metrics need from it.

use super::loss::{depth_from_head, depth_loss, predictions, weighted_nll};
use crate::config::{Config, Task};
use crate::data::{Prepared, Split};
use crate::metrics::EpochMetrics;
use crate::model::Network;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

/// A one-element tensor's value, on the host.
pub(super) fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// One batch through the network: the loss numerator (with its graph) and
/// denominator, and a function adding the batch to the epoch's metrics.
pub(super) struct BatchOutcome<B: Backend> {
    pub(super) numerator: Tensor<B, 1>,
    pub(super) denominator: Tensor<B, 1>,
    pub(super) observed: Observed,
}

/// What the metrics need from a batch, on the host.
pub(super) enum Observed {
    Classes {
        predictions: Vec<u8>,
        labels: Vec<u8>,
    },
    Depth {
        predicted: Vec<f32>,
        truth: Vec<f32>,
    },
}

impl Observed {
    pub(super) fn add_to(
        self,
        metrics: &mut EpochMetrics,
        pixels: usize,
        numerator: f64,
        denominator: f64,
    ) {
        match (self, metrics) {
            (
                Observed::Classes {
                    predictions,
                    labels,
                },
                EpochMetrics::Segmentation(m),
            ) => m.add(&predictions, &labels, pixels, numerator, denominator),
            (Observed::Depth { predicted, truth }, EpochMetrics::Depth(m)) => {
                m.add(&predicted, &truth, numerator, denominator)
            }
            _ => unreachable!("metrics of another task"),
        }
    }
}

/// Forward pass of one batch and its loss, for the model's task.
pub(super) fn forward_batch<B: Backend>(
    cfg: &Config,
    net: &Network<B>,
    data: &Prepared,
    split: &Split,
    chunk: &[usize],
    flips: &[bool],
    device: &B::Device,
) -> BatchOutcome<B> {
    match net.spec.task {
        Task::Segmentation => {
            let weights = data.class_weights_tensor::<B>(device);
            let (x, labels, label_bytes) = split.batch::<B>(chunk, device);
            let logits = net.forward(x);
            let (numerator, denominator) = weighted_nll(logits.clone(), labels, weights);
            BatchOutcome {
                numerator,
                denominator,
                observed: Observed::Classes {
                    predictions: predictions(logits.detach()),
                    labels: label_bytes,
                },
            }
        }
        Task::Depth => {
            let stats = data.depth.as_ref().expect("depth data has its statistics");
            let (x, truth, truth_host) = split.depth_batch::<B>(chunk, flips, device);
            let predicted = depth_from_head(net.forward(x), stats);
            let loss = cfg.training.loss.resolve(Task::Depth);
            let (numerator, denominator) =
                depth_loss(predicted.clone(), truth, loss, cfg.training.silog_lambda);
            let predicted_host = predicted
                .detach()
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .expect("float depths");
            BatchOutcome {
                numerator,
                denominator: Tensor::from_data(
                    burn::tensor::TensorData::new(vec![denominator as f32], [1]),
                    device,
                ),
                observed: Observed::Depth {
                    predicted: predicted_host,
                    truth: truth_host,
                },
            }
        }
    }
}
