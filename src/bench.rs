//! `imex-run bench`: the training step and its building blocks, timed.
//!
//! A training step is what `train` does per batch: projection, forward,
//! weighted cross-entropy, backward, optimiser update. The building blocks
//! (3×3 convolution, its adjoint, the implicit solve) are timed alone at the
//! shapes the networks use, so the cost of the implicit step relative to a
//! convolution is visible. Every timing ends with a read-back of a scalar,
//! which waits for asynchronous backends (CUDA).

use crate::check::QTIPS_CLASS_WEIGHTS;
use crate::config::{Arch, Config};
use crate::device::{Accelerator, BackendTask};
use crate::model::explicit::{conv3x3, conv3x3_adjoint, project_zero_mean};
use crate::model::implicit::FourierBasis;
use crate::model::Network;
use crate::train::weighted_nll;
use anyhow::Result;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, ElementConversion, Int, Tensor};
use serde::Serialize;
use std::time::Instant;

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// (name, widths) of the geometries, 4 layers per block.
    pub geometries: Vec<(String, Vec<usize>)>,
    /// The networks whose step is timed.
    pub archs: Vec<Arch>,
    /// Channel counts at which the building blocks are timed.
    pub op_widths: Vec<usize>,
    pub batch: usize,
    pub size: usize,
    pub warmup: usize,
    pub steps: usize,
    pub ops: bool,
    pub train: bool,
    /// Time the evaluation forward too (with `train`).
    pub eval: bool,
}

/// Median, spread and throughput of one timed thing.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub name: String,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Images per second at the median (training and evaluation rows).
    pub images_per_second: Option<f64>,
}

fn time<F: FnMut() -> f64>(
    name: String,
    warmup: usize,
    reps: usize,
    images: Option<usize>,
    mut f: F,
) -> Timing {
    for _ in 0..warmup {
        f();
    }
    let mut ms: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let sink = f();
            assert!(sink.is_finite() || sink.is_nan());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    Timing {
        name,
        median_ms: median,
        min_ms: ms[0],
        max_ms: ms[ms.len() - 1],
        images_per_second: images.map(|n| n as f64 / (median / 1e3)),
    }
}

fn read<B: Backend, const D: usize>(t: Tensor<B, D>) -> f64 {
    t.sum().into_scalar().elem::<f64>()
}

fn bench_config(arch: Arch, widths: &[usize]) -> Config {
    let text = format!(
        "[experiment]\nname = \"bench\"\n[model]\narch = \"{}\"\nwidths = {widths:?}\ndepths = {:?}\n",
        arch.config_name(),
        vec![4; widths.len()]
    );
    Config::parse(&text, "bench", &[]).expect("valid bench config")
}

pub struct Bench(pub BenchOptions);

