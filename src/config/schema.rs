//! The experiment's sections, keys, defaults and types, and the schema
//! derived from them.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::de::{self, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resolved experiment: every key explicit, every value validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub experiment: ExperimentSection,
    pub model: ModelSection,
    #[serde(default)]
    pub data: DataSection,
    #[serde(default)]
    pub training: TrainingSection,
}

/// `[experiment]`: what the run is called, where it goes, what it runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    /// Required. Names the run folder `output_dir/name`, hence `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// Seeds weight initialisation and shuffling.
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "defaults::output_dir")]
    pub output_dir: PathBuf,
    #[serde(default)]
    pub device: Device,
}

/// `[model]`: the network. Field meanings follow Haber et al. (2019).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Required: IMEXnet or its ResNet baseline.
    pub arch: Arch,
    /// What the head predicts: class scores or depth. Chooses the head's
    /// width, the loss, the metrics and the columns of metrics.csv.
    #[serde(default)]
    pub task: Task,
    /// Channels of each resolution level.
    #[serde(default = "defaults::widths")]
    pub widths: Vec<usize>,
    /// Blocks per level; one entry per entry of `widths`.
    #[serde(default = "defaults::depths")]
    pub depths: Vec<usize>,
    /// Step size of each block, > 0.
    #[serde(default = "defaults::one")]
    pub h: f64,
    /// Strength of the implicit step (scales the operator L), >= 0.
    #[serde(default = "defaults::one")]
    pub alpha: f64,
    #[serde(default)]
    pub operator: Operator,
    #[serde(default)]
    pub form: Form,
    #[serde(default)]
    pub batchnorm: BatchNormMode,
    #[serde(default = "defaults::in_channels")]
    pub in_channels: usize,
    /// Classes of a segmentation task (the depth head has one channel).
    #[serde(default = "defaults::n_classes")]
    pub n_classes: usize,
    /// Convolution kernels start as U[0,1) * this.
    #[serde(default = "defaults::small_init")]
    pub kernel_init_scale: f64,
    /// The learned operator's depthwise C starts as U[0,1) * this.
    #[serde(default = "defaults::one")]
    pub operator_init_scale: f64,
    /// The classifier starts as U[0,1) * this.
    #[serde(default = "defaults::small_init")]
    pub classifier_init_scale: f64,
}

/// `[data]`: where the images are and how many to generate / use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    pub dataset: Dataset,
    /// Folder in the authors' layout.
    pub path: PathBuf,
    /// Create `path` with the seeded generator when it does not exist.
    pub generate: bool,
    pub generator_seed: u64,
    pub train_size: usize,
    pub val_size: usize,
    /// Side of generated images, >= 8 so that three poolings leave a pixel.
    pub image_size: usize,
    /// Use only the first N training images; 0 = all.
    pub train_limit: usize,
    /// RGB-D sets: official split file (`splits.mat` with `trainNdxs` and
    /// `testNdxs`, 1-based, or a text file of the 1-based test indices); empty
    /// = the split column of the CSV, else a seeded split.
    pub split_file: PathBuf,
    /// RGB-D sets without a split file: seeds the permutation that picks
    /// `val_size` validation and then `train_size` training frames.
    pub split_seed: u64,
    /// RGB-D sets: centre crop (in source pixels) before resizing; 0 = none.
    pub crop_height: usize,
    pub crop_width: usize,
    /// RGB-D sets: size the (cropped) frames are resized to; 0 = as they are.
    /// The synthetic set is rendered at this size.
    pub height: usize,
    pub width: usize,
    /// RGB-D sets: flip each training image (and its depth) left-right with
    /// probability 1/2, seeded by experiment.seed and the epoch.
    pub flip: bool,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            dataset: Dataset::Qtips,
            path: PathBuf::from("data/qtips"),
            generate: true,
            generator_seed: 0,
            train_size: 1024,
            val_size: 64,
            image_size: 64,
            train_limit: 0,
            split_file: PathBuf::new(),
            split_seed: 0,
            crop_height: 0,
            crop_width: 0,
            height: 0,
            width: 0,
            flip: false,
        }
    }
}

