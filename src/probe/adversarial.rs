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
//! its evaluation batch) halves its paper IoU, by bisection.

use super::rows::{csv_bytes, metric_values, METRIC_COLUMNS};
use super::sampling::{stream, tensor};
use super::settings::{Settings, Study};
use super::subject::{Subject, AD};
use crate::metrics::paper_iou;
use crate::model::Network;
use crate::train::{evaluate_images, predictions, weighted_nll};
use anyhow::Result;
use burn::tensor::{Int, Tensor};
use rand::Rng;

/// What an attack does to a batch's images, given its labels.
type Alter<'a> = dyn FnMut(usize, Tensor<AD, 4>, &Tensor<AD, 3, Int>) -> Tensor<AD, 4> + 'a;
/// ∇ₓ of a batch's loss at given images and labels.
type Gradient<'a> = dyn Fn(Tensor<AD, 4>, &Tensor<AD, 3, Int>) -> Tensor<AD, 4> + 'a;

/// The halving ε is bracketed in [ε_max / 2¹⁰, ε_max] and bisected
/// geometrically: 8 steps pin it to a factor 2^(10/2⁸) ≈ 1.03.
const BRACKET_OCTAVES: i32 = 10;
const BISECTION_STEPS: usize = 8;

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
pub fn fgsm(gradient: Tensor<AD, 4>, x: Tensor<AD, 4>, epsilon: f64) -> Tensor<AD, 4> {
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

/// `adversarial.csv` (method, epsilon, the four metrics; method "clean" at
/// ε = 0) and `adversarial_images.csv` (image, clean paper IoU, the FGSM ε
/// that halves it; empty when the largest ε does not).
pub fn run(subject: &Subject, settings: &Settings) -> Result<Vec<(String, Vec<u8>)>> {
    let net = &subject.net;
    let device = Default::default();
    let weights = subject.data.class_weights_tensor::<AD>(&device);
    let indices: Vec<usize> = subject.batches(settings.images).concat();
    let gradient_of =
        |x: Tensor<AD, 4>, labels: &Tensor<AD, 3, Int>| loss_gradient(net, x, labels, &weights);
    let evaluate = |alter: &mut Alter| {
        metric_values(&evaluate_images(
            net,
            &subject.data,
            subject.split(),
            &indices,
            subject.batch_size,
            |b, x, labels| alter(b, x, labels),
            |_, _| {},
        ))
    };
    let row = |method: &str, epsilon: f64, values: [f64; 4]| {
        let mut row = vec![method.to_string(), epsilon.to_string()];
        row.extend(values.iter().map(|v| format!("{v:.6}")));
        row
    };
    let mut rows = vec![row("clean", 0.0, evaluate(&mut |_, x, _| x))];
    for (level, &epsilon) in settings.attack_sizes.iter().enumerate() {
        let values = evaluate(&mut |_, x, labels| fgsm(gradient_of(x.clone(), labels), x, epsilon));
        rows.push(row("fgsm", epsilon, values));
        let values = evaluate(&mut |b, x, labels| {
            let mut rng = stream(settings.seed, Study::Adversarial, level, b);
            pgd(
                |a| gradient_of(a, labels),
                x,
                epsilon,
                settings.pgd_steps,
                &mut rng,
            )
        });
        rows.push(row("pgd", epsilon, values));
    }
    let header: Vec<&str> = ["method", "epsilon"]
        .into_iter()
        .chain(METRIC_COLUMNS)
        .collect();
    let largest = settings.attack_sizes.iter().copied().fold(0.0, f64::max);
    let per_image = halving_sizes(subject, &gradient_of, largest, settings.images);
    Ok(vec![
        ("adversarial.csv".into(), csv_bytes(&header, &rows)?),
        (
            "adversarial_images.csv".into(),
            csv_bytes(&["image", "clean_paper_iou", "halving_epsilon"], &per_image)?,
        ),
    ])
}

/// For each probed image: its clean paper IoU and the smallest FGSM ε ≤
/// `largest` (to 3%; ε_max/2¹⁰ when even that halves it) at which the image,
/// attacked alone in its evaluation batch, falls below half of it.
fn halving_sizes(
    subject: &Subject,
    gradient_of: &Gradient,
    largest: f64,
    images: usize,
) -> Vec<Vec<String>> {
    let device = Default::default();
    let pixels = subject.split().pixels();
    let mut rows = Vec::new();
    for chunk in subject.batches(images) {
        let (x, labels, label_bytes) = subject.split().batch::<AD>(&chunk, &device);
        let direction = gradient_of(x.clone(), &labels).sign();
        let iou_of = |i: usize, classes: &[u8]| {
            paper_iou(
                &classes[i * pixels..(i + 1) * pixels],
                &label_bytes[i * pixels..(i + 1) * pixels],
            )
        };
        let clean_classes = predictions(subject.net.forward(x.clone()));
        let [n, c, h, w] = x.dims();
        for (i, &image) in chunk.iter().enumerate() {
            let mut mask = vec![0f32; n * c * h * w];
            mask[i * c * h * w..(i + 1) * c * h * w].fill(1.0);
            let alone = direction.clone() * tensor::<AD, 4>(mask, [n, c, h, w], &device);
            let attacked = |epsilon: f64| x.clone() + alone.clone().mul_scalar(epsilon);
            let clean = iou_of(i, &clean_classes);
            let halved = |epsilon: f64| {
                iou_of(i, &predictions(subject.net.forward(attacked(epsilon)))) < clean / 2.0
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
