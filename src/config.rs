//! The experiment file: schema, defaults, `--set` overrides and validation.
//!
//! An experiment is one TOML file (see the README for an annotated example). A
//! typo must never cost a training run, so every problem the user can fix is a
//! [`Failure::Config`] (exit code 2) whose message names the file, the line (or
//! the `--set` override the value came from) and the full dotted key, and says
//! what was expected.
//!
//! Loading runs four stages, each with its own kind of message:
//! 1. parse the text with `toml_edit`, which keeps spans (malformed TOML);
//! 2. apply the `--set section.key=value` overrides to the document;
//! 3. check the document's shape: unknown sections and keys get a "did you
//!    mean" suggestion, required keys must be present;
//! 4. deserialise with serde (wrong types, unknown enum strings), then check
//!    ranges and cross-field rules.
//!
//! The list of valid keys is not written by hand: it is the default config
//! serialised (see [`schema`]), so the structs below are the single source of
//! truth for names, defaults and types.

use std::collections::HashMap;
use std::fmt::{self, Debug, Display};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::de::{self, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml_edit::{DocumentMut, ImDocument, Item};

use crate::error::Failure;

// ---------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------

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

/// Where to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
    /// CUDA when available, else CPU.
    Auto,
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
const REQUIRED: [(&str, &str, &str, &str); 2] = [
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
fn schema() -> &'static toml::Table {
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

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

impl Config {
    /// Parse the file at `path`, apply `--set key=value` overrides, validate.
    /// Every error is a [`Failure::Config`] naming the file, line and key.
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Config(format!(
                "cannot read experiment file {}: {e}",
                path.display()
            ))
        })?;
        Config::parse(&text, &path.display().to_string(), overrides)
    }

    /// Same as [`Config::load`] from a string; `origin` is what messages call
    /// the file.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> anyhow::Result<Config> {
        parse_config(text, origin, overrides).map_err(|msg| Failure::Config(msg).into())
    }

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

/// `text` as a TOML document, or the message naming `origin`, the line and
/// what is malformed.
pub(crate) fn parse_toml<'a>(text: &'a str, origin: &str) -> Result<ImDocument<&'a str>, String> {
    ImDocument::parse(text).map_err(|e| {
        let line = e
            .span()
            .map_or(String::new(), |s| format!(":{}", line_of(text, s.start)));
        let message = e.message().trim_end().replace('\n', "; ");
        format!("{origin}{line}: malformed TOML: {message}")
    })
}

/// The four stages of the module doc; `Err` is the finished message.
fn parse_config(text: &str, origin: &str, overrides: &[String]) -> Result<Config, String> {
    let original = parse_toml(text, origin)?;
    let mut doc = original.clone().into_mut();
    let mut loc = Locator {
        origin,
        text,
        original,
        overrides: HashMap::new(),
    };
    for raw in overrides {
        let key =
            apply_override(&mut doc, raw).map_err(|why| format!("{origin}: --set {raw}: {why}"))?;
        loc.overrides.insert(key, raw.clone());
    }

    all_ok(check_shape(&doc, &loc))?;
    let resolved = doc.to_string();
    let config: Config = toml::from_str(&resolved).map_err(|e| loc.serde_error(&e, &resolved))?;
    all_ok(config.validate(&loc))?;
    Ok(config)
}

/// All messages at once, so one edit can fix every problem.
fn all_ok(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

// ---------------------------------------------------------------------------
// Where a value came from
// ---------------------------------------------------------------------------

/// Finds where a key's value came from: a line of the file, a `--set`
/// override, or nowhere (the default was used).
struct Locator<'a> {
    origin: &'a str,
    text: &'a str,
    /// The file as written; its spans give line numbers.
    original: ImDocument<&'a str>,
    /// Dotted key -> the override as typed; the last one for a key wins.
    overrides: HashMap<String, String>,
}

impl Locator<'_> {
    /// `FILE:LINE: key `k`: what`, `FILE: --set k=v: key `k`: what`, or
    /// `FILE: key `k` (default): what`. `key` is `section` or `section.key`.
    fn error(&self, key: &str, what: impl Display) -> String {
        let origin = self.origin;
        if let Some(raw) = self.overrides.get(key) {
            format!("{origin}: --set {raw}: key `{key}`: {what}")
        } else if let Some(line) = self.line(key) {
            format!("{origin}:{line}: key `{key}`: {what}")
        } else {
            format!("{origin}: key `{key}` (default): {what}")
        }
    }

    /// `FILE:LINE` of `key` in the file as written, or `FILE` when absent.
    fn at(&self, key: &str) -> String {
        match self.line(key) {
            Some(line) => format!("{}:{line}", self.origin),
            None => self.origin.to_owned(),
        }
    }

    /// 1-based line of `key` (where the key is written, else its value).
    fn line(&self, key: &str) -> Option<usize> {
        let (section, field) = match key.split_once('.') {
            Some((s, f)) => (s, Some(f)),
            None => (key, None),
        };
        let (mut k, mut item) = self.original.as_table().get_key_value(section)?;
        if let Some(field) = field {
            (k, item) = item.as_table_like()?.get_key_value(field)?;
        }
        let span = k.span().or_else(|| item.span())?;
        Some(line_of(self.text, span.start))
    }

    /// A serde error located by the key whose value holds the error's span in
    /// the resolved document (the file with overrides applied).
    fn serde_error(&self, e: &toml::de::Error, resolved: &str) -> String {
        let what = rephrase(e.message());
        match e.span().and_then(|s| key_at(resolved, s.start)) {
            Some(key) => self.error(&key, what),
            None => format!("{}: {what}", self.origin),
        }
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key (`section.key`, or `section` for a non-table section) whose
/// value spans `offset` in `text`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = ImDocument::parse(text).ok()?;
    let holds = |item: &Item| {
        item.span()
            .is_some_and(|s: Range<usize>| s.contains(&offset))
    };
    for (section, item) in doc.iter() {
        if let Some(table) = item.as_table_like() {
            if let Some((key, _)) = table.iter().find(|(_, value)| holds(value)) {
                return Some(format!("{section}.{key}"));
            }
        }
        if holds(item) {
            return Some(section.to_owned());
        }
    }
    None
}

