//! Batch normalisation in the two behaviours a user can choose.
//!
//! - `paper` (the authors' code): statistics of the current batch always, at
//!   evaluation too; γ = 1 and β = 0 are never trained.
//! - `standard`: trained γ, β; batch statistics in training, running
//!   statistics (momentum 0.1, unbiased variance as PyTorch) at evaluation.
//!
//! Biased batch variance and ε = 1e-5, as `torch.nn.BatchNorm2d`.

use super::flex;
use super::param::param;
use burn::module::{Module, Param, RunningState};
use burn::tensor::{activation::relu, backend::Backend, Tensor};

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
    /// `true` to evaluate with the running statistics under autodiff too (to
    /// differentiate a trained `standard` network as it evaluates, without
    /// updating its statistics); no effect in `paper` mode.
    pub running_statistics_only: bool,
}

impl<B: Backend> BatchNorm<B> {
    /// γ and β get the parameter ids `id` and `id + 1`.
    pub fn new(channels: usize, paper: bool, id: u64, device: &B::Device) -> Self {
        let trainable = !paper;
        Self {
            gamma: param(id, Tensor::ones([channels], device)).set_require_grad(trainable),
            beta: param(id + 1, Tensor::zeros([channels], device)).set_require_grad(trainable),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            batch_statistics_always: paper,
            running_statistics_only: false,
        }
    }

    /// y = γ (x − μ) / √(σ² + ε) + β per channel of x [N, C, H, W].
    ///
    /// Computed on x viewed as [N·C, H·W] rows with per-row scale and shift:
    /// CPU backends broadcast 2-D tensors far faster than 4-D ones.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.batch_statistics_always && flex::supports::<B>() {
            // γ = 1 and β = 0 are never trained in this mode: y = x̂.
            return flex::normalize(x, EPSILON);
        }
        let [n, c, h, w] = x.dims();
        let rows = x.reshape([n * c, h * w]);
        let per_row = |v: Tensor<B, 1>| v.reshape([1, c]).repeat_dim(0, n).reshape([n * c, 1]);
        // Σ over pixels, then over images, as 2-D reductions: their backward
        // broadcasts stay 2-D too (a 3-D `mean_dims` backward is ~20% of a step).
        let channel_mean = |t: Tensor<B, 2>| {
            let count = (n * h * w) as f64;
            t.sum_dim(1)
                .reshape([n, c])
                .sum_dim(0)
                .reshape([c])
                .div_scalar(count)
        };
        let training = B::ad_enabled(&rows.device()) && !self.running_statistics_only;
        let (centred, var) = if self.batch_statistics_always || training {
            let mean = channel_mean(rows.clone());
            let centred = rows - per_row(mean.clone());
            let var = channel_mean(centred.clone().powi_scalar(2));
            if training && !self.batch_statistics_always {
                self.update_running(mean, var.clone(), n * h * w);
            }
            (centred, var)
        } else {
            (
                rows - per_row(self.running_mean.value()),
                self.running_var.value(),
            )
        };
        let scale = self.gamma.val() / var.add_scalar(EPSILON).sqrt();
        (centred * per_row(scale) + per_row(self.beta.val())).reshape([n, c, h, w])
    }

    /// max(N(x), 0): the ReLU after the normalisation, in the same pass on
    /// the CPU in `paper` mode.
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.batch_statistics_always && flex::supports::<B>() {
            return flex::normalize_relu(x, EPSILON);
        }
        relu(self.forward(x))
    }

    fn update_running(&self, mean: Tensor<B, 1>, var: Tensor<B, 1>, count: usize) {
        let count = count as f64;
        let unbiased = var.detach().mul_scalar(count / (count - 1.0).max(1.0));
        let blend = |old: Tensor<B, 1>, new: Tensor<B, 1>| {
            old.mul_scalar(1.0 - MOMENTUM) + new.mul_scalar(MOMENTUM)
        };
        let device = mean.device();
        self.running_mean.update(blend(
            self.running_mean.value_sync().to_device(&device),
            mean.detach(),
        ));
        self.running_var.update(blend(
            self.running_var.value_sync().to_device(&device),
            unbiased,
        ));
    }
}
