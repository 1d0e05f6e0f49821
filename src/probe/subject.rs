//! A trained network as the probes see it: evaluating as in training's
//! evaluation, on the autodiff CPU backend for input gradients.

use super::sampling::tensor;
use crate::config::{Config, Task};
use crate::data::{Prepared, Split};
use crate::model::Network;
use crate::predict::{load, Checkpoint, Loaded, SplitName};
use crate::results::RunRecord;
use anyhow::Result;
use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// The backend of every probe: the CPU, with autodiff for input gradients.
pub type AD = Autodiff<Flex>;

/// A trained network and the split it is probed on.
pub struct Subject {
    /// As it evaluates (see [`Network::evaluating`]), on the autodiff backend,
    /// its weights not requiring gradients.
    pub net: Network<AD>,
    /// The same network without autodiff, for forward passes alone.
    pub inference: Network<Flex>,
    pub config: Config,
    pub data: Prepared,
    pub split: SplitName,
    pub epoch: usize,
    /// The run's evaluation batch size.
    pub batch_size: usize,
}

impl Subject {
    /// `run`'s `checkpoint` on `split`; a run without checkpoints is refused
    /// with what to do instead.
    pub fn load(run: &RunRecord, checkpoint: Checkpoint, split: SplitName) -> Result<Self> {
        let Loaded { net, epoch, data } = load::<AD>(run, checkpoint, &Default::default())?;
        let net = net.evaluating().no_grad();
        Ok(Self {
            inference: net.valid(),
            net,
            config: run.config.clone(),
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

    pub fn task(&self) -> Task {
        self.config.model.task
    }

    /// The normalised images `indices` of the split, [n, channels, H, W].
    pub fn images<B: Backend>(&self, indices: &[usize], device: &B::Device) -> Tensor<B, 4> {
        let split = self.split();
        let values: Vec<f32> = indices
            .iter()
            .flat_map(|&i| split.image(i))
            .copied()
            .collect();
        let shape = [indices.len(), split.channels, split.height, split.width];
        tensor(values, shape, device)
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
