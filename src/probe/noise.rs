//! Noise robustness: the whole split's metrics when every image gets
//! additive Gaussian noise x + σ·n, n ~ N(0, 1) per pixel, σ in units of the
//! data's standard deviation. σ = 0 is the clean evaluation (the run's own
//! validation metrics at the checkpoint's epoch). Segmentation runs report
//! loss, pixel accuracy, mean IoU and paper IoU; depth runs the metrics of
//! their `metrics.csv` (loss, RMSE, abs rel, log10, δ < 1.25^k).

use super::rows::{csv_bytes, task_metrics};
use super::sampling::{gaussian, stream, tensor};
use super::settings::{Settings, Study};
use super::subject::Subject;
use crate::config::Task;
use crate::metrics::{DepthMetrics, EpochMetrics};
use crate::train::{depth_from_head, depth_loss, evaluate_images};
use anyhow::Result;
use burn::backend::Flex;
use burn::tensor::{ElementConversion, Tensor};

/// `noise.csv`: sigma, then the task's metrics.
pub fn run(subject: &Subject, settings: &Settings) -> Result<Vec<(String, Vec<u8>)>> {
    let mut header = vec!["sigma".to_string()];
    let mut rows = Vec::new();
    for (level, &sigma) in settings.noise_levels.iter().enumerate() {
        let metrics = evaluate_split(subject, |batch, x| {
            if sigma == 0.0 {
                return x;
            }
            let dims = x.dims();
            let mut rng = stream(settings.seed, Study::Noise, level, batch);
            let noise = gaussian(&mut rng, dims.iter().product());
            let noise: Tensor<Flex, 4> = tensor(noise, dims, &x.device());
            x + noise.mul_scalar(sigma)
        });
        let named = task_metrics(&metrics);
        if rows.is_empty() {
            header.extend(named.iter().map(|(name, _)| name.clone()));
        }
        let mut row = vec![sigma.to_string()];
        row.extend(named.iter().map(|(_, v)| format!("{v:.6}")));
        rows.push(row);
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    Ok(vec![("noise.csv".into(), csv_bytes(&header, &rows)?)])
}

/// The metrics of the whole split in the run's evaluation batches, each
/// batch's images first given to `alter(batch number, images)`; for depth as
/// training evaluates (no flips, the run's loss).
pub fn evaluate_split(
    subject: &Subject,
    mut alter: impl FnMut(usize, Tensor<Flex, 4>) -> Tensor<Flex, 4>,
) -> EpochMetrics {
    let (net, split) = (&subject.inference, subject.split());
    let indices: Vec<usize> = (0..split.len()).collect();
    let batches = indices.chunks(subject.batch_size);
    if subject.task() == Task::Segmentation {
        return EpochMetrics::Segmentation(evaluate_images(
            net,
            &subject.data,
            split,
            &indices,
            subject.batch_size,
            |b, x, _| alter(b, x),
            |_, _| {},
        ));
    }
    let stats = subject
        .data
        .depth
        .as_ref()
        .expect("depth data has statistics");
    let training = &subject.config.training;
    let loss = training.loss.resolve(Task::Depth);
    let mut metrics = DepthMetrics::new();
    for (b, chunk) in batches.enumerate() {
        let (x, truth, truth_host) = split.depth_batch::<Flex>(chunk, &[], &Default::default());
        let predicted = depth_from_head(net.forward(alter(b, x)), stats);
        let (numerator, denominator) =
            depth_loss(predicted.clone(), truth, loss, training.silog_lambda);
        let predicted: Vec<f32> = predicted.into_data().to_vec().expect("float depths");
        let numerator = numerator.into_scalar().elem::<f64>();
        metrics.add(&predicted, &truth_host, numerator, denominator);
    }
    EpochMetrics::Depth(metrics)
}
