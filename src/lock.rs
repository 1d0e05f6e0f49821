//! One writer per run folder: a `.lock` file holding the writer's process id
//! and start time.
//!
//! A lock whose process is gone (killed, crashed, a zombie not yet reaped, or
//! a process id since reused by another program) is stale and taken over, so
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

/// State and start time (clock ticks after boot) of process `pid`, from
/// `/proc/PID/stat`: fields 3 and 22, counted after the command name, which
/// is in parentheses and may itself hold spaces and parentheses.
fn process_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The lock file's text for this process: `PID START`.
fn holder_line() -> String {
    let pid = std::process::id();
    match process_stat(pid) {
        Some((_, start)) => format!("{pid} {start}"),
        None => pid.to_string(),
    }
}

/// Whether the holder recorded as `line` (`PID` or `PID START`) still runs.
/// Linux: alive unless its /proc entry is gone, it is a zombie (state Z or X)
/// or the pid now belongs to a process started at another time. Elsewhere a
/// holder is assumed alive, and the message says which file to delete.
fn holder_alive(line: &str) -> Option<u32> {
    let mut parts = line.split_whitespace();
    let pid: u32 = parts.next()?.parse().ok()?;
    let recorded_start: Option<u64> = parts.next().and_then(|s| s.parse().ok());
    if !cfg!(target_os = "linux") {
        return Some(pid);
    }
    let (state, start) = process_stat(pid)?;
    let reused = recorded_start.is_some_and(|recorded| recorded != start);
    (!matches!(state, 'Z' | 'X') && !reused).then_some(pid)
}

/// The live process holding `dir`'s lock, if any (a stale lock counts as
/// none): what `imex-run sweep --status` calls running.
pub fn holder(dir: &Path) -> Option<u32> {
    let line = std::fs::read_to_string(dir.join(".lock")).ok()?;
    holder_alive(&line)
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
                    writeln!(file, "{}", holder_line()).map_err(|e| fail(&e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if let Some(pid) = holder_alive(&holder) {
                        return Err(Failure::Output(format!(
                            "{} is being written by process {pid} (lock file {}); wait for it to end, \
                             or stop it and run again",
                            dir.display(),
                            path.display()
                        ))
                        .into());
                    }
                    tracing::warn!(
                        "taking over the stale lock {} (its process is gone)",
                        path.display()
                    );
                    std::fs::remove_file(&path).map_err(|e| fail(&e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn lock_file_with(line: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".lock"), format!("{line}\n")).unwrap();
        dir
    }

    #[test]
    fn a_live_holder_refuses_and_names_its_pid() {
        let dir = lock_file_with(&holder_line());
        let err = RunLock::acquire(dir.path()).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 5);
        let own = std::process::id().to_string();
        assert!(format!("{err:#}").contains(&own), "{err:#}");
    }

    #[test]
    fn the_lock_records_pid_and_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(".lock")).unwrap();
        let (_, start) = process_stat(std::process::id()).unwrap();
        assert_eq!(text, format!("{} {start}\n", std::process::id()));
        drop(lock);
        assert!(!dir.path().join(".lock").exists());
    }

    #[test]
    fn a_zombie_holds_no_lock() {
        // A child that has exited but is not reaped yet: state Z, /proc entry present.
        let mut child = Command::new("true").stdout(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_stat(pid).map(|(s, _)| s) != Some('Z') {
            assert!(
                std::time::Instant::now() < deadline,
                "child never became a zombie"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        let (_, start) = process_stat(pid).unwrap();
        let dir = lock_file_with(&format!("{pid} {start}"));
        let lock = RunLock::acquire(dir.path()).expect("a zombie's lock is stale");
        drop(lock);
        child.wait().unwrap();
    }

    #[test]
    fn a_reused_pid_holds_no_lock() {
        // Our own pid, but recorded with another start time: the process that
        // wrote the lock is gone and the pid now belongs to someone else.
        let (_, start) = process_stat(std::process::id()).unwrap();
        let dir = lock_file_with(&format!("{} {}", std::process::id(), start + 1));
        RunLock::acquire(dir.path()).expect("a reused pid's lock is stale");
    }

    #[test]
    fn a_gone_or_garbled_holder_holds_no_lock() {
        // Pids above the kernel's maximum (2^22) never exist.
        for line in ["4194305", "4194305 12", "", "not a pid"] {
            let dir = lock_file_with(line);
            RunLock::acquire(dir.path()).expect("stale lock taken over");
        }
    }

    #[test]
    fn an_old_lock_without_start_time_still_counts() {
        let dir = lock_file_with(&std::process::id().to_string());
        assert!(RunLock::acquire(dir.path()).is_err());
    }
}
