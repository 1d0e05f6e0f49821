//! IMEXnet and its ResNet baseline, with the authors' exact semantics.
//!
//! Blocks (width wᵦ, depth dᵦ) give one *opening* layer c_prev → wᵦ and
//! dᵦ − 1 *same-width* layers. With σ = ReLU and N = BatchNorm:
//!
//! ```text
//! opening     Y ← σ(N(K Y))
//! ResNet      Y ← Y + h Kᵀ σ(N(K Y))
//! IMEX damped Y ← (I + hαL)⁻¹ N(Y + h Kᵀ σ(N(K Y)))      (authors' code)
//! IMEX split  Y ← Y + (I + hαL)⁻¹ h Kᵀ σ(N(K Y))         (slides)
//! classifier  logits = W Y   (1×1, no bias)
//! ```
//!
//! The same N (one BatchNorm per layer) serves both calls of an IMEX layer.

use super::batchnorm::BatchNorm;
use super::explicit::{adjoint_residual, conv3x3, conv3x3_adjoint, project_zero_mean};
use super::flex;
use super::implicit::FourierBasis;
use super::param::param;
use crate::config::{Arch, BatchNormMode, Form, ModelSection, Operator};
use burn::module::{Module, Param};
use burn::tensor::{activation::log_softmax, backend::Backend, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The fixed 9-point Laplacian stencil of the authors' code, used directly as L.
pub const LAPLACIAN_STENCIL: [f32; 9] = {
    const S: f32 = 1e-2 / 6.0;
    [
        -S,
        -4.0 * S,
        -S,
        -4.0 * S,
        20.0 * S,
        -4.0 * S,
        -S,
        -4.0 * S,
        -S,
    ]
};

/// (input channels, output channels) of every layer, block by block.
pub fn layer_table(spec: &ModelSection) -> Vec<(usize, usize)> {
    let mut layers = Vec::new();
    let mut previous = spec.in_channels;
    for (&width, &depth) in spec.widths.iter().zip(&spec.depths) {
        layers.push((previous, width));
        layers.extend(std::iter::repeat_n((width, width), depth - 1));
        previous = width;
    }
    layers
}

/// One layer: the kernel K, its BatchNorm and, for a learned implicit
/// operator, the depthwise kernel C of L = CᵀC.
#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    pub kernel: Param<Tensor<B, 4>>,
    pub bn: BatchNorm<B>,
    pub operator_kernel: Option<Param<Tensor<B, 4>>>,
    /// Opening layers change the channel count and have no residual.
    pub opening: bool,
}

#[derive(Module, Debug)]
pub struct Network<B: Backend> {
    pub layers: Vec<Layer<B>>,
    /// 1×1 head W, [head width, C_last]: class scores, or one depth channel.
    pub classifier: Param<Tensor<B, 2>>,
    #[module(skip)]
    pub spec: ModelSection,
}

/// log p(class) per pixel of head outputs `logits` [N, classes, H, W] (a
/// log-softmax over axis 1), in one pass each way on the CPU.
pub fn log_probabilities<B: Backend>(logits: Tensor<B, 4>) -> Tensor<B, 4> {
    if flex::supports::<B>() {
        return flex::log_softmax(logits);
    }
    log_softmax(logits, 1)
}

/// Trainable weights used by the forward pass, and the paper's own count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamCounts {
    /// Σ 9·c_in·c_out over all K.
    pub kernels: usize,
    /// Σ 9·C over learned depthwise operator kernels C.
    pub operator: usize,
    /// head width (n_classes, or 1 for depth) · C_last.
    pub classifier: usize,
    /// kernels + operator + classifier.
    pub total: usize,
    /// The authors' `num_params()`: K plus 9·c_in for every layer whose input
    /// width is not the first layer of that input width (classifier left out).
    pub paper_counting: usize,
}

