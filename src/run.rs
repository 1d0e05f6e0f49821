//! The run folder `results/<name>/`: the resolved config, provenance,
//! per-epoch metrics and checkpoints.
//!
//! ```text
//! config.toml                 the resolved experiment (every key explicit)
//! run.json                    provenance: commit, versions, device, seed, times, parameter counts
//! metrics.csv                 one row per epoch, appended and flushed as it ends
//! checkpoints/last.safetensors, checkpoints/best.safetensors
//! ```

use crate::config::Config;
use crate::data::Prepared;
use crate::error::Failure;
use crate::files::write_atomically;
use crate::folder::{self, Contents};
use crate::lock::RunLock;
use crate::metrics::EpochMetrics;
use crate::model::checkpoint::{read_safetensors, write_safetensors};
use crate::model::Network;
use crate::provenance::{self, BestEpoch, Provenance, Status};
use anyhow::Result;
use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Optimiser state after `epoch` (Burn's binary record format).
fn optimizer_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join("checkpoints")
        .join(format!("optimizer-{epoch}.bin"))
}

pub use crate::provenance::BURN_VERSION;

/// What one epoch produced.
pub struct EpochRecord {
    pub epoch: usize,
    pub learning_rate: f64,
    pub train: EpochMetrics,
    pub val: EpochMetrics,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub train_images: usize,
}

/// Columns of `metrics.csv` for the model's task, in order: segmentation as
/// [`csv_header`]; depth `epoch, learning_rate`, then for `train` and `val`
/// `loss, rmse, abs_rel, log10, delta1, delta2, delta3`, then the timings.
pub fn csv_columns(model: &crate::config::ModelSection) -> Vec<String> {
    match model.task {
        crate::config::Task::Segmentation => csv_header(model.n_classes),
        crate::config::Task::Depth => {
            let mut columns = vec!["epoch".to_string(), "learning_rate".to_string()];
            for split in ["train", "val"] {
                for metric in [
                    "loss", "rmse", "abs_rel", "log10", "delta1", "delta2", "delta3",
                ] {
                    columns.push(format!("{split}_{metric}"));
                }
            }
            columns.extend(
                ["train_seconds", "eval_seconds", "train_images_per_second"].map(String::from),
            );
            columns
        }
    }
}

/// Columns of a segmentation `metrics.csv`, in order.
pub fn csv_header(n_classes: usize) -> Vec<String> {
    let mut columns = vec!["epoch".to_string(), "learning_rate".to_string()];
    for split in ["train", "val"] {
        for metric in ["loss", "pixel_accuracy", "mean_iou", "paper_iou"] {
            columns.push(format!("{split}_{metric}"));
        }
        columns.extend((0..n_classes).map(|c| format!("{split}_iou_class{c}")));
    }
    columns.extend(["train_seconds", "eval_seconds", "train_images_per_second"].map(String::from));
    columns
}

impl EpochRecord {
    /// What run.json keeps of the epoch of the best checkpoint: its losses
    /// and the task's headline validation metrics.
    fn best_epoch(&self) -> BestEpoch {
        let mut val = BTreeMap::from([("val_loss".to_string(), self.val.loss())]);
        for (name, value) in self.val.named_values().into_iter().skip(1) {
            let segmentation_keys = ["mean_iou", "paper_iou", "pixel_accuracy"];
            if matches!(self.val, EpochMetrics::Depth(_))
                || segmentation_keys.contains(&name.as_str())
            {
                val.insert(format!("val_{name}"), value);
            }
        }
        BestEpoch {
            epoch: self.epoch,
            train_loss: self.train.loss(),
            val,
        }
    }

    fn csv_row(&self) -> Vec<String> {
        let mut row = vec![self.epoch.to_string(), format!("{:e}", self.learning_rate)];
        for m in [&self.train, &self.val] {
            row.extend(m.named_values().into_iter().map(|(_, v)| format!("{v:.6}")));
        }
        row.push(format!("{:.3}", self.train_seconds));
        row.push(format!("{:.3}", self.eval_seconds));
        row.push(format!(
            "{:.3}",
            self.train_images as f64 / self.train_seconds
        ));
        row
    }
}

/// A progress bar on a terminal, nothing otherwise (the epoch line is logged).
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    images: usize,
}

