//! `imex-run sweep FILE [--jobs N]`: the unfinished points on this machine,
//! N at a time.
//!
//! Each point runs in a child process, `imex-run sweep FILE --index I`, the
//! very command a Slurm task runs, with its output in
//! `SWEEP/logs/NAME.log`. Separate processes keep a crash, a NaN or an
//! out-of-memory kill to one point, and give each point its own thread pool:
//! `RAYON_NUM_THREADS` is the machine's cores divided among the N jobs
//! (unless set already), which is how the training kernels' threads are
//! chosen.
//!
//! Ctrl-C or SIGTERM stops launching points and passes the signal on to the
//! running ones (each stops after its batch and is resumed by the next
//! `imex-run sweep`); a second signal is passed on too (they exit at once).
//! The children have their own process group, so a terminal's Ctrl-C reaches
//! them only through this process, once.

use super::manifest::Manifest;
use super::prepare::prepare_data;
use super::spec::{Point, Sweep};
use super::state::{state, State};
use crate::error::{failure_of_code, Failure};
use anyhow::Result;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Default of `--jobs`. Measured on the 2-core machine this was written on
/// (README, "Sweeps"): two single-threaded runs at once finish more points
/// per hour than one run on both cores, because the training step does not
/// scale perfectly over threads.
pub const DEFAULT_JOBS: usize = 2;

/// Signals received (Ctrl-C, SIGTERM).
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// A point running in a child process.
struct Running<'a> {
    point: &'a Point,
    child: Child,
    log: PathBuf,
    started: Instant,
    epochs: u64,
}

