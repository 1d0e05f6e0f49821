//! Noise robustness: the whole split's metrics when every image gets
//! additive Gaussian noise x + σ·n, n ~ N(0, 1) per pixel, σ in units of the
//! data's standard deviation. σ = 0 is the clean evaluation (the run's own
//! validation metrics at the checkpoint's epoch).

use super::rows::{csv_bytes, metric_values, METRIC_COLUMNS};
use super::sampling::{gaussian, stream, tensor};
use super::settings::{Settings, Study};
use super::subject::Subject;
use crate::train::evaluate_images;
use anyhow::Result;
use burn::backend::Flex;
use burn::module::AutodiffModule;
use burn::tensor::Tensor;

/// `noise.csv`: sigma, loss, pixel_accuracy, mean_iou, paper_iou.
pub fn run(subject: &Subject, settings: &Settings) -> Result<Vec<(String, Vec<u8>)>> {
    let net = subject.net.valid();
    let split = subject.split();
    let indices: Vec<usize> = (0..split.len()).collect();
    let mut rows = Vec::new();
    for (level, &sigma) in settings.noise_levels.iter().enumerate() {
        let metrics = evaluate_images(
            &net,
            &subject.data,
            split,
            &indices,
            subject.batch_size,
            |batch, x, _| {
                if sigma == 0.0 {
                    return x;
                }
                let dims = x.dims();
                let mut rng = stream(settings.seed, Study::Noise, level, batch);
                let noise = gaussian(&mut rng, dims.iter().product());
                let noise: Tensor<Flex, 4> = tensor(noise, dims, &x.device());
                x + noise.mul_scalar(sigma)
            },
            |_, _| {},
        );
        let mut row = vec![sigma.to_string()];
        row.extend(metric_values(&metrics).iter().map(|v| format!("{v:.6}")));
        rows.push(row);
    }
    let header: Vec<&str> = ["sigma"].into_iter().chain(METRIC_COLUMNS).collect();
    Ok(vec![("noise.csv".into(), csv_bytes(&header, &rows)?)])
}
