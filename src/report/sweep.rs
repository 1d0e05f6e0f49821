//! A sweep's figures and table: the chosen metric at each point's kept
//! checkpoint, mean ± sample std over seeds, as a heat map over the main
//! grid's two varied keys (the `[[sweep.extra]]` runs, e.g. the ResNet
//! baseline, as a row or column beside it on the same colour scale), as
//! lines against each varied key, and as a table of every point.
//!
//! A sweep is recognised by `sweep.json` in its folder (written by
//! `imex-run sweep`); its runs are drawn here and not as ordinary studies.

use super::figure::{
    centred_text, colour_bar, legend, save, viridis, Figure, FONT, GREY, LABEL_SIZE, PALETTE,
    TICK_SIZE, TITLE_SIZE,
};
use super::table::{latex_escape, Summary};
use crate::results::RunRecord;
use crate::sweep::{Manifest, ManifestPoint, MANIFEST};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The key averaged over rather than drawn.
const SEED: &str = "experiment.seed";

/// A sweep's manifest and the run folders found for its points.
#[derive(Debug, Clone)]
pub struct SweepRuns {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// One per manifest point: its run, if it has a finished epoch.
    pub runs: Vec<Option<RunRecord>>,
}

/// Every `sweep.json` under `root`, with the runs of its points taken out
/// of `runs` (what is left are the ordinary studies' runs).
pub fn take_sweeps(root: &Path, runs: &mut Vec<RunRecord>) -> Result<Vec<SweepRuns>> {
    let mut manifests: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() == MANIFEST)
        .map(|e| e.path().to_path_buf())
        .collect();
    manifests.sort();
    let mut sweeps = Vec::new();
    for path in manifests {
        let manifest = Manifest::read(&path)?;
        let dir = path.parent().unwrap_or(root).to_path_buf();
        let found = manifest
            .points
            .iter()
            .map(|p| {
                let run_dir = dir.join(&p.name);
                runs.iter()
                    .position(|r| r.dir == run_dir)
                    .map(|i| runs.remove(i))
            })
            .collect();
        sweeps.push(SweepRuns {
            dir,
            manifest,
            runs: found,
        });
    }
    Ok(sweeps)
}

/// The default metric: the paper's IoU for segmentation, RMSE for depth.
pub fn default_metric(sweep: &SweepRuns) -> &'static str {
    let depth = sweep
        .runs
        .iter()
        .flatten()
        .any(|r| r.config.model.task == crate::config::Task::Depth);
    match depth {
        true => "val_rmse",
        false => "val_paper_iou",
    }
}

/// A value as a label: numbers as written (`0.5`, `4`), strings bare.
pub fn show_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn finished(run: &RunRecord) -> bool {
    run.provenance["status"] == "finished"
}

/// The value of `column` at the run's kept checkpoint.
fn at_kept(run: &RunRecord, column: &str) -> Result<f64> {
    let row = run.metrics.checkpoint_row(run.config.training.checkpoint)?;
    Ok(run.metrics.column(column)?[row])
}

/// Points of one block with the same values but for the seed.
#[derive(Debug, Clone)]
pub struct Cell {
    pub block: usize,
    /// (key, value) without the seed.
    pub values: Vec<(String, Value)>,
    /// The metric of each finished seed.
    pub seeds: Vec<f64>,
    /// Points of the cell in the sweep (finished or not).
    pub points: usize,
}

