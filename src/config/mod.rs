//! The experiment file: schema, defaults, `--set` overrides and validation.
//!
//! An experiment is one TOML file (see the README for an annotated example). A
//! typo must never cost a training run, so every problem the user can fix is a
//! [`Failure::Config`](crate::error::Failure::Config) (exit code 2) whose message names the file, the line (or
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
//! serialised (`schema.rs`), so the structs there are the single source of
//! truth for names, defaults and types.

mod load;
mod messages;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub(crate) use load::parse_toml;
pub(crate) use messages::{line_of, nearest};
pub use schema::{
    Arch, BatchNormMode, CheckpointRule, ClassWeights, Config, DataSection, Dataset, Device,
    ExperimentSection, Form, Loss, LrSchedule, ModelSection, Operator, OptimizerKind, Task,
    TrainingSection,
};
pub(crate) use validate::is_folder_name;
