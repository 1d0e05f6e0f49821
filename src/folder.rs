//! What a run folder holds, and clearing only what training wrote there.
//!
//! A folder is a run folder when it holds `run.json` and `config.toml`.
//! Starting over (`--restart`, or retraining a committed run whose
//! checkpoints are not in the repository) removes the files training writes
//! and nothing else; a non-empty folder that is not a run folder is refused,
//! never written into or cleared.

use crate::error::Failure;
use crate::files::PARTIAL_SUFFIX;
use anyhow::{Context, Result};
use std::path::Path;

/// Files training writes at the top of a run folder.
const RUN_FILES: [&str; 3] = ["config.toml", "run.json", "metrics.csv"];
/// Training's checkpoint folder, and what it writes there.
const CHECKPOINTS: &str = "checkpoints";
/// The writer's lock ([`crate::lock`]).
const LOCK: &str = ".lock";

/// What a would-be run folder holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Contents {
    /// Nothing, or only a stale lock.
    Empty,
    /// A run folder: `run.json` and `config.toml`.
    Run,
    /// This very experiment's folder, killed while being created: its
    /// `config.toml` (identical to the one about to be written) and possibly
    /// `metrics.csv` and an empty `checkpoints/`, but no `run.json` yet.
    Unfinished,
    /// Anything else: the entries it holds, sorted.
    Foreign(Vec<String>),
}

fn is_partial(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX)
}

fn is_checkpoint_file(name: &str) -> bool {
    matches!(name, "best.safetensors" | "last.safetensors")
        || (name.starts_with("optimizer-") && name.ends_with(".bin"))
        || is_partial(name)
}

/// Names in `dir`, sorted; none if it does not exist.
fn entries(dir: &Path) -> Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut names = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// What `dir` holds; `config_text` is the resolved config about to be written.
pub fn inspect(dir: &Path, config_text: &str) -> Result<Contents> {
    if dir.exists() && !dir.is_dir() {
        return Ok(Contents::Foreign(vec![format!(
            "{} is a file",
            dir.display()
        )]));
    }
    let names: Vec<String> = entries(dir)?
        .into_iter()
        .filter(|n| n != LOCK && !is_partial(n))
        .collect();
    let has = |name: &str| names.iter().any(|n| n == name);
    if names.is_empty() {
        return Ok(Contents::Empty);
    }
    if has("run.json") && has("config.toml") {
        return Ok(Contents::Run);
    }
    let own_files_only = names
        .iter()
        .all(|n| ["config.toml", "metrics.csv", CHECKPOINTS].contains(&n.as_str()));
    let checkpoints_empty = entries(&dir.join(CHECKPOINTS))?
        .iter()
        .all(|n| is_partial(n));
    let same_config =
        std::fs::read_to_string(dir.join("config.toml")).is_ok_and(|t| t == config_text);
    if own_files_only && checkpoints_empty && same_config {
        return Ok(Contents::Unfinished);
    }
    Ok(Contents::Foreign(names))
}

/// Refuses a folder that is neither empty nor a run folder (exit code 5),
/// naming it and what it holds.
pub fn refuse_foreign(dir: &Path, contents: &Contents) -> Result<()> {
    let Contents::Foreign(names) = contents else {
        return Ok(());
    };
    const SHOWN: usize = 8;
    let mut listed = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        listed += &format!(" and {} more", names.len() - SHOWN);
    }
    Err(Failure::Output(format!(
        "{} is not a run folder (it has no run.json and config.toml) and is not empty: it holds \
         {listed}. imex-run neither writes into nor clears such a folder (--restart included): \
         choose another experiment.name or experiment.output_dir",
        dir.display()
    ))
    .into())
}

