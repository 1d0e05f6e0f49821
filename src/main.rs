//! The `imex-run` command line: a thin layer over the library.

use clap::{Parser, Subcommand};
use imex_run::bench::{timings_csv, Bench, BenchOptions};
use imex_run::check::{check_table, failures, Check, CheckOptions};
use imex_run::compare::{comparison_table, Comparison};
use imex_run::config::{Arch, Device, Task};
use imex_run::data::qtips::{write_dataset, QtipsSpec};
use imex_run::device::{dispatch, resolve};
use imex_run::error::{exit_code, Failure};
use imex_run::experiment::{run_experiment, RunOptions};
use imex_run::predict::{predict, predict_depth, Checkpoint, SplitName, DEFAULT_IMAGES};
use imex_run::probe::{probe, Settings, Study};
use imex_run::report::panels::{draw_depth_prediction, draw_prediction};
use imex_run::report::report;
use imex_run::results::RunRecord;
use imex_run::run::ExistingRun;
use std::path::PathBuf;
use std::process::ExitCode;

/// Train and evaluate IMEXnet / ResNet experiments declared in TOML files.
#[derive(Parser, Debug)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// Experiment file, e.g. experiments/qtips_imex_small.toml
    config: Option<PathBuf>,
    /// Override one key, Hydra-style: --set model.h=0.5 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Device, overriding experiment.device: cpu, cuda, auto, tch, tch-cuda[:N]
    #[arg(long)]
    device: Option<Device>,
    /// Start over if the run folder already holds a run
    #[arg(long, conflicts_with = "resume")]
    restart: bool,
    /// Resume the run in the folder even if the experiment changed (e.g. more epochs)
    #[arg(long)]
    resume: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train an experiment (the same as `imex-run CONFIG`)
    Train(TrainArgs),
    /// Write a data set to disk
    #[command(subcommand)]
    Data(DataCommand),
    /// Time the training step, evaluation and the building blocks
    Bench(BenchArgs),
    /// Numerical checks on a device: the peer fixtures, and one training step against the CPU
    Check(CheckArgs),
    /// Final and best validation metrics of runs side by side (run folders or
    /// metrics.csv files), and an overlay plot of their curves
    Compare {
        #[arg(required = true, num_args = 1..)]
        runs: Vec<PathBuf>,
        /// Where the overlay plot goes (.png and .svg are added)
        #[arg(long, default_value = "figures/compare")]
        plot: PathBuf,
    },
    /// Run a sweep: a grid of experiments from one file, here, point by point or on Slurm
    Sweep(SweepArgs),
    /// Every table and figure of the study, from the run folders under RESULTS
    Report {
        #[arg(default_value = "results")]
        results: PathBuf,
        #[arg(long, default_value = "figures")]
        out: PathBuf,
        /// Validation images shown in the prediction figures
        #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_IMAGES)]
        images: Vec<usize>,
        /// The metrics.csv column a sweep's heat map, lines and table show
        /// [default: val_paper_iou; val_rmse for depth]
        #[arg(long, value_name = "COLUMN")]
        sweep_metric: Option<String>,
    },
    /// A trained checkpoint on one split: metrics, class maps and
    /// probabilities (PNG panels and .npy arrays)
    Predict {
        run: PathBuf,
        #[arg(long, value_enum, default_value = "best")]
        checkpoint: Checkpoint,
        #[arg(long, value_enum, default_value = "val")]
        split: SplitName,
        #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_IMAGES)]
        images: Vec<usize>,
        /// Output folder [default: RUN/predict-CHECKPOINT-SPLIT]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Stability of a trained network: perturbation growth through depth,
    /// noise and (segmentation) adversarial robustness, receptive field
    Probe(ProbeArgs),
}

