//! Image panels of trained networks: image | ground truth | predictions, and
//! per-class probability maps, in the class colours of the slides.

use super::figure::{
    centred_text, class_legend, colour_bar, save, viridis, Figure, Raster, CLASS_COLOURS,
    CLASS_NAMES, FONT, LABEL_SIZE, TITLE_SIZE,
};
use crate::predict::{DepthPrediction, Prediction};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const SCALE: u32 = 3;
const GAP: i32 = 16;
const TOP: i32 = 70;
const ROW_LABEL: i32 = 70;

fn network(prediction: &Prediction) -> String {
    format!("{} prediction", prediction.source.arch.display_name())
}

fn class_map(classes: &[u8], width: usize, height: usize) -> Raster {
    Raster::from_fn(width, height, |i| {
        CLASS_COLOURS[(classes[i] as usize).min(CLASS_COLOURS.len() - 1)]
    })
}

fn grey(intensities: &[f32], width: usize, height: usize) -> Raster {
    Raster::from_fn(width, height, |i| {
        let v = (intensities[i].clamp(0.0, 1.0) * 255.0).round() as u8;
        RGBColor(v, v, v)
    })
}

/// Draws `cells[row][column]` as a grid under column titles, rows labelled
/// with the image index.
fn draw_grid<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    titles: &[String],
    rows: &[(String, Vec<Raster>)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let Some(side) = rows
        .first()
        .and_then(|r| r.1.first())
        .map(|r| r.width as i32 * SCALE as i32)
    else {
        return Ok(());
    };
    for (k, title) in titles.iter().enumerate() {
        let x = ROW_LABEL + k as i32 * (side + GAP) + side / 2;
        centred_text(area, title, (x, TOP - 30), LABEL_SIZE - 2)?;
    }
    for (r, (label, cells)) in rows.iter().enumerate() {
        let y = TOP + r as i32 * (side + GAP);
        centred_text(
            area,
            label,
            (ROW_LABEL / 2, y + side / 2 - 10),
            LABEL_SIZE - 2,
        )?;
        for (k, cell) in cells.iter().enumerate() {
            cell.enlarged(SCALE)
                .draw(area, (ROW_LABEL + k as i32 * (side + GAP), y))?;
        }
    }
    Ok(())
}

fn grid_size(columns: usize, rows: usize, side: usize, extra: (u32, u32)) -> (u32, u32) {
    let side = side as u32 * SCALE;
    (
        ROW_LABEL as u32 + columns as u32 * (side + GAP as u32) + extra.0,
        TOP as u32 + rows as u32 * (side + GAP as u32) + extra.1,
    )
}

/// Image | ground truth | each network's class map, one row per image.
/// `imex-run predict`'s figures of one segmentation checkpoint:
/// `out/predictions.{png,svg}` and `out/probabilities.{png,svg}`.
pub fn draw_prediction(prediction: &Prediction, out: &Path) -> Result<Vec<PathBuf>> {
    let columns = std::slice::from_ref(prediction);
    let mut files = save(&PredictionPanels::new(columns), &out.join("predictions"))?;
    files.extend(save(
        &ProbabilityPanels::new(columns),
        &out.join("probabilities"),
    )?);
    Ok(files)
}

/// `imex-run predict`'s figure of one depth checkpoint: `out/depth.{png,svg}`.
pub fn draw_depth_prediction(prediction: &DepthPrediction, out: &Path) -> Result<Vec<PathBuf>> {
    save(
        &DepthPanels::new(std::slice::from_ref(prediction)),
        &out.join("depth"),
    )
}

pub struct PredictionPanels<'a> {
    predictions: &'a [Prediction],
}

impl<'a> PredictionPanels<'a> {
    /// `predictions` of the same images of the same split (e.g. IMEX, ResNet).
    pub fn new(predictions: &'a [Prediction]) -> Self {
        Self { predictions }
    }
}