/// Serde's wording, rephrased as "expected X, found Y" in TOML terms, with a
/// suggestion for a misspelt enum string.
fn rephrase(message: &str) -> String {
    let message = message.trim_end();
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        // "unknown variant `x`, expected `a` or `b`" / "expected one of `a`, `b`, `c`"
        let quoted: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        if let Some((found, variants)) = quoted.split_first() {
            let expected = one_of(variants.iter().map(|v| format!("\"{v}\"")).collect());
            let hint = nearest(found, variants.iter().copied())
                .map_or(String::new(), |v| format!(" (did you mean \"{v}\"?)"));
            return format!("expected {expected}, found \"{found}\"{hint}");
        }
    }
    if message == "wanted string or table" {
        // toml's wording for a non-string where an enum string belongs.
        return "expected a string (one of the allowed names)".to_owned();
    }
    let body = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    match body.and_then(|b| b.rsplit_once(", expected ")) {
        Some((found, expected)) => {
            let expected = match expected {
                "f64" => "a number",
                "usize" | "u64" => "a non-negative integer",
                "a sequence" => "an array",
                "a boolean" => "true or false",
                "path string" => "a string",
                other => other,
            };
            format!("expected {expected}, found {found}")
        }
        None => message.to_owned(),
    }
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(mut items: Vec<String>) -> String {
    match items.pop() {
        None => "nothing".to_owned(),
        Some(last) if items.is_empty() => last,
        Some(last) => format!("{} or {last}", items.join(", ")),
    }
}

/// The candidate closest to `word`, if close enough to be the intended one.
/// Jaro-Winkler favours shared prefixes, which is how keys get misspelt
/// (`learning_rat`, `batchsize`); 0.8 rejects unrelated names.
pub(crate) fn nearest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `, did you mean `model.h`?` or, with nothing close, the valid names.
fn did_you_mean(word: &str, candidates: &[&str], prefix: &str) -> String {
    match nearest(word, candidates.iter().copied()) {
        Some(c) => format!(", did you mean `{prefix}{c}`?"),
        None => {
            let all: Vec<String> = candidates
                .iter()
                .map(|c| format!("`{prefix}{c}`"))
                .collect();
            format!(" (valid: {})", all.join(", "))
        }
    }
}

/// The keys of a schema table, as candidates for [`did_you_mean`].
fn names(table: &toml::Table) -> Vec<&str> {
    table.keys().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------
// Overrides and shape
// ---------------------------------------------------------------------------

/// Applies one `section.key=value` override to `doc`, creating the section if
/// absent; returns the dotted key. `Err` says what is wrong with it.
fn apply_override(doc: &mut DocumentMut, raw: &str) -> Result<String, String> {
    let (path, text) = raw
        .split_once('=')
        .ok_or("malformed override, expected section.key=value (no `=`)")?;
    let path = path.trim();
    let (section, key) = path
        .split_once('.')
        .filter(|(s, k)| !s.is_empty() && !k.is_empty() && !k.contains('.'))
        .ok_or_else(|| {
            format!("malformed override, expected section.key=value, found key `{path}`")
        })?;

    let schema = schema();
    let Some(keys) = schema.get(section).and_then(toml::Value::as_table) else {
        let hint = did_you_mean(section, &names(schema), "");
        return Err(format!("unknown section `{section}`{hint}"));
    };
    let Some(default) = keys.get(key) else {
        let hint = did_you_mean(key, &names(keys), &format!("{section}."));
        return Err(format!("unknown key `{path}`{hint}"));
    };

    let table = doc
        .entry(section)
        .or_insert(toml_edit::table())
        .as_table_like_mut()
        .ok_or_else(|| format!("`{section}` in the file is not a table"))?;
    table.insert(key, Item::Value(override_value(text.trim(), default)));
    Ok(format!("{section}.{key}"))
}

/// Hydra-style typing: the text as a TOML value if it is one, else as a bare
/// string (`model.arch=resnet`). A key whose default is a string takes a
/// number, boolean or date literally (`experiment.name=2024`); arrays are kept
/// (`training.class_weights=[1,1,2,2]`).
fn override_value(text: &str, default: &toml::Value) -> toml_edit::Value {
    match text.parse::<toml_edit::Value>() {
        Ok(v) if default.is_str() && !(v.is_str() || v.is_array() || v.is_inline_table()) => {
            text.into()
        }
        Ok(v) => v,
        Err(_) => text.into(),
    }
}

/// Unknown sections and keys, sections that are not tables, missing required
/// keys: everything serde would report without a suggestion or a line.
fn check_shape(doc: &DocumentMut, loc: &Locator) -> Vec<String> {
    let schema = schema();
    let mut errors = Vec::new();
    for (section, item) in doc.iter() {
        let Some(keys) = schema.get(section).and_then(toml::Value::as_table) else {
            let hint = did_you_mean(section, &names(schema), "");
            errors.push(format!(
                "{}: unknown section `[{section}]`{hint}",
                loc.at(section)
            ));
            continue;
        };
        let Some(table) = item.as_table_like() else {
            let found = item.type_name();
            errors.push(loc.error(
                section,
                format!("expected a table `[{section}]`, found {found}"),
            ));
            continue;
        };
        for (key, _) in table.iter().filter(|(key, _)| !keys.contains_key(*key)) {
            let dotted = format!("{section}.{key}");
            let hint = did_you_mean(key, &names(keys), &format!("{section}."));
            errors.push(format!("{}: unknown key `{dotted}`{hint}", loc.at(&dotted)));
        }
    }
    for (section, key, _, expected) in REQUIRED {
        match doc.get(section).and_then(Item::as_table_like) {
            Some(table) if table.contains_key(key) => {}
            Some(_) => errors.push(format!(
                "{}: missing required key `{section}.{key}` in [{section}]: expected {expected}",
                loc.at(section)
            )),
            None if doc.contains_key(section) => {} // not a table: reported above
            None => errors.push(format!(
                "{}: missing required section [{section}] with key `{section}.{key}`: expected {expected}",
                loc.origin
            )),
        }
    }
    errors
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Collects range and cross-field errors, each located by its key.
struct Checks<'a> {
    loc: &'a Locator<'a>,
    errors: Vec<String>,
}

impl Checks<'_> {
    /// Unless `ok`: "key `key`: expected EXPECTED, found FOUND".
    fn check(&mut self, ok: bool, key: &str, expected: impl Display, found: impl Debug) {
        if !ok {
            let error = self
                .loc
                .error(key, format!("expected {expected}, found {found:?}"));
            self.errors.push(error);
        }
    }

    fn positive(&mut self, key: &str, v: f64) {
        self.check(v.is_finite() && v > 0.0, key, "a finite number > 0", v);
    }

    fn non_negative(&mut self, key: &str, v: f64) {
        self.check(v.is_finite() && v >= 0.0, key, "a finite number >= 0", v);
    }

    fn at_least(&mut self, key: &str, v: usize, min: usize) {
        self.check(v >= min, key, format_args!("an integer >= {min}"), v);
    }

    fn non_empty_path(&mut self, key: &str, p: &Path) {
        self.check(!p.as_os_str().is_empty(), key, "a non-empty path", p);
    }
}

