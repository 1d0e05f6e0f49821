//! The effective receptive field: how strongly the output at pixel p depends
//! on each input pixel q,
//!
//! ```text
//! E_p(q) = (1/N) Σ_i Σ_c |∂(Σ_k z_{k,c}(p)) / ∂x_i(q)|
//! ```
//!
//! over the N images i of the probed evaluation batches, the head's channels
//! c (the class logits; for depth the one channel of normalised log-depth),
//! and the input channels. The output is summed over the batch before
//! differentiating (one backward pass per class): under the paper's
//! batch-statistics BN an image's output also depends on the other images of
//! its batch, through the statistics, by terms of order 1/(N·H·W).
//!
//! The radius holding a fraction f of E_p's mass uses the periodic distance
//! of the implicit solve's torus (for p far from the border, the plain one).

use super::rows::csv_bytes;
use super::settings::Settings;
use super::subject::{Subject, AD};
use crate::predict::npy_bytes;
use anyhow::Result;
use burn::tensor::Tensor;

/// Mass fractions whose radii are reported.
pub const FRACTIONS: [f64; 3] = [0.5, 0.9, 0.99];

/// Output pixels probed: the centre, a quarter of the way in, and near the
/// left border (row, column).
pub fn positions(height: usize, width: usize) -> Vec<(usize, usize)> {
    let mut out = vec![
        (height / 2, width / 2),
        (height / 4, width / 4),
        (height / 2, width / 8),
    ];
    out.dedup();
    out
}

/// E_p of the map `f` (images [N, C_in, H, W] → outputs [N, C, H, W]) at
/// `x`, summed over the N images (divide by N for the mean), [H·W] row-major.
pub fn sensitivity(
    f: impl Fn(Tensor<AD, 4>) -> Tensor<AD, 4>,
    x: Tensor<AD, 4>,
    (row, column): (usize, usize),
) -> Vec<f64> {
    let [n, _, h, w] = x.dims();
    let x = x.detach();
    let mut map = vec![0.0; h * w];
    // One forward and backward per class; the first forward tells how many.
    let (mut c, mut classes) = (0, 1);
    while c < classes {
        let input = x.clone().require_grad();
        let output = f(input.clone());
        classes = output.dims()[1];
        let at_p = output.slice([0..n, c..c + 1, row..row + 1, column..column + 1]);
        let grads = at_p.sum().backward();
        let gradient: Vec<f32> = input
            .grad(&grads)
            .expect("x is differentiated")
            .abs()
            .into_data()
            .to_vec()
            .expect("float gradients");
        for (k, g) in gradient.iter().enumerate() {
            map[k % (h * w)] += *g as f64;
        }
        c += 1;
    }
    map
}

/// Distance from `p` to every pixel on the H×W torus, row-major.
fn distances(h: usize, w: usize, (row, column): (usize, usize)) -> Vec<f64> {
    let wrap = |d: usize, n: usize| d.min(n - d) as f64;
    (0..h * w)
        .map(|q| {
            let dy = wrap((q / w).abs_diff(row), h);
            let dx = wrap((q % w).abs_diff(column), w);
            (dy * dy + dx * dx).sqrt()
        })
        .collect()
}

/// The fraction of the map's mass within each integer radius 0, 1, … that
/// reaches every pixel, and the smallest radius holding each of `fractions`.
pub fn mass_profile(
    map: &[f64],
    h: usize,
    w: usize,
    p: (usize, usize),
    fractions: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let d = distances(h, w, p);
    let total: f64 = map.iter().sum();
    let mut order: Vec<usize> = (0..map.len()).collect();
    order.sort_by(|&a, &b| d[a].total_cmp(&d[b]));
    let mut cumulative = Vec::with_capacity(order.len());
    let mut sum = 0.0;
    for &q in &order {
        sum += map[q];
        cumulative.push((d[q], sum / total));
    }
    let radii = fractions
        .iter()
        .map(|&f| {
            cumulative
                .iter()
                .find(|(_, c)| *c >= f - 1e-12)
                .map_or(f64::NAN, |(r, _)| *r)
        })
        .collect();
    let largest = d.iter().copied().fold(0.0, f64::max).ceil() as usize;
    let curve = (0..=largest)
        .map(|r| {
            cumulative
                .iter()
                .take_while(|(distance, _)| *distance <= r as f64)
                .last()
                .map_or(0.0, |(_, c)| *c)
        })
        .collect();
    (curve, radii)
}

/// `receptive_field.csv` (position, radii of 50/90/99% of the mass, the
/// fraction of pixels with a non-zero sensitivity), `receptive_field_curve.csv`
/// (position, radius, mass fraction within it) and `receptive_field.npy` (the
/// mean maps, [positions, H, W]).
pub fn run(subject: &Subject, settings: &Settings) -> Result<Vec<(String, Vec<u8>)>> {
    let device = Default::default();
    let split = subject.split();
    let (h, w) = (split.height, split.width);
    let batches = subject.batches(settings.images);
    let images: usize = batches.iter().map(Vec::len).sum();
    let points = positions(h, w);
    let mut maps = vec![vec![0.0; h * w]; points.len()];
    for chunk in &batches {
        let x = subject.images::<AD>(chunk, &device);
        for (map, &p) in maps.iter_mut().zip(&points) {
            let batch_map = sensitivity(|input| subject.net.forward(input), x.clone(), p);
            map.iter_mut().zip(batch_map).for_each(|(m, v)| *m += v);
        }
    }
    let (mut summary, mut curves) = (Vec::new(), Vec::new());
    for (k, (map, &p)) in maps.iter_mut().zip(&points).enumerate() {
        map.iter_mut().for_each(|v| *v /= images as f64);
        let (curve, radii) = mass_profile(map, h, w, p, &FRACTIONS);
        let nonzero = map.iter().filter(|&&v| v > 0.0).count() as f64 / map.len() as f64;
        let mut row = vec![k.to_string(), p.0.to_string(), p.1.to_string()];
        row.extend(radii.iter().map(|r| format!("{r:.3}")));
        row.push(format!("{nonzero:.6}"));
        summary.push(row);
        for (r, fraction) in curve.iter().enumerate() {
            curves.push(vec![k.to_string(), r.to_string(), format!("{fraction:.6}")]);
        }
    }
    let values: Vec<f32> = maps.concat().iter().map(|&v| v as f32).collect();
    let shape = [points.len() as u64, h as u64, w as u64];
    Ok(vec![
        (
            "receptive_field.csv".into(),
            csv_bytes(
                &[
                    "position",
                    "row",
                    "column",
                    "r50",
                    "r90",
                    "r99",
                    "nonzero_fraction",
                ],
                &summary,
            )?,
        ),
        (
            "receptive_field_curve.csv".into(),
            csv_bytes(&["position", "radius", "mass_fraction"], &curves)?,
        ),
        ("receptive_field.npy".into(), npy_bytes(&shape, values)?),
    ])
}