impl Figure for PredictionPanels<'_> {
    fn size(&self) -> (u32, u32) {
        let first = &self.predictions[0];
        let (w, h) = grid_size(
            2 + self.predictions.len(),
            first.source.images.len(),
            first.source.width,
            (20, 70),
        );
        (w.max(900), h + 40)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let first = &self.predictions[0];
        let (w, h) = (first.source.width, first.source.height);
        let split = match first.source.split {
            crate::predict::SplitName::Train => "training",
            crate::predict::SplitName::Val => "validation",
        };
        let root = root.titled(
            &format!(
                "Q-tips {split} images: segmentations ({} checkpoints)",
                first.source.checkpoint.name()
            ),
            (FONT, TITLE_SIZE),
        )?;
        let (_, full_height) = root.dim_in_pixel();
        let (grid, legend) = root.split_vertically(full_height - 60);
        let titles: Vec<String> = ["image".to_string(), "ground truth".to_string()]
            .into_iter()
            .chain(self.predictions.iter().map(network))
            .collect();
        let rows: Vec<(String, Vec<Raster>)> = first
            .source
            .images
            .iter()
            .enumerate()
            .map(|(k, index)| {
                let cells = [
                    grey(&first.intensities[k], w, h),
                    class_map(&first.labels[k], w, h),
                ]
                .into_iter()
                .chain(
                    self.predictions
                        .iter()
                        .map(|p| class_map(&p.classes[k], w, h)),
                )
                .collect();
                (format!("#{index}"), cells)
            })
            .collect();
        draw_grid(&grid, &titles, &rows)?;
        class_legend(&legend)
    }
}

/// Per-class probability maps (the object classes), each network in turn.
pub struct ProbabilityPanels<'a> {
    predictions: &'a [Prediction],
}

impl<'a> ProbabilityPanels<'a> {
    pub fn new(predictions: &'a [Prediction]) -> Self {
        Self { predictions }
    }

    fn classes(&self) -> std::ops::Range<usize> {
        1..self.predictions[0].n_classes
    }
}

impl Figure for ProbabilityPanels<'_> {
    fn size(&self) -> (u32, u32) {
        let first = &self.predictions[0];
        let columns = self.predictions.len() * self.classes().len();
        grid_size(
            columns,
            first.source.images.len(),
            first.source.width,
            (130, 40),
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let first = &self.predictions[0];
        let (w, h) = (first.source.width, first.source.height);
        let root = root.titled("Class probabilities p(class | pixel)", (FONT, TITLE_SIZE))?;
        let (full_width, _) = root.dim_in_pixel();
        let (grid, bar) = root.split_horizontally(full_width - 120);
        let mut titles = Vec::new();
        for p in self.predictions {
            let arch = network(p).replace(" prediction", "");
            for c in self.classes() {
                let class = CLASS_NAMES
                    .get(c)
                    .map_or(format!("class {c}"), |n| n.to_string());
                titles.push(format!("{arch}: {}", class.split(' ').next().unwrap_or("")));
            }
        }
        let plane = w * h;
        let rows: Vec<(String, Vec<Raster>)> = first
            .source
            .images
            .iter()
            .enumerate()
            .map(|(k, index)| {
                let cells = self
                    .predictions
                    .iter()
                    .flat_map(|p| {
                        self.classes().map(move |c| {
                            let probs = &p.probabilities[k][c * plane..(c + 1) * plane];
                            Raster::from_fn(w, h, |i| viridis(probs[i] as f64))
                        })
                    })
                    .collect();
                (format!("#{index}"), cells)
            })
            .collect();
        draw_grid(&grid, &titles, &rows)?;
        colour_bar(&bar, "probability", (0.0, 1.0), viridis)
    }
}

/// RGB | true depth | each network's depth (the slides' NYU figure), one
/// colour scale for every depth map of the figure.
pub struct DepthPanels<'a> {
    predictions: &'a [DepthPrediction],
}

impl<'a> DepthPanels<'a> {
    /// `predictions` of the same frames of the same split (e.g. ResNet, IMEX).
    pub fn new(predictions: &'a [DepthPrediction]) -> Self {
        Self { predictions }
    }

    /// The range of the true depths shown (predictions outside it saturate).
    fn scale(&self) -> (f64, f64) {
        let truth = self.predictions[0].truth.iter().flatten();
        let (lo, hi) = truth.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &d| {
            (a.min(d as f64), b.max(d as f64))
        });
        if lo < hi {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        }
    }
}

