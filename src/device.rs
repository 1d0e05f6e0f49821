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

/// Keeps freed tensor memory in the process instead of handing it back to the
/// kernel. Every CPU training step frees and reallocates the same few-MB
/// tensors; glibc serves blocks above its mmap threshold (128 KiB, adapted
/// upwards only slowly) with mmap and munmap, so each step page-faulted its
/// tensors back in: 25–30% of a narrow IMEX step (BENCHMARKS.md). Blocks up to
/// 32 MiB (glibc's ceiling for this threshold) now come from the heap, and the
/// heap is not trimmed. Call it first thing in `main`, before threads start.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two allocator thresholds; it is called before
    // any other thread exists, and both values are within glibc's ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
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
