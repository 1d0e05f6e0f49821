//! The sweep as a Slurm job array: one point per array task, each task
//! `imex-run sweep FILE --index $SLURM_ARRAY_TASK_ID`; `--submit` hands the
//! script to `sbatch` (only the unfinished points) and records the job id in
//! `SWEEP/slurm.json`; `--status` reads the run folders, and `squeue` and
//! `sacct` when they answer.

use super::manifest::Manifest;
use super::prepare::prepare_data;
use super::spec::Sweep;
use super::state::{state, State};
use crate::error::Failure;
use crate::files::write_atomically;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the script's paths are: absolute, since a task starts wherever Slurm
/// puts it.
#[derive(Debug, Clone)]
pub struct ScriptPaths {
    /// The imex-run binary the tasks run.
    pub binary: PathBuf,
    /// The working directory the sweep was written from (run folders and the
    /// base experiment are relative to it).
    pub workdir: PathBuf,
    /// The sweep file.
    pub sweep_file: PathBuf,
}

impl ScriptPaths {
    /// This process's binary (or `[sweep.slurm] binary`), directory and file.
    pub fn here(sweep: &Sweep) -> Result<Self> {
        let binary = match &sweep.slurm.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe()?,
        };
        let sweep_file = std::fs::canonicalize(&sweep.file)
            .map_err(|e| Failure::Config(format!("{}: {e}", sweep.file.display())))?;
        Ok(Self {
            binary,
            workdir: std::env::current_dir()?,
            sweep_file,
        })
    }
}

/// `'text'` for the shell.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The batch script (the golden file tests/fixtures/sweep/h_alpha.sbatch pins it).
pub fn batch_script(sweep: &Sweep, paths: &ScriptPaths) -> String {
    let s = &sweep.slurm;
    let n = sweep.points.len();
    let logs = paths.workdir.join(&sweep.dir).join("logs");
    let mut out = String::from("#!/bin/bash\n");
    let _ = writeln!(
        out,
        "# imex-run sweep {}: {n} points, one per array task.\n\
         # Written by `imex-run sweep FILE --slurm`; `imex-run sweep FILE --submit` submits\n\
         # only the unfinished points, `--status` shows where they stand.",
        sweep.name
    );
    let job_name = s.job_name.clone().unwrap_or_else(|| sweep.name.clone());
    let max_parallel = s.max_parallel.unwrap_or(n as u64);
    let mut directives = vec![
        format!("--job-name={job_name}"),
        format!("--array=0-{}%{max_parallel}", n.saturating_sub(1)),
        format!("--chdir={}", paths.workdir.display()),
        format!("--output={}/slurm-%A_%a.out", logs.display()),
    ];
    let cpus = s.cpus_per_task.map(|c| c.to_string());
    let optional = [
        ("partition", &s.partition),
        ("time", &s.time),
        ("cpus-per-task", &cpus),
        ("mem", &s.mem),
        ("gpus", &s.gpus),
        ("gres", &s.gres),
    ];
    for (flag, value) in optional {
        if let Some(v) = value {
            directives.push(format!("--{flag}={v}"));
        }
    }
    directives.extend(s.sbatch.iter().cloned());
    for d in directives {
        let _ = writeln!(out, "#SBATCH {d}");
    }
    // -e only: a failing setup line ends the task; -u would trip over the
    // unset variables of many module and virtualenv scripts.
    out.push_str("set -e\n");
    if let Some(setup) = &s.setup {
        out.push_str("# [sweep.slurm] setup\n");
        out.push_str(setup.trim_end());
        out.push('\n');
    }
    out.push_str(
        "# The training kernels' threads: the cores Slurm gave this task.\n\
         export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n",
    );
    let _ = writeln!(
        out,
        "exec {} sweep {} --index \"$SLURM_ARRAY_TASK_ID\"",
        quote(&paths.binary),
        quote(&paths.sweep_file)
    );
    out
}

/// `0-3,7,9-12`: indices as Slurm's `--array` list.
pub fn ranges(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(match start == end {
            true => start.to_string(),
            false => format!("{start}-{end}"),
        });
        i += 1;
    }
    parts.join(",")
}

/// The script's path in the sweep folder.
pub fn script_path(sweep: &Sweep) -> PathBuf {
    sweep.dir.join(format!("{}.sbatch", sweep.name))
}