impl Cell {
    pub fn summary(&self) -> Option<Summary> {
        (!self.seeds.is_empty()).then(|| Summary::of(&self.seeds))
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

fn without_seed(point: &ManifestPoint, keys: &[String]) -> Vec<(String, Value)> {
    keys.iter()
        .filter(|k| k.as_str() != SEED)
        .filter_map(|k| point.values.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// The sweep's cells (seeds pooled), in manifest order.
pub fn cells(sweep: &SweepRuns, metric: &str) -> Result<Vec<Cell>> {
    let keys = &sweep.manifest.keys;
    let mut cells: Vec<Cell> = Vec::new();
    for (point, run) in sweep.manifest.points.iter().zip(&sweep.runs) {
        let values = without_seed(point, keys);
        let k = match cells
            .iter()
            .position(|c| c.block == point.block && c.values == values)
        {
            Some(k) => k,
            None => {
                cells.push(Cell {
                    block: point.block,
                    values,
                    seeds: Vec::new(),
                    points: 0,
                });
                cells.len() - 1
            }
        };
        cells[k].points += 1;
        if let Some(run) = run.as_ref().filter(|r| finished(r)) {
            cells[k].seeds.push(at_kept(run, metric)?);
        }
    }
    Ok(cells)
}

/// The varied keys of a block (its values differ between its cells), seed aside.
fn varied(cells: &[Cell], block: usize, keys: &[String]) -> Vec<String> {
    let of_block: Vec<&Cell> = cells.iter().filter(|c| c.block == block).collect();
    keys.iter()
        .filter(|k| k.as_str() != SEED)
        .filter(|k| {
            let mut seen: Vec<&Value> = Vec::new();
            for c in &of_block {
                if let Some(v) = c.value(k) {
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
            }
            seen.len() > 1
        })
        .cloned()
        .collect()
}

/// A block's name in legends: its label, else its constant values.
fn block_name(sweep: &SweepRuns, cells: &[Cell], block: usize) -> String {
    if let Some(label) = sweep
        .manifest
        .points
        .iter()
        .find(|p| p.block == block)
        .and_then(|p| p.label.clone())
    {
        return label;
    }
    if block == 0 {
        return "grid".to_string();
    }
    let varied = varied(cells, block, &sweep.manifest.keys);
    cells
        .iter()
        .find(|c| c.block == block)
        .map(|c| {
            c.values
                .iter()
                .filter(|(k, _)| !varied.contains(k))
                .map(|(k, v)| format!("{k}={}", show_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The distinct values of `key` among `cells`, in order of appearance.
fn levels(cells: &[&Cell], key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for c in cells {
        if let Some(v) = c.value(key) {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
    }
    out
}

/// A row (or column) of extra runs on one of the heat map's axes.
struct Strip {
    label: String,
    /// Aligned with the axis' levels.
    cells: Vec<Option<Summary>>,
}

/// The heat map: main-grid cells over (x, y), extra blocks beside.
pub struct HeatMap {
    title: String,
    metric: String,
    x_key: String,
    y_key: String,
    x_levels: Vec<String>,
    y_levels: Vec<String>,
    /// grid[y][x]
    grid: Vec<Vec<Option<Summary>>>,
    /// Extra rows under the map (they vary over x).
    rows: Vec<Strip>,
    /// Extra columns right of it (they vary over y).
    columns: Vec<Strip>,
    range: (f64, f64),
}

const CELL: (i32, i32) = (120, 70);
const LEFT: i32 = 170;
const TOP: i32 = 80;
const GAP: i32 = 24;
const BAR: i32 = 130;

impl HeatMap {
    /// None unless the main grid varies exactly two keys besides the seed.
    pub fn new(sweep: &SweepRuns, cells: &[Cell], metric: &str) -> Option<Self> {
        let keys = &sweep.manifest.keys;
        let axes = varied(cells, 0, keys);
        let [x_key, y_key] = axes.as_slice() else {
            return None;
        };
        let main: Vec<&Cell> = cells.iter().filter(|c| c.block == 0).collect();
        let (xs, ys) = (levels(&main, x_key), levels(&main, y_key));
        let find = |cs: &[&Cell], key: &str, v: &Value, other: Option<(&str, &Value)>| {
            cs.iter()
                .find(|c| {
                    c.value(key) == Some(v) && other.is_none_or(|(k, w)| c.value(k) == Some(w))
                })
                .and_then(|c| c.summary())
        };
        let grid: Vec<Vec<Option<Summary>>> = ys
            .iter()
            .map(|y| {
                xs.iter()
                    .map(|x| find(&main, x_key.as_str(), x, Some((y_key.as_str(), y))))
                    .collect()
            })
            .collect();
        let (mut rows, mut columns) = (Vec::new(), Vec::new());
        let blocks: Vec<usize> = {
            let mut b: Vec<usize> = cells.iter().map(|c| c.block).filter(|&b| b > 0).collect();
            b.dedup();
            b
        };
        for block in blocks {
            let of_block: Vec<&Cell> = cells.iter().filter(|c| c.block == block).collect();
            let label = block_name(sweep, cells, block);
            match varied(cells, block, keys).as_slice() {
                [k] if k == x_key => rows.push(Strip {
                    label,
                    cells: xs
                        .iter()
                        .map(|x| find(&of_block, x_key.as_str(), x, None))
                        .collect(),
                }),
                [k] if k == y_key => columns.push(Strip {
                    label,
                    cells: ys
                        .iter()
                        .map(|y| find(&of_block, y_key.as_str(), y, None))
                        .collect(),
                }),
                _ => {}
            }
        }
        let all = grid
            .iter()
            .flatten()
            .chain(rows.iter().chain(&columns).flat_map(|s| &s.cells))
            .flatten()
            .map(|s: &Summary| s.mean);
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let range = match lo < hi {
            true => (lo, hi),
            false if lo.is_finite() => (lo - 0.5, lo + 0.5),
            false => (0.0, 1.0),
        };
        Some(HeatMap {
            title: format!(
                "sweep {}: {metric} (mean ± std over seeds)",
                sweep.manifest.sweep
            ),
            metric: metric.to_string(),
            x_key: x_key.clone(),
            y_key: y_key.clone(),
            x_levels: xs.iter().map(show_value).collect(),
            y_levels: ys.iter().map(show_value).collect(),
            grid,
            rows,
            columns,
            range,
        })
    }

    fn colour(&self, v: f64) -> RGBColor {
        viridis((v - self.range.0) / (self.range.1 - self.range.0))
    }

    fn draw_cell<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x, y): (i32, i32),
        cell: Option<&Summary>,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let corner = [(x, y), (x + CELL.0 - 2, y + CELL.1 - 2)];
        let Some(s) = cell else {
            area.draw(&Rectangle::new(corner, RGBColor(235, 235, 235).filled()))?;
            return centred_text(
                area,
                "not run",
                (x + CELL.0 / 2, y + CELL.1 / 2 - 10),
                TICK_SIZE,
            );
        };
        let colour = self.colour(s.mean);
        area.draw(&Rectangle::new(corner, colour.filled()))?;
        // Dark text on the light end of viridis, white on the dark end.
        let light =
            0.299 * colour.0 as f64 + 0.587 * colour.1 as f64 + 0.114 * colour.2 as f64 > 140.0;
        let ink = if light { BLACK } else { WHITE };
        let style = |size: u32| {
            TextStyle::from((FONT, size).into_font())
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Top,
                ))
                .color(&ink)
        };
        area.draw(&Text::new(
            format!("{:.3}", s.mean),
            (x + CELL.0 / 2, y + 12),
            style(LABEL_SIZE),
        ))?;
        let spread = match s.std {
            Some(sd) => format!("± {sd:.3} (n={})", s.n),
            None => format!("(n={})", s.n),
        };
        area.draw(&Text::new(
            spread,
            (x + CELL.0 / 2, y + 40),
            style(TICK_SIZE - 3),
        ))?;
        Ok(())
    }
}

impl Figure for HeatMap {
    fn size(&self) -> (u32, u32) {
        let (nx, ny) = (self.x_levels.len() as i32, self.y_levels.len() as i32);
        let extra_w = match self.columns.len() as i32 {
            0 => 0,
            k => GAP + k * CELL.0,
        };
        let extra_h = match self.rows.len() as i32 {
            0 => 0,
            k => GAP + k * CELL.1,
        };
        let w = LEFT + nx * CELL.0 + extra_w + BAR + 20;
        let h = TOP + ny * CELL.1 + extra_h + 80;
        (w.max(700) as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (w, _) = self.size();
        centred_text(root, &self.title, (w as i32 / 2, 12), TITLE_SIZE - 4)?;
        let (nx, ny) = (self.x_levels.len() as i32, self.y_levels.len() as i32);
        for (j, label) in self.y_levels.iter().enumerate() {
            let y = TOP + j as i32 * CELL.1;
            centred_text(root, label, (LEFT - 30, y + CELL.1 / 2 - 10), TICK_SIZE)?;
            for (i, cell) in self.grid[j].iter().enumerate() {
                self.draw_cell(root, (LEFT + i as i32 * CELL.0, y), cell.as_ref())?;
            }
        }
        centred_text(root, &self.y_key, (LEFT / 2, TOP - 30), LABEL_SIZE - 2)?;
        // Extra rows under the map.
        let below = TOP + ny * CELL.1 + GAP;
        for (r, strip) in self.rows.iter().enumerate() {
            let y = below + r as i32 * CELL.1;
            centred_text(
                root,
                &strip.label,
                (LEFT / 2 - 10, y + CELL.1 / 2 - 10),
                TICK_SIZE,
            )?;
            for (i, cell) in strip.cells.iter().enumerate() {
                self.draw_cell(root, (LEFT + i as i32 * CELL.0, y), cell.as_ref())?;
            }
        }
        let bottom = below - GAP
            + match self.rows.len() as i32 {
                0 => 0,
                k => GAP + k * CELL.1,
            };
        for (i, label) in self.x_levels.iter().enumerate() {
            centred_text(
                root,
                label,
                (LEFT + i as i32 * CELL.0 + CELL.0 / 2, bottom + 6),
                TICK_SIZE,
            )?;
        }
        centred_text(
            root,
            &self.x_key,
            (LEFT + nx * CELL.0 / 2, bottom + 34),
            LABEL_SIZE - 2,
        )?;
        // Extra columns right of it.
        let right = LEFT + nx * CELL.0 + GAP;
        for (c, strip) in self.columns.iter().enumerate() {
            let x = right + c as i32 * CELL.0;
            centred_text(root, &strip.label, (x + CELL.0 / 2, TOP - 30), TICK_SIZE)?;
            for (j, cell) in strip.cells.iter().enumerate() {
                self.draw_cell(root, (x, TOP + j as i32 * CELL.1), cell.as_ref())?;
            }
        }
        let bar_x = right
            + match self.columns.len() as i32 {
                0 => -GAP + 10,
                k => k * CELL.0 + 10,
            };
        let bar_h = (ny * CELL.1).max(200) + 60;
        let bar = root
            .clone()
            .shrink((bar_x, TOP - 30), (BAR as u32, bar_h as u32));
        colour_bar(&bar, &self.metric, self.range, viridis)?;
        Ok(())
    }
}

/// The extra blocks' dashed lines: apart from the grid's palette.
const EXTRA_COLOURS: [RGBColor; 2] = [BLACK, GREY];

/// One line: a block's cells over one key, the other keys held.
struct Line {
    label: String,
    colour: RGBColor,
    dashed: bool,
    /// (level index, mean, std)
    points: Vec<(f64, f64, f64)>,
}

/// The metric against each varied key of the main grid, one panel per key.
pub struct LinePlots {
    title: String,
    metric: String,
    panels: Vec<(String, Vec<String>, Vec<Line>)>,
}

impl LinePlots {
    pub fn new(sweep: &SweepRuns, cells: &[Cell], metric: &str) -> Option<Self> {
        let keys = &sweep.manifest.keys;
        let axes = varied(cells, 0, keys);
        if axes.is_empty() {
            return None;
        }
        let mut panels = Vec::new();
        for key in &axes {
            let main: Vec<&Cell> = cells.iter().filter(|c| c.block == 0).collect();
            let xs = levels(&main, key);
            let others: Vec<&String> = axes.iter().filter(|k| *k != key).collect();
            // One line per combination of the other keys' values.
            let mut lines: Vec<Line> = Vec::new();
            let mut combos: Vec<Vec<Value>> = Vec::new();
            for c in &main {
                let combo: Vec<Value> = others.iter().filter_map(|k| c.value(k).cloned()).collect();
                if !combos.contains(&combo) {
                    combos.push(combo);
                }
            }
            for (n, combo) in combos.iter().enumerate() {
                let label = others
                    .iter()
                    .zip(combo)
                    .map(|(k, v)| format!("{} = {}", short(k), show_value(v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let points = line_points(&main, key, &xs, |c| {
                    others.iter().zip(combo).all(|(k, v)| c.value(k) == Some(v))
                });
                lines.push(Line {
                    label: if label.is_empty() {
                        "grid".into()
                    } else {
                        label
                    },
                    colour: PALETTE[n % PALETTE.len()],
                    dashed: false,
                    points,
                });
            }
            // Extra blocks that vary over this key alone: dashed, beside.
            let mut blocks: Vec<usize> = cells.iter().map(|c| c.block).filter(|&b| b > 0).collect();
            blocks.dedup();
            for block in blocks {
                if varied(cells, block, keys).as_slice() == std::slice::from_ref(key) {
                    let of_block: Vec<&Cell> = cells.iter().filter(|c| c.block == block).collect();
                    lines.push(Line {
                        label: block_name(sweep, cells, block),
                        colour: EXTRA_COLOURS[(block - 1) % EXTRA_COLOURS.len()],
                        dashed: true,
                        points: line_points(&of_block, key, &xs, |_| true),
                    });
                }
            }
            // Side by side at each value, so that the std bars do not hide each other.
            let count = lines.len() as f64;
            for (n, line) in lines.iter_mut().enumerate() {
                let dodge = (n as f64 - (count - 1.0) / 2.0) * 0.04;
                for p in &mut line.points {
                    p.0 += dodge;
                }
            }
            panels.push((key.clone(), xs.iter().map(show_value).collect(), lines));
        }
        Some(LinePlots {
            title: format!(
                "sweep {}: {metric} at the kept checkpoint against each key (mean ± std over seeds)",
                sweep.manifest.sweep
            ),
            metric: metric.to_string(),
            panels,
        })
    }
}

/// `model.alpha` → `alpha`.
fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn line_points(
    cells: &[&Cell],
    key: &str,
    xs: &[Value],
    keep: impl Fn(&Cell) -> bool,
) -> Vec<(f64, f64, f64)> {
    xs.iter()
        .enumerate()
        .filter_map(|(i, x)| {
            let c = cells.iter().find(|c| c.value(key) == Some(x) && keep(c))?;
            let s = c.summary()?;
            Some((i as f64, s.mean, s.std.unwrap_or(0.0)))
        })
        .collect()
}

const PANEL: (u32, u32) = (760, 520);

impl Figure for LinePlots {
    fn size(&self) -> (u32, u32) {
        (
            PANEL.0 * self.panels.len().min(2) as u32,
            50 + PANEL.1 * self.panels.len().div_ceil(2) as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(&self.title, (FONT, TITLE_SIZE - 6))?;
        let columns = self.panels.len().min(2);
        let areas = root.split_evenly((self.panels.len().div_ceil(2), columns));
        for ((key, levels, lines), area) in self.panels.iter().zip(&areas) {
            let ys = lines
                .iter()
                .flat_map(|l| l.points.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
            let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
                (a.min(y), b.max(y))
            });
            let (lo, hi) = match lo < hi {
                true => (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)),
                false if lo.is_finite() => (lo - 0.5, lo + 0.5),
                false => (0.0, 1.0),
            };
            let n = levels.len() as f64;
            let mut chart = ChartBuilder::on(area)
                .margin(14)
                .x_label_area_size(48)
                .y_label_area_size(72)
                .build_cartesian_2d(-0.3..(n - 0.7), lo..hi)?;
            let names = levels.clone();
            chart
                .configure_mesh()
                .x_desc(key.as_str())
                .y_desc(self.metric.as_str())
                .axis_desc_style((FONT, LABEL_SIZE))
                .label_style((FONT, TICK_SIZE))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .x_labels(levels.len() + 1)
                // The key's values, evenly spaced (they need not be numbers).
                .x_label_formatter(&move |x| {
                    let i = x.round();
                    match (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                        true => names[i as usize].clone(),
                        false => String::new(),
                    }
                })
                .draw()?;
            for line in lines {
                let style = line.colour.stroke_width(3);
                let pts: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0, p.1)).collect();
                let series = match line.dashed {
                    true => chart.draw_series(DashedLineSeries::new(pts.clone(), 10, 6, style))?,
                    false => chart.draw_series(LineSeries::new(pts.clone(), style))?,
                };
                let dashed = line.dashed;
                series.label(&line.label).legend(move |(x, y)| {
                    let end = if dashed { x + 12 } else { x + 28 };
                    PathElement::new(vec![(x, y), (end, y)], style)
                });
                chart.draw_series(line.points.iter().map(|&(x, m, s)| {
                    PathElement::new(vec![(x, m - s), (x, m + s)], line.colour.stroke_width(2))
                }))?;
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, line.colour.filled())))?;
            }
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        Ok(())
    }
}

/// Columns of the table besides the metric, where the runs have them.
const ALSO: [&str; 4] = [
    "val_loss",
    "val_mean_iou",
    "val_pixel_accuracy",
    "val_paper_iou",
];

/// One row per point: its values, state, kept epoch and metrics.
fn point_rows(sweep: &SweepRuns, metric: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let keys = &sweep.manifest.keys;
    let mut columns: Vec<String> = vec![metric.to_string()];
    for c in ALSO {
        let present = sweep.runs.iter().flatten().any(|r| r.metrics.has(c));
        if c != metric && present {
            columns.push(c.to_string());
        }
    }
    let mut header: Vec<String> = ["point", "run", "block"].map(String::from).to_vec();
    header.extend(keys.iter().cloned());
    header.extend(["status", "kept epoch"].map(String::from));
    header.extend(columns.iter().cloned());
    let mut rows = Vec::new();
    for (point, run) in sweep.manifest.points.iter().zip(&sweep.runs) {
        let mut row = vec![
            point.index.to_string(),
            point.name.clone(),
            point.label.clone().unwrap_or_else(|| match point.block {
                0 => "grid".into(),
                b => format!("extra {b}"),
            }),
        ];
        row.extend(
            keys.iter()
                .map(|k| point.values.get(k).map_or(String::new(), show_value)),
        );
        match run {
            Some(run) => {
                let status = run.provenance["status"].as_str().unwrap_or("?").to_string();
                let kept = run.metrics.checkpoint_row(run.config.training.checkpoint)?;
                row.push(status);
                row.push(run.metrics.epochs()[kept].to_string());
                for c in &columns {
                    row.push(match run.metrics.has(c) {
                        true => format!("{:.6}", at_kept(run, c)?),
                        false => String::new(),
                    });
                }
            }
            None => {
                row.push("not run".into());
                row.extend(std::iter::repeat_n(String::new(), 1 + columns.len()));
            }
        }
        rows.push(row);
    }
    Ok((header, rows))
}

/// The caption of the table and the figures.
fn caption(sweep: &SweepRuns, cells: &[Cell], metric: &str) -> String {
    let finished = sweep.runs.iter().flatten().filter(|r| finished(r)).count();
    format!(
        "Sweep {} ({} points, {finished} finished; {} configurations): {metric} at each run's kept \
         checkpoint (its training.checkpoint rule); in the summary, mean ± sample std over the \
         finished seeds (n), runs not finished left out.",
        sweep.manifest.sweep,
        sweep.manifest.points.len(),
        cells.len()
    )
}

/// The summary: one row per configuration (seeds pooled).
fn summary_rows(sweep: &SweepRuns, cells: &[Cell]) -> (Vec<String>, Vec<Vec<String>>) {
    let keys: Vec<&String> = sweep
        .manifest
        .keys
        .iter()
        .filter(|k| k.as_str() != SEED)
        .collect();
    let mut header = vec!["block".to_string()];
    header.extend(keys.iter().map(|k| k.to_string()));
    header.extend(["n", "mean", "std"].map(String::from));
    let rows = cells
        .iter()
        .map(|c| {
            let mut row = vec![block_name(sweep, cells, c.block)];
            row.extend(
                keys.iter()
                    .map(|k| c.value(k).map_or(String::new(), show_value)),
            );
            match c.summary() {
                Some(s) => {
                    row.push(format!("{}/{}", s.n, c.points));
                    row.push(format!("{:.4}", s.mean));
                    row.push(s.std.map_or(String::new(), |v| format!("{v:.4}")));
                }
                None => row.extend([format!("0/{}", c.points), String::new(), String::new()]),
            }
            row
        })
        .collect();
    (header, rows)
}

fn markdown_table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

/// The table files' texts: Markdown (summary, then every point), LaTeX
/// (every point, booktabs) and CSV (every point, full precision).
pub fn tables(sweep: &SweepRuns, cells: &[Cell], metric: &str) -> Result<[String; 3]> {
    let (header, rows) = point_rows(sweep, metric)?;
    let caption = caption(sweep, cells, metric);
    let mut md = format!("{caption}\n\n");
    let (sh, sr) = summary_rows(sweep, cells);
    markdown_table(&mut md, &sh, &sr);
    md.push('\n');
    markdown_table(&mut md, &header, &rows);
    let mut tex = String::from(
        "% imex-run report: needs \\usepackage{booktabs}\n\\begin{table}[t]\n\\centering\n\\small\n",
    );
    let _ = writeln!(
        tex,
        "\\caption{{{}}}",
        latex_escape(&caption).replace('±', "$\\pm$")
    );
    let _ = writeln!(
        tex,
        "\\label{{tab:sweep-{}}}\n\\begin{{tabular}}{{{}}}\n\\toprule",
        sweep.manifest.sweep,
        "l".repeat(header.len())
    );
    let esc = |r: &[String]| {
        r.iter()
            .map(|c| latex_escape(c))
            .collect::<Vec<_>>()
            .join(" & ")
    };
    let _ = writeln!(tex, "{} \\\\\n\\midrule", esc(&header));
    for row in &rows {
        let _ = writeln!(tex, "{} \\\\", esc(row));
    }
    tex.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header)?;
    for row in &rows {
        writer.write_record(row)?;
    }
    let csv = String::from_utf8(writer.into_inner()?)?;
    Ok([md, tex, csv])
}

/// Every figure and table of one sweep into `out`: `S_heatmap`, `S_lines`
/// (PNG and SVG) and `S_table.{md,tex,csv}`; what cannot be drawn is said
/// in `skipped`.
pub fn draw(
    sweep: &SweepRuns,
    out: &Path,
    metric: Option<&str>,
) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let metric = metric.unwrap_or_else(|| default_metric(sweep));
    let name = &sweep.manifest.sweep;
    let (mut files, mut skipped) = (Vec::new(), Vec::new());
    if let Some(run) = sweep.runs.iter().flatten().find(|r| !r.metrics.has(metric)) {
        return Err(crate::error::Failure::Data(format!(
            "sweep {name}: {} has no column `{metric}` (--sweep-metric names a metrics.csv column)",
            run.metrics.file.display()
        ))
        .into());
    }
    let cells = cells(sweep, metric)?;
    if cells.iter().all(|c| c.seeds.is_empty()) {
        skipped.push(format!(
            "sweep {name} ({}): no point has finished yet; nothing to draw",
            sweep.dir.display()
        ));
        return Ok((files, skipped));
    }
    match HeatMap::new(sweep, &cells, metric) {
        Some(map) => files.extend(save(&map, &out.join(format!("{name}_heatmap")))?),
        None => skipped.push(format!(
            "sweep {name}: the heat map needs a main grid of exactly two varied keys besides \
             experiment.seed (it varies {:?}); lines and table drawn",
            varied(&cells, 0, &sweep.manifest.keys)
        )),
    }
    if let Some(lines) = LinePlots::new(sweep, &cells, metric) {
        files.extend(save(&lines, &out.join(format!("{name}_lines")))?);
    }
    for (ext, text) in ["md", "tex", "csv"]
        .iter()
        .zip(tables(sweep, &cells, metric)?)
    {
        let path = out.join(format!("{name}_table.{ext}"));
        crate::files::write_atomically(&path, text.as_bytes())?;
        files.push(path);
    }
    Ok((files, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_show_as_written() {
        assert_eq!(show_value(&json!(0.5)), "0.5");
        assert_eq!(show_value(&json!(4.0)), "4");
        assert_eq!(show_value(&json!(3)), "3");
        assert_eq!(show_value(&json!("resnet")), "resnet");
        assert_eq!(show_value(&json!([8, 16])), "[8,16]");
    }
}