impl Progress {
    /// One batch of `images` done.
    pub fn advance(&mut self, images: usize) {
        self.images += images;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// The running loss, and the speed so far, on the progress line.
    pub fn show_loss(&self, running_loss: f64) {
        if let Some(bar) = &self.bar {
            let speed = self.images as f64 / self.started.elapsed().as_secs_f64();
            bar.set_message(format!("loss {running_loss:.4}  {speed:.1} img/s"));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub struct RunFolder {
    dir: PathBuf,
    /// Released when the run folder is dropped.
    _lock: RunLock,
    /// The resolved config, as written to config.toml and into checkpoints.
    config_text: String,
    metrics: File,
    /// Boxed: a large record, and [`Opened`] moves the folder around.
    provenance: Box<Provenance>,
    epochs: usize,
    interactive: bool,
}

/// Where a resumed run picks up: the last completed epoch and its state.
pub struct ResumePoint {
    pub epoch: usize,
    /// Best checkpoint score so far (lower is better).
    pub best_score: f64,
    pub weights: crate::model::checkpoint::NamedTensors,
    /// Optimiser state saved with those weights.
    pub optimizer: PathBuf,
}

/// What to do with a run folder that already holds a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExistingRun {
    /// Resume it if its config is the same, refuse otherwise.
    #[default]
    Continue,
    /// Delete it and start over.
    Restart,
    /// Resume it even under a changed config (e.g. more epochs).
    Resume,
}

/// What [`RunFolder::open`] found.
pub enum Opened {
    /// A new run, or one to continue from `resume` (None: from the start).
    Ready(RunFolder, Option<ResumePoint>),
    /// The run already finished with this very config: nothing to do.
    AlreadyFinished(PathBuf),
}

impl RunFolder {
    /// Opens `output_dir/name/` for training.
    ///
    /// - absent: created with config, provenance and the CSV header;
    /// - holding an unfinished run of the same resolved config: resumed from
    ///   its last checkpoint (CSV rows past it, and a torn last line, dropped);
    /// - holding a finished run of the same config: nothing to do, unless its
    ///   checkpoints are missing (committed results keep only the metrics):
    ///   then it is trained again;
    /// - holding a run of another config: refused, unless `existing` says to
    ///   restart (clear it) or to resume anyway (e.g. with more epochs).
    pub fn open(
        cfg: &Config,
        data: &Prepared,
        device: &str,
        existing: ExistingRun,
    ) -> Result<Opened> {
        let dir = cfg.run_dir();
        let config_text = cfg.to_toml();
        // Looked at before the lock, so that nothing is written into a
        // folder that is not ours, and again once it is held.
        folder::refuse_foreign(&dir, &folder::inspect(&dir, &config_text)?)?;
        let lock = RunLock::acquire(&dir)?;
        let contents = folder::inspect(&dir, &config_text)?;
        folder::refuse_foreign(&dir, &contents)?;
        let restart = existing == ExistingRun::Restart;
        if contents == Contents::Run && !restart {
            let previous = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
            // The same experiment, also when written by an older imex-run
            // (keys added since then take their defaults when parsed).
            let same = previous == config_text
                || Config::parse(&previous, "config.toml", &[]).is_ok_and(|p| p == *cfg);
            if !same {
                if existing != ExistingRun::Resume {
                    return Err(Failure::Output(format!(
                        "{} holds a run of a different configuration (compare its config.toml); \
                         pass --resume to continue it with this one, --restart to replace it, \
                         or choose another experiment.name",
                        dir.display()
                    ))
                    .into());
                }
                let same_network = Config::parse(&previous, "config.toml", &[])
                    .is_ok_and(|p| p.model == cfg.model && p.data == cfg.data);
                if !same_network {
                    return Err(Failure::Output(format!(
                        "{}: --resume can change [experiment] and [training] keys only; \
                         the model or the data differ from its config.toml (--restart to start over)",
                        dir.display()
                    ))
                    .into());
                }
                tracing::warn!("{}: resuming with a changed configuration", dir.display());
                write_atomically(&dir.join("config.toml"), config_text.as_bytes())?;
            }
            let provenance =
                Provenance::read(&dir).unwrap_or_else(|| Provenance::start(cfg, data, device));
            let finished = provenance.status == Status::Finished
                && provenance.epochs_completed >= cfg.training.epochs;
            let checkpoints = ["best", "last"].iter().all(|c| {
                dir.join("checkpoints")
                    .join(format!("{c}.safetensors"))
                    .exists()
            });
            match (finished, checkpoints) {
                (true, true) => return Ok(Opened::AlreadyFinished(dir)),
                (true, false) => tracing::info!(
                    "{} holds this run's metrics but not its checkpoints (they are not committed); \
                     training it again",
                    dir.display()
                ),
                (false, _) => return Self::resume(cfg, dir, lock, provenance, device),
            }
        }
        if contents != Contents::Empty {
            folder::clear_run_files(&dir)?;
        }
        std::fs::create_dir_all(dir.join("checkpoints")).map_err(|e| {
            Failure::Output(format!("cannot create run folder {}: {e}", dir.display()))
        })?;
        write_atomically(&dir.join("config.toml"), config_text.as_bytes())?;
        let provenance = Provenance::start(cfg, data, device);
        let header = csv_columns(&cfg.model).join(",") + "\n";
        write_atomically(&dir.join("metrics.csv"), header.as_bytes())?;
        let run = Self::with_metrics_file(cfg, dir, lock, provenance)?;
        run.write_provenance()?;
        Ok(Opened::Ready(run, None))
    }

    fn with_metrics_file(
        cfg: &Config,
        dir: PathBuf,
        lock: RunLock,
        provenance: Provenance,
    ) -> Result<Self> {
        let path = dir.join("metrics.csv");
        let metrics = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Failure::Output(format!("cannot write {}: {e}", path.display())))?;
        let interactive = std::io::stderr().is_terminal();
        Ok(Self {
            dir,
            _lock: lock,
            metrics,
            provenance: Box::new(provenance),
            config_text: cfg.to_toml(),
            epochs: cfg.training.epochs,
            interactive,
        })
    }

    /// Continues an interrupted run from its last checkpoint.
    fn resume(
        cfg: &Config,
        dir: PathBuf,
        lock: RunLock,
        mut provenance: Provenance,
        device: &str,
    ) -> Result<Opened> {
        let last = dir.join("checkpoints").join("last.safetensors");
        let (weights, epoch) = if last.exists() {
            let (weights, metadata) = read_safetensors(&last)?;
            let epoch = metadata
                .get("epoch")
                .and_then(|e| e.parse().ok())
                .ok_or_else(|| {
                    Failure::Output(format!("{}: checkpoint without an epoch", last.display()))
                })?;
            (weights, epoch)
        } else {
            (Default::default(), 0)
        };
        // Keep the header and the rows of completed, checkpointed epochs;
        // drop later rows and a torn last line.
        let csv_path = dir.join("metrics.csv");
        let text = std::fs::read_to_string(&csv_path)?;
        let header = csv_columns(&cfg.model);
        let kept: Vec<&str> = text
            .split_inclusive('\n')
            .enumerate()
            .filter(|(i, line)| {
                let fields: Vec<&str> = line.trim_end().split(',').collect();
                let complete = line.ends_with('\n') && fields.len() == header.len();
                *i == 0 || (complete && fields[0].parse::<usize>().is_ok_and(|e| e <= epoch))
            })
            .map(|(_, line)| line)
            .collect();
        write_atomically(&csv_path, kept.concat().as_bytes())?;
        let best_score = provenance.best_score.unwrap_or(f64::INFINITY);
        provenance.resume(epoch, device);
        tracing::info!("resuming {} after epoch {epoch}", dir.display());
        let optimizer = optimizer_path(&dir, epoch);
        let run = Self::with_metrics_file(cfg, dir, lock, provenance)?;
        run.write_provenance()?;
        let point = (epoch > 0).then_some(ResumePoint {
            epoch,
            best_score,
            weights,
            optimizer,
        });
        Ok(Opened::Ready(run, point))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn last_checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoints").join("last.safetensors")
    }

    fn write_provenance(&self) -> Result<()> {
        let text = self.provenance.to_json()?;
        write_atomically(&self.dir.join(provenance::FILE), text.as_bytes())
    }

    pub fn progress(&self, epoch: usize, batches: usize) -> Progress {
        let bar = self.interactive.then(|| {
            let bar = ProgressBar::new(batches as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} {bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]",
                )
                .expect("valid template"),
            );
            bar.set_prefix(format!("{epoch}/{}", self.epochs));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            images: 0,
        }
    }

    /// Records a finished epoch, in an order that survives a kill at any
    /// point: the CSV row (flushed), the optimiser state, the weights (the
    /// commit point: resuming starts after the epoch of `last.safetensors`),
    /// then run.json.
    pub fn record_epoch<B: Backend>(
        &mut self,
        record: &EpochRecord,
        net: &Network<B>,
        best_score: Option<f64>,
        save_optimizer: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        writeln!(self.metrics, "{}", record.csv_row().join(","))?;
        self.metrics.sync_data()?;
        save_optimizer(&optimizer_path(&self.dir, record.epoch))?;
        let tensors = net.to_named_tensors();
        let metadata = HashMap::from([
            ("config".to_string(), self.config_text.clone()),
            ("epoch".to_string(), record.epoch.to_string()),
            (
                "format".to_string(),
                "imex-run checkpoint v1 (peer tensor names)".to_string(),
            ),
        ]);
        let checkpoints = self.dir.join("checkpoints");
        if let Some(score) = best_score {
            write_safetensors(
                &checkpoints.join("best.safetensors"),
                &tensors,
                metadata.clone(),
            )?;
            self.provenance.best_score = Some(score);
            self.provenance.best = Some(record.best_epoch());
        }
        write_safetensors(&checkpoints.join("last.safetensors"), &tensors, metadata)?;
        if record.epoch > 1 {
            // Superseded: the weights now on disk are this epoch's.
            let _ = std::fs::remove_file(optimizer_path(&self.dir, record.epoch - 1));
        }
        self.provenance.epochs_completed = record.epoch;
        self.write_provenance()?;
        tracing::info!(
            "epoch {}/{}  train {} | val {} | {:.1} s, {:.1} img/s",
            record.epoch,
            self.epochs,
            record.train.summary(),
            record.val.summary(),
            record.train_seconds + record.eval_seconds,
            record.train_images as f64 / record.train_seconds
        );
        Ok(())
    }

    /// Marks the run finished, interrupted or failed (with the reason) in run.json.
    pub fn finish(&mut self, outcome: &Result<()>) -> Result<()> {
        self.provenance.finish(outcome);
        self.write_provenance()
    }
}
