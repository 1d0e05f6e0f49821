//! Loss and metrics of a whole split, in evaluation batches.

use super::batch::{forward_batch, scalar};
use super::loss::{predictions, weighted_nll};
use crate::config::{Config, Task};
use crate::data::{Prepared, Split};
use crate::metrics::{DepthMetrics, EpochMetrics, SegmentationMetrics};
use crate::model::Network;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Forward pass and metrics of a whole split in batches of `batch_size`
/// (order kept, so BN batch statistics match the authors' evaluation).
pub fn evaluate<B: Backend>(
    net: &Network<B>,
    data: &Prepared,
    split: &Split,
    batch_size: usize,
) -> SegmentationMetrics {
    evaluate_each(net, data, split, batch_size, |_, _| {})
}

/// [`evaluate`], also handing every batch's image indices and logits to
/// `inspect` (e.g. to keep the predictions of chosen images).
pub fn evaluate_each<B: Backend>(
    net: &Network<B>,
    data: &Prepared,
    split: &Split,
    batch_size: usize,
    inspect: impl FnMut(&[usize], &Tensor<B, 4>),
) -> SegmentationMetrics {
    let indices: Vec<usize> = (0..split.len()).collect();
    evaluate_images(net, data, split, &indices, batch_size, |_, x, _| x, inspect)
}

/// [`evaluate_each`] on the images `indices` of a split (in batches of
/// `batch_size`, in that order), each batch's images first given to
/// `alter(batch number, images, labels)` (noise, an attack).
pub fn evaluate_images<B: Backend>(
    net: &Network<B>,
    data: &Prepared,
    split: &Split,
    indices: &[usize],
    batch_size: usize,
    mut alter: impl FnMut(usize, Tensor<B, 4>, &Tensor<B, 3, Int>) -> Tensor<B, 4>,
    mut inspect: impl FnMut(&[usize], &Tensor<B, 4>),
) -> SegmentationMetrics {
    let device = net.classifier.val().device();
    let weights = data.class_weights_tensor::<B>(&device);
    let mut metrics = SegmentationMetrics::new(net.spec.n_classes);
    for (b, chunk) in indices.chunks(batch_size).enumerate() {
        let (x, labels, label_bytes) = split.batch::<B>(chunk, &device);
        let logits = net.forward(alter(b, x, &labels));
        inspect(chunk, &logits);
        let (num, den) = weighted_nll(logits.clone(), labels, weights.clone());
        metrics.add(
            &predictions(logits),
            &label_bytes,
            split.pixels(),
            scalar(num),
            scalar(den),
        );
    }
    metrics
}

/// [`evaluate`] for either task: the model's loss and metrics over a split.
pub fn evaluate_task<B: Backend>(
    cfg: &Config,
    net: &Network<B>,
    data: &Prepared,
    split: &Split,
    batch_size: usize,
) -> EpochMetrics {
    if net.spec.task == Task::Segmentation {
        return EpochMetrics::Segmentation(evaluate(net, data, split, batch_size));
    }
    let device = net.classifier.val().device();
    let mut metrics = EpochMetrics::Depth(DepthMetrics::new());
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(batch_size) {
        let out = forward_batch(cfg, net, data, split, chunk, &[], &device);
        let (num, den) = (scalar(out.numerator), scalar(out.denominator));
        out.observed.add_to(&mut metrics, split.pixels(), num, den);
    }
    metrics
}
