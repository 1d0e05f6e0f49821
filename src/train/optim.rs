//! The configured optimiser, its state saved with every checkpoint.

use crate::config::{OptimizerKind, TrainingSection};
use crate::error::Failure;
use crate::model::Network;
use anyhow::Result;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{
    decay::WeightDecayConfig, momentum::MomentumConfig, Adam, AdamConfig, GradientsParams,
    Optimizer, Sgd, SgdConfig,
};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use std::path::Path;

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
    pub(super) fn save(&self, path: &Path) -> Result<()> {
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        match self {
            Optim::Sgd(o) => recorder.record(o.to_record(), path.to_path_buf())?,
            Optim::Adam(o) => recorder.record(o.to_record(), path.to_path_buf())?,
        }
        Ok(())
    }

    pub(super) fn load(self, path: &Path, device: &B::Device) -> Result<Self> {
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