impl ParamCounts {
    pub fn of(spec: &ModelSection) -> Self {
        let table = layer_table(spec);
        let imex = spec.arch == Arch::Imex;
        let kernels: usize = table.iter().map(|(i, o)| 9 * i * o).sum();
        let operator = if imex && spec.operator == Operator::Learned {
            table
                .iter()
                .filter(|(i, o)| i == o)
                .map(|(_, o)| 9 * o)
                .sum()
        } else {
            0
        };
        let classifier = spec.head_width() * table.last().map_or(0, |l| l.1);
        let mut seen = Vec::new();
        let mut authors_implicit = 0;
        for &(c_in, _) in &table {
            if seen.contains(&c_in) {
                authors_implicit += 9 * c_in;
            } else {
                seen.push(c_in);
            }
        }
        Self {
            kernels,
            operator,
            classifier,
            total: kernels + operator + classifier,
            paper_counting: kernels + if imex { authors_implicit } else { 0 },
        }
    }
}

/// Ids: W is 1; layer j's K, C, γ, β are 100(j+1) + 0, 1, 2, 3.
fn layer_id(j: usize) -> u64 {
    100 * (j as u64 + 1)
}

/// U[0, 1)·scale, drawn on the host so that a seed gives the same weights on every device.
fn uniform<B: Backend, const D: usize>(
    rng: &mut ChaCha8Rng,
    shape: [usize; D],
    scale: f64,
    device: &B::Device,
) -> Tensor<B, D> {
    let values: Vec<f32> = (0..shape.iter().product())
        .map(|_| (rng.gen::<f64>() * scale) as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

impl<B: Backend> Network<B> {
    /// The authors' initialisation: K ~ U[0,1)·s_K, projected to zero mean
    /// (every layer, once); C ~ U[0,1)·s_C; W ~ U[0,1)·s_W; γ = 1, β = 0.
    pub fn new(spec: &ModelSection, seed: u64, device: &B::Device) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let paper_bn = spec.batchnorm == BatchNormMode::Paper;
        let learned_operator = spec.arch == Arch::Imex && spec.operator == Operator::Learned;
        let layers = layer_table(spec)
            .into_iter()
            .enumerate()
            .map(|(j, (c_in, c_out))| {
                let kernel = uniform(
                    &mut rng,
                    [c_out, c_in, 3, 3],
                    spec.kernel_init_scale,
                    device,
                );
                let opening = c_in != c_out;
                let operator_kernel = (learned_operator && !opening).then(|| {
                    let c = uniform(&mut rng, [c_out, 1, 3, 3], spec.operator_init_scale, device);
                    param(layer_id(j) + 1, c)
                });
                Layer {
                    kernel: param(layer_id(j), project_zero_mean(kernel)),
                    bn: BatchNorm::new(c_out, paper_bn, layer_id(j) + 2, device),
                    operator_kernel,
                    opening,
                }
            })
            .collect::<Vec<_>>();
        let c_last = layer_table(spec).last().map_or(spec.in_channels, |l| l.1);
        let classifier = uniform(
            &mut rng,
            [spec.head_width(), c_last],
            spec.classifier_init_scale,
            device,
        );
        Self {
            layers,
            classifier: param(1, classifier),
            spec: spec.clone(),
        }
    }

    /// Projected SGD: same-width K and C back to zero mean, outside autodiff,
    /// so that gradients are taken at the projected kernels (as the authors).
    pub fn project_kernels(mut self) -> Self {
        let project = |p: Param<Tensor<B, 4>>| {
            p.map(|k| {
                let grad = k.is_require_grad();
                project_zero_mean(k.set_require_grad(false)).set_require_grad(grad)
            })
        };
        self.layers = self
            .layers
            .into_iter()
            .map(|mut layer| {
                if !layer.opening {
                    layer.kernel = project(layer.kernel);
                    layer.operator_kernel = layer.operator_kernel.map(project);
                }
                layer
            })
            .collect();
        self
    }

    /// The network as it evaluates, also under autodiff: BN in `standard`
    /// mode uses its running statistics and leaves them unchanged (`paper`
    /// mode keeps batch statistics, as the authors evaluate).
    pub fn evaluating(mut self) -> Self {
        for layer in &mut self.layers {
            layer.bn.running_statistics_only = true;
        }
        self
    }

    /// Head output [N, head width, H, W] of images x [N, in_channels, H, W].
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.classify(self.features(x))
    }

    /// The state after the last layer, [N, C_last, H, W].
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.state_after(x, self.layers.len() - 1)
    }

    /// The state Y_j after layer j (0-based), [N, C_j, H, W].
    pub fn state_after(&self, x: Tensor<B, 4>, j: usize) -> Tensor<B, 4> {
        let basis = self.fourier_basis(&x);
        self.layers[..=j]
            .iter()
            .fold(x, |x, layer| self.layer_forward(layer, x, basis.as_ref()))
    }

    /// The state Y_j after every layer j, [N, C_j, H, W] each.
    pub fn states(&self, x: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        let basis = self.fourier_basis(&x);
        self.layers
            .iter()
            .scan(x, |x, layer| {
                *x = self.layer_forward(layer, x.clone(), basis.as_ref());
                Some(x.clone())
            })
            .collect()
    }

    /// The transforms the implicit solves of images like `x` need, if any.
    fn fourier_basis(&self, x: &Tensor<B, 4>) -> Option<FourierBasis<B>> {
        let [_, _, height, width] = x.dims();
        let implicit = self.spec.arch == Arch::Imex;
        (implicit && self.spec.operator != Operator::Identity)
            .then(|| FourierBasis::<B>::new(height, width, &x.device()))
    }

    fn layer_forward(
        &self,
        layer: &Layer<B>,
        x: Tensor<B, 4>,
        basis: Option<&FourierBasis<B>>,
    ) -> Tensor<B, 4> {
        let kernel = layer.kernel.val();
        let activated = layer.bn.forward_relu(conv3x3(x.clone(), kernel.clone()));
        if layer.opening {
            return activated;
        }
        let h = self.spec.h;
        match (self.spec.arch, self.spec.form) {
            (Arch::Resnet, _) => adjoint_residual(x, activated, kernel, h),
            (Arch::Imex, Form::Damped) => {
                let explicit = adjoint_residual(x, activated, kernel, h);
                self.implicit_solve(layer, layer.bn.forward(explicit), basis)
            }
            (Arch::Imex, Form::Split) => {
                let update = conv3x3_adjoint(activated, kernel).mul_scalar(h);
                x + self.implicit_solve(layer, update, basis)
            }
        }
    }

    /// (I + hαL)⁻¹ rhs for this layer's operator.
    fn implicit_solve(
        &self,
        layer: &Layer<B>,
        rhs: Tensor<B, 4>,
        basis: Option<&FourierBasis<B>>,
    ) -> Tensor<B, 4> {
        let h_alpha = self.spec.h * self.spec.alpha;
        let Some(basis) = basis else {
            // L = I: the solve is a division.
            return rhs.div_scalar(1.0 + h_alpha);
        };
        let lambda = match &layer.operator_kernel {
            Some(c) => basis.symbol_of_normal_operator(c.val()),
            None => {
                let stencil = TensorData::new(LAPLACIAN_STENCIL.to_vec(), [3, 3]);
                basis.symbol_of_stencil(Tensor::from_data(stencil, &rhs.device()))
            }
        };
        basis.solve(rhs, lambda, h_alpha)
    }

    /// Σ|w| over every weight, on the device: finite iff each weight is, so
    /// one number read back checks them all.
    pub fn weight_magnitude(&self) -> Tensor<B, 1> {
        let total = |t: Tensor<B, 4>| t.detach().abs().sum();
        self.layers
            .iter()
            .fold(total(self.classifier.val().unsqueeze()), |acc, layer| {
                let acc = acc + total(layer.kernel.val());
                match &layer.operator_kernel {
                    Some(c) => acc + total(c.val()),
                    None => acc,
                }
            })
    }

    /// logits = W Y, a 1×1 convolution without bias (for depth, the one
    /// channel of normalised log-depth).
    pub fn classify(&self, features: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, height, width] = features.dims();
        let k = self.spec.head_width();
        let w = self.classifier.val().unsqueeze::<3>();
        w.matmul(features.reshape([n, c, height * width]))
            .reshape([n, k, height, width])
    }
}
