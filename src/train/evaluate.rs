//! Loss and metrics of a whole split, in evaluation batches, counted on the
//! device and read back once.

use super::batch::{class_weights, forward_batch};
use super::loss::weighted_nll;
use super::resident::Batches;
use super::tally::Tally;
use crate::config::Config;
use crate::data::Prepared;
use crate::metrics::{EpochMetrics, SegmentationMetrics};
use crate::model::Network;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Forward pass and metrics of a whole split in batches of `batch_size`
/// (order kept, so BN batch statistics match the authors' evaluation).
pub fn evaluate<B: Backend>(
    net: &Network<B>,
    data: &Prepared,
    split: &impl Batches<B>,
    batch_size: usize,
) -> SegmentationMetrics {
    evaluate_each(net, data, split, batch_size, |_, _| {})
}

/// [`evaluate`], also handing every batch's image indices and logits to
/// `inspect` (e.g. to keep the predictions of chosen images).
pub fn evaluate_each<B: Backend>(
    net: &Network<B>,
    data: &Prepared,
    split: &impl Batches<B>,
    batch_size: usize,
    inspect: impl FnMut(&[usize], &Tensor<B, 4>),
) -> SegmentationMetrics {
    let indices: Vec<usize> = (0..split.split().len()).collect();
    evaluate_images(net, data, split, &indices, batch_size, |_, x, _| x, inspect)
}

/// [`evaluate_each`] on the images `indices` of a split (in batches of
/// `batch_size`, in that order), each batch's images first given to
/// `alter(batch number, images, labels)` (noise, an attack).
pub fn evaluate_images<B: Backend>(
    net: &Network<B>,
    data: &Prepared,
    split: &impl Batches<B>,
    indices: &[usize],
    batch_size: usize,
    mut alter: impl FnMut(usize, Tensor<B, 4>, &Tensor<B, 3, Int>) -> Tensor<B, 4>,
    mut inspect: impl FnMut(&[usize], &Tensor<B, 4>),
) -> SegmentationMetrics {
    let device = net.classifier.val().device();
    let weights = data.class_weights_tensor::<B>(&device);
    let mut tally = Tally::new(&net.spec, &device);
    for (b, chunk) in indices.chunks(batch_size).enumerate() {
        let (x, labels) = split.classes(chunk, &device);
        let logits = net.forward(alter(b, x, &labels));
        inspect(chunk, &logits);
        let (num, den) = weighted_nll(logits.clone(), labels.clone(), weights.clone());
        tally.add_classes(logits, labels, num, den);
    }
    match tally.read() {
        EpochMetrics::Segmentation(metrics) => metrics,
        EpochMetrics::Depth(_) => unreachable!("a segmentation tally"),
    }
}

/// [`evaluate`] for either task: the model's loss and metrics over a split.
pub fn evaluate_task<B: Backend>(
    cfg: &Config,
    net: &Network<B>,
    data: &Prepared,
    split: &impl Batches<B>,
    batch_size: usize,
) -> EpochMetrics {
    let device = net.classifier.val().device();
    let weights = class_weights(data, net.spec.task, &device);
    let mut tally = Tally::new(&cfg.model, &device);
    let indices: Vec<usize> = (0..split.split().len()).collect();
    for chunk in indices.chunks(batch_size) {
        forward_batch(
            cfg,
            net,
            data,
            split,
            chunk,
            &[],
            weights.as_ref(),
            &mut tally,
        );
    }
    tally.read()
}