#[derive(clap::Args, Debug)]
struct ProbeArgs {
    run: PathBuf,
    /// Studies to run (comma-separated) [default: all four; a depth run: all but adversarial]
    #[arg(long, value_enum, value_delimiter = ',')]
    study: Vec<Study>,
    #[arg(long, value_enum, default_value = "best")]
    checkpoint: Checkpoint,
    #[arg(long, value_enum, default_value = "val")]
    split: SplitName,
    /// Images (the split's first, in evaluation batches) for the perturbation,
    /// adversarial and receptive-field studies; noise evaluates the whole split
    #[arg(long, default_value_t = 16)]
    images: usize,
    /// Relative sizes ‖δ‖/‖x‖ of the random perturbations
    #[arg(long, value_delimiter = ',', default_values_t = Settings::default().perturbation_sizes)]
    sizes: Vec<f64>,
    /// Random perturbations per image and size
    #[arg(long, default_value_t = 4)]
    draws: usize,
    #[arg(long, default_value_t = 10)]
    power_iterations: usize,
    /// Noise levels σ, in units of the data's standard deviation
    #[arg(long, value_delimiter = ',', default_values_t = Settings::default().noise_levels)]
    sigmas: Vec<f64>,
    /// L∞ attack sizes ε on the normalised input scale
    #[arg(long, value_delimiter = ',', default_values_t = Settings::default().attack_sizes)]
    epsilons: Vec<f64>,
    #[arg(long, default_value_t = 10)]
    pgd_steps: usize,
    /// The probed image whose PGD attack (ε nearest 0.1) is kept for a figure
    #[arg(long, default_value_t = 3)]
    example_image: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder [default: RUN/probe-CHECKPOINT-SPLIT]
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `imex-run sweep FILE`: the points of a sweep file (README, "Sweeps").
#[derive(clap::Args, Debug)]
struct SweepArgs {
    /// Sweep file, e.g. experiments/sweeps/h_alpha_cpu.toml
    file: PathBuf,
    /// List the points and their run folders; run nothing
    #[arg(long, conflicts_with_all = ["index", "slurm", "submit", "status", "jobs"])]
    dry_run: bool,
    /// Points run at once here, each in its own process with the cores shared out
    #[arg(long, value_parser = at_least_one, default_value_t = imex_run::sweep::local::DEFAULT_JOBS)]
    jobs: usize,
    /// Run point I alone in this process (what a Slurm array task runs)
    #[arg(long, value_name = "I", conflicts_with_all = ["slurm", "submit", "status", "jobs"])]
    index: Option<usize>,
    /// Write the Slurm batch script (a job array) into the sweep folder
    #[arg(long, conflicts_with = "status")]
    slurm: bool,
    /// Write the batch script and submit the unfinished points with sbatch
    #[arg(long, conflicts_with = "status")]
    submit: bool,
    /// Where each point stands: done, running, interrupted, failed, pending (and Slurm's view)
    #[arg(long)]
    status: bool,
}

/// A count that must be at least 1 (clap names the flag when it is not).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected an integer >= 1, found {text:?}")),
    }
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// cpu, cuda, auto, tch or tch-cuda[:N]
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// narrow (8/16/32), paper (64/128/256) or all
    #[arg(long, default_value = "all", value_parser = ["narrow", "paper", "all"])]
    geometry: String,
    /// Block widths instead of a named geometry, 4 layers each (e.g. 32 or 8,16,32)
    #[arg(long, value_delimiter = ',', value_parser = at_least_one, conflicts_with = "geometry")]
    widths: Option<Vec<usize>>,
    /// Channel counts of the building blocks' timings
    #[arg(long, value_delimiter = ',', value_parser = at_least_one, default_value = "8,16,32,64,128,256")]
    op_widths: Vec<usize>,
    /// Which network's training step and evaluation: imex, resnet or both
    #[arg(long, default_value = "both", value_parser = ["imex", "resnet", "both"])]
    arch: String,
    /// Timed steps per measurement (at least 1)
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    batch: usize,
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    size: usize,
    /// Only the building blocks
    #[arg(long, conflicts_with = "skip_ops")]
    only_ops: bool,
    /// Only the training step and evaluation
    #[arg(long)]
    skip_ops: bool,
    /// No evaluation timing (a profile of the training step alone)
    #[arg(long)]
    skip_eval: bool,
    /// Also write the timings as JSON
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the timings as CSV (name, median_ms, min_ms, max_ms, images_per_second)
    #[arg(long)]
    csv: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Device to check (its results are compared with the CPU's and the peer's):
    /// cpu, cuda, auto, tch or tch-cuda[:N]
    #[arg(long, default_value = "auto")]
    device: Device,
    /// Network of the step comparison: narrow (8/16/32) or paper (64/128/256), 4 layers per block
    #[arg(long, default_value = "paper", value_parser = ["narrow", "paper"])]
    geometry: String,
    #[arg(long, default_value_t = 2)]
    batch: usize,
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the rows as JSON
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// The Q-tips set in the authors' layout: DIR/{train,val}/{images,labels}/000000.png
    Qtips {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 1024)]
        train: usize,
        #[arg(long, default_value_t = 64)]
        val: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
    },
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let config = args
        .config
        .ok_or_else(|| anyhow::anyhow!("no experiment file given"))?;
    let device = args.device;
    let options = RunOptions {
        config,
        overrides: args.overrides,
        device,
        existing: match (args.restart, args.resume) {
            (true, _) => ExistingRun::Restart,
            (_, true) => ExistingRun::Resume,
            _ => ExistingRun::Continue,
        },
    };
    imex_run::interrupt::install();
    let dir = run_experiment(&options)?;
    println!("run folder: {}", dir.display());
    Ok(())
}