impl Config {
    fn validate(&self, loc: &Locator) -> Vec<String> {
        let mut c = Checks {
            loc,
            errors: Vec::new(),
        };
        self.experiment.validate(&mut c);
        self.model.validate(&mut c);
        self.data.validate(&mut c);
        self.training.validate(&mut c, self.model.n_classes);
        self.validate_task(&mut c);
        c.errors
    }
}

impl Config {
    /// The data set, the model and the loss must agree on the task.
    fn validate_task(&self, c: &mut Checks) {
        let (task, dataset) = (self.model.task, self.data.dataset);
        let name = |t: Task| match t {
            Task::Segmentation => "\"segmentation\"",
            Task::Depth => "\"depth\"",
        };
        c.check(
            dataset.task() == task,
            "model.task",
            format_args!(
                "{} for data.dataset = {:?}",
                name(dataset.task()),
                serde_name(&dataset)
            ),
            serde_name(&task),
        );
        if dataset.task() != task {
            return;
        }
        // (Q-tips checks its channel count when it loads, as it always has.)
        c.check(
            task == Task::Segmentation || self.model.in_channels == dataset.channels(),
            "model.in_channels",
            format_args!(
                "{} for data.dataset = {:?} (its images are RGB)",
                dataset.channels(),
                serde_name(&dataset)
            ),
            self.model.in_channels,
        );
        let loss = self.training.loss.resolve(task);
        let fits = match task {
            Task::Segmentation => loss == Loss::CrossEntropy,
            Task::Depth => matches!(loss, Loss::L1 | Loss::L2 | Loss::Silog),
        };
        let expected = match task {
            Task::Segmentation => "\"auto\" or \"cross_entropy\" for model.task = \"segmentation\"",
            Task::Depth => "\"auto\", \"l1\", \"l2\" or \"silog\" for model.task = \"depth\"",
        };
        c.check(
            fits,
            "training.loss",
            expected,
            serde_name(&self.training.loss),
        );
        if task == Task::Depth {
            c.check(
                !matches!(self.training.class_weights, ClassWeights::Explicit(_)),
                "training.class_weights",
                "\"auto\" or \"none\" (class weights are for segmentation)",
                &self.training.class_weights,
            );
            let d = &self.data;
            if dataset == Dataset::SyntheticRgbd {
                c.at_least("data.height", d.height, 8);
                c.at_least("data.width", d.width, 8);
            }
            c.check(
                (d.crop_height == 0) == (d.crop_width == 0),
                "data.crop_width",
                "0 with data.crop_height = 0, and > 0 otherwise (both or neither)",
                d.crop_width,
            );
            c.check(
                (d.height == 0) == (d.width == 0),
                "data.width",
                "0 with data.height = 0, and > 0 otherwise (both or neither)",
                d.width,
            );
            c.check(
                dataset == Dataset::SyntheticRgbd || !d.path.as_os_str().is_empty(),
                "data.path",
                "the data file",
                &d.path,
            );
        }
        let lambda = self.training.silog_lambda;
        c.check(
            lambda.is_finite() && (0.0..=1.0).contains(&lambda),
            "training.silog_lambda",
            "a number in [0, 1]",
            lambda,
        );
    }
}