impl BackendTask for Bench {
    type Output = Vec<Timing>;

    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        accelerator: Accelerator,
    ) -> Result<Vec<Timing>> {
        let o = self.0;
        let mut out = Vec::new();
        let report = |t: Timing, out: &mut Vec<Timing>| {
            tracing::info!(
                "{:<40} median {:>9.2} ms  (min {:.2}, max {:.2}){}",
                t.name,
                t.median_ms,
                t.min_ms,
                t.max_ms,
                t.images_per_second
                    .map(|v| format!("  {v:.2} img/s"))
                    .unwrap_or_default()
            );
            out.push(t);
        };
        tracing::info!(
            "bench on {}: batch {}, {}×{}, {} warm-up + {} timed",
            accelerator.label(),
            o.batch,
            o.size,
            o.size,
            o.warmup,
            o.steps
        );
        let (n, s) = (o.batch, o.size);
        if o.train {
            for (geometry, widths) in &o.geometries {
                for &arch in &o.archs {
                    let cfg = bench_config(arch, widths);
                    let tag = format!("{geometry} {}", arch.config_name());
                    let x = Tensor::<B, 4>::random(
                        [n, 1, s, s],
                        Distribution::Normal(0.0, 1.0),
                        &device,
                    );
                    let labels = Tensor::<B, 3, Int>::random(
                        [n, s, s],
                        Distribution::Uniform(0.0, 4.0),
                        &device,
                    );
                    let weights = Tensor::<B, 1>::from_floats(QTIPS_CLASS_WEIGHTS, &device);
                    let mut net = Some(Network::<B>::new(&cfg.model, 0, &device));
                    let mut optim = SgdConfig::new().init::<B, Network<B>>();
                    report(
                        time(
                            format!("train step  {tag}"),
                            o.warmup,
                            o.steps,
                            Some(n),
                            || {
                                let model = net.take().unwrap().project_kernels();
                                let (num, den) = weighted_nll(
                                    model.forward(x.clone()),
                                    labels.clone(),
                                    weights.clone(),
                                );
                                let loss = num / den;
                                let value = loss.clone().into_scalar().elem::<f64>();
                                let grads = GradientsParams::from_grads(loss.backward(), &model);
                                net = Some(optim.step(1e-3, model, grads));
                                value
                            },
                        ),
                        &mut out,
                    );
                    if !o.eval {
                        continue;
                    }
                    let eval = net.take().unwrap().valid();
                    let x = x.inner();
                    report(
                        time(
                            format!("forward (eval)  {tag}"),
                            o.warmup,
                            o.steps,
                            Some(n),
                            || read(eval.forward(x.clone())),
                        ),
                        &mut out,
                    );
                }
            }
        }
        if o.ops {
            let basis = FourierBasis::<B>::new(s, s, &device);
            for &c in &o.op_widths {
                // More repetitions where one call is short (up to 64 channels of 64×64).
                let reps = o.steps.max(5) * if c * s * s <= 64 * 64 * 64 { 4 } else { 1 };
                let x =
                    Tensor::<B, 4>::random([n, c, s, s], Distribution::Normal(0.0, 1.0), &device);
                let k =
                    Tensor::<B, 4>::random([c, c, 3, 3], Distribution::Normal(0.0, 0.1), &device);
                let l = project_zero_mean(Tensor::<B, 4>::random(
                    [c, 1, 3, 3],
                    Distribution::Default,
                    &device,
                ));
                let g =
                    Tensor::<B, 4>::random([n, c, s, s], Distribution::Normal(0.0, 1.0), &device);
                let shape = format!("[{n},{c},{s},{s}]");
                report(
                    time(format!("conv3x3 fwd {shape}"), 2, reps, None, || {
                        read(conv3x3(x.clone(), k.clone()))
                    }),
                    &mut out,
                );
                report(
                    time(
                        format!("conv3x3 adjoint fwd {shape}"),
                        2,
                        reps,
                        None,
                        || read(conv3x3_adjoint(x.clone(), k.clone())),
                    ),
                    &mut out,
                );
                report(
                    time(format!("implicit solve fwd {shape}"), 2, reps, None, || {
                        read(basis.solve(
                            x.clone(),
                            basis.symbol_of_normal_operator(l.clone()),
                            1.0,
                        ))
                    }),
                    &mut out,
                );
                report(
                    time(format!("conv3x3 fwd+bwd {shape}"), 2, reps, None, || {
                        let (xg, kg) = (x.clone().require_grad(), k.clone().require_grad());
                        let grads = (conv3x3(xg.clone(), kg.clone()) * g.clone())
                            .sum()
                            .backward();
                        read(xg.grad(&grads).unwrap()) + read(kg.grad(&grads).unwrap())
                    }),
                    &mut out,
                );
                report(
                    time(
                        format!("implicit solve fwd+bwd {shape}"),
                        2,
                        reps,
                        None,
                        || {
                            let (xg, lg) = (x.clone().require_grad(), l.clone().require_grad());
                            let y = basis.solve(
                                xg.clone(),
                                basis.symbol_of_normal_operator(lg.clone()),
                                1.0,
                            );
                            let grads = (y * g.clone()).sum().backward();
                            read(xg.grad(&grads).unwrap()) + read(lg.grad(&grads).unwrap())
                        },
                    ),
                    &mut out,
                );
            }
        }
        Ok(out)
    }
}

/// The timings as CSV: name, median_ms, min_ms, max_ms, images_per_second
/// (empty where not a training or evaluation row).
pub fn timings_csv(timings: &[Timing]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["name", "median_ms", "min_ms", "max_ms", "images_per_second"])?;
    for t in timings {
        w.write_record([
            t.name.clone(),
            format!("{:.4}", t.median_ms),
            format!("{:.4}", t.min_ms),
            format!("{:.4}", t.max_ms),
            t.images_per_second
                .map_or(String::new(), |v| format!("{v:.4}")),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