fn sweep(args: SweepArgs) -> anyhow::Result<()> {
    use imex_run::sweep::Mode;
    let mode = if args.dry_run {
        Mode::DryRun
    } else if let Some(index) = args.index {
        Mode::Index(index)
    } else if args.slurm || args.submit {
        Mode::Slurm {
            submit: args.submit,
        }
    } else if args.status {
        Mode::Status
    } else {
        Mode::Local { jobs: args.jobs }
    };
    imex_run::sweep::command(&args.file, mode)
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let geometries = match args.widths {
        Some(widths) => vec![(format!("widths {widths:?}"), widths)],
        None => [("narrow", vec![8, 16, 32]), ("paper", vec![64, 128, 256])]
            .into_iter()
            .filter(|(name, _)| args.geometry == "all" || args.geometry == *name)
            .map(|(name, widths)| (name.to_string(), widths))
            .collect(),
    };
    let archs = [Arch::Imex, Arch::Resnet]
        .into_iter()
        .filter(|arch| args.arch == "both" || args.arch == arch.config_name())
        .collect();
    let options = BenchOptions {
        geometries,
        archs,
        op_widths: args.op_widths,
        batch: args.batch,
        size: args.size,
        warmup: args.warmup,
        steps: args.steps,
        ops: !args.skip_ops,
        train: !args.only_ops,
        eval: !args.only_ops && !args.skip_eval,
    };
    let accelerator = resolve(args.device)?;
    let timings = dispatch(accelerator, Bench(options))?;
    if let Some(path) = args.json {
        let report = serde_json::json!({ "device": accelerator.label(), "timings": timings });
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = args.csv {
        std::fs::write(&path, timings_csv(&timings)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn compare(runs: &[PathBuf], plot: &std::path::Path) -> anyhow::Result<()> {
    let comparison = Comparison::read(runs)?;
    print!("{}", comparison_table(&comparison));
    if let Some(dir) = plot.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    for file in comparison.plot(plot)? {
        println!("wrote {}", file.display());
    }
    Ok(())
}

fn predict_command(
    run: &std::path::Path,
    checkpoint: Checkpoint,
    split: SplitName,
    images: &[usize],
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let record = RunRecord::read(run)?;
    let split_name = format!("{split:?}").to_lowercase();
    let out =
        out.unwrap_or_else(|| run.join(format!("predict-{}-{split_name}", checkpoint.name())));
    let files = match record.config.model.task {
        Task::Segmentation => {
            let prediction = predict(&record, checkpoint, split, images)?;
            let m = &prediction.metrics;
            println!(
                "{} checkpoint (epoch {}) on the {split_name} split: loss {:.4}, pixel accuracy {:.4}, mean IoU {:.4}, paper IoU {:.4}",
                checkpoint.name(),
                prediction.source.epoch,
                m.loss(),
                m.pixel_accuracy(),
                m.mean_iou(),
                m.paper_iou()
            );
            let mut files = prediction.write(&out)?;
            files.extend(draw_prediction(&prediction, &out)?);
            files
        }
        Task::Depth => {
            let prediction = predict_depth(&record, checkpoint, split, images)?;
            println!(
                "{} checkpoint (epoch {}) on the {split_name} split: {}",
                checkpoint.name(),
                prediction.source.epoch,
                prediction.metrics.summary()
            );
            let mut files = prediction.write(&out)?;
            files.extend(draw_depth_prediction(&prediction, &out)?);
            files
        }
    };
    for file in files {
        println!("wrote {}", file.display());
    }
    Ok(())
}

fn probe_command(args: ProbeArgs) -> anyhow::Result<()> {
    let record = RunRecord::read(&args.run)?;
    let settings = Settings {
        studies: args.study,
        checkpoint: args.checkpoint,
        split: args.split,
        images: args.images,
        perturbation_sizes: args.sizes,
        draws: args.draws,
        power_iterations: args.power_iterations,
        noise_levels: args.sigmas,
        attack_sizes: args.epsilons,
        pgd_steps: args.pgd_steps,
        example_image: args.example_image,
        seed: args.seed,
    };
    let out = args.out.unwrap_or_else(|| {
        args.run.join(format!(
            "probe-{}-{}",
            settings.checkpoint.name(),
            settings.split.name()
        ))
    });
    let started = std::time::Instant::now();
    let files = probe(&record, &settings, &out, |study| {
        tracing::info!("{}: probing {study}", record.name())
    })?;
    for file in files {
        println!("wrote {}", file.display());
    }
    println!("probed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.size < 3 {
        return Err(Failure::Config("check needs --batch ≥ 1 and --size ≥ 3".into()).into());
    }
    let widths = if args.geometry == "paper" {
        vec![64, 128, 256]
    } else {
        vec![8, 16, 32]
    };
    let options = CheckOptions {
        geometry: args.geometry,
        widths,
        batch: args.batch,
        size: args.size,
        seed: args.seed,
    };
    let accelerator = resolve(args.device)?;
    let rows = dispatch(accelerator, Check(options))?;
    println!("check on {}", accelerator.label());
    print!("{}", check_table(&rows));
    if let Some(path) = args.json {
        let report = serde_json::json!({ "device": accelerator.label(), "rows": rows });
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
        println!("wrote {}", path.display());
    }
    match failures(&rows) {
        0 => {
            println!("check: all {} comparisons pass", rows.len());
            Ok(())
        }
        n => Err(Failure::Numerical(format!(
            "check: {n} of {} comparisons outside tolerance on {}",
            rows.len(),
            accelerator.label()
        ))
        .into()),
    }
}

fn main() -> ExitCode {
    imex_run::device::keep_freed_memory();
    imex_run::device::start_thread_pool();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Train(args)) => train(args),
        Some(Command::Data(DataCommand::Qtips {
            out,
            seed,
            train,
            val,
            size,
        })) => write_dataset(
            &out,
            &QtipsSpec {
                seed,
                train,
                val,
                size,
            },
        )
        .map(|()| println!("wrote {}", out.display())),
        Some(Command::Bench(args)) => bench(args),
        Some(Command::Check(args)) => check(args),
        Some(Command::Sweep(args)) => sweep(args),
        Some(Command::Compare { runs, plot }) => compare(&runs, &plot),
        Some(Command::Report {
            results,
            out,
            images,
            sweep_metric,
        }) => report(&results, &out, &images, sweep_metric.as_deref()).map(|written| {
            for file in &written.files {
                println!("wrote {}", file.display());
            }
            for reason in &written.skipped {
                eprintln!("skipped {reason}");
            }
        }),
        Some(Command::Predict {
            run,
            checkpoint,
            split,
            images,
            out,
        }) => predict_command(&run, checkpoint, split, &images, out),
        Some(Command::Probe(args)) => probe_command(args),
        None => train(cli.train),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err) as u8)
        }
    }
}