/// The TOML spelling of an enum value.
fn serde_name<T: Serialize>(value: &T) -> String {
    match toml::Value::try_from(value) {
        Ok(toml::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl ExperimentSection {
    fn validate(&self, c: &mut Checks) {
        let name = &self.name;
        // "." and ".." would make the run folder output_dir itself or its parent.
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
            && name != "."
            && name != "..";
        c.check(
            ok,
            "experiment.name",
            "a run name of [A-Za-z0-9_.-]+ (it names the run folder)",
            name,
        );
        c.non_empty_path("experiment.output_dir", &self.output_dir);
    }
}

impl ModelSection {
    fn validate(&self, c: &mut Checks) {
        let (widths, depths) = (&self.widths, &self.depths);
        c.check(
            !widths.is_empty(),
            "model.widths",
            "a non-empty array of channel counts",
            widths,
        );
        c.check(
            widths.iter().all(|&w| w >= 1),
            "model.widths",
            "every width >= 1",
            widths,
        );
        c.check(
            depths.len() == widths.len(),
            "model.depths",
            format_args!("{} entries, one per entry of model.widths", widths.len()),
            depths,
        );
        c.check(
            depths.iter().all(|&d| d >= 1),
            "model.depths",
            "every depth >= 1",
            depths,
        );
        c.positive("model.h", self.h);
        c.non_negative("model.alpha", self.alpha);
        c.at_least("model.in_channels", self.in_channels, 1);
        c.at_least("model.n_classes", self.n_classes, 2);
        c.positive("model.kernel_init_scale", self.kernel_init_scale);
        c.positive("model.operator_init_scale", self.operator_init_scale);
        c.positive("model.classifier_init_scale", self.classifier_init_scale);
    }
}

impl DataSection {
    fn validate(&self, c: &mut Checks) {
        c.non_empty_path("data.path", &self.path);
        c.at_least("data.train_size", self.train_size, 1);
        c.at_least("data.val_size", self.val_size, 1);
        c.at_least("data.image_size", self.image_size, 8);
    }
}

impl TrainingSection {
    fn validate(&self, c: &mut Checks, n_classes: usize) {
        c.positive("training.learning_rate", self.learning_rate);
        c.check(
            self.lr_min >= 0.0 && self.lr_min < self.learning_rate,
            "training.lr_min",
            "a number in [0, training.learning_rate)",
            self.lr_min,
        );
        c.at_least("training.lr_step_epochs", self.lr_step_epochs, 1);
        c.check(
            self.lr_gamma > 0.0 && self.lr_gamma <= 1.0,
            "training.lr_gamma",
            "a number in (0, 1]",
            self.lr_gamma,
        );
        let m = self.momentum;
        c.check(
            (0.0..1.0).contains(&m),
            "training.momentum",
            "a number in [0, 1)",
            m,
        );
        c.check(
            self.optimizer == OptimizerKind::Sgd || m == 0.0,
            "training.momentum",
            "0 with optimizer = \"adam\" (momentum is for SGD only)",
            m,
        );
        c.non_negative("training.weight_decay", self.weight_decay);
        c.at_least("training.batch_size", self.batch_size, 1);
        c.at_least("training.epochs", self.epochs, 1);
        if let ClassWeights::Explicit(w) = &self.class_weights {
            c.check(
                w.len() == n_classes,
                "training.class_weights",
                format_args!("{n_classes} weights, one per class (model.n_classes = {n_classes})"),
                w,
            );
            c.check(
                w.iter().all(|x| x.is_finite() && *x >= 0.0) && w.iter().any(|x| *x > 0.0),
                "training.class_weights",
                "finite weights >= 0, not all zero",
                w,
            );
        }
        c.at_least("training.eval_batch_size", self.eval_batch_size, 1);
        c.non_negative("training.grad_clip_norm", self.grad_clip_norm);
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code;

    const ORIGIN: &str = "exp.toml";

    /// Smallest valid file; line 2 is `name`, line 4 is `arch`.
    const MINIMAL: &str = "[experiment]\nname = \"t\"\n[model]\narch = \"imex\"\n";

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/config")
            .join(name)
    }

    fn sets(overrides: &[&str]) -> Vec<String> {
        overrides.iter().map(|s| s.to_string()).collect()
    }

    /// The message of a config error, after checking it is one (exit code 2).
    fn config_error(result: anyhow::Result<Config>) -> String {
        let err = result.expect_err("expected a config error");
        assert_eq!(exit_code(&err), 2, "{err:#}");
        match err.downcast_ref::<Failure>() {
            Some(Failure::Config(msg)) => msg.clone(),
            other => panic!("not a Failure::Config: {other:?}"),
        }
    }

    fn parse_error(text: &str, overrides: &[&str]) -> String {
        config_error(Config::parse(text, ORIGIN, &sets(overrides)))
    }

    fn assert_has(msg: &str, parts: &[&str]) {
        for part in parts {
            assert!(msg.contains(part), "message lacks {part:?}:\n{msg}");
        }
    }

    #[test]
    fn full_file_round_trips() {
        let cfg = Config::load(&fixture("full.toml"), &[]).unwrap();
        assert_eq!(cfg.experiment.name, "qtips_imex_small");
        assert_eq!(cfg.experiment.device, Device::Auto);
        assert_eq!(cfg.model.arch, Arch::Resnet);
        assert_eq!(cfg.model.widths, vec![8, 16, 32]);
        assert_eq!(cfg.model.operator, Operator::Laplacian);
        assert_eq!(cfg.model.form, Form::Split);
        assert_eq!(cfg.model.batchnorm, BatchNormMode::Standard);
        assert_eq!(cfg.model.kernel_init_scale, 2.5e-3);
        assert_eq!(cfg.data.train_limit, 100);
        assert_eq!(cfg.training.optimizer, OptimizerKind::Adam);
        assert_eq!(
            cfg.training.class_weights,
            ClassWeights::Explicit(vec![0.5, 1.0, 2.0, 0.0])
        );
        assert_eq!(cfg.training.checkpoint, CheckpointRule::LowestTrainLoss);
        assert_eq!(cfg.training.lr_schedule, LrSchedule::Step);
        assert_eq!(
            (
                cfg.training.lr_min,
                cfg.training.lr_step_epochs,
                cfg.training.lr_gamma
            ),
            (1e-5, 5, 0.5)
        );

        let text = cfg.to_toml();
        assert_eq!(Config::parse(&text, "resolved.toml", &[]).unwrap(), cfg);
    }

    #[test]
    fn defaults_fill_in_and_are_written_explicitly() {
        let cfg = Config::load(&fixture("minimal.toml"), &[]).unwrap();
        assert_eq!(cfg.experiment.seed, 0);
        assert_eq!(cfg.experiment.output_dir, PathBuf::from("results"));
        assert_eq!(cfg.experiment.device, Device::Cpu);
        assert_eq!(cfg.model.widths, vec![64, 128, 256]);
        assert_eq!(cfg.model.depths, vec![4, 4, 4]);
        assert_eq!((cfg.model.h, cfg.model.alpha), (1.0, 1.0));
        assert_eq!(cfg.model.operator, Operator::Learned);
        assert_eq!(cfg.model.form, Form::Damped);
        assert_eq!(cfg.model.batchnorm, BatchNormMode::Paper);
        assert_eq!((cfg.model.in_channels, cfg.model.n_classes), (1, 4));
        assert_eq!(cfg.model.kernel_init_scale, 1e-3);
        assert_eq!(cfg.model.operator_init_scale, 1.0);
        assert_eq!(cfg.model.classifier_init_scale, 1e-3);
        assert_eq!(cfg.data, DataSection::default());
        assert_eq!(cfg.training, TrainingSection::default());
        assert_eq!(cfg.run_dir(), Path::new("results").join("qtips_imex_small"));

        let text = cfg.to_toml();
        for key in [
            "seed = 0",
            "device = \"cpu\"",
            "[data]",
            "train_limit = 0",
            "[training]",
        ] {
            assert!(text.contains(key), "to_toml lacks {key}:\n{text}");
        }
        assert!(text.contains("class_weights = \"auto\""), "{text}");
        assert!(text.contains("checkpoint = \"best_val_loss\""), "{text}");
        assert_eq!(Config::parse(&text, "resolved.toml", &[]).unwrap(), cfg);
    }

    #[test]
    fn schema_lists_every_key() {
        let schema = schema();
        let keys: Vec<usize> = ["experiment", "model", "data", "training"]
            .iter()
            .map(|s| schema[*s].as_table().unwrap().len())
            .collect();
        assert_eq!(keys, vec![4, 14, 15, 16]);
    }

    #[test]
    fn unknown_key_suggests_nearest() {
        let text = format!("{MINIMAL}[training]\nlearning_rat = 0.1\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:6:",
                "unknown key `training.learning_rat`",
                "did you mean `training.learning_rate`?",
            ],
        );
    }

    #[test]
    fn unknown_key_far_from_any_lists_valid_keys() {
        let text = format!("{MINIMAL}zzz = 1\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:5:",
                "unknown key `model.zzz`",
                "valid:",
                "`model.h`",
                "`model.arch`",
            ],
        );
    }

    #[test]
    fn unknown_section_suggests_nearest() {
        let text = format!("{MINIMAL}[trainig]\nepochs = 3\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:5:",
                "unknown section `[trainig]`",
                "did you mean `training`?",
            ],
        );
    }

    #[test]
    fn every_unknown_key_is_reported() {
        let text = "[experiment]\nname = \"t\"\nsead = 1\n[model]\narch = \"imex\"\nwidth = [8]\n";
        let msg = parse_error(text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:3: unknown key `experiment.sead`",
                "exp.toml:6: unknown key `model.width`",
            ],
        );
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let text = format!("{MINIMAL}h = \"big\"\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:5:",
                "key `model.h`",
                "expected a number",
                "found string \"big\"",
            ],
        );

        let text =
            "[experiment]\nname = \"t\"\n\n[model]\narch = \"imex\"\n[training]\nbatch_size = -1\n";
        let msg = parse_error(text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:7:",
                "key `training.batch_size`",
                "expected a non-negative integer",
            ],
        );

        let text = format!("{MINIMAL}widths = [8, \"a\"]\n");
        assert_has(
            &parse_error(&text, &[]),
            &["exp.toml:5:", "key `model.widths`"],
        );
    }

    #[test]
    fn unknown_enum_string_suggests_variant() {
        let text = "[experiment]\nname = \"t\"\n[model]\narch = \"resnett\"\n";
        let msg = parse_error(text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:4:",
                "key `model.arch`",
                "expected \"imex\" or \"resnet\"",
                "did you mean \"resnet\"?",
            ],
        );

        let text = "[experiment]\nname = \"t\"\n[model]\narch = 1\n";
        assert_has(
            &parse_error(text, &[]),
            &["exp.toml:4:", "key `model.arch`", "expected a string"],
        );
    }

    #[test]
    fn section_that_is_not_a_table() {
        let msg = parse_error("model = 3\n[experiment]\nname = \"t\"\n", &[]);
        assert_has(&msg, &["exp.toml:1:", "key `model`", "expected a table"]);
    }

    #[test]
    fn out_of_range_values_name_key_and_line() {
        // (section, assignment, dotted key, expected phrase); the assignment is on line 6.
        let cases = [
            ("model", "h = 0.0", "model.h", "> 0"),
            ("model", "h = -1", "model.h", "> 0"),
            ("model", "h = nan", "model.h", "finite"),
            ("model", "alpha = -0.5", "model.alpha", ">= 0"),
            ("model", "widths = []", "model.widths", "non-empty"),
            (
                "model",
                "widths = [8, 0, 32]",
                "model.widths",
                "every width >= 1",
            ),
            (
                "model",
                "depths = [1, 0, 1]",
                "model.depths",
                "every depth >= 1",
            ),
            ("model", "in_channels = 0", "model.in_channels", ">= 1"),
            ("model", "n_classes = 1", "model.n_classes", ">= 2"),
            (
                "model",
                "kernel_init_scale = 0.0",
                "model.kernel_init_scale",
                "> 0",
            ),
            (
                "model",
                "operator_init_scale = -1.0",
                "model.operator_init_scale",
                "> 0",
            ),
            (
                "model",
                "classifier_init_scale = inf",
                "model.classifier_init_scale",
                "finite",
            ),
            ("data", "train_size = 0", "data.train_size", ">= 1"),
            ("data", "val_size = 0", "data.val_size", ">= 1"),
            ("data", "image_size = 4", "data.image_size", ">= 8"),
            ("data", "path = \"\"", "data.path", "non-empty path"),
            (
                "training",
                "learning_rate = 0",
                "training.learning_rate",
                "> 0",
            ),
            (
                "training",
                "lr_min = -1e-4",
                "training.lr_min",
                "[0, training.learning_rate)",
            ),
            (
                "training",
                "lr_min = 1.0",
                "training.lr_min",
                "[0, training.learning_rate)",
            ),
            (
                "training",
                "lr_step_epochs = 0",
                "training.lr_step_epochs",
                ">= 1",
            ),
            ("training", "lr_gamma = 0", "training.lr_gamma", "(0, 1]"),
            ("training", "lr_gamma = 1.5", "training.lr_gamma", "(0, 1]"),
            (
                "training",
                "lr_schedule = \"linear\"",
                "training.lr_schedule",
                "cosine",
            ),
            ("training", "momentum = 1.0", "training.momentum", "[0, 1)"),
            ("training", "momentum = -0.1", "training.momentum", "[0, 1)"),
            (
                "training",
                "weight_decay = -1e-4",
                "training.weight_decay",
                ">= 0",
            ),
            ("training", "batch_size = 0", "training.batch_size", ">= 1"),
            ("training", "epochs = 0", "training.epochs", ">= 1"),
            (
                "training",
                "eval_batch_size = 0",
                "training.eval_batch_size",
                ">= 1",
            ),
            (
                "training",
                "grad_clip_norm = -1",
                "training.grad_clip_norm",
                ">= 0",
            ),
            (
                "training",
                "class_weights = [0, 0, 0, 0]",
                "training.class_weights",
                "not all zero",
            ),
            (
                "training",
                "class_weights = [1, -1, 1, 1]",
                "training.class_weights",
                ">= 0",
            ),
        ];
        for (section, line, key, expected) in cases {
            let text = match section {
                "model" => {
                    format!("[experiment]\nname = \"t\"\n\n[model]\narch = \"imex\"\n{line}\n")
                }
                _ => format!("{MINIMAL}[{section}]\n{line}\n"),
            };
            let msg = parse_error(&text, &[]);
            assert_has(&msg, &["exp.toml:6:", &format!("key `{key}`"), expected]);
        }
    }

    #[test]
    fn learning_rate_schedules_give_hand_computed_rates() {
        let rates = |schedule: &str| {
            let text = format!(
                "{MINIMAL}[training]\nlearning_rate = 0.1\nepochs = 4\n\
                 lr_min = 0.02\nlr_step_epochs = 3\nlr_gamma = 0.5\n{schedule}"
            );
            let t = Config::parse(&text, ORIGIN, &[]).unwrap().training;
            (1..=5).map(|e| t.learning_rate_at(e)).collect::<Vec<_>>()
        };
        // The default changes nothing for files written before the key existed.
        assert_eq!(rates(""), vec![0.1; 5]);
        assert_eq!(rates("lr_schedule = \"constant\"\n"), vec![0.1; 5]);
        // cos(π·k/4) for k = 0..4: 1, √½, 0, −√½, −1.
        let half = std::f64::consts::FRAC_1_SQRT_2;
        let cosine = [
            0.1,
            0.02 + 0.08 * (1.0 + half) / 2.0,
            0.06,
            0.02 + 0.08 * (1.0 - half) / 2.0,
            0.02,
        ];
        for (got, want) in rates("lr_schedule = \"cosine\"\n").iter().zip(cosine) {
            assert!((got - want).abs() < 1e-15, "{got} != {want}");
        }
        assert_eq!(
            rates("lr_schedule = \"step\"\n"),
            vec![0.1, 0.1, 0.1, 0.05, 0.05]
        );
    }

    #[test]
    fn momentum_with_adam_is_rejected() {
        let text = format!("{MINIMAL}[training]\noptimizer = \"adam\"\nmomentum = 0.9\n");
        assert_has(
            &parse_error(&text, &[]),
            &["exp.toml:7:", "key `training.momentum`", "SGD only"],
        );
    }

    #[test]
    fn depths_must_match_widths() {
        let text = format!("{MINIMAL}widths = [8, 16]\ndepths = [2, 2, 2]\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:6:",
                "key `model.depths`",
                "2 entries",
                "[2, 2, 2]",
            ],
        );

        // Default depths against explicit widths: no line, but the key and "(default)".
        let text = format!("{MINIMAL}widths = [8, 16]\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml: key `model.depths` (default)",
                "2 entries",
                "[4, 4, 4]",
            ],
        );
    }

    #[test]
    fn class_weights_must_have_one_per_class() {
        let text = format!("{MINIMAL}n_classes = 3\n[training]\nclass_weights = [1.0, 2.0]\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:7:",
                "key `training.class_weights`",
                "3 weights",
                "[1.0, 2.0]",
            ],
        );

        let text = format!("{MINIMAL}[training]\nclass_weights = \"balanced\"\n");
        let msg = parse_error(&text, &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:6:",
                "key `training.class_weights`",
                "\"auto\", \"none\" or an array",
            ],
        );

        let text = format!("{MINIMAL}[training]\nclass_weights = \"none\"\n");
        let cfg = Config::parse(&text, ORIGIN, &[]).unwrap();
        assert_eq!(cfg.training.class_weights, ClassWeights::None);
    }

    #[test]
    fn bad_name_is_rejected() {
        for name in ["my run", "", "a/b", "..", "é"] {
            let text = format!("[experiment]\nname = \"{name}\"\n[model]\narch = \"imex\"\n");
            let msg = parse_error(&text, &[]);
            assert_has(
                &msg,
                &["exp.toml:2:", "key `experiment.name`", "[A-Za-z0-9_.-]+"],
            );
        }
    }

    #[test]
    fn missing_required_keys_and_sections() {
        let msg = parse_error("[experiment]\nname = \"t\"\n\n[model]\nh = 0.5\n", &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:4:",
                "missing required key `model.arch`",
                "\"imex\" or \"resnet\"",
            ],
        );

        let msg = parse_error("[model]\narch = \"imex\"\n", &[]);
        assert_has(
            &msg,
            &[
                "exp.toml:",
                "missing required section [experiment]",
                "`experiment.name`",
            ],
        );
    }

    #[test]
    fn malformed_toml_names_line() {
        let msg = parse_error("[experiment]\nname = \"t\"\n[model]\narch = \n", &[]);
        assert_has(
            &msg,
            &["exp.toml:4:", "malformed TOML: invalid string; expected"],
        );

        let msg = parse_error("[experiment]\nname = \"t\"\nname = \"u\"\n", &[]);
        assert_has(&msg, &["exp.toml:3:", "malformed TOML", "duplicate key"]);
    }

    #[test]
    fn missing_file_is_a_config_error() {
        let path = fixture("does_not_exist.toml");
        let msg = config_error(Config::load(&path, &[]));
        assert_has(
            &msg,
            &["cannot read experiment file", "does_not_exist.toml"],
        );
    }

    #[test]
    fn bad_overrides_are_rejected() {
        let msg = parse_error(MINIMAL, &["model.hh=1"]);
        assert_has(
            &msg,
            &["exp.toml: --set model.hh=1: unknown key `model.hh`, did you mean `model.h`?"],
        );

        let msg = parse_error(MINIMAL, &["modle.h=1"]);
        assert_has(
            &msg,
            &["--set modle.h=1: unknown section `modle`, did you mean `model`?"],
        );

        let msg = parse_error(MINIMAL, &["model.h"]);
        assert_has(
            &msg,
            &["exp.toml: --set model.h: malformed override", "no `=`"],
        );

        let msg = parse_error(MINIMAL, &["h=1"]);
        assert_has(
            &msg,
            &["--set h=1: malformed override", "section.key=value"],
        );

        let msg = parse_error(MINIMAL, &["model.h.x=1"]);
        assert_has(&msg, &["--set model.h.x=1: malformed override"]);
    }

    #[test]
    fn override_values_are_located_by_the_override() {
        let msg = parse_error(MINIMAL, &["model.h=-1"]);
        assert_has(
            &msg,
            &["exp.toml: --set model.h=-1: key `model.h`", "> 0", "-1.0"],
        );

        let msg = parse_error(MINIMAL, &["model.h=big"]);
        assert_has(
            &msg,
            &[
                "--set model.h=big: key `model.h`",
                "expected a number, found string \"big\"",
            ],
        );

        // An override replacing a file value takes the blame, not the file's line.
        let text = format!("{MINIMAL}h = 0.5\n");
        let msg = parse_error(&text, &["model.h=0"]);
        assert_has(&msg, &["--set model.h=0: key `model.h`"]);
        assert!(!msg.contains("exp.toml:5"), "{msg}");
    }

    #[test]
    fn overrides_are_applied() {
        let text = format!("{MINIMAL}h = 0.5\n");
        let overrides = [
            "model.h=0.25",
            "model.widths=[8,16,32]",
            "model.arch=resnet",
            "model.operator=\"identity\"",
            "experiment.name=2024",
            "experiment.seed = 7",
            "training.class_weights=[1,1,2,2]",
        ];
        let cfg = Config::parse(&text, ORIGIN, &sets(&overrides)).unwrap();
        assert_eq!(cfg.model.h, 0.25);
        assert_eq!(cfg.model.widths, vec![8, 16, 32]);
        assert_eq!(cfg.model.arch, Arch::Resnet);
        assert_eq!(cfg.model.operator, Operator::Identity);
        assert_eq!(cfg.experiment.name, "2024");
        assert_eq!(cfg.experiment.seed, 7);
        assert_eq!(
            cfg.training.class_weights,
            ClassWeights::Explicit(vec![1.0, 1.0, 2.0, 2.0])
        );
        // Later overrides of the same key win.
        let cfg = Config::parse(MINIMAL, ORIGIN, &sets(&["model.h=2", "model.h=3"])).unwrap();
        assert_eq!(cfg.model.h, 3.0);
    }

    #[test]
    fn override_creates_missing_section() {
        assert!(!MINIMAL.contains("[training]"));
        let cfg = Config::parse(
            MINIMAL,
            ORIGIN,
            &sets(&["training.epochs=3", "data.generate=false"]),
        )
        .unwrap();
        assert_eq!(cfg.training.epochs, 3);
        assert_eq!(cfg.training.batch_size, 8);
        assert!(!cfg.data.generate);

        // Even a required section can come from overrides alone.
        let text = "[experiment]\nname = \"t\"\n";
        let cfg = Config::parse(text, ORIGIN, &sets(&["model.arch=imex"])).unwrap();
        assert_eq!(cfg.model.arch, Arch::Imex);
    }

    /// A valid depth experiment on the synthetic set; `[data]` starts on line 7.
    const DEPTH: &str = "[experiment]\nname = \"d\"\n[model]\narch = \"imex\"\ntask = \"depth\"\nin_channels = 3\n[data]\ndataset = \"synthetic_rgbd\"\nheight = 24\nwidth = 32\n";

    #[test]
    fn depth_keys_parse_and_round_trip() {
        let text =
            format!("{DEPTH}flip = true\n[training]\nloss = \"silog\"\nsilog_lambda = 0.85\n");
        let cfg = Config::parse(&text, ORIGIN, &[]).unwrap();
        assert_eq!(cfg.model.task, Task::Depth);
        assert_eq!(cfg.model.head_width(), 1);
        assert_eq!(cfg.data.dataset, Dataset::SyntheticRgbd);
        assert_eq!(
            (cfg.data.height, cfg.data.width, cfg.data.flip),
            (24, 32, true)
        );
        assert_eq!(cfg.training.loss, Loss::Silog);
        assert_eq!(cfg.training.silog_lambda, 0.85);
        assert_eq!(Config::parse(&cfg.to_toml(), "r.toml", &[]).unwrap(), cfg);
        // auto resolves per task.
        let cfg = Config::parse(DEPTH, ORIGIN, &[]).unwrap();
        assert_eq!(cfg.training.loss.resolve(cfg.model.task), Loss::L1);
        assert_eq!(Loss::Auto.resolve(Task::Segmentation), Loss::CrossEntropy);
        assert_eq!(
            Config::parse(MINIMAL, ORIGIN, &[])
                .unwrap()
                .model
                .head_width(),
            4
        );
    }

    #[test]
    fn depth_key_errors_name_line_and_key() {
        // Task and data set disagree.
        let text = format!("{MINIMAL}task = \"depth\"\n");
        assert_has(
            &parse_error(&text, &[]),
            &[
                "exp.toml:5:",
                "key `model.task`",
                "\"segmentation\" for data.dataset = \"qtips\"",
            ],
        );
        // RGB needs 3 input channels.
        let text = DEPTH.replace("in_channels = 3", "in_channels = 1");
        assert_has(
            &parse_error(&text, &[]),
            &[
                "exp.toml:6:",
                "key `model.in_channels`",
                "3 for data.dataset = \"synthetic_rgbd\"",
            ],
        );
        // A segmentation loss for depth, a depth loss for segmentation.
        let text = format!("{DEPTH}[training]\nloss = \"cross_entropy\"\n");
        assert_has(
            &parse_error(&text, &[]),
            &[
                "exp.toml:12:",
                "key `training.loss`",
                "\"l1\", \"l2\" or \"silog\"",
            ],
        );
        let text = format!("{MINIMAL}[training]\nloss = \"l2\"\n");
        assert_has(
            &parse_error(&text, &[]),
            &["exp.toml:6:", "key `training.loss`", "\"cross_entropy\""],
        );
        let text = format!("{DEPTH}[training]\nloss = \"silgo\"\n");
        assert_has(
            &parse_error(&text, &[]),
            &[
                "exp.toml:12:",
                "key `training.loss`",
                "did you mean \"silog\"?",
            ],
        );
        let text = format!("{DEPTH}[training]\nsilog_lambda = 1.5\n");
        assert_has(
            &parse_error(&text, &[]),
            &["exp.toml:12:", "key `training.silog_lambda`", "[0, 1]"],
        );
        let text = format!("{DEPTH}[training]\nclass_weights = [1.0, 1.0, 1.0, 1.0]\n");
        assert_has(
            &parse_error(&text, &[]),
            &[
                "exp.toml:12:",
                "key `training.class_weights`",
                "segmentation",
            ],
        );
        // Sizes: the synthetic set needs one; crops and sizes come in pairs.
        let text = DEPTH.replace("height = 24", "height = 0");
        assert_has(
            &parse_error(&text, &[]),
            &["exp.toml:9:", "key `data.height`", ">= 8"],
        );
        let text = format!("{DEPTH}crop_height = 8\n");
        assert_has(
            &parse_error(&text, &[]),
            &[
                "exp.toml: key `data.crop_width` (default)",
                "both or neither",
            ],
        );
        let text = DEPTH.replace("width = 32", "width = 0");
        assert_has(
            &parse_error(&text, &[]),
            &["exp.toml:10:", "key `data.width`"],
        );
        let text = DEPTH.replace("synthetic_rgbd", "nyu");
        assert_has(
            &parse_error(&text, &[]),
            &[
                "exp.toml:8:",
                "key `data.dataset`",
                "did you mean \"nyu_mat\"?",
            ],
        );
        // Real data needs its file; an override is blamed as such.
        let text = DEPTH.replace("synthetic_rgbd", "nyu_mat");
        assert_has(
            &parse_error(&text, &["data.path="]),
            &["--set data.path=: key `data.path`"],
        );
    }

    #[test]
    fn load_names_the_real_path() {
        let path = fixture("bad_h.toml");
        let msg = config_error(Config::load(&path, &[]));
        assert_has(&msg, &["bad_h.toml:6:", "key `model.h`", "> 0"]);
    }
}
