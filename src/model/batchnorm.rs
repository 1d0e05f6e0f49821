//! Batch normalisation in the two behaviours a user can choose.
//!
//! - `paper` (the authors' code): statistics of the current batch always, at
//!   evaluation too; γ = 1 and β = 0 are never trained.
//! - `standard`: trained γ, β; batch statistics in training, running
//!   statistics (momentum 0.1, unbiased variance as PyTorch) at evaluation.
//!
//! Biased batch variance and ε = 1e-5, as `torch.nn.BatchNorm2d`.

use burn::module::{Module, Param, RunningState};
use burn::tensor::{backend::Backend, Tensor};

const EPSILON: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

#[derive(Module, Debug)]
pub struct BatchNorm<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
    pub running_mean: RunningState<Tensor<B, 1>>,
    pub running_var: RunningState<Tensor<B, 1>>,
    /// `true` for the authors' behaviour: batch statistics even at evaluation.
    pub batch_statistics_always: bool,
}

impl<B: Backend> BatchNorm<B> {
    pub fn new(channels: usize, paper: bool, device: &B::Device) -> Self {
        let trainable = !paper;
        Self {
            gamma: Param::from_tensor(Tensor::ones([channels], device)).set_require_grad(trainable),
            beta: Param::from_tensor(Tensor::zeros([channels], device)).set_require_grad(trainable),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            batch_statistics_always: paper,
        }
    }

    /// y = γ (x − μ) / √(σ² + ε) + β per channel of x [N, C, H, W].
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let training = B::ad_enabled(&x.device());
        let (mean, var) = if self.batch_statistics_always || training {
            let mean = x.clone().mean_dims(&[0, 2, 3]);
            let var = (x.clone() - mean.clone()).powi_scalar(2).mean_dims(&[0, 2, 3]);
            if training && !self.batch_statistics_always {
                self.update_running(&x, mean.clone(), var.clone());
            }
            (mean, var)
        } else {
            let shape = [1, x.dims()[1], 1, 1];
            (
                self.running_mean.value().reshape(shape),
                self.running_var.value().reshape(shape),
            )
        };
        let shape = [1, x.dims()[1], 1, 1];
        let normalised = (x - mean) / var.add_scalar(EPSILON).sqrt();
        normalised * self.gamma.val().reshape(shape) + self.beta.val().reshape(shape)
    }

    fn update_running(&self, x: &Tensor<B, 4>, mean: Tensor<B, 4>, var: Tensor<B, 4>) {
        let [n, c, h, w] = x.dims();
        let count = (n * h * w) as f64;
        let unbiased = var.detach().reshape([c]).mul_scalar(count / (count - 1.0).max(1.0));
        let blend = |old: Tensor<B, 1>, new: Tensor<B, 1>| {
            old.mul_scalar(1.0 - MOMENTUM) + new.mul_scalar(MOMENTUM)
        };
        let device = x.device();
        self.running_mean.update(blend(
            self.running_mean.value_sync().to_device(&device),
            mean.detach().reshape([c]),
        ));
        self.running_var.update(blend(
            self.running_var.value_sync().to_device(&device),
            unbiased,
        ));
    }
}
