//! The training loop: the task's loss (weighted cross-entropy, or a depth
//! regression loss), the configured optimiser, seeded shuffling (and flips),
//! projected kernels, epoch-wide metrics on both splits.

use crate::config::{CheckpointRule, Config, Loss, OptimizerKind, Task, TrainingSection};
use crate::data::{DepthStats, Prepared};
use crate::error::Failure;
use crate::metrics::{DepthMetrics, EpochMetrics, SegmentationMetrics};
use crate::model::Network;
use crate::run::{EpochRecord, ResumePoint, RunFolder};
use anyhow::Result;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{
    decay::WeightDecayConfig, momentum::MomentumConfig, Adam, AdamConfig, GradientsParams,
    Optimizer, Sgd, SgdConfig,
};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::Instant;

/// Σ w_y·(−log p_y) and Σ w_y over every pixel of a batch; the weighted
/// cross-entropy (PyTorch's `CrossEntropyLoss(weight)`) is their ratio.
pub fn weighted_nll<B: Backend>(
    logits: Tensor<B, 4>,
    labels: Tensor<B, 3, Int>,
    class_weights: Tensor<B, 1>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, _, h, w] = logits.dims();
    let log_p = log_softmax(logits, 1).gather(1, labels.clone().unsqueeze_dim(1));
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

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
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

/// One batch through the network: the loss numerator (with its graph) and
/// denominator, and a function adding the batch to the epoch's metrics.
struct BatchOutcome<B: Backend> {
    numerator: Tensor<B, 1>,
    denominator: Tensor<B, 1>,
    observed: Observed,
}

