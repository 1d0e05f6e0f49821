//! A trained network as the probes see it: evaluating as in training's
//! evaluation, on the autodiff CPU backend for input gradients.

use crate::config::Task;
use crate::data::{Prepared, Split};
use crate::error::Failure;
use crate::model::Network;
use crate::predict::{load, Checkpoint, Loaded, SplitName};
use crate::results::RunRecord;
use anyhow::Result;
use burn::backend::{Autodiff, Flex};

/// The backend of every probe: the CPU, with autodiff for input gradients.
pub type AD = Autodiff<Flex>;

/// A trained network and the split it is probed on.
pub struct Subject {
    /// As it evaluates (see [`Network::evaluating`]), on the autodiff backend.
    pub net: Network<AD>,
    pub data: Prepared,
    pub split: SplitName,
    pub epoch: usize,
    /// The run's evaluation batch size.
    pub batch_size: usize,
}

impl Subject {
    /// `run`'s `checkpoint` on `split`; a depth run or a run without
    /// checkpoints is refused with what to do instead.
    pub fn load(run: &RunRecord, checkpoint: Checkpoint, split: SplitName) -> Result<Self> {
        if run.config.model.task != Task::Segmentation {
            return Err(Failure::Config(format!(
                "{} is a depth run: the probes measure segmentation networks only",
                run.dir.display()
            ))
            .into());
        }
        let Loaded { net, epoch, data } = load::<AD>(run, checkpoint, &Default::default())?;
        Ok(Self {
            net: net.evaluating(),
            data,
            split,
            epoch,
            batch_size: run.config.training.eval_batch_size,
        })
    }

    pub fn split(&self) -> &Split {
        match self.split {
            SplitName::Train => &self.data.train,
            SplitName::Val => &self.data.val,
        }
    }

    /// The first `images` images of the split (all if fewer), in evaluation
    /// batches.
    pub fn batches(&self, images: usize) -> Vec<Vec<usize>> {
        let n = images.min(self.split().len());
        (0..n)
            .collect::<Vec<_>>()
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }
}
