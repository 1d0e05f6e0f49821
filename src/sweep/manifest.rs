//! `sweep.json`: the sweep as `report` needs it, written into the sweep folder.

use super::spec::Sweep;
use crate::error::Failure;
use crate::files::write_atomically;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `sweep.json`: the sweep as `report` needs it, written into the sweep folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub sweep: String,
    /// The sweep file and the base experiment, as given.
    pub file: PathBuf,
    pub base: PathBuf,
    /// The varied keys, in the order of the run names.
    pub keys: Vec<String>,
    pub points: Vec<ManifestPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPoint {
    pub index: usize,
    /// The run name; the run folder is the sweep folder joined with it.
    pub name: String,
    /// 0: the main grid; k: the k-th `[[sweep.extra]]`.
    pub block: usize,
    pub label: Option<String>,
    /// Varied key → value.
    pub values: serde_json::Map<String, Value>,
}

/// The name of the manifest in a sweep folder.
pub const MANIFEST: &str = "sweep.json";

impl Manifest {
    pub fn of(sweep: &Sweep) -> Self {
        Manifest {
            sweep: sweep.name.clone(),
            file: sweep.file.clone(),
            base: sweep.base.clone(),
            keys: sweep.keys.clone(),
            points: sweep
                .points
                .iter()
                .map(|p| ManifestPoint {
                    index: p.index,
                    name: p.name.clone(),
                    block: p.block,
                    label: p.label.clone(),
                    values: p
                        .values
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
                        .collect(),
                })
                .collect(),
        }
    }

    /// Writes `sweep.json` into the sweep folder (creating it and `logs/`),
    /// unless it already says the same: array tasks all call this at once.
    pub fn write(sweep: &Sweep) -> Result<()> {
        let logs = sweep.dir.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| Failure::Output(format!("cannot create {}: {e}", logs.display())))?;
        let text = serde_json::to_string_pretty(&Manifest::of(sweep))? + "\n";
        let path = sweep.dir.join(MANIFEST);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            write_atomically(&path, text.as_bytes())?;
        }
        Ok(())
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Data(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            Failure::Data(format!("{}: not a sweep manifest: {e}", path.display())).into()
        })
    }
}