impl Figure for DepthPanels<'_> {
    fn size(&self) -> (u32, u32) {
        let first = &self.predictions[0];
        let (w, h) = grid_size(
            2 + self.predictions.len(),
            first.source.images.len(),
            first.source.width,
            (150, 20),
        );
        (w.max(700), h.max(400))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let first = &self.predictions[0];
        let (w, h) = (first.source.width, first.source.height);
        let root = root.titled(
            &format!(
                "Depth from one RGB image ({} checkpoints)",
                first.source.checkpoint.name()
            ),
            (FONT, TITLE_SIZE),
        )?;
        let (full_width, _) = root.dim_in_pixel();
        let (grid, bar) = root.split_horizontally(full_width - 130);
        let (lo, hi) = self.scale();
        let depth_map = |depths: &[f32]| {
            Raster::from_fn(w, h, |i| viridis((depths[i] as f64 - lo) / (hi - lo)))
        };
        let titles: Vec<String> = ["RGB".to_string(), "true depth".to_string()]
            .into_iter()
            .chain(
                self.predictions
                    .iter()
                    .map(|p| format!("{} depth", p.source.arch.display_name())),
            )
            .collect();
        let plane = w * h;
        let rows: Vec<(String, Vec<Raster>)> = first
            .source
            .images
            .iter()
            .enumerate()
            .map(|(k, index)| {
                let rgb = &first.rgb[k];
                let image = Raster::from_fn(w, h, |i| {
                    let c = |ch: usize| (rgb[ch * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8;
                    RGBColor(c(0), c(1), c(2))
                });
                let cells = [image, depth_map(&first.truth[k])]
                    .into_iter()
                    .chain(self.predictions.iter().map(|p| depth_map(&p.predicted[k])))
                    .collect();
                (format!("#{index}"), cells)
            })
            .collect();
        draw_grid(&grid, &titles, &rows)?;
        colour_bar(&bar, "depth (m)", (lo, hi), viridis)
    }
}

/// One network's PGD attack on one image, as `imex-run probe` keeps it
/// (`adversarial_example.safetensors`, see [`crate::probe::adversarial`]).
#[derive(Debug, Clone)]
pub struct Attack {
    /// The network, as the figure names it (e.g. "IMEXnet, seed 0").
    pub network: String,
    pub image_index: usize,
    pub split: String,
    pub epsilon: f64,
    pub steps: usize,
    pub width: usize,
    pub height: usize,
    /// Intensities in [0, 1] (the normalisation undone), clean and attacked.
    pub clean: Vec<f32>,
    pub attacked: Vec<f32>,
    /// attacked − clean on the normalised input scale (|δ| ≤ ε).
    pub perturbation: Vec<f32>,
    pub label: Vec<u8>,
    pub clean_prediction: Vec<u8>,
    pub attacked_prediction: Vec<u8>,
    pub clean_paper_iou: f64,
    pub attacked_paper_iou: f64,
}

impl Attack {
    pub fn read(path: &Path, network: &str) -> Result<Self> {
        use anyhow::Context;
        let (tensors, metadata) = crate::model::checkpoint::read_safetensors(path)?;
        let tensor = |name: &str| {
            tensors
                .get(name)
                .with_context(|| format!("{}: no tensor {name}", path.display()))
        };
        let number = |key: &str| -> Result<f64> {
            metadata
                .get(key)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{}: no number {key} in the metadata", path.display()))
        };
        let image = tensor("image")?;
        let (height, width) = match image.shape[..] {
            [h, w] => (h, w),
            _ => anyhow::bail!("{}: the image is not [H, W]", path.display()),
        };
        let (mean, std) = (number("mean")? as f32, number("std")? as f32);
        let attacked = &tensor("attacked")?.values;
        let intensity = |v: &[f32]| v.iter().map(|x| x * std + mean).collect::<Vec<f32>>();
        let classes = |name: &str| -> Result<Vec<u8>> {
            Ok(tensor(name)?.values.iter().map(|&c| c as u8).collect())
        };
        Ok(Self {
            network: network.to_string(),
            image_index: number("image_index")? as usize,
            split: metadata.get("split").cloned().unwrap_or_default(),
            epsilon: number("epsilon")?,
            steps: number("pgd_steps")? as usize,
            width,
            height,
            clean: intensity(&image.values),
            attacked: intensity(attacked),
            perturbation: attacked
                .iter()
                .zip(&image.values)
                .map(|(a, x)| a - x)
                .collect(),
            label: classes("label")?,
            clean_prediction: classes("clean_prediction")?,
            attacked_prediction: classes("attacked_prediction")?,
            clean_paper_iou: number("clean_paper_iou")?,
            attacked_paper_iou: number("attacked_paper_iou")?,
        })
    }
}

/// Image | ground truth | clean prediction | perturbation | attacked image |
/// attacked prediction, one row per network: what a PGD attack changes.
pub struct AttackPanels<'a> {
    attacks: &'a [Attack],
}

