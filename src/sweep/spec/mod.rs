//! The sweep file: its grammar, the points it expands to, and their names.
//!
//! ```toml
//! [sweep]
//! name = "h_alpha"                     # the sweep folder: OUTPUT_DIR/h_alpha/
//! base = "../qtips_imex_cpu.toml"      # the experiment every point starts from, relative to this file
//! # output_dir = "results"             # default: the base experiment's experiment.output_dir
//!
//! [sweep.set]                          # the same for every point (not in the run names)
//! "training.epochs" = 8
//!
//! [sweep.grid]                         # the Cartesian product, first key slowest
//! "model.h" = [0.5, 1.0, 2.0]
//! "model.alpha" = [0.0, 1.0]
//! "experiment.seed" = [0, 1]
//!
//! [sweep.zip]                          # keys that vary together (equal lengths): one more axis
//! # "training.learning_rate" = [1e-3, 3e-3]
//! # "training.epochs" = [16, 8]
//!
//! [[sweep.extra]]                      # further points: the ResNet at each h
//! label = "ResNet"
//! set = { "model.arch" = "resnet" }
//! grid = { "model.h" = [0.5, 1.0, 2.0], "experiment.seed" = [0, 1] }
//! ```
//!
//! Hydra's multirun is the model: every point is the base experiment with
//! `--set KEY=VALUE` overrides, applied by the experiment's own override
//! machinery ([`Config::parse`](crate::config::Config::parse)), so a point is valid exactly when
//! `imex-run BASE --set ...` would be, and its run folder is an ordinary one
//! (`compare`, `predict`, `probe` work on it).
//!
//! **Run names** are the sweep name and, for each key the point's block
//! varies (an extra block's `set`, then its `grid` and `zip`, in the order
//! written), a short label and the value: `h_alpha_h0.5_alpha1_seed0`, `h_alpha_arch-resnet_h0.5_seed0`.
//! The label is the key's last part (`section_key` when two varied keys share
//! it); numbers follow it directly, other values after a `-`, with every
//! character outside `[A-Za-z0-9.-]` written as `-`. A name depends only on
//! the sweep name and the point's values, never on its position, so adding
//! values to a list leaves the existing runs (and their folders) where they
//! are. Two points that would share a name are refused.

mod grammar;
mod points;

#[cfg(test)]
mod tests;

pub use grammar::SlurmSpec;
pub use points::{name_part, Point, Sweep};
