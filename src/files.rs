//! Crash-safe file writing.

use crate::error::Failure;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

/// Suffix of the temporary sibling a write goes through (`.NAME.XXXXXX.partial`);
/// one left behind by a kill is imex-run's own and may be removed.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Writes `bytes` to `path` through a temporary sibling and a rename, so that
/// a crash leaves either the old file or the new one, never half of one.
/// The file gets the mode a plain write would give it (0666 less the umask),
/// so that a group can read a colleague's results on a shared machine.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: &dyn std::fmt::Display| {
        Failure::Output(format!("cannot write {}: {e}", path.display()))
    };
    let prefix = format!(
        ".{}.",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(PARTIAL_SUFFIX);
    #[cfg(unix)]
    {
        // The kernel applies the umask to the mode given to open(2).
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(dir).map_err(|e| fail(&e))?;
    file.write_all(bytes).map_err(|e| fail(&e))?;
    file.as_file().sync_all().map_err(|e| fail(&e))?;
    file.persist(path).map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_files_get_the_mode_of_a_plain_write() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("metrics.csv");
        let plain = dir.path().join("plain.csv");
        write_atomically(&ours, b"epoch\n").unwrap();
        std::fs::write(&plain, b"epoch\n").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ours), mode(&plain));
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
            .expect("Linux reports the umask");
        assert_eq!(mode(&ours), 0o666 & !umask, "mode {:o}", mode(&ours));
        assert_eq!(std::fs::read(&ours).unwrap(), b"epoch\n");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file left behind");
    }
}