/// `--slurm`: writes the script; `--submit`: also `sbatch` it (the unfinished
/// points only) and record the job id.
pub fn write_and_submit(sweep: &Sweep, submit: bool) -> Result<()> {
    Manifest::write(sweep)?;
    let script = script_path(sweep);
    let text = batch_script(sweep, &ScriptPaths::here(sweep)?);
    write_atomically(&script, text.as_bytes())?;
    println!("wrote {}", script.display());
    if !submit {
        println!(
            "submit it with `sbatch {}` (all {} points), or `imex-run sweep {} --submit` (the unfinished ones)",
            script.display(),
            sweep.points.len(),
            sweep.file.display()
        );
        return Ok(());
    }
    let todo: Vec<usize> = sweep
        .points
        .iter()
        .filter(|p| !matches!(state(p), State::Done | State::Running { .. }))
        .map(|p| p.index)
        .collect();
    if todo.is_empty() {
        println!("nothing to submit: every point is done or running");
        return Ok(());
    }
    // Here, once, rather than in every task at the same moment.
    prepare_data(sweep)?;
    let max_parallel = sweep.slurm.max_parallel.unwrap_or(todo.len() as u64);
    let array = format!("{}%{max_parallel}", ranges(&todo));
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--array={array}"))
        .arg(&script)
        .output()
        .map_err(|e| {
            Failure::Device(format!(
                "cannot run sbatch ({e}): is this a Slurm login node? The script is {}",
                script.display()
            ))
        })?;
    if !output.status.success() {
        return Err(Failure::Device(format!(
            "sbatch refused {}: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
        .into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let job = stdout.trim().split(';').next().unwrap_or("").to_string();
    let record = sweep.dir.join("slurm.json");
    let mut log: Value = std::fs::read_to_string(&record)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({ "submissions": [] }));
    if let Some(list) = log["submissions"].as_array_mut() {
        list.push(json!({
            "job_id": job,
            "array": array,
            "script": script,
            "submitted": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }));
    }
    write_atomically(
        &record,
        (serde_json::to_string_pretty(&log)? + "\n").as_bytes(),
    )?;
    println!(
        "submitted job {job}: {} of {} points (array {array}); `imex-run sweep {} --status` shows them",
        todo.len(),
        sweep.points.len(),
        sweep.file.display()
    );
    Ok(())
}

/// The last submitted job id, from `SWEEP/slurm.json`.
pub fn last_job(sweep: &Sweep) -> Option<String> {
    let text = std::fs::read_to_string(sweep.dir.join("slurm.json")).ok()?;
    let log: Value = serde_json::from_str(&text).ok()?;
    log["submissions"]
        .as_array()?
        .last()?
        .get("job_id")?
        .as_str()
        .map(str::to_string)
}

/// Array task index → Slurm's state, from `squeue` (queued and running
/// tasks) and `sacct` (ended ones, where accounting is on); empty where
/// neither answers.
pub fn slurm_states(job: &str) -> BTreeMap<usize, String> {
    let mut states = BTreeMap::new();
    let run = |cmd: &str, args: &[&str]| -> Option<String> {
        let out = Command::new(cmd).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // sacct first: squeue's view of a live task is fresher and overwrites it.
    if let Some(text) = run("sacct", &["-n", "-P", "-X", "-j", job, "-o", "JobID,State"]) {
        for line in text.lines() {
            let Some((id, st)) = line.split_once('|') else {
                continue;
            };
            if let Some(index) = id.split_once('_').and_then(|(_, i)| i.parse().ok()) {
                states.insert(index, st.trim().to_string());
            }
        }
    }
    if let Some(text) = run("squeue", &["-h", "-r", "-j", job, "-o", "%K %T"]) {
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            if let (Some(Ok(index)), Some(st)) = (parts.next().map(str::parse), parts.next()) {
                states.insert(index, st.to_string());
            }
        }
    }
    states
}

/// `--status`: each point's state from its run folder, with Slurm's beside it.
pub fn status(sweep: &Sweep) -> Result<()> {
    let job = last_job(sweep);
    let queue = job.as_deref().map(slurm_states).unwrap_or_default();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    println!(
        "sweep {}: {} points in {}{}",
        sweep.name,
        sweep.points.len(),
        sweep.dir.display(),
        job.as_ref()
            .map_or(String::new(), |j| format!(", last Slurm job {j}"))
    );
    for point in &sweep.points {
        let st = state(point);
        // A task Slurm runs on another node holds no lock visible here.
        let slurm = queue.get(&point.index);
        let word = match (&st, slurm.map(String::as_str)) {
            (State::Pending | State::Interrupted { .. }, Some("RUNNING")) => "running",
            (State::Pending, Some("PENDING")) => "queued",
            _ => st.word(),
        };
        *counts.entry(word).or_default() += 1;
        let detail = match &st {
            State::Running { epochs, .. } | State::Interrupted { epochs } => {
                format!("epoch {epochs}/{}", point.config.training.epochs)
            }
            State::Failed { error } => error.lines().next().unwrap_or("").to_string(),
            _ => String::new(),
        };
        println!(
            "{:>5}  {word:<11}  {}{}{}",
            point.index,
            point.dir().display(),
            slurm.map_or(String::new(), |s| format!("  [slurm {s}]")),
            if detail.is_empty() {
                String::new()
            } else {
                format!("  {detail}")
            }
        );
    }
    let summary: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    println!("sweep {}: {}", sweep.name, summary.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_become_slurm_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 3, 7, 9, 10, 11, 12]), "0-3,7,9-12");
        assert_eq!(ranges(&[5]), "5");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
