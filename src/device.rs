//! Choosing the backend: Flex on the CPU, CubeCL on an NVIDIA GPU. The model
//! and training code are generic; this is the one place that names backends.

use crate::config::Device;
use crate::error::Failure;
use anyhow::Result;
use burn::backend::{cuda::CudaDevice, Autodiff, Cuda, Flex};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

pub type CpuBackend = Autodiff<Flex>;
pub type CudaBackend = Autodiff<Cuda>;

/// A resolved device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    Cpu,
    Cuda,
}

impl Accelerator {
    pub fn label(self) -> &'static str {
        match self {
            Accelerator::Cpu => "cpu (burn-flex)",
            Accelerator::Cuda => "cuda:0 (burn-cuda)",
        }
    }
}

/// Work that runs on whichever backend was chosen.
pub trait BackendTask {
    type Output;
    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        accelerator: Accelerator,
    ) -> Result<Self::Output>;
}

/// Whether a CUDA device answers: the driver is loaded at run time, so the
/// only reliable test is to put a tensor on it (panics are caught and hushed).
pub fn cuda_available() -> bool {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = std::panic::catch_unwind(|| {
        Tensor::<Cuda, 1>::ones([1], &CudaDevice::default()).into_data();
    })
    .is_ok();
    std::panic::set_hook(hook);
    ok
}

/// `cpu` and `cuda` as asked (CUDA must answer), `auto` = CUDA when present.
pub fn resolve(requested: Device) -> Result<Accelerator> {
    match requested {
        Device::Cpu => Ok(Accelerator::Cpu),
        Device::Cuda if cuda_available() => Ok(Accelerator::Cuda),
        Device::Cuda => Err(Failure::Device(
            "CUDA was asked for (device = \"cuda\") but no CUDA device answers on this machine \
             (is the NVIDIA driver loaded, and CUDA_PATH set to the toolkit?); use device = \"cpu\" or \"auto\""
                .into(),
        )
        .into()),
        Device::Auto => Ok(if cuda_available() { Accelerator::Cuda } else { Accelerator::Cpu }),
    }
}

/// Runs `task` on the backend of `accelerator`.
pub fn dispatch<T: BackendTask>(accelerator: Accelerator, task: T) -> Result<T::Output> {
    match accelerator {
        Accelerator::Cpu => task.run::<CpuBackend>(Default::default(), accelerator),
        Accelerator::Cuda => task.run::<CudaBackend>(CudaDevice::default(), accelerator),
    }
}
