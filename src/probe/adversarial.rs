//! Adversarial robustness: L∞ attacks that maximise the run's own loss (the
//! class-weighted cross-entropy of the evaluation batch) through autodiff
//! with respect to the normalised input.
//!
//! ```text
//! FGSM  x' = x + ε·sign(∇ₓℓ(x))
//! PGD   x⁰ = x + ε·u, u ~ U[−1, 1];  xᵏ⁺¹ = clip_{[x−ε, x+ε]}(xᵏ + (ε/4)·sign(∇ₓℓ(xᵏ)))
//! ```
//!
//! and per image the smallest ε at which FGSM (the image attacked alone in
//! its evaluation batch) halves its paper IoU, by bisection. One image's PGD
//! attack at the ε nearest [`EXAMPLE_EPSILON`] is kept whole for a figure.
//!
//! What costs: PGD's gradients (input gradients only: the weights do not
//! require gradients) and the bisection's forward passes; the clean
//! gradient's sign is taken once per batch for every FGSM ε and the
//! bisection, and every attacked batch is evaluated without autodiff.

use super::rows::{csv_bytes, metric_values, METRIC_COLUMNS};
use super::sampling::{stream, tensor};
use super::settings::{Settings, Study};
use super::subject::{Subject, AD};
use crate::metrics::paper_iou;
use crate::model::checkpoint::{safetensors_bytes, HostTensor, NamedTensors};
use crate::model::Network;
use crate::train::{evaluate_images, predictions, weighted_nll};
use anyhow::Result;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use rand::Rng;
use std::collections::HashMap;

/// What an attack does to a batch's images, given its labels.
type Alter<'a> = dyn FnMut(usize, Tensor<Flex, 4>, &Tensor<Flex, 3, Int>) -> Tensor<Flex, 4> + 'a;
/// What is done with a batch's image indices and logits.
type Inspect<'a> = dyn FnMut(&[usize], &Tensor<Flex, 4>) + 'a;

/// The halving ε is bracketed in [ε_max / 2¹⁰, ε_max] and bisected
/// geometrically: 8 steps pin it to a factor 2^(10/2⁸) ≈ 1.03.
const BRACKET_OCTAVES: i32 = 10;
const BISECTION_STEPS: usize = 8;

/// The example attack's ε: the attack size nearest it on a log scale.
pub const EXAMPLE_EPSILON: f64 = 0.1;

/// ∇ₓ of the batch's class-weighted cross-entropy.
pub fn loss_gradient(
    net: &Network<AD>,
    x: Tensor<AD, 4>,
    labels: &Tensor<AD, 3, Int>,
    class_weights: &Tensor<AD, 1>,
) -> Tensor<AD, 4> {
    let x = x.detach().require_grad();
    let (num, den) = weighted_nll(
        net.forward(x.clone()),
        labels.clone(),
        class_weights.clone(),
    );
    let grads = (num / den).backward();
    Tensor::from_inner(x.grad(&grads).expect("x is differentiated"))
}

/// One FGSM step of size ε.
pub fn fgsm<B: Backend>(gradient: Tensor<B, 4>, x: Tensor<B, 4>, epsilon: f64) -> Tensor<B, 4> {
    x + gradient.sign().mul_scalar(epsilon)
}

/// PGD with `steps` steps of ε/4 from a uniform random start, projected onto
/// the L∞ ball of radius ε around x after every step.
pub fn pgd(
    gradient: impl Fn(Tensor<AD, 4>) -> Tensor<AD, 4>,
    x: Tensor<AD, 4>,
    epsilon: f64,
    steps: usize,
    rng: &mut impl Rng,
) -> Tensor<AD, 4> {
    let dims = x.dims();
    let start: Vec<f32> = (0..dims.iter().product())
        .map(|_| rng.gen::<f32>() * 2.0 - 1.0)
        .collect();
    let (low, high) = (x.clone().sub_scalar(epsilon), x.clone().add_scalar(epsilon));
    let mut attacked = x.clone() + tensor::<AD, 4>(start, dims, &x.device()).mul_scalar(epsilon);
    for _ in 0..steps {
        let step = gradient(attacked.clone()).sign().mul_scalar(epsilon / 4.0);
        attacked = (attacked.detach() + step)
            .max_pair(low.clone())
            .min_pair(high.clone());
    }
    attacked.detach()
}

/// The attack size nearest [`EXAMPLE_EPSILON`] on a log scale.
pub fn example_epsilon(sizes: &[f64]) -> f64 {
    let distance = |e: f64| (e / EXAMPLE_EPSILON).ln().abs();
    sizes.iter().copied().fold(f64::NAN, |best, e| {
        match best.is_nan() || distance(e) < distance(best) {
            true => e,
            false => best,
        }
    })
}

