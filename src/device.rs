//! Choosing the backend: Flex on the CPU, CubeCL on an NVIDIA GPU, and, in a
//! build with the `tch` feature, LibTorch (burn-tch) on the CPU or a GPU. The
//! model and training code are generic; this is the one place that names
//! backends.

use crate::config::Device;
use crate::error::Failure;
use anyhow::Result;
use burn::backend::{cuda::CudaDevice, Autodiff, Cuda, Flex};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

pub type CpuBackend = Autodiff<Flex>;
pub type CudaBackend = Autodiff<Cuda>;
#[cfg(feature = "tch")]
pub type TchBackend = Autodiff<burn::backend::LibTorch<f32>>;

/// A resolved device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    Cpu,
    Cuda,
    /// LibTorch on the CPU (`None`) or on CUDA device N.
    Tch(Option<usize>),
}

impl Accelerator {
    /// The device and its backend, as run.json and the logs name them.
    pub fn label(self) -> String {
        match self {
            Accelerator::Cpu => "cpu (burn-flex)".into(),
            Accelerator::Cuda => "cuda:0 (burn-cuda)".into(),
            Accelerator::Tch(None) => "cpu (burn-tch, LibTorch)".into(),
            Accelerator::Tch(Some(n)) => format!("cuda:{n} (burn-tch, LibTorch)"),
        }
    }

    /// Whether the device may multiply float32 as TF32: CubeCL's matrix
    /// products do on Ampere and later, and so do LibTorch's cuDNN
    /// convolutions (PyTorch's default `allow_tf32` for cuDNN).
    pub fn may_use_tf32(self) -> bool {
        matches!(self, Accelerator::Cuda | Accelerator::Tch(Some(_)))
    }
}

/// Work that runs on whichever backend was chosen.
pub trait BackendTask: Send {
    type Output: Send;
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

/// Starts the global thread pool with workers that have a main thread's
/// stack (8 MiB, not the 2 MiB of a spawned thread): [`dispatch`] runs a
/// whole CPU task on one of them. The thread count is rayon's
/// (`RAYON_NUM_THREADS`, else one per core). Call it first thing in `main`,
/// before anything uses the pool.
pub fn start_thread_pool() {
    const STACK: usize = 8 << 20;
    rayon::ThreadPoolBuilder::new()
        .stack_size(STACK)
        .build_global()
        .expect("the global thread pool is started once, before its first use");
}

/// Whether `device` answers: drivers and libraries are loaded at run time,
/// so the only reliable test is to put a tensor on it (panics are caught and
/// hushed).
fn answers<B: Backend>(device: &B::Device) -> bool {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Tensor::<B, 1>::ones([1], device).into_data();
    }))
    .is_ok();
    std::panic::set_hook(hook);
    ok
}

/// Whether a CUDA device answers to CubeCL.
pub fn cuda_available() -> bool {
    answers::<Cuda>(&CudaDevice::default())
}

/// `cpu`, `cuda` and the LibTorch devices as asked (a GPU must answer),
/// `auto` = CubeCL's CUDA when present, else the CPU.
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
        Device::Tch => resolve_tch(None),
        Device::TchCuda(n) => resolve_tch(Some(n)),
    }
}

#[cfg(feature = "tch")]
fn resolve_tch(cuda: Option<usize>) -> Result<Accelerator> {
    use burn::backend::libtorch::LibTorchDevice;
    let device = cuda.map_or(LibTorchDevice::Cpu, LibTorchDevice::Cuda);
    match cuda {
        Some(n) if !answers::<burn::backend::LibTorch<f32>>(&device) => {
            Err(Failure::Device(format!(
                "LibTorch's CUDA device {n} was asked for (device = \"{}\") but does not answer: \
             is the NVIDIA driver loaded, does the PyTorch this binary was built against have \
             CUDA, and is there a GPU {n}?",
                Device::TchCuda(n)
            ))
            .into())
        }
        _ => Ok(Accelerator::Tch(cuda)),
    }
}

#[cfg(not(feature = "tch"))]
fn resolve_tch(cuda: Option<usize>) -> Result<Accelerator> {
    let asked = cuda.map_or(Device::Tch, Device::TchCuda);
    Err(Failure::Device(format!(
        "device = \"{asked}\" runs on LibTorch, and this imex-run was built without it: \
         build with the `tch` feature against PyTorch 2.9 \
         (LIBTORCH_USE_PYTORCH=1 cargo build --release --features tch; README, \"LibTorch\")"
    ))
    .into())
}

/// Runs `task` on the backend of `accelerator`.
pub fn dispatch<T: BackendTask>(accelerator: Accelerator, task: T) -> Result<T::Output> {
    match accelerator {
        // On one of the thread pool's workers: the kernels' parallel loops
        // then start and end without handing work between the calling thread
        // and the pool (two thread wake-ups per loop, a hundred loops a step).
        Accelerator::Cpu => {
            rayon::scope(|_| task.run::<CpuBackend>(Default::default(), accelerator))
        }
        Accelerator::Cuda => task.run::<CudaBackend>(CudaDevice::default(), accelerator),
        #[cfg(feature = "tch")]
        Accelerator::Tch(cuda) => {
            use burn::backend::libtorch::LibTorchDevice;
            let device = cuda.map_or(LibTorchDevice::Cpu, LibTorchDevice::Cuda);
            task.run::<TchBackend>(device, accelerator)
        }
        #[cfg(not(feature = "tch"))]
        Accelerator::Tch(_) => unreachable!("resolve refuses LibTorch devices without the feature"),
    }
}