/// `[training]`: optimiser, loss weighting, schedule, checkpoint rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingSection {
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    /// How the learning rate changes from epoch to epoch.
    pub lr_schedule: LrSchedule,
    /// `cosine`: the rate it decays towards (PyTorch's `eta_min`).
    pub lr_min: f64,
    /// `step`: epochs between two decays (PyTorch's `StepLR.step_size`).
    pub lr_step_epochs: usize,
    /// `step`: the factor of each decay (`StepLR.gamma`).
    pub lr_gamma: f64,
    /// SGD momentum in [0, 1); must stay 0 with Adam, which has its own.
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub class_weights: ClassWeights,
    /// Matters in `batchnorm = "paper"` mode, which uses batch statistics at
    /// evaluation too.
    pub eval_batch_size: usize,
    /// Each parameter tensor's gradient is clipped to this L2 norm on its
    /// own (Burn's `GradientClipping::Norm`), not to a global norm as
    /// `torch.nn.utils.clip_grad_norm_` does; 0 = off.
    pub grad_clip_norm: f64,
    pub checkpoint: CheckpointRule,
    /// "auto": cross-entropy for segmentation, l1 for depth.
    pub loss: Loss,
    /// Weight λ of the scale-invariant log loss (Eigen et al. 2014):
    /// mean(g²) − λ·mean(g)², g = log(pred) − log(depth), per image.
    pub silog_lambda: f64,
}

impl Default for TrainingSection {
    fn default() -> Self {
        TrainingSection {
            optimizer: OptimizerKind::Sgd,
            learning_rate: 1e-3,
            lr_schedule: LrSchedule::Constant,
            lr_min: 0.0,
            lr_step_epochs: 30,
            lr_gamma: 0.1,
            momentum: 0.0,
            weight_decay: 0.0,
            batch_size: 8,
            epochs: 100,
            class_weights: ClassWeights::Auto,
            eval_batch_size: 8,
            grad_clip_norm: 0.0,
            checkpoint: CheckpointRule::BestValLoss,
            loss: Loss::Auto,
            silog_lambda: 0.5,
        }
    }
}

/// Defaults of the sections that have required keys (and so no `Default`).
mod defaults {
    use std::path::PathBuf;

    pub fn output_dir() -> PathBuf {
        PathBuf::from("results")
    }
    pub fn widths() -> Vec<usize> {
        vec![64, 128, 256]
    }
    pub fn depths() -> Vec<usize> {
        vec![4, 4, 4]
    }
    pub fn one() -> f64 {
        1.0
    }
    pub fn small_init() -> f64 {
        1e-3
    }
    pub fn in_channels() -> usize {
        1
    }
    pub fn n_classes() -> usize {
        4
    }
}

/// Where to train: Burn's own backends (Flex on the CPU, CubeCL on an NVIDIA
/// GPU), or LibTorch through burn-tch (a build with the `tch` feature).
/// Written as `"cpu"`, `"cuda"`, `"auto"`, `"tch"` or `"tch-cuda[:N]"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
    /// CUDA when available, else CPU.
    Auto,
    /// LibTorch on the CPU.
    Tch,
    /// LibTorch on CUDA device N.
    TchCuda(usize),
}

impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let index = |n: &str| n.parse::<usize>().ok();
        match text {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            "auto" => Ok(Device::Auto),
            "tch" => Ok(Device::Tch),
            "tch-cuda" => Ok(Device::TchCuda(0)),
            _ => text
                .strip_prefix("tch-cuda:")
                .and_then(index)
                .map(Device::TchCuda)
                // Serde's wording, so that the message names the choices and
                // suggests the nearest (config::messages).
                .ok_or_else(|| {
                    format!(
                        "unknown variant `{text}`, expected one of `cpu`, `cuda`, `auto`, \
                         `tch`, `tch-cuda`, `tch-cuda:N`"
                    )
                }),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda => f.write_str("cuda"),
            Device::Auto => f.write_str("auto"),
            Device::Tch => f.write_str("tch"),
            Device::TchCuda(0) => f.write_str("tch-cuda"),
            Device::TchCuda(n) => write!(f, "tch-cuda:{n}"),
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Device> for String {
    fn from(device: Device) -> String {
        device.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Imex,
    Resnet,
}

impl Arch {
    /// The network's name in logs, tables and figures.
    pub fn display_name(self) -> &'static str {
        match self {
            Arch::Imex => "IMEXnet",
            Arch::Resnet => "ResNet",
        }
    }

    /// The spelling of `model.arch` in experiment files ("imex", "resnet").
    pub fn config_name(self) -> &'static str {
        match self {
            Arch::Imex => "imex",
            Arch::Resnet => "resnet",
        }
    }
}

/// The operator L of the implicit step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// L = C^T C with a learned depthwise convolution C.
    #[default]
    Learned,
    /// Fixed 9-point Laplacian stencil.
    Laplacian,
    /// L = alpha * I.
    Identity,
}

/// How the IMEX step is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// As in the authors' code.
    #[default]
    Damped,
    /// As in the slides.
    Split,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchNormMode {
    /// The authors' semantics: batch statistics always, affine not trained.
    #[default]
    Paper,
    /// Running statistics at evaluation, trained affine.
    Standard,
}

/// What the network predicts for every pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Class scores (`model.n_classes` channels), cross-entropy, IoU.
    #[default]
    Segmentation,
    /// Depth in metres (one channel, normalised log-depth), a regression
    /// loss, RMSE / AbsRel / log10 / δ thresholds.
    Depth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// Q-tips (segmentation), the authors' layout, generated on demand.
    #[default]
    Qtips,
    /// Rendered rooms with exact depth (RGB-D), generated in memory.
    SyntheticRgbd,
    /// NYU Depth V2's `nyu_depth_v2_labeled.mat` (MATLAB v7.3 / HDF5).
    NyuMat,
    /// A CSV of (RGB PNG, 16-bit depth PNG in millimetres) pairs.
    RgbdPng,
}

impl Dataset {
    /// The task the data set's targets are for.
    pub fn task(self) -> Task {
        match self {
            Dataset::Qtips => Task::Segmentation,
            Dataset::SyntheticRgbd | Dataset::NyuMat | Dataset::RgbdPng => Task::Depth,
        }
    }

    /// Channels of its images.
    pub fn channels(self) -> usize {
        match self.task() {
            Task::Segmentation => 1,
            Task::Depth => 3,
        }
    }
}

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Cross-entropy for segmentation, l1 for depth.
    #[default]
    Auto,
    /// Class-weighted cross-entropy (segmentation).
    CrossEntropy,
    /// Mean |pred − depth| in metres.
    L1,
    /// Mean (pred − depth)² in m².
    L2,
    /// Scale-invariant log loss, see `training.silog_lambda`.
    Silog,
}

impl Loss {
    /// `auto` resolved for `task`.
    pub fn resolve(self, task: Task) -> Loss {
        match (self, task) {
            (Loss::Auto, Task::Segmentation) => Loss::CrossEntropy,
            (Loss::Auto, Task::Depth) => Loss::L1,
            (loss, _) => loss,
        }
    }
}