/// `adversarial.csv` (method, epsilon, the four metrics; method "clean" at
/// ε = 0), `adversarial_images.csv` (image, clean paper IoU, the FGSM ε
/// that halves it; empty when the largest ε does not) and
/// `adversarial_example.safetensors` (see `Example::bytes`).
pub fn run(subject: &Subject, settings: &Settings) -> Result<Vec<(String, Vec<u8>)>> {
    let net = &subject.net;
    let device = Default::default();
    let weights = subject.data.class_weights_tensor::<AD>(&device);
    let batches = subject.batches(settings.images);
    let indices: Vec<usize> = batches.concat();
    let gradient_of =
        |x: Tensor<AD, 4>, labels: &Tensor<AD, 3, Int>| loss_gradient(net, x, labels, &weights);
    let clock = std::time::Instant::now();
    // The sign of the clean loss gradient of every batch: FGSM's direction at
    // every ε and the bisection's.
    let directions: Vec<Tensor<Flex, 4>> = batches
        .iter()
        .map(|chunk| {
            let (x, labels, _) = subject.split().batch::<AD>(chunk, &device);
            gradient_of(x, &labels).sign().inner()
        })
        .collect();
    let evaluate = |alter: &mut Alter, inspect: &mut Inspect| {
        metric_values(&evaluate_images(
            &subject.inference,
            &subject.data,
            subject.split(),
            &indices,
            subject.batch_size,
            |b, x, labels| alter(b, x, labels),
            |chunk, logits| inspect(chunk, logits),
        ))
    };
    let row = |method: &str, epsilon: f64, values: [f64; 4]| {
        let mut row = vec![method.to_string(), epsilon.to_string()];
        row.extend(values.iter().map(|v| format!("{v:.6}")));
        row
    };
    let mut clean_classes = Vec::new();
    let mut rows = vec![row(
        "clean",
        0.0,
        evaluate(&mut |_, x, _| x, &mut |_, logits| {
            clean_classes.push(predictions(logits.clone()))
        }),
    )];
    let example_at = example_epsilon(&settings.attack_sizes);
    let (example_batch, example_row) = (
        settings.example_image / subject.batch_size,
        settings.example_image % subject.batch_size,
    );
    let (pixels, split) = (subject.split().pixels(), subject.split());
    let mut example = None;
    for (level, &epsilon) in settings.attack_sizes.iter().enumerate() {
        let values = evaluate(
            &mut |b, x, _| fgsm(directions[b].clone(), x, epsilon),
            &mut |_, _| {},
        );
        rows.push(row("fgsm", epsilon, values));
        let keep = epsilon == example_at;
        let (mut attacked_image, mut attacked_classes) = (Vec::new(), Vec::new());
        let values = evaluate(
            &mut |b, x, labels| {
                let mut rng = stream(settings.seed, Study::Adversarial, level, b);
                let attacked = pgd(
                    |a| gradient_of(a, &Tensor::from_inner(labels.clone())),
                    Tensor::from_inner(x),
                    epsilon,
                    settings.pgd_steps,
                    &mut rng,
                )
                .inner();
                if keep && b == example_batch {
                    attacked_image = row_of(attacked.clone(), example_row);
                }
                attacked
            },
            &mut |chunk, logits| {
                if keep && chunk.contains(&settings.example_image) {
                    let classes = predictions(logits.clone());
                    attacked_classes =
                        classes[example_row * pixels..(example_row + 1) * pixels].to_vec();
                }
            },
        );
        rows.push(row("pgd", epsilon, values));
        if keep {
            let clean = &clean_classes[example_batch];
            example = Some(Example {
                image: split.image(settings.example_image).to_vec(),
                attacked: attacked_image,
                label: split.label(settings.example_image).to_vec(),
                clean_prediction: clean[example_row * pixels..(example_row + 1) * pixels].to_vec(),
                attacked_prediction: attacked_classes,
            });
        }
    }
    let header: Vec<&str> = ["method", "epsilon"]
        .into_iter()
        .chain(METRIC_COLUMNS)
        .collect();
    let largest = settings.attack_sizes.iter().copied().fold(0.0, f64::max);
    tracing::debug!(
        "adversarial: clean gradients, FGSM and PGD in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    let clock = std::time::Instant::now();
    let per_image = halving_sizes(subject, &batches, &directions, &clean_classes, largest);
    tracing::debug!(
        "adversarial: halving bisection in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    let example = example.expect("the example's ε is one of the attack sizes");
    Ok(vec![
        ("adversarial.csv".into(), csv_bytes(&header, &rows)?),
        (
            "adversarial_images.csv".into(),
            csv_bytes(&["image", "clean_paper_iou", "halving_epsilon"], &per_image)?,
        ),
        (
            "adversarial_example.safetensors".into(),
            example.bytes(subject, settings, example_at)?,
        ),
    ])
}

/// Row `row` of a batch [n, 1, H, W], on the host.
fn row_of(batch: Tensor<Flex, 4>, row: usize) -> Vec<f32> {
    let [_, c, h, w] = batch.dims();
    batch
        .slice([row..row + 1, 0..c, 0..h, 0..w])
        .into_data()
        .to_vec()
        .expect("float images")
}

/// One image's PGD attack, as the report's figure shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Normalised input, clean and attacked, [H, W].
    pub image: Vec<f32>,
    pub attacked: Vec<f32>,
    pub label: Vec<u8>,
    pub clean_prediction: Vec<u8>,
    pub attacked_prediction: Vec<u8>,
}

impl Example {
    /// A float32 safetensors file: tensors `image`, `attacked` (normalised
    /// inputs), `label`, `clean_prediction`, `attacked_prediction` (classes),
    /// each [H, W]; metadata: the image's index, split, checkpoint, method,
    /// ε, PGD steps, the normalisation (mean, std) and both paper IoUs.
    fn bytes(&self, subject: &Subject, settings: &Settings, epsilon: f64) -> Result<Vec<u8>> {
        let split = subject.split();
        let shape = vec![split.height, split.width];
        let as_float = |v: &[u8]| v.iter().map(|&c| c as f32).collect::<Vec<f32>>();
        let tensors: NamedTensors = [
            ("image", self.image.clone()),
            ("attacked", self.attacked.clone()),
            ("label", as_float(&self.label)),
            ("clean_prediction", as_float(&self.clean_prediction)),
            ("attacked_prediction", as_float(&self.attacked_prediction)),
        ]
        .into_iter()
        .map(|(name, values)| {
            let shape = shape.clone();
            (name.to_string(), HostTensor { shape, values })
        })
        .collect();
        let metadata: HashMap<String, String> = [
            ("image_index", settings.example_image.to_string()),
            ("split", settings.split.name().to_string()),
            ("checkpoint", settings.checkpoint.name().to_string()),
            ("epoch", subject.epoch.to_string()),
            ("method", "pgd".to_string()),
            ("epsilon", epsilon.to_string()),
            ("pgd_steps", settings.pgd_steps.to_string()),
            ("mean", subject.data.mean.to_string()),
            ("std", subject.data.std.to_string()),
            (
                "clean_paper_iou",
                paper_iou(&self.clean_prediction, &self.label).to_string(),
            ),
            (
                "attacked_paper_iou",
                paper_iou(&self.attacked_prediction, &self.label).to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        safetensors_bytes(&tensors, metadata)
    }
}

/// For each probed image: its clean paper IoU and the smallest FGSM ε ≤
/// `largest` (to 3%; ε_max/2¹⁰ when even that halves it) at which the image,
/// attacked alone in its evaluation batch (along `directions`, the batches'
/// clean gradient signs), falls below half of it.
fn halving_sizes(
    subject: &Subject,
    batches: &[Vec<usize>],
    directions: &[Tensor<Flex, 4>],
    clean_classes: &[Vec<u8>],
    largest: f64,
) -> Vec<Vec<String>> {
    let device = Default::default();
    let pixels = subject.split().pixels();
    let mut rows = Vec::new();
    for ((chunk, direction), clean_classes) in batches.iter().zip(directions).zip(clean_classes) {
        let (x, _, label_bytes) = subject.split().batch::<Flex>(chunk, &device);
        let iou_of = |i: usize, classes: &[u8]| {
            paper_iou(
                &classes[i * pixels..(i + 1) * pixels],
                &label_bytes[i * pixels..(i + 1) * pixels],
            )
        };
        let [n, c, h, w] = x.dims();
        for (i, &image) in chunk.iter().enumerate() {
            let mut mask = vec![0f32; n * c * h * w];
            mask[i * c * h * w..(i + 1) * c * h * w].fill(1.0);
            let alone = direction.clone() * tensor::<Flex, 4>(mask, [n, c, h, w], &device);
            let attacked = |epsilon: f64| x.clone() + alone.clone().mul_scalar(epsilon);
            let clean = iou_of(i, clean_classes);
            let halved = |epsilon: f64| {
                iou_of(
                    i,
                    &predictions(subject.inference.forward(attacked(epsilon))),
                ) < clean / 2.0
            };
            let epsilon = halved(largest).then(|| {
                let smallest = largest * 2f64.powi(-BRACKET_OCTAVES);
                if halved(smallest) {
                    return smallest;
                }
                let (mut low, mut high) = (smallest.ln(), largest.ln());
                for _ in 0..BISECTION_STEPS {
                    let middle = (low + high) / 2.0;
                    if halved(middle.exp()) {
                        high = middle;
                    } else {
                        low = middle;
                    }
                }
                high.exp()
            });
            rows.push(vec![
                image.to_string(),
                format!("{clean:.6}"),
                epsilon.map_or(String::new(), |e| format!("{e:.6e}")),
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_takes_the_attack_size_nearest_a_tenth_on_a_log_scale() {
        assert_eq!(example_epsilon(&[0.01, 0.02, 0.05, 0.1, 0.2, 0.5]), 0.1);
        // 0.3 is 3× from 0.1, 0.02 5×.
        assert_eq!(example_epsilon(&[0.02, 0.3]), 0.3);
        assert_eq!(example_epsilon(&[0.5]), 0.5);
    }
}
