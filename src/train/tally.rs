//! An epoch's metrics kept on the device and read back once, by
//! [`Tally::read`]: every batch's loss numerator and denominator, and for
//! segmentation the confusion counts and each image's bitwise sums
//! Σ(pred & label), Σ(pred | label) (integers: exact on any device), for
//! depth the predicted and true depths themselves, whose float64 sums are
//! made on the host as before, so that the metrics stay bit-identical.

use crate::config::{ModelSection, Task};
use crate::metrics::{DepthMetrics, EpochMetrics, SegmentationMetrics};
use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor};

pub struct Tally<B: Backend> {
    kind: Kind<B>,
    /// Each batch's [numerator, denominator] of the loss.
    losses: Vec<Tensor<B, 1>>,
    /// Σ|w| after each update so far (shape `[1]` each), kept apart rather
    /// than as a running sum: on an autodiff backend a chain of additions
    /// keeps a growing graph alive, which its cleaner scans every step.
    magnitudes: Vec<Tensor<B, 1>>,
}

/// The running sums [`Tally::glance`] reads back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Glance {
    pub numerator: f64,
    pub denominator: f64,
    /// Σ over updates of Σ|w| (see [`Tally::add_update`]); 0 before any.
    pub magnitudes: f64,
}

enum Kind<B: Backend> {
    Classes {
        n_classes: usize,
        /// confusion[label · n_classes + prediction], over the epoch.
        confusion: Tensor<B, 1, Int>,
        /// Per batch, [n, 2]: each image's Σ(pred & label), Σ(pred | label).
        bitwise_sums: Vec<Tensor<B, 2, Int>>,
    },
    Depth {
        predicted: Vec<Tensor<B, 4>>,
        truth: Vec<Tensor<B, 4>>,
    },
}

/// A tensor's values on the host.
fn host_ints<B: Backend, const D: usize>(t: Tensor<B, D, Int>) -> Vec<u64> {
    let values = t.into_data().convert::<i64>().to_vec::<i64>();
    values
        .expect("integer counts")
        .into_iter()
        .map(|v| v as u64)
        .collect()
}

fn host_floats<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float values")
}

impl<B: Backend> Tally<B> {
    /// Nothing counted yet, for the model's task.
    pub fn new(model: &ModelSection, device: &B::Device) -> Self {
        let kind = match model.task {
            Task::Segmentation => Kind::Classes {
                n_classes: model.n_classes,
                confusion: Tensor::zeros([model.n_classes * model.n_classes], device),
                bitwise_sums: Vec::new(),
            },
            Task::Depth => Kind::Depth {
                predicted: Vec::new(),
                truth: Vec::new(),
            },
        };
        Self {
            kind,
            losses: Vec::new(),
            magnitudes: Vec::new(),
        }
    }

    /// Counts an optimiser update by Σ|w| after it ([`Network::weight_magnitude`]).
    ///
    /// [`Network::weight_magnitude`]: crate::model::Network::weight_magnitude
    pub fn add_update(&mut self, magnitude: Tensor<B, 1>) {
        self.magnitudes.push(magnitude);
    }

    /// The loss sums and the updates' magnitude sum so far, in one read-back
    /// (float32 sums on the device: for the progress line and the health
    /// check; the epoch's metrics come from [`Tally::read`]). A sum of
    /// non-negative terms is finite iff every term is, so a non-finite loss or
    /// weight anywhere so far shows in it.
    pub fn glance(&self) -> Glance {
        let Some(first) = self.losses.first() else {
            return Glance {
                numerator: 0.0,
                denominator: 0.0,
                magnitudes: 0.0,
            };
        };
        let batches = self.losses.len();
        let losses = Tensor::cat(self.losses.clone(), 0)
            .reshape([batches, 2])
            .sum_dim(0)
            .reshape([2]);
        let magnitudes = match self.magnitudes.is_empty() {
            true => Tensor::zeros([1], &first.device()),
            false => Tensor::cat(self.magnitudes.clone(), 0).sum(),
        };
        let values = host_floats(Tensor::cat(vec![losses, magnitudes], 0));
        Glance {
            numerator: values[0] as f64,
            denominator: values[1] as f64,
            magnitudes: values[2] as f64,
        }
    }