impl ModelSection {
    /// Channels of the 1×1 head: the classes, or one for depth.
    pub fn head_width(&self) -> usize {
        match self.task {
            Task::Segmentation => self.n_classes,
            Task::Depth => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    #[default]
    Sgd,
    Adam,
}

/// Per-class loss weights: `"auto"`, `"none"` or an explicit array.
///
/// (De)serialised by hand rather than `#[serde(untagged)]`, whose error for a
/// wrong string ("data did not match any variant") says nothing useful.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ClassWeights {
    /// 1 - class frequency of the training split.
    #[default]
    Auto,
    /// All classes weigh 1.
    None,
    /// One non-negative weight per class, not all zero.
    Explicit(Vec<f64>),
}

/// The learning rate of each epoch, set at the epoch's start (PyTorch's
/// schedulers stepped once per epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// `learning_rate` throughout.
    #[default]
    Constant,
    /// Half a cosine from `learning_rate` towards `lr_min` over the run
    /// (`CosineAnnealingLR` with `T_max = epochs`):
    /// lr_e = lr_min + (lr − lr_min)·(1 + cos(π(e−1)/epochs))/2.
    Cosine,
    /// Multiplied by `lr_gamma` every `lr_step_epochs` epochs (`StepLR`):
    /// lr_e = lr·gamma^⌊(e−1)/step⌋.
    Step,
}

impl TrainingSection {
    /// The learning rate of epoch `epoch` (1-based) under the schedule.
    pub fn learning_rate_at(&self, epoch: usize) -> f64 {
        let done = epoch.saturating_sub(1);
        match self.lr_schedule {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Cosine => {
                let phase = std::f64::consts::PI * done as f64 / self.epochs as f64;
                self.lr_min + (self.learning_rate - self.lr_min) * (1.0 + phase.cos()) / 2.0
            }
            LrSchedule::Step => {
                let decays = (done / self.lr_step_epochs) as i32;
                self.learning_rate * self.lr_gamma.powi(decays)
            }
        }
    }
}

/// Which epoch's weights are kept as "best".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointRule {
    #[default]
    BestValLoss,
    /// The authors' rule.
    LowestTrainLoss,
}

impl Serialize for ClassWeights {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ClassWeights::Auto => s.serialize_str("auto"),
            ClassWeights::None => s.serialize_str("none"),
            ClassWeights::Explicit(w) => w.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ClassWeights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ClassWeightsVisitor;

        impl<'de> Visitor<'de> for ClassWeightsVisitor {
            type Value = ClassWeights;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"auto\", \"none\" or an array of per-class weights")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ClassWeights, E> {
                match v {
                    "auto" => Ok(ClassWeights::Auto),
                    "none" => Ok(ClassWeights::None),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClassWeights, A::Error> {
                let mut weights = Vec::new();
                while let Some(w) = seq.next_element::<f64>()? {
                    weights.push(w);
                }
                Ok(ClassWeights::Explicit(weights))
            }
        }

        d.deserialize_any(ClassWeightsVisitor)
    }
}

/// Keys without a default: (section, key, placeholder value, what is expected).
/// The placeholder only serves to build [`schema`].
pub(super) const REQUIRED: [(&str, &str, &str, &str); 2] = [
    (
        "experiment",
        "name",
        "\"run\"",
        "a run name of letters, digits, `_`, `.` and `-`",
    ),
    ("model", "arch", "\"imex\"", "\"imex\" or \"resnet\""),
];

/// Every valid section and key, each with its default value (required keys get
/// their placeholder): the default config, serialised. Deriving it keeps the
/// unknown-key check and the override typing in step with the structs.
pub(super) fn schema() -> &'static toml::Table {
    static SCHEMA: OnceLock<toml::Table> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let minimal: String = REQUIRED
            .iter()
            .map(|(section, key, placeholder, _)| format!("[{section}]\n{key} = {placeholder}\n"))
            .collect();
        let defaults: Config = toml::from_str(&minimal).expect("required keys suffice");
        toml::Table::try_from(&defaults).expect("the default config serialises")
    })
}

impl Config {
    /// The resolved config as TOML, every key explicit and defaults filled in,
    /// so a run folder records exactly what ran: `parse(to_toml()) == self`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config (strings, numbers, arrays) is valid TOML")
    }

    /// The run folder, `output_dir/name`.
    pub fn run_dir(&self) -> PathBuf {
        self.experiment.output_dir.join(&self.experiment.name)
    }
}
