//! Range and cross-field checks of a deserialised experiment, each message
//! located by its key.

use std::fmt::{Debug, Display};
use std::path::Path;

use serde::Serialize;

use super::messages::Locator;
use super::schema::{
    ClassWeights, Config, DataSection, Dataset, ExperimentSection, Loss, ModelSection,
    OptimizerKind, Task, TrainingSection,
};

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
    pub(super) fn validate(&self, loc: &Locator) -> Vec<String> {
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

/// Whether `name` can name a folder in another: `[A-Za-z0-9_.-]+`, and not
/// "." or "..", which would be that folder itself or its parent.
pub(crate) fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name != "."
        && name != ".."
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
        c.check(
            is_folder_name(name),
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
