//! The training loop: the task's loss (weighted cross-entropy, or a depth
//! regression loss), the configured optimiser, seeded shuffling (and flips),
//! projected kernels, epoch-wide metrics on both splits.
//!
//! Lean on a GPU: both splits go to the device once per run, the epoch's
//! metrics are counted there and read back once per epoch, and in between
//! the loop reads three running sums (loss numerator and denominator for the
//! progress line, Σ|w| after each update, whose finiteness is every weight's)
//! after the first batch, at most once a second, and after the last.

mod batch;
mod evaluate;
mod loss;
mod optim;
mod readback;
mod resident;
mod tally;

pub use evaluate::{evaluate, evaluate_each, evaluate_images, evaluate_task};
pub use loss::{depth_from_head, depth_loss, predictions, weighted_nll};
pub use optim::Optim;
pub use readback::{ReadBack, READ_INTERVAL};
pub use resident::{Batches, Resident};
pub use tally::{Glance, Tally};

use crate::config::{CheckpointRule, Config};
use crate::data::Prepared;
use crate::error::Failure;
use crate::metrics::EpochMetrics;
use crate::model::Network;
use crate::run::{EpochRecord, ResumePoint, RunFolder};
use anyhow::Result;
use batch::{class_weights, forward_batch};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

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
    let task = cfg.model.task;
    let train_split = Resident::<B>::upload(&data.train, task, device);
    let val_split = Resident::<B::InnerBackend>::upload(&data.val, task, device);
    for epoch in first_epoch..=t.epochs {
        let started = Instant::now();
        let (trained, train_metrics) =
            train_epoch(cfg, data, &train_split, device, run, net, &mut optim, epoch)?;
        net = trained;
        let train_seconds = started.elapsed().as_secs_f64();
        let eval_started = Instant::now();
        let val_metrics = evaluate_task(
            cfg,
            &net.clone().project_kernels().valid(),
            data,
            &val_split,
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
/// loss, backward, update; metrics counted from the training forwards.
#[allow(clippy::too_many_arguments)]
fn train_epoch<B: AutodiffBackend>(
    cfg: &Config,
    data: &Prepared,
    train: &Resident<B>,
    device: &B::Device,
    run: &RunFolder,
    mut net: Network<B>,
    optim: &mut Optim<B>,
    epoch: usize,
) -> Result<(Network<B>, EpochMetrics)> {
    let t = &cfg.training;
    // One stream per epoch: the order of epoch e depends on (seed, e) only.
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.experiment.seed);
    rng.set_stream(epoch as u64);
    order.shuffle(&mut rng);
    let flips = epoch_flips(cfg, epoch, order.len());
    let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
    let weights = class_weights(data, cfg.model.task, device);
    let mut tally = Tally::new(&cfg.model, device);
    let mut read_back = ReadBack::new(READ_INTERVAL);
    let mut checked = 0; // batches known to be finite
    let mut progress = run.progress(epoch, batches.len());
    let learning_rate = t.learning_rate_at(epoch);
    for (b, chunk) in batches.iter().enumerate() {
        net = net.project_kernels();
        let start = b * t.batch_size;
        let batch_flips = &flips[start..start + chunk.len()];
        let (num, den) = forward_batch(
            cfg,
            &net,
            data,
            train,
            chunk,
            batch_flips,
            weights.as_ref(),
            &mut tally,
        );
        let loss = num / den;
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(learning_rate, net, grads);
        tally.add_update(net.weight_magnitude());
        progress.advance(chunk.len());
        if read_back.due(Instant::now(), b + 1 == batches.len()) {
            let glance = tally.glance();
            let at = match checked == b {
                true => format!("epoch {epoch}, batch {} of {}", b + 1, batches.len()),
                false => format!(
                    "epoch {epoch}, one of batches {}–{} of {}",
                    checked + 1,
                    b + 1,
                    batches.len()
                ),
            };
            if !glance.numerator.is_finite() {
                let what = format!("the loss became {} at {at}", glance.numerator);
                return Err(numerical_fault(what, run, epoch));
            }
            if !glance.magnitudes.is_finite() {
                let what = format!("the update made weights non-finite at {at}");
                return Err(numerical_fault(what, run, epoch));
            }
            checked = b + 1;
            progress.show_loss(glance.numerator / glance.denominator);
        }
        if crate::interrupt::requested() {
            progress.finish();
            return Err(Failure::Interrupted(format!(
                "stopped during epoch {epoch}, batch {} of {}; run the same command to resume after epoch {}",
                b + 1,
                batches.len(),
                epoch - 1
            ))
            .into());
        }
    }
    tracing::debug!(
        "epoch {epoch}: {} batches, {} device read-backs during the epoch",
        batches.len(),
        read_back.reads
    );
    progress.finish();
    Ok((net, tally.read()))
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