    /// Counts a segmentation batch: its logits [n, K, H, W] and class maps
    /// [n, H, W], and its loss numerator and denominator (shape `[1]` each).
    pub fn add_classes(
        &mut self,
        logits: Tensor<B, 4>,
        labels: Tensor<B, 3, Int>,
        numerator: Tensor<B, 1>,
        denominator: Tensor<B, 1>,
    ) {
        let Kind::Classes {
            n_classes,
            confusion,
            bitwise_sums,
        } = &mut self.kind
        else {
            unreachable!("class maps counted for a depth network")
        };
        let [n, _, h, w] = logits.dims();
        let predicted = logits.argmax(1).reshape([n, h * w]);
        let labels = labels.reshape([n, h * w]);
        let cells = labels
            .clone()
            .mul_scalar(*n_classes as i64)
            .add(predicted.clone())
            .reshape([n * h * w]);
        let ones = Tensor::ones([n * h * w], &cells.device());
        *confusion = confusion
            .clone()
            .scatter(0, cells, ones, IndexingUpdateOp::Add);
        let and = predicted.clone().bitwise_and(labels.clone()).sum_dim(1);
        let or = predicted.bitwise_or(labels).sum_dim(1);
        bitwise_sums.push(Tensor::cat(vec![and, or], 1));
        self.losses
            .push(Tensor::cat(vec![numerator, denominator], 0));
    }

    /// Counts a depth batch: predicted and true depths [n, 1, H, W] in
    /// metres, and its loss numerator and denominator (shape `[1]` each).
    pub fn add_depths(
        &mut self,
        predicted: Tensor<B, 4>,
        truth: Tensor<B, 4>,
        numerator: Tensor<B, 1>,
        denominator: Tensor<B, 1>,
    ) {
        let Kind::Depth {
            predicted: all_predicted,
            truth: all_truth,
        } = &mut self.kind
        else {
            unreachable!("depths counted for a segmentation network")
        };
        all_predicted.push(predicted);
        all_truth.push(truth);
        self.losses
            .push(Tensor::cat(vec![numerator, denominator], 0));
    }

    /// The epoch's metrics: one read-back per kind of count. The loss sums
    /// run over the batches in order, as [`SegmentationMetrics::add`] would.
    pub fn read(self) -> EpochMetrics {
        let losses = match self.losses.is_empty() {
            true => Vec::new(),
            false => host_floats(Tensor::cat(self.losses, 0)),
        };
        let (numerator, denominator) = losses.chunks(2).fold((0.0, 0.0), |(n, d), pair| {
            (n + pair[0] as f64, d + pair[1] as f64)
        });
        match self.kind {
            Kind::Classes {
                n_classes,
                confusion,
                bitwise_sums,
            } => {
                let mut metrics = SegmentationMetrics::new(n_classes);
                let sums = match bitwise_sums.is_empty() {
                    true => Vec::new(),
                    false => host_ints(Tensor::cat(bitwise_sums, 0)),
                };
                let per_image: Vec<(u64, u64)> = sums.chunks(2).map(|s| (s[0], s[1])).collect();
                metrics.add_counts(&host_ints(confusion), &per_image, numerator, denominator);
                EpochMetrics::Segmentation(metrics)
            }
            Kind::Depth { predicted, truth } => {
                let mut metrics = DepthMetrics::new();
                if !predicted.is_empty() {
                    let predicted = host_floats(Tensor::cat(predicted, 0));
                    let truth = host_floats(Tensor::cat(truth, 0));
                    metrics.add(&predicted, &truth, numerator, denominator);
                }
                EpochMetrics::Depth(metrics)
            }
        }
    }
}
