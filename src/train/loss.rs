//! The task's loss and what the head's output means: weighted cross-entropy
//! and class maps for segmentation, depth in metres and its losses for depth.

use crate::config::Loss;
use crate::data::DepthStats;
use crate::model::log_probabilities;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Σ w_y·(−log p_y) and Σ w_y over every pixel of a batch; the weighted
/// cross-entropy (PyTorch's `CrossEntropyLoss(weight)`) is their ratio.
pub fn weighted_nll<B: Backend>(
    logits: Tensor<B, 4>,
    labels: Tensor<B, 3, Int>,
    class_weights: Tensor<B, 1>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, _, h, w] = logits.dims();
    let log_p = log_probabilities(logits).gather(1, labels.clone().unsqueeze_dim(1));
    let pixel_weights = class_weights
        .select(0, labels.reshape([n * h * w]))
        .reshape([n, 1, h, w]);
    let numerator = (log_p * pixel_weights.clone()).sum().neg();
    (numerator, pixel_weights.sum())
}

/// Class of every pixel, image after image.
pub fn predictions<B: Backend>(logits: Tensor<B, 4>) -> Vec<u8> {
    let data = logits.argmax(1).into_data().convert::<i64>();
    data.to_vec::<i64>()
        .expect("integer predictions")
        .into_iter()
        .map(|c| c as u8)
        .collect()
}

/// Depth in metres from the head's output z: exp(μ + σ·z), with μ and σ the
/// mean and std of ln(depth) over the training split. Always positive.
pub fn depth_from_head<B: Backend>(z: Tensor<B, 4>, stats: &DepthStats) -> Tensor<B, 4> {
    z.mul_scalar(stats.log_depth_std)
        .add_scalar(stats.log_depth_mean)
        .exp()
}

/// A depth loss over a batch as (numerator, denominator); the batch loss is
/// their ratio and the epoch loss Σ numerators / Σ denominators.
/// `predicted` and `truth` are [n, 1, H, W] depths in metres.
///
/// - l1: Σ |p − d| over pixels, / pixels;
/// - l2: Σ (p − d)², / pixels;
/// - silog (Eigen et al. 2014): Σ over images of mean(g²) − λ·mean(g)²,
///   g = ln p − ln d, / images.
pub fn depth_loss<B: Backend>(
    predicted: Tensor<B, 4>,
    truth: Tensor<B, 4>,
    loss: Loss,
    silog_lambda: f64,
) -> (Tensor<B, 1>, f64) {
    let [n, _, h, w] = predicted.dims();
    let pixels = (n * h * w) as f64;
    match loss {
        Loss::L1 => ((predicted - truth).abs().sum(), pixels),
        Loss::L2 => {
            let e = predicted - truth;
            ((e.clone() * e).sum(), pixels)
        }
        Loss::Silog => {
            let g = (predicted.log() - truth.log()).reshape([n, h * w]);
            let mean_sq = (g.clone() * g.clone()).mean_dim(1);
            let mean = g.mean_dim(1);
            let per_image = mean_sq - (mean.clone() * mean).mul_scalar(silog_lambda);
            (per_image.sum(), n as f64)
        }
        Loss::Auto | Loss::CrossEntropy => unreachable!("not a depth loss: {loss:?}"),
    }
}