impl<'a> AttackPanels<'a> {
    /// `attacks` on the same image (e.g. IMEX, ResNet).
    pub fn new(attacks: &'a [Attack]) -> Self {
        Self { attacks }
    }

    /// The largest ε of the rows: the perturbation's colour scale is ±it.
    fn scale(&self) -> f64 {
        self.attacks.iter().map(|a| a.epsilon).fold(0.0, f64::max)
    }
}

const ATTACK_CAPTION: i32 = 30;

impl Figure for AttackPanels<'_> {
    fn size(&self) -> (u32, u32) {
        let rows = self.attacks.len();
        let (w, h) = grid_size(6, rows, self.attacks[0].width, (150, 70));
        (w, h + 40 + ATTACK_CAPTION as u32 * rows as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let first = &self.attacks[0];
        let (w, h) = (first.width, first.height);
        let split = match first.split.as_str() {
            "train" => "training",
            _ => "validation",
        };
        let root = root.titled(
            &format!(
                "Q-tips {split} image #{}: PGD, L∞ ε = {} on the normalised input, {} steps of ε/4",
                first.image_index, first.epsilon, first.steps
            ),
            (FONT, TITLE_SIZE),
        )?;
        let (full_width, full_height) = root.dim_in_pixel();
        let captions = ATTACK_CAPTION as u32 * self.attacks.len() as u32;
        let (upper, legend) = root.split_vertically(full_height - 60);
        let (grid, notes) = upper.split_vertically(full_height - 60 - captions);
        let (grid, bar) = grid.split_horizontally(full_width - 140);
        let epsilon = self.scale();
        let titles: Vec<String> = [
            "image",
            "ground truth",
            "prediction",
            "perturbation δ",
            "attacked image",
            "attacked prediction",
        ]
        .map(String::from)
        .to_vec();
        let rows: Vec<(String, Vec<Raster>)> = self
            .attacks
            .iter()
            .map(|a| {
                let delta = Raster::from_fn(w, h, |i| {
                    super::figure::diverging(0.5 + 0.5 * a.perturbation[i] as f64 / epsilon)
                });
                let cells = vec![
                    grey(&a.clean, w, h),
                    class_map(&a.label, w, h),
                    class_map(&a.clean_prediction, w, h),
                    delta,
                    grey(&a.attacked, w, h),
                    class_map(&a.attacked_prediction, w, h),
                ];
                let name = a.network.split(',').next().unwrap_or("").to_string();
                (name, cells)
            })
            .collect();
        draw_grid(&grid, &titles, &rows)?;
        for (k, a) in self.attacks.iter().enumerate() {
            let text = format!(
                "{}: paper IoU {:.3} clean, {:.3} attacked (ε = {})",
                a.network, a.clean_paper_iou, a.attacked_paper_iou, a.epsilon
            );
            notes.draw(&Text::new(
                text,
                (ROW_LABEL, k as i32 * ATTACK_CAPTION + 4),
                (FONT, LABEL_SIZE - 2).into_font(),
            ))?;
        }
        colour_bar(
            &bar,
            "δ (normalised input)",
            (-epsilon, epsilon),
            super::figure::diverging,
        )?;
        class_legend(&legend)
    }
}
