//! One writer per run folder: a `.lock` file holding the writer's process id.
//!
//! A lock whose process is gone (killed, crashed) is stale and taken over, so
//! a resumed run never needs a hand-deleted file; a live one refuses.

use crate::error::Failure;
use anyhow::Result;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Held while a process writes a run folder; released on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

/// Whether process `pid` is alive (Linux: /proc; elsewhere assumed alive,
/// and the message says which file to delete).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

impl RunLock {
    /// Locks `dir` (created if needed) for this process.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let fail = |e: &dyn std::fmt::Display| {
            Failure::Output(format!("cannot lock run folder {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        let path = dir.join(".lock");
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id()).map_err(|e| fail(&e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    match holder.trim().parse::<u32>() {
                        Ok(pid) if process_alive(pid) => {
                            return Err(Failure::Output(format!(
                                "{} is being written by process {pid} (lock file {}); wait for it to end, \
                                 or stop it and run again",
                                dir.display(),
                                path.display()
                            ))
                            .into())
                        }
                        _ => {
                            tracing::warn!("taking over the stale lock {} (its process is gone)", path.display());
                            std::fs::remove_file(&path).map_err(|e| fail(&e))?;
                        }
                    }
                }
                Err(e) => return Err(fail(&e).into()),
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