/// What the metrics need from a batch, on the host.
enum Observed {
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
    fn add_to(self, metrics: &mut EpochMetrics, pixels: usize, numerator: f64, denominator: f64) {
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
fn forward_batch<B: Backend>(
    cfg: &Config,
    net: &Network<B>,
    data: &Prepared,
    split: &crate::data::Split,
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

/// Forward pass and metrics of a whole split in batches of `batch_size`
/// (order kept, so BN batch statistics match the authors' evaluation).
pub fn evaluate<B: Backend>(
    net: &Network<B>,
    data: &Prepared,
    split: &crate::data::Split,
    batch_size: usize,
) -> SegmentationMetrics {
    evaluate_each(net, data, split, batch_size, |_, _| {})
}

/// [`evaluate`], also handing every batch's image indices and logits to
/// `inspect` (e.g. to keep the predictions of chosen images).
pub fn evaluate_each<B: Backend>(
    net: &Network<B>,
    data: &Prepared,
    split: &crate::data::Split,
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
    split: &crate::data::Split,
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
    split: &crate::data::Split,
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

/// Mixed into the seed of the flips' generator so that it never shares a
/// stream with the shuffling's (`ChaCha8Rng::seed_from_u64(seed)`): the bytes
/// of "flip" in the top half of the seed.
const FLIP_STREAM_KEY: u64 = u64::from_be_bytes(*b"flip\0\0\0\0");

/// Which training images of an epoch are mirrored: none unless `data.flip`;
/// otherwise a fair coin per position of the epoch's order, from its own
/// ChaCha stream of (seed, epoch), so the shuffling is unchanged by it.
pub fn epoch_flips(cfg: &Config, epoch: usize, n: usize) -> Vec<bool> {
    if !cfg.data.flip {
        return vec![false; n];
    }
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.experiment.seed ^ FLIP_STREAM_KEY);
    rng.set_stream(epoch as u64);
    (0..n).map(|_| rng.gen::<bool>()).collect()
}

/// The optimisers a config can ask for, behind one `step`: Burn's SGD
/// (PyTorch's semantics: L2 weight decay added to the gradient, then
/// momentum without dampening) and Adam (β = (0.9, 0.999), ε = 1e-5, Burn's
/// default; PyTorch's ε is 1e-8; L2 weight decay as `torch.optim.Adam`).
/// `grad_clip_norm` clips each parameter tensor's gradient to that L2 norm on
/// its own, not the global norm of `torch.nn.utils.clip_grad_norm_`.
pub enum Optim<B: AutodiffBackend> {
    Sgd(OptimizerAdaptor<Sgd<B::InnerBackend>, Network<B>, B>),
    Adam(OptimizerAdaptor<Adam, Network<B>, B>),
}

impl<B: AutodiffBackend> Optim<B> {
    pub fn new(t: &TrainingSection) -> Self {
        let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
        let clip = (t.grad_clip_norm > 0.0)
            .then_some(GradientClippingConfig::Norm(t.grad_clip_norm as f32));
        match t.optimizer {
            OptimizerKind::Sgd => {
                // PyTorch's SGD: no dampening.
                let momentum = (t.momentum > 0.0).then_some(MomentumConfig {
                    momentum: t.momentum,
                    dampening: 0.0,
                    nesterov: false,
                });
                Optim::Sgd(
                    SgdConfig::new()
                        .with_momentum(momentum)
                        .with_weight_decay(decay)
                        .with_gradient_clipping(clip)
                        .init(),
                )
            }
            OptimizerKind::Adam => Optim::Adam(
                AdamConfig::new()
                    .with_weight_decay(decay)
                    .with_grad_clipping(clip)
                    .init(),
            ),
        }
    }

    pub fn step(&mut self, lr: f64, net: Network<B>, grads: GradientsParams) -> Network<B> {
        match self {
            Optim::Sgd(o) => o.step(lr, net, grads),
            Optim::Adam(o) => o.step(lr, net, grads),
        }
    }

    /// Momentum or moment estimates, at full precision (resuming is exact).
    fn save(&self, path: &Path) -> Result<()> {
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        match self {
            Optim::Sgd(o) => recorder.record(o.to_record(), path.to_path_buf())?,
            Optim::Adam(o) => recorder.record(o.to_record(), path.to_path_buf())?,
        }
        Ok(())
    }

    fn load(self, path: &Path, device: &B::Device) -> Result<Self> {
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        let missing = |e| {
            Failure::Output(format!(
                "cannot read optimiser state {}: {e}",
                path.display()
            ))
        };
        Ok(match self {
            Optim::Sgd(o) => Optim::Sgd(
                o.load_record(recorder.load(path.to_path_buf(), device).map_err(missing)?),
            ),
            Optim::Adam(o) => Optim::Adam(
                o.load_record(recorder.load(path.to_path_buf(), device).map_err(missing)?),
            ),
        })
    }
}

/// Trains `cfg` on `device`, writing every epoch to `run`, from the start or
/// from `resume`. Every epoch depends only on the saved state (weights,
/// optimiser state, BN statistics) and on (seed, epoch), so a resumed run is
/// bit-identical to an uninterrupted one on the same machine.
pub fn train<B: AutodiffBackend>(
    cfg: &Config,
    data: &Prepared,
    device: &B::Device,
    run: &mut RunFolder,
    resume: Option<ResumePoint>,
) -> Result<()> {
    let t = &cfg.training;
    let (mut net, mut optim, first_epoch, mut best) = match resume {
        None => (
            Network::<B>::new(&cfg.model, cfg.experiment.seed, device),
            Optim::<B>::new(&cfg.training),
            1,
            f64::INFINITY,
        ),
        Some(point) => (
            Network::<B>::from_named_tensors(&cfg.model, &point.weights, device)?,
            Optim::<B>::new(&cfg.training).load(&point.optimizer, device)?,
            point.epoch + 1,
            point.best_score,
        ),
    };
    for epoch in first_epoch..=t.epochs {
        let started = Instant::now();
        let (trained, train_metrics) = train_epoch(cfg, data, device, run, net, &mut optim, epoch)?;
        net = trained;
        let train_seconds = started.elapsed().as_secs_f64();
        let eval_started = Instant::now();
        let val_metrics = evaluate_task(
            cfg,
            &net.clone().project_kernels().valid(),
            data,
            &data.val,
            t.eval_batch_size,
        );
        let record = EpochRecord {
            epoch,
            learning_rate: t.learning_rate_at(epoch),
            train: train_metrics,
            val: val_metrics,
            train_seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
            train_images: data.train.len(),
        };
        let score = match t.checkpoint {
            CheckpointRule::BestValLoss => record.val.loss(),
            CheckpointRule::LowestTrainLoss => record.train.loss(),
        };
        let improved = (score < best).then_some(score);
        best = best.min(score);
        // The weights as the optimiser left them: every forward pass (ours,
        // the peer reference's) projects same-width kernels before use, and
        // projecting twice is not bit-identical to projecting once.
        run.record_epoch(&record, &net.valid(), improved, |path| optim.save(path))?;
    }
    Ok(())
}

/// One pass over the shuffled training split: per batch, project, forward,
/// loss, backward, update; metrics accumulated from the training forwards.
fn train_epoch<B: AutodiffBackend>(
    cfg: &Config,
    data: &Prepared,
    device: &B::Device,
    run: &RunFolder,
    mut net: Network<B>,
    optim: &mut Optim<B>,
    epoch: usize,
) -> Result<(Network<B>, EpochMetrics)> {
    let (t, train) = (&cfg.training, &data.train);
    // One stream per epoch: the order of epoch e depends on (seed, e) only.
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.experiment.seed);
    rng.set_stream(epoch as u64);
    order.shuffle(&mut rng);
    let flips = epoch_flips(cfg, epoch, order.len());
    let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
    let mut metrics = EpochMetrics::new(&cfg.model);
    let mut progress = run.progress(epoch, batches.len());
    let learning_rate = t.learning_rate_at(epoch);
    for (b, chunk) in batches.iter().enumerate() {
        let at = format!("epoch {epoch}, batch {} of {}", b + 1, batches.len());
        net = net.project_kernels();
        let start = b * t.batch_size;
        let batch_flips = &flips[start..start + chunk.len()];
        let out = forward_batch(cfg, &net, data, train, chunk, batch_flips, device);
        let (num, den) = (out.numerator, out.denominator);
        let loss = num.clone() / den.clone();
        let (num_v, den_v) = (scalar(num.detach()), scalar(den.detach()));
        if !num_v.is_finite() {
            return Err(numerical_fault(
                format!("the loss is {num_v} at {at}"),
                run,
                epoch,
            ));
        }
        out.observed
            .add_to(&mut metrics, train.pixels(), num_v, den_v);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(learning_rate, net, grads);
        if !net.weights_finite() {
            return Err(numerical_fault(
                format!("the update made weights non-finite at {at}"),
                run,
                epoch,
            ));
        }
        progress.advance(metrics.loss(), chunk.len());
        if crate::interrupt::requested() {
            progress.finish();
            return Err(Failure::Interrupted(format!(
                "stopped during {at}; run the same command to resume after epoch {}",
                epoch - 1
            ))
            .into());
        }
    }
    progress.finish();
    Ok((net, metrics))
}

fn numerical_fault(what: String, run: &RunFolder, epoch: usize) -> anyhow::Error {
    let kept = match epoch {
        1 => "no checkpoint was written".to_string(),
        _ => format!(
            "the last good checkpoint is {}",
            run.last_checkpoint().display()
        ),
    };
    Failure::Numerical(format!(
        "{what}; {kept} (a smaller training.learning_rate or training.grad_clip_norm may help)"
    ))
    .into()
}