/// Threads per job: the cores shared out, at least one each.
pub fn threads_per_job(cores: usize, jobs: usize) -> usize {
    (cores / jobs.max(1)).max(1)
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The last `error:` line of a log, for the failure message.
fn last_error(log: &Path) -> Option<String> {
    let file = File::open(log).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.starts_with("error:"))
        .last()
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

pub fn run(sweep: &Sweep, jobs: usize) -> Result<()> {
    Manifest::write(sweep)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = std::env::var("RAYON_NUM_THREADS")
        .unwrap_or_else(|_| threads_per_job(cores, jobs).to_string());
    let exe = std::env::current_exe()?;
    let total = sweep.points.len();
    let tag = |p: &Point| {
        format!(
            "[{:>width$}/{total}] {}",
            p.index,
            p.name,
            width = total.to_string().len()
        )
    };

    let mut queue: Vec<&Point> = Vec::new();
    let (mut done, mut elsewhere) = (0, 0);
    for point in &sweep.points {
        match state(point) {
            State::Done => done += 1,
            State::Running { pid, .. } => {
                elsewhere += 1;
                println!("{}: being run by process {pid}; left to it", tag(point))
            }
            _ => queue.push(point),
        }
    }
    println!(
        "sweep {}: {total} points, {done} done, {} to run, {} at once with {threads} thread(s) each; logs in {}",
        sweep.name,
        queue.len(),
        jobs.min(queue.len().max(1)),
        sweep.dir.join("logs").display()
    );
    if queue.is_empty() {
        return Ok(());
    }
    prepare_data(sweep)?;
    let _ = ctrlc::set_handler(|| {
        let n = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
        eprintln!(
            "interrupt {n}: {}",
            match n {
                1 => "no new points; the running ones stop after their batch (again to stop them at once)",
                _ => "stopping the running points now",
            }
        );
    });

    queue.reverse(); // popped from the end: index order
    let started = Instant::now();
    let mut running: Vec<Running> = Vec::new();
    let mut forwarded = 0;
    let mut failed: Vec<(i32, String)> = Vec::new();
    let mut finished_here: Vec<Duration> = Vec::new();
    let mut interrupted = 0;
    loop {
        let signals = SIGNALS.load(Ordering::SeqCst);
        while forwarded < signals {
            for r in &running {
                signal(r.child.id(), if forwarded == 0 { "INT" } else { "TERM" });
            }
            forwarded += 1;
        }
        while signals == 0 && running.len() < jobs {
            let Some(point) = queue.pop() else { break };
            let log = sweep.dir.join("logs").join(format!("{}.log", point.name));
            let out = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| Failure::Output(format!("cannot write {}: {e}", log.display())))?;
            let mut command = Command::new(&exe);
            command
                .arg("sweep")
                .arg(&sweep.file)
                .args(["--index", &point.index.to_string()])
                .env("RAYON_NUM_THREADS", &threads)
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out);
            #[cfg(unix)]
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            let child = command.spawn()?;
            println!("{}: started ({})", tag(point), point.describe());
            running.push(Running {
                point,
                child,
                log,
                started: Instant::now(),
                epochs: 0,
            });
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        let mut k = 0;
        while k < running.len() {
            let r = &mut running[k];
            let exited = r.child.try_wait()?;
            // Also after the exit: a short point ends between two looks.
            let epochs = match state(r.point) {
                State::Running { epochs, .. } | State::Interrupted { epochs } => epochs,
                State::Done => r.point.config.training.epochs as u64,
                _ => 0,
            };
            if epochs > r.epochs {
                r.epochs = epochs;
                println!(
                    "{}: epoch {epochs}/{} ({})",
                    tag(r.point),
                    r.point.config.training.epochs,
                    clock(r.started.elapsed())
                );
            }
            let Some(status) = exited else {
                k += 1;
                continue;
            };
            let r = running.swap_remove(k);
            let code = status.code().unwrap_or(1);
            match code {
                0 => {
                    done += 1;
                    finished_here.push(r.started.elapsed());
                    println!("{}: done in {}", tag(r.point), clock(r.started.elapsed()));
                }
                130 => {
                    interrupted += 1;
                    println!("{}: interrupted (resumes on the next run)", tag(r.point));
                }
                _ => {
                    let why = last_error(&r.log).unwrap_or_else(|| format!("exit code {code}"));
                    println!("{}: FAILED ({why}); log {}", tag(r.point), r.log.display());
                    failed.push((code, format!("{}: {why}", r.point.name)));
                }
            }
            let left = queue.len() + running.len();
            let eta = match finished_here.len() {
                0 => String::new(),
                n => {
                    let mean = finished_here.iter().sum::<Duration>() / n as u32;
                    let rounds = left.div_ceil(jobs) as u32;
                    format!(", about {} left", clock(mean * rounds))
                }
            };
            println!(
                "sweep {}: {done}/{total} done, {} running, {} failed, {} waiting; {} elapsed{eta}",
                sweep.name,
                running.len(),
                failed.len(),
                queue.len(),
                clock(started.elapsed())
            );
        }
    }
    if SIGNALS.load(Ordering::SeqCst) > 0 || interrupted > 0 {
        return Err(Failure::Interrupted(format!(
            "sweep {}: {done}/{total} points done; run the same command to go on",
            sweep.name
        ))
        .into());
    }
    if let Some((code, _)) = failed.first() {
        let list: Vec<&str> = failed.iter().map(|f| f.1.as_str()).collect();
        return Err(failure_of_code(
            *code,
            format!(
                "sweep {}: {} of {total} points failed (their logs are in {}):\n  {}",
                sweep.name,
                failed.len(),
                sweep.dir.join("logs").display(),
                list.join("\n  ")
            ),
        ));
    }
    match elsewhere {
        0 => println!("sweep {}: all {total} points done", sweep.name),
        n => println!(
            "sweep {}: {done}/{total} points done, {n} being run by other processes",
            sweep.name
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_shared_out() {
        assert_eq!(threads_per_job(2, 1), 2);
        assert_eq!(threads_per_job(2, 2), 1);
        assert_eq!(threads_per_job(2, 4), 1);
        assert_eq!(threads_per_job(16, 3), 5);
    }

    #[test]
    fn clock_reads_naturally() {
        assert_eq!(clock(Duration::from_secs(5)), "5s");
        assert_eq!(clock(Duration::from_secs(125)), "2m05s");
        assert_eq!(clock(Duration::from_secs(7300)), "2h01m");
    }
}
