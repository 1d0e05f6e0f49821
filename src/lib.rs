//! imex-run: IMEXnet (Haber, Lensink, Treister, Ruthotto 2019) and its ResNet
//! baseline, trained and evaluated with the authors' exact semantics.
//!
//! `config` (the TOML experiment) → `data` (Q-tips) → `model` (explicit step,
//! implicit solve, network) → `train` (loop, optimiser) → `metrics` → `run`
//! (the run folder, its `run.json` typed in `provenance`). `device` picks the
//! backend; `experiment` ties them up. `results` reads run folders back for
//! `compare`, `predict` and `report` (tables and figures). `sweep` runs many
//! experiments from one file.

pub mod bench;
pub mod check;
pub mod compare;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod experiment;
pub mod files;
pub mod folder;
pub mod interrupt;
pub mod lock;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod probe;
pub mod provenance;
pub mod report;
pub mod results;
pub mod run;
pub mod sweep;
pub mod train;