/// Removes what training wrote in run folder `dir` (config, provenance,
/// metrics, checkpoints, optimiser states, leftover temporary files) and
/// nothing else: files a user added, and `predict`'s outputs, stay.
pub fn clear_run_files(dir: &Path) -> Result<()> {
    let remove = |path: &Path| {
        std::fs::remove_file(path).with_context(|| format!("cannot clear {}", path.display()))
    };
    for name in entries(dir)? {
        if RUN_FILES.contains(&name.as_str()) || is_partial(&name) {
            remove(&dir.join(&name))?;
        }
    }
    let checkpoints = dir.join(CHECKPOINTS);
    for name in entries(&checkpoints)? {
        if is_checkpoint_file(&name) {
            remove(&checkpoints.join(&name))?;
        }
    }
    if checkpoints.is_dir() && entries(&checkpoints)?.is_empty() {
        std::fs::remove_dir(&checkpoints)
            .with_context(|| format!("cannot clear {}", checkpoints.display()))?;
    }
    let kept: Vec<String> = entries(dir)?.into_iter().filter(|n| n != LOCK).collect();
    if !kept.is_empty() {
        tracing::info!(
            "{}: kept {} (not written by training)",
            dir.display(),
            kept.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[experiment]\nname = \"t\"\n";

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn recognises_what_a_folder_holds() {
        let absent = tempfile::tempdir().unwrap().path().join("new");
        assert_eq!(inspect(&absent, CONFIG).unwrap(), Contents::Empty);
        let stale_lock = folder(&[(".lock", "1\n"), (".run.json.abc123.partial", "")]);
        assert_eq!(inspect(stale_lock.path(), CONFIG).unwrap(), Contents::Empty);
        let run = folder(&[("run.json", "{}"), ("config.toml", "x"), ("notes.txt", "")]);
        assert_eq!(inspect(run.path(), CONFIG).unwrap(), Contents::Run);
        let unfinished = folder(&[("config.toml", CONFIG), ("metrics.csv", "epoch\n")]);
        std::fs::create_dir(unfinished.path().join("checkpoints")).unwrap();
        assert_eq!(
            inspect(unfinished.path(), CONFIG).unwrap(),
            Contents::Unfinished
        );
        // A config.toml of the user's own is not ours.
        let users = folder(&[("config.toml", "[tool]\n")]);
        assert_eq!(
            inspect(users.path(), CONFIG).unwrap(),
            Contents::Foreign(vec!["config.toml".into()])
        );
        let thesis = folder(&[("thesis.tex", "\\documentclass"), ("figs/a.png", "")]);
        assert_eq!(
            inspect(thesis.path(), CONFIG).unwrap(),
            Contents::Foreign(vec!["figs".into(), "thesis.tex".into()])
        );
    }

    #[test]
    fn a_foreign_folder_is_refused_with_its_contents() {
        let thesis = folder(&[("thesis.tex", "")]);
        let contents = inspect(thesis.path(), CONFIG).unwrap();
        let err = refuse_foreign(thesis.path(), &contents).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 5);
        let msg = format!("{err:#}");
        assert!(
            msg.contains("not a run folder") && msg.contains("thesis.tex"),
            "{msg}"
        );
        assert!(refuse_foreign(thesis.path(), &Contents::Run).is_ok());
    }

    #[test]
    fn clearing_removes_only_what_training_wrote() {
        let run = folder(&[
            ("run.json", "{}"),
            ("config.toml", CONFIG),
            ("metrics.csv", "epoch\n"),
            (".metrics.csv.x1y2z3.partial", ""),
            (".lock", "1\n"),
            ("checkpoints/best.safetensors", ""),
            ("checkpoints/last.safetensors", ""),
            ("checkpoints/optimizer-3.bin", ""),
            ("checkpoints/my-notes.md", "keep"),
            ("thesis.tex", "keep"),
            ("predict-best-val/metrics.json", "keep"),
        ]);
        clear_run_files(run.path()).unwrap();
        let mut left = entries(run.path()).unwrap();
        left.retain(|n| n != LOCK);
        assert_eq!(left, ["checkpoints", "predict-best-val", "thesis.tex"]);
        assert_eq!(
            entries(&run.path().join("checkpoints")).unwrap(),
            ["my-notes.md"]
        );
        assert!(
            run.path().join(".lock").exists(),
            "the lock stays with its holder"
        );
        // With nothing foreign in it, checkpoints/ goes too.
        let plain = folder(&[("run.json", "{}"), ("checkpoints/last.safetensors", "")]);
        clear_run_files(plain.path()).unwrap();
        assert!(entries(plain.path()).unwrap().is_empty());
    }
}
